"""``weightscape reproduce``: run the studies' protocols and judge the papers' claims."""

from __future__ import annotations

from pathlib import Path

import typer

from ._options import SLURM, parse_slurm

__all__ = ["register"]


def reproduce(
    studies: list[str] = typer.Argument(
        ..., help="Study to reproduce: jamming, landscape, maxent, or all (several allowed)."
    ),
    scale: str = typer.Option(..., "--scale", help="smoke (minutes), small, or paper."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (must not exist, unless --resume/--force)."
    ),
    executor: str = typer.Option("inline", "--executor", help="inline, local, or slurm."),
    slurm: list[str] = SLURM,
    resume: bool = typer.Option(False, "--resume", help="Continue OUT, re-using finished work."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it is a reproduce folder."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the runs and a CPU/GPU time and memory estimate; write nothing.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:<k>, or auto."),
    dtype: str = typer.Option("float64", "--dtype", help="float64 or float32."),
    seed: int = typer.Option(0, "--seed", help="Base seed of every study."),
    data: str = typer.Option(
        None,
        "--data",
        help="Data set, for studies that take one (maxent: mnist, fashion-mnist, mnist-sample); "
        "default: each study's own choice.",
    ),
) -> None:
    """Reproduce a study's claims; print one verdict line per claim and the report path.

    With --executor slurm and --device cuda each job asks for one GPU unless --slurm gpus=...
    is given.
    """
    from ..config import Precision
    from ..reproduce import run_reproduce

    result = run_reproduce(
        studies,
        scale,
        out,
        executor=executor,
        resume=resume,
        dry_run=dry_run,
        force=force,
        precision=Precision(dtype=dtype, device=device),
        seed=seed,
        slurm=parse_slurm(slurm, executor),
        data=data,
    )
    if result.failed:
        typer.echo(f"error: failed studies: {', '.join(result.failed)}", err=True)
        # SystemExit, not typer.Exit: with standalone_mode=False click returns Exit's code from
        # app() instead of raising, and cli.main would report 0.
        raise SystemExit(1)


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
