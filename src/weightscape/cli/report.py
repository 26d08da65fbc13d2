"""``weightscape report DIR``: a self-contained HTML report of a reproduce, sweep or run folder."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def report(
    folder: Path = typer.Argument(
        ..., help="A reproduce folder, a study folder, or a sweep/run folder."
    ),
) -> None:
    """Write FOLDER/report.html (figures embedded) and the figures as PNG and PDF."""
    from ..errors import RunDirError
    from ..plots import build_report

    if folder.is_file():
        raise RunDirError(
            f"{str(folder)!r} is a file; give the folder of a reproduce, sweep or run"
        )
    path = build_report(folder)
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
