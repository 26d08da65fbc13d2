"""``weightscape train``: train an ensemble (widths × seeds) from flags or a TOML/JSON config."""

from __future__ import annotations

import itertools
import json
import tomllib
from pathlib import Path

import typer

from ..errors import ConfigError
from ._options import Force, RunOutPath, check_out, create_run

__all__ = ["check_data", "parse_int_list", "register"]


def parse_int_list(text: str, name: str, label: str | None = None) -> list[int]:
    """``"0-7"`` → 0..7, ``"3,5,9"`` → [3, 5, 9], ``"4"`` → [4]; errors name ``label``
    (default ``--name``)."""
    label = f"--{name}" if label is None else label
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(a), int(b)
            else:
                lo = hi = int(part)
        except ValueError:
            raise ConfigError(
                f"{label}={text!r} is not a list of integers (use e.g. 0-7 or 3,5,9)"
            ) from None
        if hi < lo:
            raise ConfigError(
                f"{label}={text!r}: the range {part!r} is empty (it ends below its start); "
                f"use e.g. {hi}-{lo}"
            )
        out.extend(range(lo, hi + 1))
    return out


def _file_ints(value, key: str, path: Path) -> list:
    """``seeds``/``widths`` of a config file: a list, one integer, or a string like ``"0-7"``
    or ``"3,5,9"``. Seeds must be integers; a widths entry may also be a list of per-layer
    widths (checked with the rest of the member config)."""
    label = f"config file {str(path)!r}: {key}"

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if isinstance(value, str):
        return parse_int_list(value, key, label)
    if is_int(value):
        return [value]
    ok = (lambda v: is_int(v) or isinstance(v, list)) if key == "widths" else is_int
    if isinstance(value, list) and value and all(ok(v) for v in value):
        return list(value)
    raise ConfigError(f'{label}={value!r} is not a list of integers (use e.g. [0, 1] or "0-7")')


def _read_config(path: Path) -> dict:
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a folder; give a .toml or .json file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"config file {str(path)!r} must end in .toml or .json")
    text = path.read_bytes()
    try:
        cfg = tomllib.loads(text.decode()) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r} cannot be parsed: {err}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"config file {str(path)!r} holds a {type(cfg).__name__}; it must be a table of run "
            "keys (a JSON object)"
        )
    return cfg


def check_data(configs, *, seeds: bool = True) -> None:
    """Load the data of flat train configs once per recipe, before any folder is made, so that
    missing files or a bad data option are a one-line error and nothing is written.

    ``seeds=False``: one load per data set and options other than ``seed`` (a grid of seeds
    needs no more loads to show that its files and sizes are fine).
    """
    from ..data import load
    from ..runs import member_recipes

    seen = set()
    for r in member_recipes(configs):
        opts = r.data_options if seeds else tuple(o for o in r.data_options if o[0] != "seed")
        key = (r.data_name, opts)
        if key not in seen:
            seen.add(key)
            load(r.data_name, **dict(r.data_options))


def build_member_configs(base: dict, widths: list, seeds: list[int]) -> list[dict]:
    """Resolve and validate one flat config per member (widths × seeds) before anything runs."""
    from ..sweeps import get_task, resolve_config

    task = get_task("train")
    return [
        resolve_config(task, {**base, "net.width": w, "seed": s})
        for w, s in itertools.product(widths, seeds)
    ]


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        out: RunOutPath = ...,
        config: Path | None = typer.Option(
            None, "--config", help="TOML/JSON file with flat or nested run keys (see docs)."
        ),
        data: str | None = typer.Option(None, "--data", help="Dataset name (data list)."),
        data_option: list[str] | None = typer.Option(
            None, "--data-option", "-o", help="Dataset option key=value (repeatable)."
        ),
        depth: int | None = typer.Option(None, help="Hidden layers (0 = linear model)."),
        width: str | None = typer.Option(None, help="Hidden width(s), e.g. 30 or 10,20,40."),
        seeds: str = typer.Option("0", help="Initialisation seeds, e.g. 0-7 or 1,5."),
        activation: str | None = typer.Option(None, help="relu, tanh, leaky_relu, linear."),
        bias: bool | None = typer.Option(None, "--bias/--no-bias"),
        init: str | None = typer.Option(None, help="geiger2019, normal, torch."),
        loss: str | None = typer.Option(None, help="quadratic_hinge, linear_hinge, mse, ..."),
        kappa: float | None = typer.Option(None, help="Margin κ of the hinge losses."),
        optimizer: str | None = typer.Option(None, help="adam, sgd, fire, lbfgs."),
        lr: float | None = typer.Option(None, help="Learning rate."),
        schedule: str | None = typer.Option(None, help="constant, geiger2019, plateau."),
        max_steps: int | None = typer.Option(None, help="Step budget."),
        batch_size: int | None = typer.Option(None, help="Minibatch size (default full batch)."),
        stop: str | None = typer.Option(None, help="Stop rules, e.g. unsat_zero,grad_norm."),
        l2: float | None = typer.Option(None, help="L2 coefficient."),
        dtype: str | None = typer.Option(None, help="float64 (default) or float32."),
        device: str | None = typer.Option(None, help="cpu, cuda or auto."),
        set_: list[str] | None = typer.Option(
            None, "--set", help="Any run key, e.g. --set train.momentum=0.9 (repeatable)."
        ),
        force: Force = False,
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Train an ensemble of nets (one member per width × seed) as one batched computation.

        Writes OUT/config.json, metrics.parquet, summary.parquet/json, arrays.npz and DONE.
        """
        check_out(out, force)  # an --out it must not write: refused before any work
        from ..runs import run_members, write_ensemble_run
        from ..sweeps import flatten_config, parse_assignments
        from .data import parse_options

        base: dict = {}
        if config is not None:
            base.update(flatten_config(_read_config(config)))
        file_seeds = base.pop("seeds", None)
        file_widths = base.pop("widths", None)
        flags = {
            "data.name": data,
            "net.depth": depth,
            "net.activation": activation,
            "net.bias": bias,
            "net.init": init,
            "train.loss": loss,
            "train.kappa": kappa,
            "train.optimizer": optimizer,
            "train.lr": lr,
            "train.schedule": schedule,
            "train.max_steps": max_steps,
            "train.batch_size": batch_size,
            "train.stop": None if stop is None else [s.strip() for s in stop.split(",")],
            "train.l2": l2,
            "precision.dtype": dtype,
            "precision.device": device,
        }
        base.update({k: v for k, v in flags.items() if v is not None})
        data_opts = parse_options(data_option, flag="--data-option")
        base.update({f"data.{k}": v for k, v in data_opts.items()})
        base.update(parse_assignments(set_, flag="--set"))
        if width is not None:
            widths = parse_int_list(width, "width")
        elif file_widths is not None:
            widths = _file_ints(file_widths, "widths", config)
        else:
            widths = [base.pop("net.width", 10)]
        base.pop("net.width", None)
        if seeds != "0" or file_seeds is None:
            seed_list = parse_int_list(seeds, "seeds")
        else:
            seed_list = _file_ints(file_seeds, "seeds", config)
        base.pop("seed", None)
        members = build_member_configs(base, widths, seed_list)
        check_data(members)  # before the folder is made: a missing file writes nothing
        rd = create_run(out, force)
        try:
            outcome = run_members(members, progress=None if not quiet else False)
            write_ensemble_run(rd, members, outcome)
        except BaseException:
            # nothing half-written: a failed run leaves no folder behind
            import shutil

            shutil.rmtree(rd.path, ignore_errors=True)
            raise
        s = outcome.result.summary
        n_sat = int((s["stop_reason"] == "unsat_zero").sum())
        typer.echo(
            f"trained {len(members)} members in {outcome.result.steps} steps "
            f"({n_sat} reached N_Δ = 0); run: {rd.path}"
        )
