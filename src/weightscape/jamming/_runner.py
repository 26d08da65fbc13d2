"""Running jamming members: the ``"jamming.train"`` sweep task, in-memory runs, run records.

A jamming run is a training run (:mod:`weightscape.runs`) plus the plateau rule as an online stop
rule: at every poll the loop hands the recorded history to :func:`plateau_hook`, which marks the
members whose ``N_Δ`` and loss stopped falling (:class:`PlateauRule`); they stop with
``stop_reason="hook"``, reported here as the criterion ``"plateau"``. Members of any widths,
input dimensions, P and seeds train as one batched ensemble (per-member data are zero-padded with
sample masks, which is exact).

:func:`run_records` runs a list of flat configs either in memory (``executor="memory"``: no files,
for tests and the smoke scale) or through :func:`weightscape.sweeps.run_sweep` (``inline`` /
``local`` / ``slurm``, resumable), and returns one :class:`RunRecord` per config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import null_as_nan
from ..errors import ConfigError, check_choice
from ._diagnose import PlateauRule, RunClass, classify_run, dead_unit_report_ensemble
from ._protocol import (
    _plateau_keys,
    _schedule_keys,
    plateau_from_config,
    schedule_options_from_config,
)

__all__ = [
    "JAMMING_TASK",
    "RunRecord",
    "classify_record",
    "plateau_hook",
    "records_frame",
    "run_records",
    "train_members",
]

JAMMING_TASK = "jamming.train"
RUNNERS = ("memory", "inline", "local", "slurm")
#: steps between compactions of an ensemble (stopped members dropped from the computation)
COMPACT_EVERY = 200


def plateau_hook(rule: PlateauRule):
    """A ``stop_hook`` for :func:`weightscape.train.train`: marks members on a plateau.

    For each member active at the last measurement, the rule is applied to the member's own
    measurements (rows where it was active); SAT members are left to the ``unsat_zero`` rule.
    """
    from ._diagnose import plateau_status

    def hook(step: int, history: dict) -> np.ndarray:
        act = history["active"]
        M = act.shape[1]
        out = np.zeros(M, dtype=bool)
        if act.shape[0] == 0:
            return out
        steps = history["step"]
        for m in np.flatnonzero(act[-1]):
            rows = act[:, m]
            st = plateau_status(
                steps[rows], history["loss"][rows, m], history["n_unsat"][rows, m], rule
            )
            out[m] = st.plateau
        return out

    return hook


def _train_config(cfg: Mapping, lr=None):
    """The :class:`weightscape.train.TrainConfig` of a flat ``jamming.train`` config, with the
    step decay's ``jamming.schedule.*`` options."""
    from dataclasses import replace

    from ..runs import train_config_from_flat

    tcfg = train_config_from_flat(cfg, lr=lr)
    opts = schedule_options_from_config(cfg)
    return replace(tcfg, schedule_options=opts) if opts else tcfg


def _train_with_hook(configs: Sequence[Mapping], progress=False):
    """:func:`weightscape.runs.run_members` with the configs' plateau rule as the stop hook."""
    import torch

    from ..config import Precision
    from ..data import load
    from ..nets import Ensemble
    from ..runs import EnsembleOutcome, _spec, _stack, member_recipes
    from ..train import train
    from ..train._loop import _compactable

    cfg0 = configs[0]
    prec = Precision(cfg0["precision.dtype"], cfg0["precision.device"])
    recipes = member_recipes(configs)
    datasets: dict = {}
    for r in recipes:
        if r.data_key() not in datasets:
            datasets[r.data_key()] = load(r.data_name, **dict(r.data_options))
    member_ds = [datasets[r.data_key()] for r in recipes]
    specs = [
        _spec(cfg0, r.width, ds.x.shape[1], ds) for r, ds in zip(recipes, member_ds, strict=True)
    ]
    dt, dev = prec.torch_dtype, prec.torch_device
    ens = Ensemble.init(specs, [r.seed for r in recipes], dtype=dt, device=dev)
    M = len(recipes)
    mask = None
    x_test = y_test = None
    if len(datasets) == 1:
        ds = member_ds[0]
        x = torch.as_tensor(ds.x.copy(), dtype=dt, device=dev)
        y = torch.as_tensor(ds.y.copy(), dtype=dt, device=dev)
        if ds.x_test is not None:
            x_test = torch.as_tensor(ds.x_test.copy(), dtype=dt, device=dev)
            y_test = torch.as_tensor(ds.y_test.copy(), dtype=dt, device=dev)
    else:
        P = max(ds.x.shape[0] for ds in member_ds)
        d = ens.max_sizes[0]
        x = torch.as_tensor(_stack([ds.x for ds in member_ds], M, P, d), dtype=dt, device=dev)
        y = torch.as_tensor(_stack([ds.y for ds in member_ds], M, P, None), dtype=dt, device=dev)
        m = np.zeros((M, P))
        for i, ds in enumerate(member_ds):
            m[i, : ds.x.shape[0]] = 1.0
        mask = torch.as_tensor(m, dtype=dt, device=dev) if (m == 0).any() else None
        tests = [None if ds.x_test is None else ds.x_test.shape[0] for ds in member_ds]
        if None not in tests and len(set(tests)) == 1:
            Pt = tests[0]
            x_test = torch.as_tensor(
                _stack([ds.x_test for ds in member_ds], M, Pt, d), dtype=dt, device=dev
            )
            y_test = torch.as_tensor(
                _stack([ds.y_test for ds in member_ds], M, Pt, None), dtype=dt, device=dev
            )
    lrs = tuple(r.lr for r in recipes)
    tcfg = _train_config(cfg0, lr=lrs if len(set(lrs)) > 1 else lrs[0])
    rule = plateau_from_config(cfg0)
    # members that stopped (SAT at N_Δ = 0, jammed by the plateau rule) leave the computation
    # (exact: each member's trajectory is unchanged, tests/train/test_compact.py) wherever train
    # allows it: adam/sgd with a constant or step-decay (geiger2019, fast-decay) rate
    compact = _compactable(tcfg)
    result = train(
        ens,
        x,
        y,
        tcfg,
        sample_mask=mask,
        x_test=x_test,
        y_test=y_test,
        progress=progress,
        stop_hook=None if rule is None else plateau_hook(rule),
        compact_every=COMPACT_EVERY if compact else None,
    )
    return EnsembleOutcome(ens, result, datasets, [r.data_key() for r in recipes], prec)


def train_members(configs: Sequence[Mapping], *, progress: bool = False):
    """Train the members of flat ``jamming.train`` configs as one ensemble (no files).

    Returns:
        :class:`weightscape.runs.EnsembleOutcome`.
    """
    if not configs:
        raise ConfigError("no members to train")
    keys = {_pack_key(c) for c in configs}
    if len(keys) != 1:
        raise ConfigError("members of one ensemble must agree on everything but seed/data/width/lr")
    return _train_with_hook(configs, progress=progress)


# ------------------------------------------------------------------------------------------------
# records


@dataclass
class RunRecord:
    """One finished member.

    Attributes:
        config: its flat config.
        summary: final scalars (``loss``, ``n_unsat``, ``n_errors``, ``grad_norm``, ``steps``,
            ``stop_reason``, ``N``, ``n_params``, ``P``, ``d``, ``depth``, ``width``, ``seed``,
            ``test_errors``... as in :func:`weightscape.runs.write_member_runs`).
        history: wide table of the measurements: ``step`` and one column per metric.
        gaps_train: final gaps Δ ``[P]``; gaps_test: ``[P_test]`` or None.
        path: run folder (None for in-memory runs).
        net: ``(params, spec)`` of the trained net (loaded lazily from ``path`` when None).
    """

    config: dict
    summary: dict
    history: pd.DataFrame
    gaps_train: np.ndarray
    gaps_test: np.ndarray | None = None
    path: Path | None = None
    net: tuple | None = field(default=None, repr=False)

    def load_net(self):
        """``(params, spec)`` of the trained net."""
        if self.net is None:
            from ..nets import Ensemble
            from ..store import RunDir

            arrays = RunDir.open(self.path).read_arrays()
            ens = Ensemble.from_arrays(str(arrays["specs_json"]), arrays)
            self.net = (ens.member_params(0), ens.specs[0])
        return self.net

    def load_data(self):
        """The member's :class:`weightscape.data.Dataset` (reloaded from its recipe)."""
        from ..data import load
        from ..runs import member_recipes

        r = member_recipes([self.config])[0]
        return load(r.data_name, **dict(r.data_options))


def _wide(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty:
        return pd.DataFrame({"step": np.array([], dtype=np.int64)})
    w = metrics.pivot_table(index="step", columns="name", values="value", aggfunc="first")
    w.columns.name = None
    return w.reset_index()


def _records_from_outcome(configs, outcome) -> list[RunRecord]:
    from ..runs import _member_summary

    ens = outcome.ensemble
    metrics = outcome.result.metrics
    out = []
    for m, cfg in enumerate(configs):
        hist = _wide(metrics[metrics["member"] == m].drop(columns="member"))
        g = outcome.result.gaps["train"][m]
        gt = outcome.result.gaps.get("test")
        out.append(
            RunRecord(
                config=dict(cfg),
                summary=_member_summary(outcome, m),
                history=hist,
                gaps_train=g[~np.isnan(g)],
                gaps_test=None if gt is None else gt[m][~np.isnan(gt[m])],
                net=([p for p in ens.member_params(m)], ens.specs[m]),
            )
        )
    return out


def _record_from_dir(path: Path, cfg: dict) -> RunRecord:
    from ..store import RunDir

    rd = RunDir.open(path)
    arrays = rd.read_arrays()
    return RunRecord(
        config=dict(cfg),
        # JSON writes NaN as null: NaN again, as in a record made in memory (_member_summary)
        summary=null_as_nan(rd.read_json("summary.json")),
        history=_wide(rd.read_metrics()),
        gaps_train=arrays["gaps_train"],
        gaps_test=arrays.get("gaps_test"),
        path=Path(path),
    )


def run_records(
    configs: Sequence[Mapping],
    *,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> list[RunRecord]:
    """Run ``configs`` (flat ``jamming.train`` configs) and return their records, in order.

    Args:
        configs: one per member; members sharing everything but seed/data/width/lr train as one
            ensemble (for ``memory`` all configs must share it).
        executor: ``memory`` (in this process, no files) or a sweep executor (``inline``,
            ``local``, ``slurm``) writing one run folder per member under ``out``.
        out: sweep folder (required unless ``memory``).
        resume: re-use finished runs in ``out`` (sweep executors).
        max_workers, slurm: passed to :func:`weightscape.sweeps.run_sweep`.
    """
    check_choice("executor", executor, RUNNERS)
    configs = [dict(c) for c in configs]
    if not configs:
        return []
    if executor == "memory":
        groups: dict = {}
        for i, c in enumerate(configs):
            groups.setdefault(_pack_key(c), []).append(i)
        recs: list = [None] * len(configs)
        for idx in groups.values():
            sub = [configs[i] for i in idx]
            for i, r in zip(idx, _records_from_outcome(sub, train_members(sub)), strict=True):
                recs[i] = r
        return recs
    if out is None:
        raise ConfigError(f"executor={executor!r} needs an output folder (out=...)")
    from ..sweeps import Sweep, run_sweep

    keys = sorted({k for c in configs for k in c})
    sweep = Sweep(task=JAMMING_TASK, zip=[{k: [c[k] for c in configs] for k in keys}])
    res = run_sweep(
        sweep, out, executor=executor, resume=resume, max_workers=max_workers, slurm=slurm
    )
    if res.failures:
        raise ConfigError(f"{len(res.failures)} packs failed: {res.failures[0]['error']}")
    runs = Path(out) / "runs"
    resolved = sweep.expand()
    return [_record_from_dir(runs / h, c) for h, c in zip(sweep.hashes(), resolved, strict=True)]


# ------------------------------------------------------------------------------------------------
# classification

#: Which criterion ended a run: ``unsat_zero`` (N_Δ = 0), ``plateau`` (decided jammed early by the
#: plateau rule), ``budget`` (the step budget), ``nonfinite``.
CRITERIA = ("unsat_zero", "plateau", "budget", "nonfinite")


#: Dead-unit trap thresholds used on run records: a gradient norm at float64 noise level
#: (``‖∇L‖ ≤ 1e-12``; the trapped points' outputs are constant, the rest of the gradient cancels to
#: rounding, ~1e-17 in practice) and ``N_Δ ≤ 0.5 N`` (the spec's 0.1 N is for the paper's widths;
#: at the reduced scales' widths h ≈ 5–10 a whole layer goes dark on up to ~0.35 N points).
TRAP_GRAD_TOL = 1e-12
TRAP_FRACTION = 0.5

#: A run that ends at the budget with every gap ``Δ_μ ≤ SAT_GAP_TOL`` is SAT: its remaining
#: ``N_Δ > 0`` gaps converge onto 0 from above (the quadratic hinge's gradient vanishes with Δ, so
#: they approach the boundary of the SAT region asymptotically, loss ~1e-30 after a few thousand
#: steps), i.e. towards a zero of the loss, not a finite-loss (jammed) minimum. A jammed run has
#: loss of order 1e-3–1e-1 and gaps of order 0.1–1. The tolerance sits far above float64
#: rounding of ``y f`` (~1e-16) and at the lower edge of the spec's gap histograms (1e-9).
SAT_GAP_TOL = 1e-9


def classify_record(
    rec: RunRecord,
    rule: PlateauRule | None = None,
    *,
    trap_fraction: float = TRAP_FRACTION,
    grad_tol: float = TRAP_GRAD_TOL,
) -> tuple[RunClass, str]:
    """Classify a finished member; returns ``(RunClass, criterion)``.

    The criterion says what ended the run (:data:`CRITERIA`). A member with ``N_Δ > 0``, a zero
    gradient (``≤ grad_tol``) and ``N_Δ ≤ trap_fraction · N`` is checked for the dead-unit trap on
    its final net (every unsatisfied point has a hidden layer entirely off). A member with
    ``N_Δ > 0`` whose every final gap is ``≤`` :data:`SAT_GAP_TOL` is SAT (``ndelta_frac`` 0, the
    raw count stays in ``n_unsat``), whether the plateau rule calls it still relaxing or flat: a
    decaying learning rate freezes such a run at loss ~1e-30 on its way onto a zero of the loss.
    """
    s = rec.summary
    rule = rule if rule is not None else (plateau_from_config(rec.config) or PlateauRule())
    reason = s["stop_reason"]
    criterion = {"hook": "plateau"}.get(reason, reason)
    h = rec.history
    steps = h["step"].to_numpy(float)
    loss = h["loss"].to_numpy(float)
    nd = h["n_unsat"].to_numpy(float)
    # the final state (the summary) closes the history when it is not a measurement step
    if len(steps) == 0 or steps[-1] < s["steps"]:
        steps = np.append(steps, s["steps"])
        loss = np.append(loss, s["loss"])
        nd = np.append(nd, s["n_unsat"])
    N = int(s["N"])
    dead = None
    if 0 < s["n_unsat"] <= trap_fraction * N and s["grad_norm"] <= grad_tol:
        dead = _dead_report(rec)
    rc = classify_run(
        steps,
        loss,
        nd,
        N,
        grad_norm=float(s["grad_norm"]),
        dead_units=dead,
        rule=rule,
        trap_fraction=trap_fraction,
        grad_tol=grad_tol,
    )
    gaps = rec.gaps_train
    if (
        rc.label in ("undecided", "jammed")
        and gaps is not None
        and len(gaps)
        and float(np.max(gaps)) <= SAT_GAP_TOL
    ):
        rc = RunClass(
            "sat",
            rc.n_delta,
            rc.n_weights,
            0.0,
            f"every gap ≤ {SAT_GAP_TOL:g} at the end (N_Δ = {rc.n_delta} gaps converging onto 0 "
            "from above: a zero of the loss)",
            rc.plateau,
        )
    if criterion == "plateau" and rc.label == "undecided":  # pragma: no cover - same rule online
        rc = RunClass(
            "jammed", rc.n_delta, rc.n_weights, rc.ndelta_frac, "plateau (online)", rc.plateau
        )
    return rc, criterion


def _dead_report(rec: RunRecord):
    import torch

    from ..nets import Ensemble

    params, spec = rec.load_net()
    ds = rec.load_data()
    ens = Ensemble.from_member_params([spec], [params])
    x = torch.as_tensor(np.array(ds.x), dtype=ens.dtype)
    # points with |Δ| at rounding level (≤ SAT_GAP_TOL) are on the SAT boundary, not unsatisfied:
    # re-evaluating the net in another operation order leaves them at ±1e-15
    return dead_unit_report_ensemble(
        ens,
        x,
        np.array(ds.y),
        0,
        kappa=float(rec.config.get("train.kappa") or 1.0),
        gap_tol=SAT_GAP_TOL,
    )


def records_frame(records: Sequence[RunRecord], rule: PlateauRule | None = None) -> pd.DataFrame:
    """One row per record: sizes, seed, final scalars, ``outcome`` and ``criterion``."""
    rows = []
    for i, r in enumerate(records):
        rc, crit = classify_record(r, rule)
        s = r.summary
        rows.append(
            {
                "record": i,
                "depth": int(s["depth"]),
                "width": int(s["width"]),
                "d": int(s["d"]),
                "P": int(s["P"]),
                "N": int(s["N"]),
                "seed": int(s["seed"]),
                "data_seed": int(r.config.get("data.seed") or 0),
                "data": r.config.get("data.name"),
                "loss": float(s["loss"]),
                "n_unsat": int(s["n_unsat"]),
                "ndelta_frac": rc.ndelta_frac,
                "n_errors": int(s["n_errors"]),
                "grad_norm": float(s["grad_norm"]),
                "steps": int(s["steps"]),
                "max_steps": int(r.config["train.max_steps"]),
                "test_errors": float(s.get("test_errors", np.nan)),
                "outcome": rc.label,
                "criterion": crit,
                "reason": rc.reason,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# the sweep task


def _pack_key(cfg: Mapping) -> str:
    """Members sharing P and width (and everything but seed/data seed/lr) form one ensemble.

    Batching is over seeds (and data draws): members of other widths or P would be zero-padded
    to the largest, which costs FLOPs in proportion (the work per step is Σ_members P·N), and an
    ensemble runs until its slowest member stops, so mixing fast SAT widths with slow
    near-critical ones wastes their steps.
    """
    from ..runs import train_pack_key

    return (
        train_pack_key(cfg)
        + f"|P={cfg.get('data.P')}|n={cfg.get('data.train_size')}"
        + (f"|w={cfg.get('net.width')}|d={cfg.get('data.d')}")
    )


def _run_task(configs: list[dict], dirs: list[Path]) -> None:
    from ..runs import write_member_runs

    outcome = train_members(configs)
    write_member_runs(dirs, configs, outcome)


def _validate(cfg: dict) -> None:
    from ..runs import _validate as validate_train

    validate_train(cfg)
    plateau_from_config(cfg)
    _train_config(cfg)  # the step decay's options


def register_jamming_task() -> None:
    """Register the ``"jamming.train"`` sweep task (idempotent)."""
    from ..runs import TRAIN_DEFAULTS
    from ..sweeps import Task, register_task, task_names

    if JAMMING_TASK in task_names():
        return
    register_task(
        Task(
            name=JAMMING_TASK,
            defaults={**TRAIN_DEFAULTS, **_plateau_keys(None), **_schedule_keys(None)},
            run=_run_task,
            validate=_validate,
            pack_key=_pack_key,
            description="jamming runs: train with N_Δ = 0 and plateau stop rules, per-member data",
        )
    )
