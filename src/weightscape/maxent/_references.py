"""Reference configurations ``σ*`` for the entropy landscape: read from files, or drawn from a
model by Metropolis sampling in energy classes (low / medium / high).

File formats (the spec's):

* the authors' text rows ``E acc σ*_1 … σ*_N`` (energy, test accuracy, then ±1 weights);
* a plain ±1 matrix ``[R, N]`` (text or ``.npy``).

A per-layer model of a deep net takes a column slice of each reference; :data:`LAYER_SLICES`
names the layers of the paper's 20-15-15-10 network (LB = first 300 weights, ITR = next 225,
RB = last 150).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DatasetError, check_choice, check_positive, check_seed
from ._metropolis import MetropolisConfig, metropolis_sample
from ._model import IsingModel, read_matrix

__all__ = [
    "ENERGY_CLASSES",
    "LAYER_SLICES",
    "REFERENCE_FORMATS",
    "ReferenceSampling",
    "References",
    "parse_range",
    "parse_slice",
    "read_references",
    "sample_references",
]

# Column ranges of the layers of the paper's 20-15-15-10 binary network (N = 675).
LAYER_SLICES = {"LB": (0, 300), "ITR": (300, 525), "RB": (525, 675), "FULL": (0, 675)}
REFERENCE_FORMATS = ("auto", "authors", "plain")
ENERGY_CLASSES = ("low", "medium", "high")


@dataclass(frozen=True, eq=False)
class References:
    """Reference configurations and what is known about them.

    Attributes:
        sigma: ``[R, N]`` int8 ±1.
        energy: ``[R]`` float64 energies ``E(σ*)`` under the model they were drawn from or
            assigned to (total, not per spin); NaN when unknown.
        labels: ``R`` labels (``"low"``/``"medium"``/``"high"`` for sampled references, ``"file"``).
        file_energy: ``[R]`` the ``E`` column of an authors'-format file (NaN otherwise).
        accuracy: ``[R]`` the ``acc`` column of an authors'-format file (NaN otherwise).
        source: where they came from (a path or ``"metropolis"``).
    """

    sigma: np.ndarray
    energy: np.ndarray
    labels: tuple[str, ...]
    file_energy: np.ndarray | None = None
    accuracy: np.ndarray | None = None
    source: str = ""

    def __post_init__(self):
        s = np.asarray(self.sigma)
        if s.ndim != 2 or s.shape[0] < 1:
            raise DatasetError(f"references have shape {s.shape}; expected [R, N] with R >= 1")
        if not np.isin(s, (-1, 1)).all():
            raise DatasetError("references must contain only -1 and +1")
        object.__setattr__(self, "sigma", s.astype(np.int8))
        R = s.shape[0]
        for name in ("energy", "file_energy", "accuracy"):
            v = getattr(self, name)
            v = np.full(R, np.nan) if v is None else np.asarray(v, dtype=np.float64).reshape(-1)
            if v.shape != (R,):
                raise DatasetError(f"{name} has {v.shape[0]} entries; expected R = {R}")
            object.__setattr__(self, name, v)
        labels = tuple(self.labels)
        if len(labels) != R:
            raise DatasetError(f"{len(labels)} labels for R = {R} references")
        object.__setattr__(self, "labels", labels)

    @property
    def n_references(self) -> int:
        return self.sigma.shape[0]

    @property
    def n_spins(self) -> int:
        return self.sigma.shape[1]

    def select(self, columns: tuple[int, int] | None) -> References:
        """The references restricted to spins ``a:b`` (energies become unknown: NaN)."""
        if columns is None:
            return self
        a, b = columns
        if not 0 <= a < b <= self.n_spins:
            raise ConfigError(
                f"slice {a}:{b} does not fit the references' {self.n_spins} spins; "
                f"need 0 <= A < B <= {self.n_spins}"
            )
        return References(
            self.sigma[:, a:b],
            np.full(self.n_references, np.nan),
            self.labels,
            self.file_energy,
            self.accuracy,
            self.source,
        )

    def with_model_energies(self, model: IsingModel) -> References:
        """The same references with ``energy`` = ``model.energy(σ*)`` (checks that N matches)."""
        if model.n_spins != self.n_spins:
            # an authors'-format file (read as 'E acc σ…' because its first two columns are not
            # all ±1) has two columns fewer spins than columns: say so, in case it was not meant
            how = (
                " (read as the authors' 'E acc σ1 … σN' rows, as its first two columns are not "
                "all ±1; --references-format plain reads every column as a spin)"
                if np.isfinite(self.accuracy).any() and model.n_spins == self.n_spins + 2
                else ""
            )
            raise DatasetError(
                f"references have N = {self.n_spins} spins but the model has "
                f"N = {model.n_spins}{how}; pass --slice A:B (or a layer name) to select its "
                "columns"
            )
        e = model.energy(torch.as_tensor(self.sigma)).detach().cpu().to(torch.float64).numpy()
        return References(self.sigma, e, self.labels, self.file_energy, self.accuracy, self.source)


def parse_range(text: str) -> tuple[int, int] | None:
    """``"A:B"`` with integers A, B → ``(A, B)``; anything else → ``None`` (bounds unchecked)."""
    lo, sep, hi = str(text).strip().partition(":")
    if not sep:
        return None
    try:
        return int(lo), int(hi)
    except ValueError:
        return None


def parse_slice(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` (0-based, end exclusive) or a layer name of :data:`LAYER_SLICES` → ``(A, B)``."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    if t.upper() in LAYER_SLICES:
        return LAYER_SLICES[t.upper()]
    ab = parse_range(t)
    if ab is None:
        raise ConfigError(
            f"slice {text!r} is not A:B (0-based, end exclusive) or one of {list(LAYER_SLICES)}"
        )
    a, b = ab
    if not 0 <= a < b:
        raise ConfigError(f"slice {text!r} needs 0 <= A < B")
    return a, b


def read_references(
    path: str | Path, *, fmt: str = "auto", columns: tuple[int, int] | None = None
) -> References:
    """Read references from a file.

    Args:
        path: text (whitespace/comma separated) or ``.npy``.
        fmt: ``"authors"`` (rows ``E acc σ*…``), ``"plain"`` (a ±1 matrix) or ``"auto"`` (plain
            when every entry is ±1, else authors').
        columns: optional ``(A, B)`` slice of the spins (applied after the ``E acc`` columns).

    Returns:
        :class:`References` with unknown model energies (NaN) and labels ``"file"``.
    """
    check_choice("fmt", fmt, REFERENCE_FORMATS)
    arr = read_matrix(path)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise DatasetError(f"{str(path)!r} holds an array of shape {arr.shape}; expected [R, N]")
    if fmt == "auto":
        fmt = "plain" if np.isin(arr, (-1.0, 1.0)).all() else "authors"
    file_e = acc = None
    if fmt == "authors":
        if arr.shape[1] < 3:
            raise DatasetError(
                f"{str(path)!r} has {arr.shape[1]} columns; authors' rows are 'E acc σ1 … σN'"
            )
        file_e, acc, arr = arr[:, 0], arr[:, 1], arr[:, 2:]
    if not np.isin(arr, (-1.0, 1.0)).all():
        bad = float(arr[~np.isin(arr, (-1.0, 1.0))][0])
        raise DatasetError(
            f"{str(path)!r}: configuration entries must be ±1 (found {bad!r}); "
            "rows are either ±1 or 'E acc σ1 … σN'"
        )
    refs = References(
        arr.astype(np.int8),
        None,
        ("file",) * arr.shape[0],
        file_e,
        acc,
        str(path),
    )
    return refs.select(columns)


@dataclass(frozen=True)
class ReferenceSampling:
    """How :func:`sample_references` draws references.

    Attributes:
        n_per_class: references per energy class.
        classes: a subset of :data:`ENERGY_CLASSES`.
        band: width of each class as a quantile range of the sampled energies: low = the lowest
            ``band`` fraction, high = the highest, medium = ``band`` around the median.
        metropolis: the sampler's settings (pool size = ``n_chains × n_samples``).
        seed: seed of the choice inside each class.
    """

    n_per_class: int = 3
    classes: tuple[str, ...] = ENERGY_CLASSES
    band: float = 0.1
    metropolis: MetropolisConfig = field(
        default_factory=lambda: MetropolisConfig(n_chains=50, n_samples=20, burn_in=1000, thin=10)
    )
    seed: int = 0

    def __post_init__(self):
        check_positive("n_per_class", self.n_per_class, integer=True)
        check_positive("seed", self.seed, allow_zero=True, integer=True)  # NumPy refuses < 0
        if not self.classes:
            raise ConfigError(
                f"classes={self.classes!r} must name at least one of {ENERGY_CLASSES}"
            )
        for c in self.classes:
            check_choice("classes", c, ENERGY_CLASSES)
        check_positive("band", self.band)
        if self.band > 1.0 / 3.0:
            raise ConfigError(f"band={self.band!r} must be <= 1/3 (classes must not overlap)")
        pool = self.metropolis.n_chains * self.metropolis.n_samples
        if pool * self.band < self.n_per_class:
            raise ConfigError(
                f"a band of {self.band} of {pool} samples holds fewer than n_per_class = "
                f"{self.n_per_class}; sample more (n_chains × n_samples) or widen the band"
            )
        check_seed("seed", self.seed)


def sample_references(
    model: IsingModel, config: ReferenceSampling = ReferenceSampling()
) -> References:
    """Draw references from ``model`` by Metropolis sampling, ``n_per_class`` per energy class.

    The sampler's pool of ``S`` configurations is ranked by energy; class ``low`` picks at random
    (seeded) among ranks ``< band·S``, ``high`` among ranks ``≥ (1-band)·S``, ``medium`` among
    ranks within ``band·S/2`` of the median. Duplicate configurations are drawn at most once.

    Returns:
        :class:`References` ``[len(classes)·n_per_class, N]`` in class order, with model
        energies (total, not per spin) and labels.
    """
    samples, _, _ = metropolis_sample(model, config.metropolis)
    S = samples.shape[0]
    energy = model.energy(torch.as_tensor(samples)).detach().cpu().to(torch.float64).numpy()
    _, first = np.unique(samples, axis=0, return_index=True)
    unique = np.zeros(S, dtype=bool)
    unique[first] = True
    order = np.argsort(energy, kind="stable")
    rank = np.empty(S, dtype=np.int64)
    rank[order] = np.arange(S)
    k = config.band * S
    bands = {
        "low": rank < k,
        "high": rank >= S - k,
        "medium": np.abs(rank - (S - 1) / 2.0) <= k / 2.0,
    }
    rng = np.random.default_rng(config.seed)
    rows, labels = [], []
    for c in config.classes:
        pool = np.flatnonzero(bands[c] & unique)
        if pool.size < config.n_per_class:
            raise ConfigError(
                f"energy class {c!r} holds {pool.size} distinct samples, fewer than "
                f"n_per_class = {config.n_per_class}; sample more or widen the band"
            )
        pick = np.sort(rng.choice(pool, size=config.n_per_class, replace=False))
        rows.extend(pick.tolist())
        labels.extend([c] * config.n_per_class)
    rows = np.asarray(rows)
    return References(samples[rows], energy[rows], tuple(labels), None, None, "metropolis")
