"""The ``weightscape`` command line: a thin typer app; no science lives here.

Each command group is a module in this package with a ``register(app)`` function. User mistakes
(:class:`weightscape.errors.WeightscapeError`, typer usage errors) print one line and exit 2, with
nothing written.
"""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import WeightscapeError

__all__ = ["app", "main"]

app = typer.Typer(
    name="weightscape",
    help="Statistical mechanics of neural-network weight spaces and loss landscapes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command-group modules, each with register(app). Listed here so the CLI surface is explicit.
_GROUPS = ("data", "train", "sweep", "reproduce", "report", "hessian", "jamming", "maxent")


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """weightscape: jamming, landscape-vs-depth and max-ent weight-space studies."""


def _register_groups() -> None:
    for name in _GROUPS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue  # group not built yet
            raise
        mod.register(app)


_register_groups()


def fail(message: str) -> None:
    """Print a one-line user error and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``weightscape`` script; returns the exit code."""
    # typer >= 0.20 vendors click; its exception classes are only reachable under typer._click.
    from typer._click import exceptions as click_exc

    try:
        rv = app(args=argv, standalone_mode=False)
    except WeightscapeError as err:
        typer.echo(f"error: {err}", err=True)
        return 2
    except click_exc.ClickException as err:  # usage errors, bad parameters
        typer.echo(f"error: {err.format_message()}", err=True)
        return 2
    except typer.Exit as err:
        return err.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else 1
    # with standalone_mode=False, click returns typer.Exit's code instead of raising it
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
