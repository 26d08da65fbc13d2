"""``weightscape jamming ...``: the N* search and the phase diagram of study A."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ConfigError, RunDirError
from ._options import check_creatable

__all__ = ["parse_ints", "register"]


def parse_ints(name: str, text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]`` (positive integers)."""
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r} must be comma-separated integers") from None
    if not vals or any(v <= 0 for v in vals):
        raise ConfigError(f"--{name} {text!r} must list positive integers")
    return vals


def register(app: typer.Typer) -> None:
    grp = typer.Typer(help="Jamming transition (study A): N* search and phase diagram.")
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
        o = Path(out)
        if o.exists() and not o.is_dir():
            raise RunDirError(f"--out {out!r} is a file; choose a new folder")
        if o.exists() and any(o.iterdir()) and not resume:
            raise RunDirError(f"--out {out!r} exists; pass --resume or choose a new folder")
        check_creatable(o)
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
                "depth_test": None
                if dt is None
                else {
                    "c_mean": dt.c_mean,
                    "c_mean_err": dt.c_mean_err,
                    "chi2": dt.chi2,
                    "dof": dt.dof,
                    "p_value": dt.p_value,
                },
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
