"""Validation of a fitted model against its data, and the per-layer coupling table.

:func:`validate_model` compares the model's moments, estimated by Metropolis Monte Carlo
(:func:`metropolis_sample`), with the data's: magnetisations ``m_i``, pair moments ``C_ij``
(``i < j``), connected correlations ``C_ij − m_i m_j`` (``i < j``) and third-order connected
correlations on seeded random triplets ``i < j < k`` and, on the same triplets, the plain
third-order moments ``⟨σ_i σ_j σ_k⟩`` (``third_raw``: dominated by ``m`` and ``C`` where spins are
magnetised, so a much weaker test than the connected ones); each as a Pearson correlation ``r``
and an RMS difference, plus the scatter (data vs model) for figures.

:func:`coupling_table` is the paper's layer table: per layer block of ``J`` (couplings among the
layer's own spins, ``i < j``) the mean, standard deviation and largest ``|J|``, and the spread
(standard deviation) and mean of the fields — the "liquid-like centre" reads as a small
``J_std`` of ITR compared with LB and RB.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError, check_positive, check_seed
from ._metropolis import MetropolisConfig, metropolis_sample
from ._model import IsingModel
from ._moments import Moments, _n_rows_cols, sample_moments

__all__ = [
    "ValidationResult",
    "coupling_table",
    "layers_in_slice",
    "pearson",
    "random_triplets",
    "validate_model",
]


#: The statistics of a validation, in the order of its ``r``, ``rms`` and ``scatter``.
STATISTICS = ("m", "C", "connected", "third", "third_raw")


def pearson(a, b) -> float:
    """Pearson correlation of two equal-length vectors (``nan`` if either is constant, up to
    rounding: spread ≤ 1e-12 of its largest magnitude, e.g. a symmetrised m of one value)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or any(v.std() <= 1e-12 * max(1.0, np.abs(v).max()) for v in (a, b)):
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def random_triplets(n: int, n_triplets: int, seed: int = 0) -> np.ndarray:
    """``[T, 3]`` distinct sorted index triplets ``i < j < k`` of ``range(n)``, seeded.

    ``T = min(n_triplets, C(n, 3))``; all triplets when ``C(n, 3) ≤ n_triplets``.
    """
    check_positive("n_triplets", n_triplets, integer=True, allow_zero=True)
    check_positive("n", n, integer=True, allow_zero=True)
    check_seed("seed", seed)
    total = n * (n - 1) * (n - 2) // 6
    if total == 0 or n_triplets == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if total <= n_triplets:
        return np.asarray(list(itertools.combinations(range(n), 3)), dtype=np.int64)
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int, int]] = set()
    while len(seen) < n_triplets:
        t = np.sort(rng.choice(n, size=3, replace=False))
        seen.add((int(t[0]), int(t[1]), int(t[2])))
    return np.asarray(sorted(seen), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class ValidationResult:
    """Model vs data moments.

    Attributes:
        r: Pearson ``r`` per statistic (:data:`STATISTICS`): ``m``, ``C`` (i<j), ``connected``
            (i<j), ``third`` (connected, on the triplets), ``third_raw`` (plain ``⟨σ_i σ_j
            σ_k⟩`` on the same triplets).
        rms: RMS difference model − data per statistic.
        scatter: long table ``statistic, index, data, model`` (``index`` is the flat position in
            the statistic's vector: spin ``i`` for ``m``, the ``i<j`` pair in ``triu`` order for
            ``C``/``connected``, the triplet row for ``third``/``third_raw``).
        triplets: ``[T, 3]`` triplets of the third-order statistic.
        n_model_samples: Metropolis records behind the model moments.
        acceptance: mean Metropolis acceptance rate.
    """

    r: dict[str, float]
    rms: dict[str, float]
    scatter: pd.DataFrame
    triplets: np.ndarray
    n_model_samples: int
    acceptance: float
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "r": dict(self.r),
            "rms": dict(self.rms),
            "n_triplets": int(self.triplets.shape[0]),
            "n_model_samples": self.n_model_samples,
            "acceptance": self.acceptance,
            **self.extras,
        }


def _statistics(mom) -> dict[str, np.ndarray]:
    n = mom.n_spins
    iu = np.triu_indices(n, 1)
    C = mom.C.cpu().numpy()
    conn = mom.connected.cpu().numpy()
    out = {"m": mom.m.cpu().numpy(), "C": C[iu], "connected": conn[iu]}
    none = np.zeros(0, dtype=np.float64)
    out["third"] = mom.third.cpu().numpy() if mom.third is not None else none
    out["third_raw"] = mom.raw_third.cpu().numpy() if mom.third is not None else none
    return out


def validate_model(
    model: IsingModel,
    samples,
    metropolis: MetropolisConfig = MetropolisConfig(),
    *,
    n_triplets: int = 1000,
    triplet_seed: int = 0,
    data_moments: Moments | None = None,
    hidden_symmetry: str | None = None,
    start: int = 0,
) -> ValidationResult:
    """Compare ``model``'s Metropolis moments with the moments of ``samples`` ``[S, N]``.

    Args:
        model: the fitted model (``N`` spins).
        samples: data ±1 ``[S, N]`` (numpy/torch/:class:`PackedSpins`).
        metropolis: chains and schedule of the model's Monte Carlo (the paper: 10^4 relaxation
            sweeps, then 10^4 records every 10 sweeps).
        n_triplets: random triplets for the third-order connected correlations (0 = none).
        triplet_seed: seed of the triplet choice.
        data_moments: the data's m and C when they are not the samples' own, e.g. the
            hidden-unit-symmetrised moments a model was fitted to
            (:func:`~weightscape.maxent.symmetrised_data`); the third order still comes from
            ``samples`` (then the relabelled copies).
        hidden_symmetry: the net's architecture when the model was fitted to
            hidden-unit-symmetrised data (``samples`` are then the plain samples of spins
            ``start … start + N - 1``, whole layers): the data's m, C and third order are the
            exact orbit averages (:func:`~weightscape.maxent.symmetrised_sample_moments`), and
            the model's Metropolis moments are orbit-averaged too when the model is invariant
            (:func:`~weightscape.maxent.hidden_symmetry_defect` ≤ ``SYMMETRY_TOL``; an
            unbiased, less noisy estimate of the same moments), else taken plain. ``extras``
            records ``model_symmetry_defect`` and ``model_moments``. Excludes ``data_moments``.
        start: index of the model's first spin in the net (with ``hidden_symmetry``).

    Returns:
        :class:`ValidationResult`.
    """
    n = model.n_spins
    S, n_data = _n_rows_cols(samples)  # an [S, N] array or PackedSpins (one-line error else)
    if n_data != n:
        raise DatasetError(f"samples have N = {n_data} spins; the model has {n}")
    if S < 2:
        raise DatasetError(f"need at least 2 samples to validate, got {S}")
    check_seed("triplet_seed", triplet_seed)
    trip = random_triplets(n, n_triplets, triplet_seed)
    tr = trip if trip.shape[0] else None
    extras = {}
    if hidden_symmetry is not None:
        from ._relabel import _model_sample_moments, symmetrised_sample_moments

        if data_moments is not None:
            raise ConfigError("give either data_moments or hidden_symmetry, not both")
        data = _statistics(symmetrised_sample_moments(samples, hidden_symmetry, tr, start=start))
    else:
        data = _statistics(sample_moments(samples, triplets=tr))
    if data_moments is not None:
        if data_moments.n_spins != n:
            raise DatasetError(f"data_moments have N = {data_moments.n_spins}; the model has {n}")
        third = {k: data[k] for k in ("third", "third_raw")}
        data = _statistics(data_moments) | third
    x, _, trace = metropolis_sample(model, metropolis)
    if x.shape[0] < 2:
        raise ConfigError("the Metropolis run records fewer than 2 samples; raise n_samples")
    if hidden_symmetry is not None:
        mom, defect, orbit = _model_sample_moments(model, x, hidden_symmetry, tr, start=start)
        extras = {
            "model_symmetry_defect": defect,
            "model_moments": "orbit-averaged Metropolis" if orbit else "Metropolis",
        }
        mod = _statistics(mom)
    else:
        mod = _statistics(sample_moments(x, triplets=tr))
    r, rms, frames = {}, {}, []
    for key in STATISTICS:
        d, m = data[key], mod[key]
        r[key] = pearson(d, m)
        rms[key] = float(np.sqrt(np.mean((m - d) ** 2))) if d.size else math.nan
        frames.append(
            pd.DataFrame({"statistic": key, "index": np.arange(d.size), "data": d, "model": m})
        )
    return ValidationResult(
        r=r,
        rms=rms,
        scatter=pd.concat(frames, ignore_index=True),
        triplets=trip,
        n_model_samples=int(x.shape[0]),
        acceptance=float(trace.acceptance.mean()),
        extras=extras,
    )


def layers_in_slice(
    layers: dict[str, tuple[int, int]], start: int, stop: int
) -> dict[str, tuple[int, int]]:
    """The parts of ``layers`` (``name → (a, b)`` in the whole net) inside spins ``start:stop``,
    re-indexed relative to ``start``; layers outside the slice are dropped."""
    out = {}
    for name, (a, b) in layers.items():
        lo, hi = max(a, start), min(b, stop)
        if hi > lo:
            out[name] = (lo - start, hi - start)
    return out


def coupling_table(model: IsingModel, layers: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """The layer table of ``model``: one row per layer (spins ``a:b`` of the model).

    Columns: ``layer, n_spins, J_mean, J_std, J_max_abs`` (over pairs ``i<j`` inside the layer),
    ``h_mean, h_std`` (the field spread) and ``h_max_abs``. ``J_std`` is the population standard
    deviation (``ddof = 0``).
    """
    J = model.J.detach().cpu().numpy()
    h = model.h.detach().cpu().numpy()
    n = model.n_spins
    rows = []
    for name, (a, b) in layers.items():
        if not 0 <= a < b <= n:
            raise ConfigError(f"layer {name!r} = ({a}, {b}) does not fit a model of N = {n}")
        block = J[a:b, a:b][np.triu_indices(b - a, 1)]
        hb = h[a:b]
        rows.append(
            {
                "layer": name,
                "n_spins": b - a,
                "J_mean": float(block.mean()) if block.size else math.nan,
                "J_std": float(block.std()) if block.size else math.nan,
                "J_max_abs": float(np.abs(block).max()) if block.size else math.nan,
                "h_mean": float(hb.mean()),
                "h_std": float(hb.std()),
                "h_max_abs": float(np.abs(hb).max()),
            }
        )
    return pd.DataFrame(rows)
