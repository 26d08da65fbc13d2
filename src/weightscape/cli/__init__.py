"""The ``weightscape`` command line: a thin typer app; no science lives here.

Each command group is a module in this package with a ``register(app)`` function. User mistakes
(:class:`weightscape.errors.WeightscapeError`, typer usage errors) print one line and exit 2, with
nothing written.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import signal
import sys
import threading

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


def _one_line(message: str) -> str:
    """A message on one line (a multi-line one joined with ``; ``)."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _usage_message(err) -> str:
    """A typer/click usage error as one line that names the bad value.

    typer >= 0.20 checks option types with pydantic, whose message ("Input should be a valid
    integer") leaves the value out; it is taken from the validation error and put in.
    """
    msg = err.format_message()
    errors = getattr(err.__cause__, "errors", None)
    if callable(errors) and msg.startswith("Invalid value for "):
        try:
            bad = errors()[0]["input"]
        except (IndexError, KeyError, TypeError, ValueError):
            pass
        else:
            msg = msg.replace("Invalid value for ", f"Invalid value {bad!r} for ", 1)
    return _one_line(msg)


@functools.cache
def _click_root():
    return typer.main.get_command(app)


def _invoked_command(args: list[str]):
    """The click command that ``args`` select (the root group when none is named)."""
    cmd = _click_root()
    for a in args:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            break
        if a in subs:
            cmd = subs[a]
    return cmd


def _as_flag(message: str, args: list[str]) -> str:
    """``name=value ...`` (a config's own validation) as ``--flag=value ...`` when the invoked
    command has that flag and the user gave it, so the message names what was typed.

    The flag is ``--name`` with ``-`` for ``_``, or :data:`._options.FIELD_FLAGS` [name].
    """
    from ._options import FIELD_FLAGS

    m = re.match(r"([A-Za-z_][\w.]*)=", message)
    if m is None:
        return message
    name = m.group(1)
    field = name.rsplit(".", 1)[-1]  # a dotted config key (train.kappa) is the flag --kappa
    flags = FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))
    flags = (flags,) if isinstance(flags, str) else flags
    try:
        opts = {o for p in _invoked_command(args).params for o in p.opts}
    except Exception:  # a nicer message is optional; never mask the error
        return message
    for flag in flags:
        given = any(a == flag or a.startswith(flag + "=") for a in args)
        if given and flag in opts:
            return flag + message[len(name) :]
    return message


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``weightscape`` script; returns the exit code."""
    # typer >= 0.20 vendors click; its exception classes are only reachable under typer._click.
    from typer._click import exceptions as click_exc

    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None and threading.current_thread() is threading.main_thread():
        # SIGTERM (timeout, kill, a scheduler) unwinds like Ctrl-C, so that a command's cleanup
        # runs (a run folder not yet DONE is removed; atomic writes leave no partial file)
        # instead of the process dying mid-write
        signal.signal(signal.SIGTERM, _terminate)
    try:
        rv = app(args=args, standalone_mode=False)
    except WeightscapeError as err:
        typer.echo(f"error: {_as_flag(_one_line(err), args)}", err=True)
        return 2
    except click_exc.ClickException as err:  # usage errors, bad parameters
        typer.echo(f"error: {_usage_message(err)}", err=True)
        return 2
    except BrokenPipeError:
        # stdout closed early (`weightscape ... | head`): what was written stays; leave quietly,
        # with the exit status of a process ended by SIGPIPE. stdout goes to /dev/null so that
        # the interpreter's own flush at exit does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # a stdout without a file descriptor
            pass
        return 141
    except OSError as err:
        if err.filename is None:
            raise
        # a path the file system refuses (an --out that cannot be made, an unreadable input)
        typer.echo(
            f"error: {str(err.filename)!r}: {err.strerror or err} (check the path and its "
            "permissions)",
            err=True,
        )
        return 2
    except typer.Exit as err:
        if err.exit_code == 130:  # typer's KeyboardInterrupt (Ctrl-C)
            typer.echo("error: interrupted", err=True)
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
