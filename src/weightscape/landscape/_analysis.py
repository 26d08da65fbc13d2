"""Analysis of sets of minima or stationary points, general enough for real networks too.

Points are rows of a ``[n, P]`` array (P = number of parameters; any float dtype, NumPy or torch).
Nothing here knows about the spin glass: overlaps take an explicit normalisation, clustering an
explicit tolerance and symmetry flag, line fits plain ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ..errors import ConfigError, check_positive

__all__ = [
    "Clusters",
    "LineFit",
    "capture_recapture",
    "distinct_points",
    "fit_line",
    "pairwise_overlaps",
    "random_overlaps",
]


def _as_tensor(x) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim != 2:
        raise ConfigError(f"points must be a 2-d array [n, P], got shape {tuple(t.shape)}")
    return t


@dataclass(frozen=True)
class Clusters:
    """Result of :func:`distinct_points`.

    Attributes:
        labels: ``[n]`` cluster id of each point (0..K-1, in order of first appearance).
        representatives: ``[K]`` index of the first point of each cluster.
        counts: ``[K]`` number of points in each cluster (hits).
        signs: ``[n]`` +1/-1: point ``i`` equals ``signs[i] * points[representatives[labels[i]]]``
            (all +1 unless ``sign_symmetric``).
    """

    labels: np.ndarray
    representatives: np.ndarray
    counts: np.ndarray
    signs: np.ndarray

    @property
    def n_clusters(self) -> int:
        return len(self.representatives)


def distinct_points(
    points,
    tol: float,
    *,
    sign_symmetric: bool = False,
    chunk: int = 4096,
) -> Clusters:
    """Greedy clustering of points closer than ``tol`` (Euclidean), optionally identifying ±x.

    Point ``i`` joins the first existing cluster whose representative lies within ``tol`` of it (or
    of ``-x_i`` when ``sign_symmetric``), else starts a new cluster. Exact for well separated
    points (converged stationary points: separation >> tol >> numerical error); ``O(n K P)``.

    Hand-written instead of ``scipy.cluster.hierarchy.fcluster``: that needs the full ``n^2``
    distance matrix, and here ``n`` (restarts) can be 10^5 while ``K`` is small.

    Args:
        points: ``[n, P]``.
        tol: distance below which two points are the same (same units as the points).
        sign_symmetric: identify ``x`` with ``-x`` (classes of the even-H spin glass, eigenvector
            classes).
        chunk: points compared per block.
    """
    check_positive("tol", tol)
    x = _as_tensor(points)
    n = x.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    signs = np.ones(n, dtype=np.int64)
    reps: list[int] = []
    rep_mat = x[:0]
    for s in range(0, n, chunk):
        block = x[s : s + chunk]
        # Compare with existing representatives in one shot, then sequentially within the block.
        if len(reps):
            d_plus = torch.cdist(block, rep_mat)
            d_minus = torch.cdist(block, -rep_mat) if sign_symmetric else d_plus
            best = torch.minimum(d_plus, d_minus).min(dim=1)
            hit = (best.values < tol).cpu().numpy()
            arg = best.indices[:, None]
            neg = (d_minus.gather(1, arg) < d_plus.gather(1, arg))[:, 0].cpu().numpy()
            labels[s : s + len(block)][hit] = best.indices.cpu().numpy()[hit]
            signs[s : s + len(block)][hit & neg] = -1
        for i in np.nonzero(labels[s : s + len(block)] < 0)[0]:
            xi = block[i]
            if len(reps) > len(rep_mat):  # representatives added within this block
                rep_mat = x[reps]
            if len(reps):
                dp = (rep_mat - xi).norm(dim=1)
                dm = (rep_mat + xi).norm(dim=1) if sign_symmetric else dp
                # one host read per point (the distances to the K representatives)
                dp, dm = torch.stack([dp, dm]).cpu().numpy()
                dmin = np.minimum(dp, dm)
                j = int(dmin.argmin())
                if dmin[j] < tol:
                    labels[s + i] = j
                    signs[s + i] = -1 if sign_symmetric and dm[j] < dp[j] else 1
                    continue
            labels[s + i] = len(reps)
            reps.append(s + i)
            rep_mat = x[reps]
    counts = np.bincount(labels, minlength=len(reps))
    return Clusters(labels, np.asarray(reps, dtype=np.int64), counts, signs)


def pairwise_overlaps(points, norm: float | None = None, *, absolute: bool = False) -> np.ndarray:
    """Overlaps ``q_ab = x_a . x_b / norm`` for all pairs ``a < b``, ``[n (n-1) / 2]``.

    Args:
        points: ``[n, P]``.
        norm: normalisation (default ``P``: on the sphere ``|x|^2 = P`` this is the cosine).
            Pass ``"cosine"``-style normalisation by giving ``None`` and unit-norm rows, or any
            explicit number.
        absolute: return ``|q|`` (for classes defined up to sign).
    """
    x = _as_tensor(points)
    nrm = float(x.shape[1]) if norm is None else float(norm)
    q = (x @ x.T) / nrm
    iu = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    out = q[iu[0], iu[1]].cpu().numpy()
    return np.abs(out) if absolute else out


def random_overlaps(n_pairs: int, dim: int, *, seed: int = 0, absolute: bool = False) -> np.ndarray:
    """Baseline overlaps (cosines) of ``n_pairs`` independent pairs of uniform directions in R^dim.

    Mean 0, standard deviation ``1/sqrt(dim)``; exact density in :func:`random_overlap_pdf`.
    """
    check_positive("n_pairs", n_pairs, integer=True)
    check_positive("dim", dim, integer=True)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_pairs, dim))
    b = rng.standard_normal((n_pairs, dim))
    q = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return np.abs(q) if absolute else q


@dataclass(frozen=True)
class LineFit:
    """Least-squares line ``y = slope * x + intercept`` with the slope's standard error."""

    slope: float
    intercept: float
    slope_stderr: float
    rvalue: float
    n: int


def fit_line(x, y) -> LineFit:
    """Ordinary least squares of ``y`` on ``x`` (``scipy.stats.linregress``); NaNs dropped.

    Used for the log-volume (or log-width) vs energy (loss) slope of minima.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ConfigError(f"x and y must have the same length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        raise ConfigError(f"fit_line needs >= 3 finite points, got {int(ok.sum())}")
    r = stats.linregress(x[ok], y[ok])
    return LineFit(
        float(r.slope), float(r.intercept), float(r.stderr), float(r.rvalue), int(ok.sum())
    )


def capture_recapture(hits_a: np.ndarray, hits_b: np.ndarray, hits_total: np.ndarray) -> dict:
    """Estimates of the total number of classes from hit counts per observed class.

    Args:
        hits_a, hits_b: ``[K]`` times each observed class was found in two independent halves of
            the starts.
        hits_total: ``[K]`` times found over all starts.

    Returns:
        ``{"observed", "chapman", "chao1"}``: the observed count; Chapman's two-sample
        Lincoln–Petersen estimate ``(n1+1)(n2+1)/(m+1) - 1`` (n1, n2 classes seen in each half,
        m in both; biased low when basins differ in size); Chao1's lower-bound estimate
        ``K + f1 (f1 - 1) / (2 (f2 + 1))`` from the numbers of classes hit once (f1) and twice (f2).
    """
    hits_a, hits_b, hits_total = (np.asarray(h) for h in (hits_a, hits_b, hits_total))
    n1 = int((hits_a > 0).sum())
    n2 = int((hits_b > 0).sum())
    m = int(((hits_a > 0) & (hits_b > 0)).sum())
    k = int((hits_total > 0).sum())
    f1 = int((hits_total == 1).sum())
    f2 = int((hits_total == 2).sum())
    return {
        "observed": k,
        "chapman": (n1 + 1) * (n2 + 1) / (m + 1) - 1,
        "chao1": k + f1 * (f1 - 1) / (2 * (f2 + 1)),
    }
