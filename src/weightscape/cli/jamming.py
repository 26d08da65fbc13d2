"""``weightscape jamming ...``: the N* search, the phase diagram and the fixed-N sweeps of
study A."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ..errors import RunDirError
from ._options import SLURM, check_creatable, parse_floats, parse_ints, parse_slurm

__all__ = ["register"]


def _slurm_options(items: list[str], executor: str, out: Path) -> dict | None:
    """The ``--slurm`` options (:func:`._options.parse_slurm`), and with ``--executor slurm``
    sbatch and a controller that answers, before anything is written."""
    from ..sweeps import make_executor

    opts = parse_slurm(items, executor)
    if executor == "slurm":
        make_executor("slurm", out, options=opts).check_available()
    return opts


def _check_out(out: str, resume: bool, sweeps: str) -> Path:
    """An ``--out`` folder that does not exist, is empty, or is continued with ``--resume``:
    then it must hold this command's ``sweeps`` subfolder (``--resume`` into another folder
    would write this command's files among foreign ones)."""
    o = Path(out)
    if o.exists() and not o.is_dir():
        raise RunDirError(f"--out {out!r} is a file; choose a new folder")
    if o.exists() and any(o.iterdir()):
        if not resume:
            raise RunDirError(f"--out {out!r} exists; pass --resume or choose a new folder")
        if not (o / sweeps).is_dir():
            raise RunDirError(
                f"--out {out!r} has no {sweeps}/ folder: not made by this command, so --resume "
                "cannot continue it; choose a new folder"
            )
    check_creatable(o)
    return o


def _finite(x):
    """A float for JSON: NaN and ±inf as None."""
    return float(x) if x is not None and math.isfinite(x) else None


def _depth_test_json(dt) -> dict | None:
    """The depth-independence test (:class:`~weightscape.jamming.DepthTest`) for a JSON file."""
    if dt is None:
        return None
    return {k: getattr(dt, k) for k in ("c_mean", "c_mean_err", "chi2", "dof", "p_value")}


def _pm(x: float, err: float, fmt: str) -> str:
    if not math.isfinite(x):
        return "not located"
    return f"{x:{fmt}}" + (f" ± {err:{fmt}}" if math.isfinite(err) else " (no error)")


def register(app: typer.Typer) -> None:
    grp = typer.Typer(
        help="Jamming transition (study A): N* search, phase diagram, fixed-N P sweeps."
    )
    app.add_typer(grp, name="jamming")

    @grp.command("phase-diagram")
    def phase_diagram_cmd(
        out: str = typer.Option(
            ..., "--out", help="Output folder (must not exist unless --resume)."
        ),
        depths: str = typer.Option("1,2,3", "--depths", help="Depths L, e.g. 1,2,3."),
        P: str = typer.Option("100,200,300,400", "--P", help="Numbers of points, e.g. 100,200."),
        protocol: str = typer.Option("fast", "--protocol", help="Protocol preset."),
        max_steps: int = typer.Option(None, "--max-steps", help="Override the step budget."),
        seeds: int = typer.Option(6, "--seeds", help="Seeds per width."),
        widths_per_round: int = typer.Option(3, "--widths-per-round"),
        max_rounds: int = typer.Option(4, "--max-rounds"),
        ratio_guess: float = typer.Option(1.5, "--ratio-guess", help="First guess of P/N*."),
        data: str = typer.Option("random", "--data", help="random (d = h) or a dataset name."),
        executor: str = typer.Option("inline", "--executor", help="inline, local or slurm."),
        slurm: list[str] = SLURM,
        resume: bool = typer.Option(False, "--resume", help="Continue an existing folder."),
    ) -> None:
        """N*(P) per depth by the batched search; P/N* fits and a depth-independence test.

        Writes OUT/phase.parquet, OUT/phase_fits.parquet, OUT/runs.parquet, OUT/phase.json,
        OUT/phase_diagram.png and the sweeps of every search round under OUT/search/.
        """
        from ..errors import check_choice
        from ..jamming import SearchConfig, get_protocol, phase_diagram, phase_figure
        from ..plots import save_figure
        from ..store import write_json, write_parquet
        from ..sweeps import EXECUTORS

        check_choice("executor", executor, list(EXECUTORS))
        ds, ps = parse_ints("depths", depths), parse_ints("P", P)
        kw = {} if max_steps is None else {"max_steps": max_steps}
        prot = get_protocol(protocol, **kw)
        cfg = SearchConfig(
            seeds=seeds,
            widths_per_round=widths_per_round,
            max_rounds=max_rounds,
            ratio_guess=ratio_guess,
        )
        slurm_opts = _slurm_options(slurm, executor, Path(out) / "search")
        o = _check_out(out, resume, "search")
        if data != "random":  # its files and sizes, before any folder is made
            from ..jamming import Problem
            from .train import check_data

            check_data([Problem(P=p, depth=1, data=data).config(prot, 1, 0) for p in ps])
        pdg = phase_diagram(
            ds,
            ps,
            prot,
            cfg,
            data=data,
            executor=executor,
            out=o / "search",
            resume=True,
            slurm=slurm_opts,
            log=lambda m: typer.echo(m, err=True),
        )
        write_parquet(o / "phase.parquet", pdg.table)
        write_parquet(o / "phase_fits.parquet", pdg.fit_table())
        runs = [s.runs.assign(problem=s.problem.label) for s in pdg.searches]
        import pandas as pd

        write_parquet(o / "runs.parquet", pd.concat(runs, ignore_index=True))
        dt = pdg.depth_test
        write_json(
            o / "phase.json",
            {
                "protocol": prot.to_dict(),
                "fits": pdg.fit_table().to_dict(orient="records"),
                "depth_test": _depth_test_json(dt),
            },
        )
        save_figure(phase_figure(pdg.table, pdg.fits), o / "phase_diagram")
        for _, r in pdg.table.iterrows():
            typer.echo(
                f"L={r.depth} P={r.P}: N* = {r.nstar:.1f} ± {r.nstar_err:.1f} "
                f"({r.method}), P/N* = {r.ratio:.2f} ± {r.ratio_err:.2f}"
            )
        for d, f in pdg.fits.items():
            typer.echo(f"L={d}: P/N* = {f.c:.3f} ± {f.c_err:.3f}, R² = {f.r2:.3f}")
        if dt is not None:
            typer.echo(
                f"depth independence: χ² = {dt.chi2:.2f} (dof {dt.dof}), p = {dt.p_value:.3f}"
            )

    @grp.command("fixed-n")
    def fixed_n_cmd(
        out: str = typer.Option(
            ..., "--out", help="Output folder (must not exist unless --resume)."
        ),
        depths: str = typer.Option("1,2,3", "--depths", help="Depths L, e.g. 1,2,3."),
        N: int = typer.Option(200, "--N", help="Target number of weights (d = h, per depth)."),
        ratios: str = typer.Option(
            "1.4,1.6,1.8,2.0,2.2,2.4,2.6,2.8", "--ratios", help="P/N values swept, e.g. 1.4,1.6."
        ),
        protocol: str = typer.Option("fast", "--protocol", help="Protocol preset."),
        max_steps: int = typer.Option(None, "--max-steps", help="Override the step budget."),
        seeds: int = typer.Option(6, "--seeds", help="Seeds per P."),
        n_boot: int = typer.Option(500, "--n-boot", help="Bootstrap replicates of each P* fit."),
        data_seed: int = typer.Option(0, "--data-seed", help="Base data seed."),
        executor: str = typer.Option("inline", "--executor", help="inline, local or slurm."),
        slurm: list[str] = SLURM,
        resume: bool = typer.Option(False, "--resume", help="Continue an existing folder."),
    ) -> None:
        """P swept at a fixed N per depth (the companion paper's Fig. 1B): P*/N per depth and a
        depth-independence test. Random data, d = h.

        At each depth the width whose N is closest to --N, P = round(ratio · N) for every
        ratio; P* is where the jammed fraction crosses 1/2 (logistic fit, bootstrap error).
        Writes OUT/fixed_n.parquet (one row per depth), OUT/runs.parquet, OUT/fixed_n.json,
        OUT/fixed_n.png and .pdf, and the sweeps under OUT/sweeps/.
        """
        from ..errors import check_choice, check_positive
        from ..jamming import fixed_n_diagram, fixed_n_figure, fixed_n_sizes, get_protocol
        from ..plots import save_figure
        from ..store import provenance, write_json, write_parquet
        from ..sweeps import EXECUTORS

        check_choice("executor", executor, list(EXECUTORS))
        ds, rs = parse_ints("depths", depths), parse_floats("ratios", ratios)
        check_positive("N", N, integer=True)
        check_positive("seeds", seeds, integer=True)
        check_positive("n_boot", n_boot, integer=True)
        check_positive("data_seed", data_seed, allow_zero=True, integer=True)
        kw = {} if max_steps is None else {"max_steps": max_steps}
        prot = get_protocol(protocol, **kw)
        fixed_n_sizes(ds, N, rs)  # every depth's P grid, before any folder is made
        slurm_opts = _slurm_options(slurm, executor, Path(out) / "sweeps")
        o = _check_out(out, resume, "sweeps")
        fx = fixed_n_diagram(
            ds,
            N,
            rs,
            prot,
            seeds,
            data_seed=data_seed,
            executor=executor,
            out=o / "sweeps",
            resume=True,
            n_boot=n_boot,
            slurm=slurm_opts,
            log=lambda m: typer.echo(m, err=True),
        )
        write_parquet(o / "fixed_n.parquet", fx.table)
        write_parquet(o / "runs.parquet", fx.runs)
        dt = fx.depth_test
        per_depth = [
            {
                "depth": int(r.depth),
                "width": int(r.width),
                "N": int(r.N),
                "P_star": _finite(r.P_star),
                "P_star_err": _finite(r.P_star_err),
                "ratio": _finite(r.ratio),
                "ratio_err": _finite(r.ratio_err),
                "method": r.method,
                "n_runs": int(r.n_runs),
                "n_undecided": int(r.n_undecided),
                "n_trap": int(r.n_trap),
            }
            for r in fx.table.itertuples()
        ]
        write_json(
            o / "fixed_n.json",
            {
                "protocol": prot.to_dict(),
                "config": {
                    "depths": ds,
                    "N": N,
                    "ratios": rs,
                    "seeds": seeds,
                    "n_boot": n_boot,
                    "data": "random",
                    "data_seed": data_seed,
                    "executor": executor,
                    "slurm": slurm_opts,
                },
                "provenance": provenance(prot.device),
                "depths": per_depth,
                "depth_test": _depth_test_json(dt),
            },
        )
        save_figure(fixed_n_figure(fx), o / "fixed_n")
        for r in fx.table.itertuples():
            typer.echo(
                f"L={r.depth} (h={r.width}, N={r.N}): P* = {_pm(r.P_star, r.P_star_err, '.1f')} "
                f"({r.method}), P*/N = {_pm(r.ratio, r.ratio_err, '.3f')}; {r.n_runs} runs, "
                f"{r.n_undecided} undecided, {r.n_trap} traps"
            )
        if dt is None:
            typer.echo("depth independence: not tested (P* located at fewer than two depths)")
        else:
            typer.echo(
                f"depth independence: common P*/N = {dt.c_mean:.3f} ± {dt.c_mean_err:.3f}, "
                f"χ² = {dt.chi2:.2f} (dof {dt.dof}), p = {dt.p_value:.3f}"
            )
