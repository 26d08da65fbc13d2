"""The data types of the reproduce contract: Study, StudyContext, Plan, Claim, StudyOutcome."""

from __future__ import annotations

import math
import numbers
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Precision
from ..errors import ConfigError, check_choice, check_seed

__all__ = [
    "EXECUTORS",
    "SCALES",
    "Claim",
    "FigureSpec",
    "Plan",
    "Study",
    "StudyContext",
    "StudyOutcome",
]

#: Scales every study understands, from seconds (``smoke``) to the paper's own sizes (``paper``).
SCALES = ("smoke", "small", "paper")
#: Executors a study may hand to ``weightscape.sweeps.run_sweep``.
EXECUTORS = ("inline", "local", "slurm")

# Names that become file stems or claim ids: no whitespace, no path separators.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _check_name(what: str, value) -> None:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ConfigError(
            f"{what}={value!r} is not a valid name; use letters, digits, '_', '-', '.'"
            " (starting with a letter or digit)"
        )


def _check_optional_float(what: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what}={value!r} must be a number or None")


@dataclass(frozen=True)
class StudyContext:
    """What a study is asked to do: the scale, where to write, and how to run its sweeps.

    Attributes:
        scale: one of :data:`SCALES`.
        out: the study's own folder ``DIR/<study>``; the study writes its sweeps under it (it does
            not exist yet during ``plan``, which must write nothing).
        executor: ``"inline"``, ``"local"`` or ``"slurm"``; passed to ``run_sweep``.
        resume: True when the user passed ``--resume``: re-use finished runs of earlier sweeps.
        precision: dtype and device for the study's computations (float64 on the CPU by default).
        seed: base seed; a study derives all its seeds from it.
        slurm: Slurm options for the studies' sweeps (``partition``, ``time``, ``gpus``, ...: see
            :class:`~weightscape.sweeps.SlurmExecutor`); only with ``executor="slurm"``. Pass
            them on as ``run_sweep(..., slurm=ctx.slurm)``.
        data: the data set the user chose (``--data``; one of the study's :attr:`Study.data`),
            or ``None``: the study picks its own.
    """

    scale: str
    out: Path
    executor: str = "inline"
    resume: bool = False
    precision: Precision = field(default_factory=Precision)
    seed: int = 0
    slurm: Mapping[str, Any] | None = None
    data: str | None = None
    # wall clock at construction, for the elapsed time of the progress lines (not a setting)
    started: float = field(default_factory=time.monotonic, compare=False, repr=False)

    def __post_init__(self):
        check_choice("scale", self.scale, SCALES)
        if self.data is not None:
            _check_name("data", self.data)
        check_choice("executor", self.executor, EXECUTORS)
        if not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        if not isinstance(self.precision, Precision):
            raise ConfigError(f"precision={self.precision!r} must be a weightscape.Precision")
        check_seed("seed", self.seed)
        from ..sweeps import check_slurm_options

        object.__setattr__(self, "slurm", check_slurm_options(self.slurm, self.executor))

    @property
    def device(self) -> str:
        return self.precision.device

    @property
    def dtype(self) -> str:
        return self.precision.dtype

    def log(self, message: str) -> None:
        """Print a progress line ``[<study folder> h:mm:ss] message`` to stderr (stdout carries
        results); ``h:mm:ss`` is the wall time since this context was made (the command's
        start: ``run_reproduce`` makes every study's context before running the first)."""
        sec = int(time.monotonic() - self.started)
        stamp = f"{sec // 3600}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        print(f"[{self.out.name} {stamp}] {message}", file=sys.stderr, flush=True)

    def as_dict(self) -> dict:
        return {
            "scale": self.scale,
            "out": str(self.out),
            "executor": self.executor,
            "resume": self.resume,
            "dtype": self.precision.dtype,
            "device": self.precision.device,
            "seed": self.seed,
            "slurm": dict(self.slurm) if self.slurm else None,
            "data": self.data,
        }


@dataclass(frozen=True)
class Plan:
    """What a study would run (``--dry-run``), with an estimate of its cost.

    Attributes:
        runs: one human-readable line per run (or per sweep, for large sweeps).
        cpu_s: estimated CPU time in seconds (on one core of this 2-core machine).
        gpu_s: estimated GPU time in seconds (0 when the study runs on the CPU).
        peak_mem_mb: estimated peak resident memory of one process, in MB.
        notes: anything the user should know (e.g. "resumes 3 finished runs").
    """

    runs: tuple[str, ...]
    cpu_s: float
    gpu_s: float = 0.0
    peak_mem_mb: float = 0.0
    notes: str = ""

    def __post_init__(self):
        runs = self.runs
        if isinstance(runs, str) or not all(isinstance(r, str) for r in runs):
            raise ConfigError("Plan.runs must be a sequence of strings (one line per run)")
        object.__setattr__(self, "runs", tuple(runs))
        for name in ("cpu_s", "gpu_s", "peak_mem_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ConfigError(f"Plan.{name}={value!r} must be a number >= 0")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and our verdict on it.

    Attributes:
        key: short id, unique within the study (``"1"``, ``"2a"``); ``all`` prefixes the study.
        statement: the claim in words ("the jamming transition is at N* ≈ P/d ...").
        paper: the paper's value or statement, as it will be printed ("0.3", "power law").
        ours: our value or statement, as it will be printed ("0.31 ± 0.02").
        holds: our verdict: does the claim hold in our reproduction?
        value: our number, when the claim is numerical.
        error: one-sigma uncertainty of ``value`` (standard error over seeds), when known.
        paper_value: the paper's number, when the claim is numerical; with ``value`` it gives the
            ``deviation`` column of ``summary.json``.
    """

    key: str
    statement: str
    paper: str
    ours: str
    holds: bool
    value: float | None = None
    error: float | None = None
    paper_value: float | None = None

    def __post_init__(self):
        _check_name("Claim.key", self.key)
        for name in ("statement", "paper", "ours"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"Claim.{name}={getattr(self, name)!r} must be a string")
            if "\n" in getattr(self, name) or "\r" in getattr(self, name):
                # the printed claim line is one line (the output contract)
                raise ConfigError(f"Claim.{name}={getattr(self, name)!r} must be one line")
        if not isinstance(self.holds, bool):
            raise ConfigError(f"Claim.holds={self.holds!r} must be True or False")
        for name in ("value", "error", "paper_value"):
            _check_optional_float(f"Claim.{name}", getattr(self, name))

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "does not hold"

    @property
    def deviation(self) -> float | None:
        """``value - paper_value`` when both are known."""
        if self.value is None or self.paper_value is None:
            return None
        return float(self.value) - float(self.paper_value)

    def line(self, prefix: str | None = None) -> str:
        """The printed line ``claim <k>: holds — <ours> vs <paper>``."""
        k = self.key if prefix is None else f"{prefix}.{self.key}"
        return f"claim {k}: {self.verdict} — {self.ours} vs {self.paper}"

    def to_dict(self) -> dict:
        def num(x):
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "key": self.key,
            "statement": self.statement,
            "paper": self.paper,
            "ours": self.ours,
            "value": num(self.value),
            "error": num(self.error),
            "paper_value": num(self.paper_value),
            "deviation": num(self.deviation),
            "holds": self.holds,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Claim:
        return cls(
            key=d["key"],
            statement=d["statement"],
            paper=d["paper"],
            ours=d["ours"],
            holds=bool(d["holds"]),
            value=d.get("value"),
            error=d.get("error"),
            paper_value=d.get("paper_value"),
        )


@dataclass(frozen=True)
class FigureSpec:
    """A figure of a study: file stem, the matplotlib Figure, and its caption."""

    name: str
    figure: Any  # matplotlib.figure.Figure (kept as Any so this module does not import matplotlib)
    caption: str = ""

    def __post_init__(self):
        _check_name("figure name", self.name)
        if not hasattr(self.figure, "savefig"):
            raise ConfigError(
                f"figure {self.name!r} is a {type(self.figure).__name__}, not a matplotlib Figure"
            )


def _normalize_figures(figures) -> tuple[FigureSpec, ...]:
    if figures is None:
        return ()
    if isinstance(figures, Mapping):
        items = [FigureSpec(name, fig) for name, fig in figures.items()]
    else:
        items = []
        for item in figures:
            if isinstance(item, FigureSpec):
                items.append(item)
            elif isinstance(item, tuple) and len(item) in (2, 3):
                items.append(FigureSpec(*item))
            else:
                raise ConfigError(
                    f"figure entry {item!r} must be (name, Figure) or (name, Figure, caption)"
                )
    names = [f.name for f in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"figure names must be unique; repeated: {dup}")
    return tuple(items)


@dataclass(frozen=True)
class StudyOutcome:
    """What a study's ``run`` returns; :func:`run_reproduce` writes it to disk.

    Attributes:
        claims: the paper's claims with our verdicts (keys unique).
        figures: ``{name: Figure}`` or a sequence of ``(name, Figure, caption)``; normalised to a
            tuple of :class:`FigureSpec`. Saved as ``figures/<name>.png`` and ``.pdf``.
        tables: ``{name: pandas.DataFrame}``, saved as ``tables/<name>.parquet``.
        headline: the few numbers a reader looks at first (``{"N* / P": 0.31, ...}``).
        notes: free text (departures from the protocol, warnings), one paragraph per entry.
        config: the protocol the study ran (JSON-serialisable), shown in the report.
    """

    claims: tuple[Claim, ...] = ()
    figures: Any = ()
    tables: Mapping[str, Any] = field(default_factory=dict)
    headline: Mapping[str, float | int | str] = field(default_factory=dict)
    notes: Any = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        claims = tuple(self.claims)
        for c in claims:
            if not isinstance(c, Claim):
                raise ConfigError(f"StudyOutcome.claims must hold Claim objects, got {c!r}")
        keys = [c.key for c in claims]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(f"claim keys must be unique within a study; repeated: {dup}")
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "figures", _normalize_figures(self.figures))
        tables = dict(self.tables or {})
        for name, df in tables.items():
            _check_name("table name", name)
            if not hasattr(df, "to_parquet"):
                raise ConfigError(f"table {name!r} is a {type(df).__name__}, not a DataFrame")
        object.__setattr__(self, "tables", tables)
        headline = dict(self.headline or {})
        for k, v in headline.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real | str):
                raise ConfigError(f"headline[{k!r}]={v!r} must be a number or a string")
        object.__setattr__(self, "headline", headline)
        notes = self.notes
        notes = (notes,) if isinstance(notes, str) else tuple(notes or ())
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "config", dict(self.config or {}))


@dataclass(frozen=True)
class Study:
    """A reproducible study: how to plan it, how to run it, and which paper it checks.

    Attributes:
        name: the CLI name (``"jamming"``); also the output subfolder.
        title: one line for the report ("Jamming transition of fully connected networks").
        paper: the citation ("Geiger et al., Phys. Rev. E 100, 012115 (2019)").
        run: ``run(ctx) -> StudyOutcome``; calls ``weightscape.sweeps.run_sweep`` itself with
            ``ctx.executor`` and ``resume=ctx.resume``, writing under ``ctx.out``.
        plan: ``plan(ctx) -> Plan``; writes nothing.
        scales: the scales this study supports (a subset of :data:`SCALES`).
        data: the data sets a user may choose with ``--data`` (names of the data layer);
            empty: the study picks its own data and refuses ``--data``.
    """

    name: str
    title: str
    paper: str
    run: Callable[[StudyContext], StudyOutcome]
    plan: Callable[[StudyContext], Plan]
    scales: tuple[str, ...] = SCALES
    data: tuple[str, ...] = ()

    def __post_init__(self):
        _check_name("Study.name", self.name)
        if self.name == "all":
            raise ConfigError("Study.name='all' is reserved for running every study")
        if not callable(self.run) or not callable(self.plan):
            raise ConfigError(f"Study {self.name!r}: run and plan must be callables")
        scales = tuple(self.scales)
        if not scales:
            raise ConfigError(f"Study {self.name!r}: scales must not be empty")
        for s in scales:
            check_choice(f"Study {self.name!r} scale", s, SCALES)
        object.__setattr__(self, "scales", scales)
        data = (self.data,) if isinstance(self.data, str) else tuple(self.data)
        for name in data:
            _check_name(f"Study {self.name!r} data", name)
        object.__setattr__(self, "data", data)
