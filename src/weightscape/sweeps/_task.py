"""Tasks: named, registered computations that a sweep runs, with their allowed config keys."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, SweepError

__all__ = [
    "Task",
    "flatten_config",
    "get_task",
    "register_task",
    "resolve_config",
    "task_names",
]


def _no_validation(config: dict) -> None:
    return None


@dataclass(frozen=True)
class Task:
    """A computation a sweep can run, registered by name.

    Attributes:
        name: registry name (``"train"``, ``"jamming"``, ``"demo.ridge"``).
        defaults: every allowed config key with its default value. Nested keys are flat dotted
            names (``"train.lr"``). Validation checks keys against this dict, and a value's type
            against its default's (an ``int`` is accepted and stored as ``float`` where the default
            is a float; a default of ``None`` accepts anything JSON can hold).
        run: ``run(configs, dirs)`` computes a *pack* of fully resolved configs (``list[dict]``,
            flat dotted keys), writing each run folder ``dirs[i]`` through
            :class:`weightscape.store.RunDir`: ``write_config``, ``metrics.parquet`` (long format,
            columns ``step, name, value`` and optionally ``member``), ``summary.json`` (flat dict of
            final scalars), optionally ``arrays.npz``, and last ``mark_done()``.
        validate: raises :class:`~weightscape.errors.ConfigError` for a bad value of a resolved
            config (the keys are already checked).
        pack_key: runs whose configs give equal keys may be computed together as one batched
            pack (same data recipe and depth, different seeds/widths/P); ``None`` = never pack.
        checkpointable: the task resumes a partial run folder by itself (it saves checkpoints);
            when ``False`` a partial folder is cleared before the run is computed again.
    """

    name: str
    defaults: Mapping
    run: Callable[[list[dict], list[Path]], None]
    validate: Callable[[dict], None] = _no_validation
    pack_key: Callable[[dict], Hashable] | None = None
    checkpointable: bool = False
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Task name={self.name!r} must be a non-empty string")
        object.__setattr__(self, "defaults", flatten_config(dict(self.defaults)))


_REGISTRY: dict[str, Task] = {}
# Tasks registered by a module other than weightscape.<name> (the "train" recipe lives in
# weightscape.runs because it writes run folders, which the train subpackage must not import).
_TASK_MODULES = {"train": "weightscape.runs"}


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Add ``task`` to the registry under ``task.name`` and return it.

    Registering a different task under a taken name raises :class:`SweepError` unless
    ``replace=True``; registering the same object twice (a module imported twice) is a no-op.
    """
    if not isinstance(task, Task):
        raise SweepError(f"register_task expects a Task, got {type(task).__name__}")
    old = _REGISTRY.get(task.name)
    if old is not None and old is not task and not replace:
        raise SweepError(
            f"task {task.name!r} is already registered", "pass replace=True to replace it"
        )
    _REGISTRY[task.name] = task
    return task


def task_names() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(_REGISTRY)


def get_task(name: str | Task) -> Task:
    """The task registered as ``name``.

    A task ``"X"`` or ``"X.Y"`` not registered yet is looked for by importing the subpackage
    ``weightscape.X`` (the study subpackages register their tasks on import).
    """
    if isinstance(name, Task):
        return name
    if name not in _REGISTRY and isinstance(name, str) and name:
        head = name.split(".")[0]
        if head.isidentifier():
            try:
                importlib.import_module(_TASK_MODULES.get(head, f"weightscape.{head}"))
            except ModuleNotFoundError as err:
                if err.name != f"weightscape.{head}":
                    raise
    if name not in _REGISTRY:
        raise SweepError(f"unknown task {name!r}; registered tasks: {task_names()}")
    return _REGISTRY[name]


def flatten_config(cfg: Mapping, prefix: str = "") -> dict:
    """Nested dicts → a flat dict with dotted keys: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict = {}
    for key, value in cfg.items():
        if not isinstance(key, str):
            raise SweepError(f"config key {key!r} must be a string")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_config(value, prefix=f"{full}."))
        else:
            out[full] = value
    return out


def _type_name(default) -> str:
    if isinstance(default, bool):
        return "a bool"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list | tuple):
        return "a list"
    return type(default).__name__


def _canonical(value):
    """Plain JSON-able form: tuples → lists, numpy scalars → Python scalars."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, float):
        return value + 0.0  # -0.0 → 0.0: one config, one hash
    if value is None or isinstance(value, bool | int | str):
        return value
    raise ConfigError(f"config value {value!r} of type {type(value).__name__} cannot go to JSON")


def coerce_value(task: Task, key: str, value):
    """Check ``value`` against the type of ``task.defaults[key]`` and return its canonical form."""
    value = _canonical(value)
    default = task.defaults[key]
    if default is None:
        # no type to check against, and usually no validator: NaN (not JSON; it would hash as
        # a bare word while the folder records null) is refused here. Typed keys leave it to
        # their task's validation, which names the flag.
        if isinstance(value, float) and value != value:
            raise ConfigError(f"{key}=nan is not a config value; give a number")
        return value
    ok = True
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list)
    if not ok:
        raise ConfigError(
            f"{key}={value!r} must be {_type_name(default)} (task {task.name!r}, "
            f"default {default!r})"
        )
    if isinstance(value, float) and not math.isfinite(value) and isinstance(default, float):
        raise ConfigError(f"{key}={value!r} must be finite")
    return value


def check_keys(task: Task, keys, where: str) -> None:
    """Raise :class:`SweepError` naming the first key of ``keys`` the task does not know."""
    for key in keys:
        if key not in task.defaults:
            raise SweepError(
                f"unknown config key {key!r} in {where} for task {task.name!r}; "
                f"allowed: {sorted(task.defaults)}"
            )


def resolve_config(task: Task, overrides: Mapping) -> dict:
    """``task.defaults`` updated by ``overrides`` (flattened), type-checked and validated.

    Returns a new flat dict with sorted keys; raises :class:`SweepError` for an unknown key and
    :class:`ConfigError` for a bad value.
    """
    flat = flatten_config(overrides)
    check_keys(task, flat, "config")
    cfg = {k: _canonical(v) for k, v in task.defaults.items()}
    for key, value in flat.items():
        cfg[key] = coerce_value(task, key, value)
    task.validate(cfg)
    return dict(sorted(cfg.items()))
