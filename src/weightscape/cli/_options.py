"""Typer options shared by several commands, declared once.

Use as ``force: Force = False`` and ``out: RunOut = ...`` (``...``: required); the flag names
and help texts are then the same in every command that takes them. Options whose default is
shared too are ``typer.Option`` values (``Annotated`` cannot carry a default): use as
``lr: float = LRNET_LR``; their checks run as the command line is parsed, before any work.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "FIELD_FLAGS",
    "LRNET_BATCH_SIZE",
    "LRNET_DATA",
    "LRNET_LR",
    "LRNET_P",
    "LRNET_TEST_SIZE",
    "SLURM",
    "Force",
    "RunOut",
    "RunOutPath",
    "check_creatable",
    "check_out",
    "create_run",
    "parse_floats",
    "parse_ints",
    "parse_slurm",
]

#: Config fields whose command-line flag has another name than ``--field-name`` (one flag, or
#: several: the command's own is used). A config's validation message ``field=value ...`` is
#: shown as ``--flag=value ...`` when the user gave that flag (:func:`weightscape.cli.main`).
FIELD_FLAGS = {
    "n_chains": ("--mc-chains", "--chains"),
    "n_iter": "--max-iter",
    "n_samples": "--mc-samples",
    "burn_in": "--mc-burn-in",
    "thin": "--mc-thin",
    "n_triplets": "--triplets",
    "n_draws": "--draws",
    "n_runs": "--runs",
    "fmt": "--references-format",
    "max_workers": "--workers",
    "threads_per_worker": "--threads",
    "max_pack_size": "--max-pack",
}

_RUN_OUT = typer.Option("--out", help="Run directory to create.")

#: ``--force``: replace an existing run directory (see :func:`check_out`).
Force = Annotated[
    bool,
    typer.Option("--force", help="Replace an existing --out (a run folder or an empty folder)."),
]
#: ``--out DIR`` (as ``str``): the run directory a command creates.
RunOut = Annotated[str, _RUN_OUT]
#: ``--out DIR`` (as :class:`~pathlib.Path`): the same option for commands that take a Path.
RunOutPath = Annotated[Path, _RUN_OUT]


def _must_be_positive(flag: str):
    """A typer callback: ``flag``'s value (when given) must be a finite number > 0, else a
    one-line error."""

    def check(value):
        if value is not None:
            from ..errors import check_positive

            check_positive(flag, value, finite=True)
        return value

    return check


# ---- the LR-net commands of the max-ent study (maxent train, maxent frozen-centre). --data, --P
# and --test-size are checked together by cli.maxent.data_recipe (the data set's choices).
#: ``--data``: the data set the LR-nets learn.
LRNET_DATA = typer.Option("mnist-sample", "--data", help="mnist, fashion-mnist or mnist-sample.")
#: ``--P``: training points.
LRNET_P = typer.Option(None, "--P", help="Training points (default all; the paper's op: 500).")
#: ``--test-size``: test points.
LRNET_TEST_SIZE = typer.Option(
    None, "--test-size", help="Test points (default: the given test set, else 1000 held out)."
)
#: ``--batch-size``: examples per Adam step (> 0).
LRNET_BATCH_SIZE = typer.Option(
    200,
    "--batch-size",
    help="Examples per Adam step.",
    callback=_must_be_positive("--batch-size"),
)
#: ``--lr``: Adam's learning rate (> 0).
LRNET_LR = typer.Option(0.3, "--lr", help="Adam learning rate.", callback=_must_be_positive("--lr"))


def check_creatable(out: str | Path) -> None:
    """An ``--out`` that does not exist yet must lie under a folder, not under a file."""
    from ..errors import RunDirError

    path = Path(out).absolute()
    for above in path.parents:
        if above.exists():
            if not above.is_dir():
                raise RunDirError(f"--out {str(out)!r} cannot be made: {str(above)!r} is a file")
            return


def check_out(out: str | Path, force: bool, *inputs: str | Path | None) -> None:
    """Refuse an ``--out`` that a command must not write, before it computes anything.

    An existing ``--out`` needs ``--force``, and ``--force`` replaces only an empty folder or a
    weightscape run folder (one with ``config.json``): never a file or another folder, and
    never one that holds the command's own ``inputs`` (files or run folders it reads).
    """
    from ..errors import RunDirError

    path = Path(out)
    target = path.resolve()
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if target == src or target in src.parents:
            raise RunDirError(
                f"--out {str(path)!r} holds the input {str(given)!r}; writing there would "
                "replace what the command reads: choose a new --out"
            )
    if not path.exists():
        check_creatable(path)
        return
    if not force:
        raise RunDirError(
            f"output directory {str(path)!r} already exists",
            "choose a new --out, or pass --force to overwrite",
        )
    if not path.is_dir():
        raise RunDirError(f"--out {str(path)!r} is a file; --force replaces run folders only")
    if any(path.iterdir()) and not (path / "config.json").is_file():
        raise RunDirError(
            f"--out {str(path)!r} is not a weightscape run folder (no config.json); --force "
            "replaces run folders only, choose a new --out"
        )


def create_run(out: str | Path, force: bool, *inputs: str | Path | None):
    """:func:`check_out`, then the new :class:`~weightscape.store.RunDir` (``--force``: the old
    run folder replaced)."""
    from ..store import RunDir

    check_out(out, force, *inputs)
    return RunDir.create(out, exist="overwrite" if force else "error")


#: ``--slurm key=value`` (repeatable), for every command that takes ``--executor``.
SLURM = typer.Option(
    [],
    "--slurm",
    help="Slurm option key=value for --executor slurm, repeatable (partition=gpu, time=240, "
    "gpus=1, mem_gb=16, account=...).",
)


def parse_slurm(items: list[str], executor: str) -> dict | None:
    """``--slurm key=value ...`` → the Slurm options (None without any), checked by
    :func:`weightscape.sweeps.check_slurm_options`; the message names the flags as typed."""
    from ..errors import ConfigError
    from ..sweeps import check_slurm_options, parse_assignments

    opts = parse_assignments(items, flag="--slurm")
    if opts and executor != "slurm":
        given = " ".join(f"--slurm {i!r}" for i in items)
        raise ConfigError(f"{given} needs --executor slurm; got --executor {executor!r}")
    return check_slurm_options(opts, executor)


def parse_ints(name: str, text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]`` (distinct positive integers) for ``--name``."""
    from ..errors import ConfigError

    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r} must be comma-separated integers") from None
    if not vals or any(v <= 0 for v in vals):
        raise ConfigError(f"--{name} {text!r} must list positive integers")
    if len(set(vals)) < len(vals):  # a depth twice would be tested against itself
        raise ConfigError(f"--{name} {text!r} repeats a value; give each value once")
    return vals


def parse_floats(name: str, text: str, *, positive: bool = True) -> list[float]:
    """``"1.4,1.6"`` → ``[1.4, 1.6]`` for ``--name``: finite numbers, positive unless
    ``positive=False`` (range checks beyond that belong to the library)."""
    from ..errors import ConfigError

    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r} must be comma-separated numbers") from None
    if not vals or any(not math.isfinite(v) for v in vals):
        raise ConfigError(f"--{name} {text!r} must list finite numbers")
    if positive and any(v <= 0 for v in vals):
        raise ConfigError(f"--{name} {text!r} must list positive finite numbers")
    return vals
