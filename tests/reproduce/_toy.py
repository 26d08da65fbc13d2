"""Toy studies for the reproduce tests: tiny real computations with known answers.

``toy``: the sample mean of standard normal draws. Claim 1 (true): the mean is 0 within three
standard errors. Claim 2 (false by design): the standard error of the mean does not shrink with
the sample size n (it shrinks as 1/sqrt(n), so the ratio between n_max and n_min is about
sqrt(n_min / n_max) = 0.25, far from the "paper's" 1).

``toy2``: the sum 1 + ... + n against the closed form n(n + 1)/2 (smoke scale only).

``toy_broken``: raises, to check that a failed study is recorded and the others still run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightscape.plots import final_vs_axis, metric_vs_step
from weightscape.reproduce import Claim, Plan, Study, StudyContext, StudyOutcome
from weightscape.store import write_npz

NS = {"smoke": (16, 64, 256), "small": (32, 128, 512), "paper": (64, 256, 1024)}
SEEDS = (0, 1, 2, 3)
# Tests read and set these: which seeds were computed (not loaded), and a crash to inject.
CALLS: list[int] = []
CRASH = {"after": None}  # raise after computing this many seeds


def draws(seed: int, base_seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(1000 * base_seed + seed).standard_normal(n)


def toy_plan(ctx: StudyContext) -> Plan:
    n = max(NS[ctx.scale])
    return Plan(
        runs=tuple(f"seed {s}: {n} standard normal draws" for s in SEEDS),
        cpu_s=0.01 * len(SEEDS),
        gpu_s=0.0,
        peak_mem_mb=1.0,
    )


def toy_run(ctx: StudyContext) -> StudyOutcome:
    ns = NS[ctx.scale]
    work = ctx.out / "work"
    rows, series = [], []
    computed = 0
    for s in SEEDS:
        f = work / f"seed{s}.npz"
        if ctx.resume and f.exists():
            with np.load(f) as z:
                x = z["x"]
        else:
            x = draws(s, ctx.seed, max(ns))
            write_npz(f, x=x)
            CALLS.append(s)
            computed += 1
            if CRASH["after"] is not None and computed >= CRASH["after"]:
                raise RuntimeError("injected crash")
        for n in ns:
            rows.append(
                {"n": n, "seed": s, "mean": x[:n].mean(), "sem": x[:n].std(ddof=1) / np.sqrt(n)}
            )
        steps = np.arange(8, max(ns) + 1, 8)
        for t in steps:
            series.append(
                {"member": s, "step": int(t), "name": "running_mean", "value": x[:t].mean()}
            )
    df = pd.DataFrame(rows)
    big = df[df.n == max(ns)]
    allx = np.concatenate([draws(s, ctx.seed, max(ns)) for s in SEEDS])
    grand, se = float(allx.mean()), float(allx.std(ddof=1) / np.sqrt(allx.size))
    sem_lo = df[df.n == min(ns)]["sem"].mean()
    ratio = float(big["sem"].mean() / sem_lo)
    claims = [
        Claim(
            key="1",
            statement="the sample mean of N(0,1) draws is 0 within 3 standard errors",
            paper="0",
            ours=f"{grand:.3f} ± {se:.3f}",
            holds=abs(grand) < 3 * se,
            value=grand,
            error=se,
            paper_value=0.0,
        ),
        Claim(
            key="2",
            statement="the standard error does not shrink from n_min to n_max",
            paper="1",
            ours=f"{ratio:.2f}",
            holds=abs(ratio - 1) < 0.2,
            value=ratio,
            paper_value=1.0,
        ),
    ]
    figures = [
        (
            "running_mean",
            metric_vs_step(pd.DataFrame(series), "running_mean"),
            "running mean per seed",
        ),
        ("mean_vs_n", final_vs_axis(df, "n", "mean"), "sample mean vs n, error bars over seeds"),
    ]
    return StudyOutcome(
        claims=claims,
        figures=figures,
        tables={"means": df},
        headline={"grand mean": grand, "seeds": len(SEEDS), "not measured": float("nan")},
        notes=["toy study for tests"],
        config={"ns": list(ns), "seeds": list(SEEDS)},
    )


def toy2_run(ctx: StudyContext) -> StudyOutcome:
    n = 100
    s = int(np.arange(1, n + 1).sum())
    claim = Claim(key="1", statement="1 + ... + n = n(n+1)/2", paper=str(n * (n + 1) // 2),
                  ours=str(s), holds=s == n * (n + 1) // 2, value=float(s))  # fmt: skip
    return StudyOutcome(claims=[claim], headline={"sum": s})


def toy2_plan(ctx: StudyContext) -> Plan:
    return Plan(runs=("sum of 1..100",), cpu_s=0.0)


def broken_run(ctx: StudyContext) -> StudyOutcome:
    raise ValueError("the toy study is broken on purpose")


TOY = Study(
    name="toy", title="Mean of Gaussian draws", paper="Gauss (1809)", run=toy_run, plan=toy_plan
)
TOY2 = Study(name="toy2", title="Arithmetic series", paper="Gauss (1786)", run=toy2_run,
             plan=toy2_plan, scales=("smoke",))  # fmt: skip
BROKEN = Study(name="toy_broken", title="Broken", paper="none", run=broken_run, plan=toy2_plan)


# ``toy_sweep``: a study that runs a real sweep (the sweeps package's demo.ridge task) with the
# context's executor, Slurm options and resume flag, as the paper studies do.
SWEEP_RESULTS: list = []
RIDGE = {"base": {"steps": 20, "log_every": 10}, "axes": {"width": [4, 16], "seed": [0, 1]}}


def sweep_run(ctx: StudyContext) -> StudyOutcome:
    from weightscape.store import open_sweep
    from weightscape.sweeps import Sweep, run_sweep

    sweep = Sweep(task="demo.ridge", **RIDGE)
    SWEEP_RESULTS.append(
        run_sweep(
            sweep, ctx.out / "sweep", executor=ctx.executor, resume=ctx.resume, slurm=ctx.slurm
        )
    )
    runs = open_sweep(ctx.out / "sweep").runs
    worst = float((runs["loss"] - runs["loss_exact"]).min())
    claim = Claim(key="1", statement="gradient descent never beats the exact ridge minimum",
                  paper="loss >= loss_exact", ours=f"min(loss - loss_exact) = {worst:.2e}",
                  holds=worst >= -1e-12, value=worst)  # fmt: skip
    return StudyOutcome(
        claims=[claim], figures={"loss_vs_width": final_vs_axis(runs, "width", "loss")}
    )


def sweep_plan(ctx: StudyContext) -> Plan:
    from weightscape.sweeps import Sweep

    configs = Sweep(task="demo.ridge", **RIDGE).expand()
    return Plan(
        runs=tuple(f"ridge width={c['width']} seed={c['seed']}" for c in configs), cpu_s=1.0
    )


TOY_SWEEP = Study(
    name="toy_sweep", title="Ridge sweep", paper="none", run=sweep_run, plan=sweep_plan
)
