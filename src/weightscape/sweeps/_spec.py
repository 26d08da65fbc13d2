"""Sweep specifications: a base config, cartesian axes and zipped axis groups, expanded to runs."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SweepError
from ._task import Task, check_keys, coerce_value, flatten_config, get_task, resolve_config

__all__ = [
    "HASH_LENGTH",
    "Sweep",
    "config_hash",
    "parse_assignment",
    "parse_assignments",
    "parse_axis_values",
    "parse_value",
]

HASH_LENGTH = 12  # hex digits of sha256 kept as the run directory name (48 bits)

_SPEC_KEYS = ("task", "base", "axes", "zip")


def config_hash(config: Mapping) -> str:
    """Stable content hash of a resolved config: sha256 of its sorted-key JSON, first 12 hex digits.

    Key order does not matter; ``1`` and ``1.0`` hash differently, which is why configs are resolved
    (values coerced to the type of their default) before hashing.
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def _axis_values(key: str, spec) -> list:
    """An axis given as a list, or as ``{"range": [start, stop, step]}`` / ``{"range": n}``,
    ``{"linspace": [a, b, n]}``, ``{"logspace": [a, b, n]}`` (base 10, like numpy)."""
    if isinstance(spec, Mapping):
        if len(spec) != 1 or next(iter(spec)) not in ("range", "linspace", "logspace"):
            raise SweepError(
                f"axis {key!r}: a table must be one of {{range=...}}, {{linspace=[a, b, n]}}, "
                f"{{logspace=[a, b, n]}}; got {dict(spec)!r}"
            )
        kind, args = next(iter(spec.items()))
        args = list(args) if isinstance(args, list | tuple) else [args]
        # counts and range bounds are whole numbers: 2.9 or true are not silently made 2 or 1
        whole = args if kind == "range" else args[2:3]
        if any(isinstance(a, bool) or not isinstance(a, int) for a in whole):
            raise SweepError(
                f"axis {key!r}: {kind} needs whole numbers for "
                + ("its bounds and step" if kind == "range" else "its count n")
                + f"; got {args!r}"
            )
        try:
            if kind == "range":
                values = list(range(*[int(a) for a in args]))
            else:
                a, b, n = float(args[0]), float(args[1]), int(args[2])
                fn = np.linspace if kind == "linspace" else np.logspace
                values = [float(v) for v in fn(a, b, n)]
        except (TypeError, ValueError, IndexError):
            raise SweepError(f"axis {key!r}: bad {kind} arguments {args!r}") from None
        return values
    if isinstance(spec, list | tuple):
        return list(spec)
    raise SweepError(f"axis {key!r} must be a list of values or a range table, got {spec!r}")


def _check_distinct(key: str, values: list) -> None:
    seen = set()
    for v in values:
        k = json.dumps(v, sort_keys=True)
        if k in seen:
            raise SweepError(f"axis {key!r} repeats the value {v!r}; axis values must be distinct")
        seen.add(k)


@dataclass(frozen=True)
class Sweep:
    """A grid of runs of one task.

    The runs are the cartesian product of ``axes`` (first axis outermost) and of each zipped group
    in ``zip`` (a group is a dict of equal-length lists that vary together, one grid dimension
    named after its first key), on top of ``base``; every other key takes the task's default.
    Seeds are an ordinary axis (``axes={"seed": [0, 1, 2]}``).

    Args:
        task: registered task name (or a :class:`Task`).
        base: fixed config values (nested dicts or dotted keys).
        axes: ``{key: [values]}``; a value list may also be ``{"range": n}``, ``{"range":
            [a, b, step]}``, ``{"linspace": [a, b, n]}`` or ``{"logspace": [a, b, n]}``.
        zip: list of ``{key: [values], key2: [values2]}`` groups with equal lengths.

    Everything is validated in the constructor: an unknown key lists the allowed ones; a bad
    value raises :class:`~weightscape.errors.ConfigError`.

    Example:
        >>> s = Sweep(task="demo.ridge", axes={"seed": [0, 1], "width": [4, 8, 16]})
        >>> len(s.expand())
        6
    """

    task: str
    base: Mapping = field(default_factory=dict)
    axes: Mapping = field(default_factory=dict)
    zip: Sequence[Mapping] = ()

    def __post_init__(self):
        task = get_task(self.task)
        object.__setattr__(self, "task", task.name)
        if not isinstance(self.base, Mapping):
            raise SweepError(f"base must be a table {{key: value}}, got {self.base!r}")
        base = flatten_config(dict(self.base))
        check_keys(task, base, "base")
        base = {k: coerce_value(task, k, v) for k, v in base.items()}
        if not isinstance(self.axes, Mapping):
            raise SweepError(f"axes must be a table {{key: [values]}}, got {self.axes!r}")
        axes = self._flatten_axes(self.axes)
        check_keys(task, axes, "axes")
        groups = []
        zips = [self.zip] if isinstance(self.zip, Mapping) else list(self.zip)
        for i, group in enumerate(zips):
            if not isinstance(group, Mapping) or not group:
                raise SweepError(f"zip group {i} must be a non-empty table of equal-length lists")
            g = self._flatten_axes(group)
            check_keys(task, g, f"zip group {i}")
            lengths = {k: len(v) for k, v in g.items()}
            if len(set(lengths.values())) != 1:
                raise SweepError(f"zip group {i} has lists of different lengths: {lengths}")
            groups.append(g)
        seen: dict[str, str] = {}
        for where, keys in [("base", base), ("axes", axes)] + [
            (f"zip group {i}", g) for i, g in enumerate(groups)
        ]:
            for k in keys:
                if k in seen:
                    raise SweepError(f"config key {k!r} is set in both {seen[k]} and {where}")
                seen[k] = where
        for key, values in axes.items():
            if not values:
                raise SweepError(f"axis {key!r} has no values")
            axes[key] = [coerce_value(task, key, v) for v in values]
            _check_distinct(key, axes[key])
        for g in groups:
            for key in g:
                g[key] = [coerce_value(task, key, v) for v in g[key]]
            _check_distinct(
                "(" + ", ".join(g) + ")", [list(t) for t in zip(*g.values(), strict=True)]
            )
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "zip", tuple(groups))
        # validate every run now, so that nothing starts with a bad value in it
        object.__setattr__(self, "_configs", [resolve_config(task, c) for c in self._overrides()])

    @staticmethod
    def _flatten_axes(axes: Mapping) -> dict:
        out = {}
        for key, spec in axes.items():
            if isinstance(spec, Mapping) and not spec:
                raise SweepError(f"axis {key!r} is an empty table: give its values")
            if isinstance(spec, Mapping) and not (
                len(spec) == 1 and next(iter(spec)) in ("range", "linspace", "logspace")
            ):
                for sub, subspec in Sweep._flatten_axes(spec).items():
                    out[f"{key}.{sub}"] = subspec
            else:
                out[key] = _axis_values(key, spec)
        return out

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping, *, where: str = "spec") -> Sweep:
        """Build from ``{"task": ..., "base": {...}, "axes": {...}, "zip": [...]}``."""
        if not isinstance(spec, Mapping):
            raise SweepError(f"{where} must be a table, got {type(spec).__name__}")
        unknown = [k for k in spec if k not in _SPEC_KEYS]
        if unknown:
            raise SweepError(f"unknown key {unknown[0]!r} in {where}; allowed: {list(_SPEC_KEYS)}")
        if "task" not in spec:
            raise SweepError(f'{where} names no task (add task = "NAME")')
        return cls(
            task=spec["task"],
            base=spec.get("base", {}),
            axes=spec.get("axes", {}),
            zip=spec.get("zip", ()),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Sweep:
        """Read a sweep from a TOML (``.toml``) or JSON (``.json``) file.

        TOML layout::

            task = "demo.ridge"
            [base]
            n = 32
            [axes]
            seed = {range = 4}
            width = [8, 16, 32]
            [[zip]]
            n = [16, 32]
            d = [4, 8]
        """
        path = Path(path)
        if not path.is_file():
            raise SweepError(f"sweep spec {str(path)!r} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise SweepError(f"sweep spec {str(path)!r} is not UTF-8 text: {err.reason}") from None
        try:
            if path.suffix == ".json":
                spec = json.loads(text)
            elif path.suffix == ".toml":
                spec = tomllib.loads(text)
            else:
                raise SweepError(f"sweep spec {str(path)!r}: use a .toml or .json file")
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
            msg = str(err).splitlines()[0]
            raise SweepError(f"sweep spec {str(path)!r} does not parse: {msg}") from None
        return cls.from_dict(spec, where=f"sweep spec {path.name!r}")

    def to_dict(self) -> dict:
        """The spec as plain JSON (the inverse of :meth:`from_dict`)."""
        return {
            "task": self.task,
            "base": dict(self.base),
            "axes": {k: list(v) for k, v in self.axes.items()},
            "zip": [{k: list(v) for k, v in g.items()} for g in self.zip],
        }

    def with_overrides(self, sets: Mapping | None = None, axes: Mapping | None = None) -> Sweep:
        """A new sweep with ``sets`` fixed in base and ``axes`` added or replaced.

        A key given in ``sets`` or ``axes`` leaves whatever axis, zip group or base entry held it
        before (a zip group losing a key keeps its other keys).
        """
        spec = self.to_dict()
        new_keys = set(flatten_config(dict(sets or {}))) | set(axes or {})
        base = {k: v for k, v in spec["base"].items() if k not in new_keys}
        new_axes = {k: v for k, v in spec["axes"].items() if k not in new_keys}
        zips = []
        for g in spec["zip"]:
            g = {k: v for k, v in g.items() if k not in new_keys}
            if g:
                zips.append(g)
        base.update(flatten_config(dict(sets or {})))
        new_axes.update(axes or {})
        return Sweep(task=self.task, base=base, axes=new_axes, zip=zips)

    # --- expansion ------------------------------------------------------------------------
    @property
    def dims(self) -> list[str]:
        """Grid dimensions: one per axis, then one per zip group (named by its first key)."""
        return list(self.axes) + [next(iter(g)) for g in self.zip]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values()) + tuple(
            len(next(iter(g.values()))) for g in self.zip
        )

    def __len__(self) -> int:
        return math.prod(self.shape)

    def _overrides(self):
        factors = [[{k: v} for v in vals] for k, vals in self.axes.items()]
        for g in self.zip:
            factors.append([dict(zip(g, t, strict=True)) for t in zip(*g.values(), strict=True)])
        for combo in itertools.product(*factors):
            cfg = dict(self.base)
            for part in combo:
                cfg.update(part)
            yield cfg

    def expand(self) -> list[dict]:
        """All run configs, fully resolved (defaults filled, flat dotted keys), in grid order."""
        return [dict(c) for c in self._configs]

    def hashes(self) -> list[str]:
        """:func:`config_hash` of each expanded config (the run directory names)."""
        return [config_hash(c) for c in self._configs]

    def get_task(self) -> Task:
        return get_task(self.task)


def parse_value(text: str, *, lists: bool = False):
    """A command-line value: JSON when it parses (``10``, ``0.5``, ``true``, ``null``, ``[3, 5]``,
    ``"x"``), else the string itself.

    ``lists=True`` (data-set options) also reads ``none`` (any case) as None and a comma list
    (``3,5``) as a list of values parsed alike; without it ``a,b`` stays the string ``"a,b"``
    (``--set train.stop=unsat_zero,grad_norm``).
    """
    if lists and text.strip().lower() == "none":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if lists and "," in text:
        return [parse_value(part.strip(), lists=True) for part in text.split(",") if part.strip()]
    return text


def parse_assignment(text: str, *, lists: bool = False, flag: str = "") -> tuple[str, object]:
    """``"key=value"`` → ``(key, parsed value)`` (:func:`parse_value` with ``lists``).

    ``flag`` (e.g. ``"--set"``) names the option in the one-line :class:`SweepError` for a text
    without ``=`` or with an empty key.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    where = f"{flag} " if flag else ""
    if not sep:
        raise SweepError(f"{where}{text!r} is not of the form key=value")
    if not key:
        raise SweepError(f"{where}{text!r} has an empty key (expected key=value)")
    return key, parse_value(value.strip(), lists=lists)


def parse_assignments(items: Sequence[str] | None, *, lists: bool = False, flag: str = "") -> dict:
    """Repeated ``key=value`` options → ``{key: value}`` (:func:`parse_assignment`); a key given
    twice is a :class:`SweepError` naming both values."""
    out: dict = {}
    raw: dict[str, str] = {}
    for item in items or []:
        key, value = parse_assignment(item, lists=lists, flag=flag)
        if key in out:
            where = f"{flag} " if flag else ""
            raise SweepError(f"{where}{key} is given twice ({raw[key]!r} and {item!r})")
        out[key], raw[key] = value, item
    return out


def parse_axis_values(text: str) -> tuple[str, list]:
    """``"key=v1,v2,v3"`` or ``"key=[v1, v2]"`` or ``"key=range(a,b)"`` → ``(key, values)``."""
    key, _, raw = text.partition("=")
    if "=" not in text or not key.strip():
        raise SweepError(f"axis {text!r} is not of the form key=v1,v2,...")
    key, raw = key.strip(), raw.strip()
    if raw.startswith("range(") and raw.endswith(")"):
        try:
            args = [int(a) for a in raw[6:-1].split(",")]
        except ValueError:
            raise SweepError(f"axis {text!r}: range() takes integers") from None
        return key, list(range(*args))
    value = parse_value(raw)
    if isinstance(value, list):
        return key, value
    return key, [parse_value(v.strip()) for v in raw.split(",")]
