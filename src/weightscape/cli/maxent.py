"""``weightscape maxent …``: the max-ent (pairwise Ising) study of weight space.

The ``maxent`` sub-typer collects one function per command in :data:`COMMANDS`; each takes the
sub-typer and adds its command, so a new command (``train``, ``sample``, ``fit``, ``validate``) is
one more ``_add_<name>(sub)`` function appended there. No science lives here: commands parse and
validate options, call :mod:`weightscape.maxent`, write a run directory and print a summary.

``weightscape maxent landscape MODEL.npz | --couplings J [--fields h] [--references R]
[--slice A:B] --out DIR``: entropy landscapes around references (read from a file, or drawn from
the model in low/medium/high energy classes).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ConfigError

__all__ = ["COMMANDS", "register"]


def load_model_arg(model: str | None, couplings: str | None, fields: str | None):
    """The model from ``MODEL`` (``.npz`` written by IsingModel.save, or a matrix file) or from
    ``--couplings``/``--fields``; exactly one of the two ways."""
    from ..maxent import IsingModel

    if model is not None and couplings is not None:
        raise ConfigError("give either MODEL or --couplings (with optional --fields), not both")
    if model is None and couplings is None:
        raise ConfigError("no model: give MODEL.npz or --couplings J [--fields h]")
    if model is not None:
        if fields is not None and Path(model).suffix == ".npz":
            raise ConfigError("--fields cannot be combined with an .npz MODEL (it holds h)")
        return IsingModel.from_files(model, fields)
    return IsingModel.from_files(couplings, fields)


def _add_landscape(sub: typer.Typer) -> None:
    @sub.command("landscape")
    def landscape(
        model: str = typer.Argument(None, help="Model .npz (J, h) written by IsingModel.save."),
        couplings: str = typer.Option(
            None, "--couplings", help="N x N coupling matrix (text or .npy); symmetrised."
        ),
        fields: str = typer.Option(None, "--fields", help="Length-N fields (text or .npy)."),
        references: str = typer.Option(
            None,
            "--references",
            help="Reference file: rows 'E acc s1..sN' (authors') or a +-1 matrix. "
            "Default: sample low/medium/high-energy references from the model.",
        ),
        references_format: str = typer.Option(
            "auto", "--references-format", help="auto, authors or plain."
        ),
        slice_: str = typer.Option(
            None, "--slice", help="Columns A:B of the references (or LB, ITR, RB, FULL)."
        ),
        n_per_class: int = typer.Option(3, "--n-per-class", help="Sampled references per class."),
        classes: str = typer.Option("low,medium,high", "--classes", help="Energy classes."),
        mc_chains: int = typer.Option(50, "--mc-chains", help="Metropolis chains (sampling)."),
        mc_samples: int = typer.Option(20, "--mc-samples", help="Records per chain."),
        mc_burn_in: int = typer.Option(1000, "--mc-burn-in", help="Relaxation sweeps."),
        mc_thin: int = typer.Option(10, "--mc-thin", help="Sweeps between records."),
        x_min: float = typer.Option(-3.0, "--x-min", help="Smallest tilt."),
        x_max: float = typer.Option(3.0, "--x-max", help="Largest tilt."),
        x_step: float = typer.Option(0.05, "--x-step", help="Tilt step."),
        first_sweep: str = typer.Option("down", "--first-sweep", help="down (from x_max) or up."),
        single_sweep: bool = typer.Option(
            False, "--single-sweep", help="Only the first sweep (no hysteresis)."
        ),
        init_messages: str = typer.Option("zero", "--init-messages", help="zero or random."),
        predictor: str = typer.Option(
            "quadratic", "--predictor", help="Warm start: previous, linear or quadratic."
        ),
        damping: float = typer.Option(0.5, "--damping", help="BP damping (old fraction)."),
        tol: float = typer.Option(1e-6, "--tol", help="BP tolerance."),
        max_iter: int = typer.Option(1000, "--max-iter", help="BP sweeps per tilt."),
        criterion: str = typer.Option(
            "max_change", "--criterion", help="max_change, max_residual or mean_change."
        ),
        accel: str = typer.Option("adaptive", "--accel", help="adaptive or none."),
        jump_threshold: float = typer.Option(
            None, "--jump-threshold", help="Jump: |dd| between neighbours above (default x-step)."
        ),
        gap_average: str = typer.Option(
            "down_converged",
            "--gap-average",
            help="down_converged, up_converged or all_converged.",
        ),
        batch_size: int = typer.Option(
            None, "--batch-size", help="References per batched BP (default: all)."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        seed: int = typer.Option(0, "--seed", help="Seed of sampling and random messages."),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write figures."),
        out: str = typer.Option(..., "--out", help="Output directory to create."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing --out."),
    ) -> None:
        """Entropy landscapes s(d) around reference configurations (Bethe, tilt sweeps).

        Prints, per reference: d at x = 0, the largest jump of d on the downward sweep and
        where, the largest hysteresis |d_down - d_up| and the mean gap H(d) - s(d). Writes
        landscape.parquet (long table), landscape.npz, references.npz, summary.json,
        config.json and figures/ under --out.
        """
        from ..config import Precision
        from ..maxent import (
            BetheConfig,
            LandscapeConfig,
            MetropolisConfig,
            ReferenceSampling,
            parse_slice,
            read_references,
            sample_references,
        )

        # ---- validate everything before anything is written
        mdl = load_model_arg(model, couplings, fields)
        cols = parse_slice(slice_)
        bp = BetheConfig(
            damping=damping, tol=tol, max_iter=max_iter, criterion=criterion, accel=accel
        )
        cfg = LandscapeConfig(
            x_min=x_min,
            x_max=x_max,
            x_step=x_step,
            first_sweep=first_sweep,
            both_directions=not single_sweep,
            init_messages=init_messages,
            predictor=predictor,
            seed=seed,
            bp=bp,
            jump_threshold=jump_threshold,
            gap_average=gap_average,
            batch_size=batch_size,
            precision=Precision(device=device),
        )
        sampling = None
        if references is not None:
            refs = read_references(references, fmt=references_format, columns=cols)
            refs = refs.with_model_energies(mdl)
        else:
            if cols is not None:
                raise ConfigError("--slice selects columns of --references; give a file too")
            sampling = ReferenceSampling(
                n_per_class=n_per_class,
                classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
                metropolis=MetropolisConfig(
                    n_chains=mc_chains,
                    n_samples=mc_samples,
                    burn_in=mc_burn_in,
                    thin=mc_thin,
                    seed=seed,
                ),
                seed=seed,
            )
            refs = sample_references(mdl, sampling)  # before --out exists: may fail
        from ..store import RunDir

        rd = RunDir.create(out, exist="overwrite" if force else "error")
        payload = run_landscape(mdl, refs, sampling, cfg, rd, plots=plots)
        for row in payload["references"]:
            typer.echo(_line(row))
        typer.echo(f"wrote {rd.path}")


def run_landscape(model, refs, sampling, cfg, rd, *, plots: bool = True) -> dict:
    """Compute the landscapes and write the run directory ``rd``; returns the summary payload.

    ``refs`` (:class:`~weightscape.maxent.References`) were read or drawn with ``sampling``
    (recorded in ``config.json``; ``None`` for a file).
    """
    import time
    from dataclasses import asdict

    import numpy as np
    import pandas as pd

    from ..maxent import (
        entropy_landscapes,
        plot_d_of_x,
        plot_entropy_landscape,
    )

    t0 = time.perf_counter()
    results = entropy_landscapes(model, refs.sigma, cfg)
    t1 = time.perf_counter()
    n = model.n_spins
    frames, rows = [], []
    for i, r in enumerate(results):
        f = r.to_frame()
        f.insert(0, "label", refs.labels[i])
        f.insert(0, "reference", i)
        frames.append(f)
        s = r.summary().to_dict()
        rows.append(
            {
                "reference": i,
                "label": refs.labels[i],
                "energy_per_spin": float(refs.energy[i]) / n,
                **s,
            }
        )
    rd.write_config(
        {"landscape": asdict(cfg), "sampling": None if sampling is None else asdict(sampling)},
        device=str(cfg.precision.torch_device),
        extra={"n_spins": n, "n_references": refs.n_references, "source": refs.source},
    )
    rd.write_metrics(pd.concat(frames, ignore_index=True), "landscape")
    keys = ("d", "q", "s", "free_entropy", "energy", "e0", "converged", "iterations")
    stack = {k: np.stack([getattr(r, k) for r in results]) for k in keys}
    rd.write_arrays("landscape", x=cfg.grid, **stack)
    rd.write_arrays(
        "references",
        sigma=refs.sigma,
        energy=refs.energy,
        labels=np.asarray(refs.labels, dtype=str),
        file_energy=refs.file_energy,
        accuracy=refs.accuracy,
    )
    payload = {
        "references": rows,
        "seconds_landscape": t1 - t0,
        "n_spins": n,
    }
    rd.write_json("summary.json", payload)
    if plots:
        from ..plots import save_figure

        labels = [f"{i}: {lab}" for i, lab in enumerate(refs.labels)]
        figdir = rd.path / "figures"
        save_figure(plot_entropy_landscape(results, labels), figdir / "entropy_landscape")
        save_figure(plot_d_of_x(results, labels), figdir / "d_of_x")
    rd.mark_done()
    return payload


def _fmt(v: float, spec: str = ".4f") -> str:
    return "nan" if v != v else format(v, spec)


def _line(row: dict) -> str:
    a, b = row["max_jump_x"]
    flags = []
    if row["has_jump"]:
        flags.append("JUMP")
    if row["has_hysteresis"]:
        flags.append("HYSTERESIS")
    if row["n_unconverged"]:
        flags.append(f"{row['n_unconverged']} unconverged")
    return (
        f"reference {row['reference']} ({row['label']}, E/N={_fmt(row['energy_per_spin'])}): "
        f"d(0)={_fmt(row['d_at_zero'])}  "
        f"max jump down {_fmt(row['max_jump'])} at x={_fmt(a, '.2f')}->{_fmt(b, '.2f')}  "
        f"max hysteresis {_fmt(row['max_hysteresis'])} at x={_fmt(row['max_hysteresis_x'], '.2f')}"
        f"  mean gap H-s {_fmt(row['mean_gap'])}" + (f"  [{', '.join(flags)}]" if flags else "")
    )


# One function per command; add new commands here.
COMMANDS = [_add_landscape]


def register(app: typer.Typer) -> None:
    """Add the ``maxent`` sub-typer with every command of :data:`COMMANDS`."""
    sub = typer.Typer(
        name="maxent",
        help="Max-ent (pairwise Ising) models of weight space: entropy landscapes.",
        no_args_is_help=True,
    )
    for add in COMMANDS:
        add(sub)
    app.add_typer(sub, name="maxent")
