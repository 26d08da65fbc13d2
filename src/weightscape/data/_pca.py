r"""Principal component analysis in float64, with an on-disk cache of fitted components.

With the fit points centred, :math:`X_c = X - \bar x = U S V^\top`, the components are the first
``k`` rows of :math:`V^\top` and the explained variances :math:`S^2/(n-1)` (scikit-learn's
conventions). ``transform`` returns :math:`(x - \bar x) V_k`, divided by
:math:`\sqrt{\mathrm{var}_k}` when whitening. Each component's sign is fixed so that its entry of
largest magnitude is positive (deterministic across solvers and machines).

Hand-written on numpy (rather than calling :class:`sklearn.decomposition.PCA`) so that
scikit-learn stays an independent oracle in the tests and the cache stores plain arrays.
Solver: a thin SVD of :math:`X_c`, or for tall data (``n >= 10 d``) the eigendecomposition of
:math:`X_c^\top X_c` (a ``d x d`` matrix: ~4x fewer flops on MNIST, the same choice as
scikit-learn's ``covariance_eigh``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from ..errors import DatasetError

__all__ = ["PCAFit", "default_cache_dir", "fit_pca", "fit_pca_cached"]

CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class PCAFit:
    """Fitted principal components.

    Attributes:
        mean: mean of the fit points ``[D]``.
        components: orthonormal rows ``[k, D]``, by decreasing variance.
        explained_variance: variance along each component ``[k]`` (denominator ``n - 1``).
        n_fit: number of fit points.
        solver: ``"svd"`` or ``"eigh"``.
        cache_key: key of the cache entry the fit was stored under or read from, if any.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    n_fit: int
    solver: str
    cache_key: str | None = None

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x: np.ndarray, whiten: bool = False) -> np.ndarray:
        """Project ``x [n, D]`` to ``[n, k]`` (whitened: unit variance on the fit points)."""
        z = (x - self.mean) @ self.components.T
        if whiten:
            z /= np.sqrt(self.explained_variance)
        return z


def _fix_signs(components: np.ndarray) -> np.ndarray:
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def fit_pca(x: np.ndarray, k: int, solver: str = "auto") -> PCAFit:
    """Fit ``k`` principal components to the rows of ``x [n, D]`` (float64).

    Args:
        x: fit points ``[n, D]``.
        k: number of components, ``1 <= k <= min(n - 1, D)``.
        solver: ``"svd"``, ``"eigh"`` or ``"auto"`` (``eigh`` when ``n >= 10 D``).

    Raises:
        DatasetError: ``k`` out of range, non-finite data, or a component with zero variance
            (the data span fewer than ``k`` directions).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise DatasetError(f"PCA needs a [n, D] array, got shape {list(x.shape)}")
    n, D = x.shape
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= min(n - 1, D):
        raise DatasetError(
            f"pca={k!r} is not allowed: need an integer 1 <= k <= min(n-1, D) = {min(n - 1, D)}"
        )
    if solver not in ("auto", "svd", "eigh"):
        raise DatasetError(f"solver={solver!r} is not allowed; choose one of auto, svd, eigh")
    if not np.all(np.isfinite(x)):
        raise DatasetError("PCA input contains non-finite values")
    if solver == "auto":
        solver = "eigh" if n >= 10 * D else "svd"
    mean = x.mean(axis=0)
    xc = x - mean
    if solver == "svd":
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        var = s[:k] ** 2 / (n - 1)
        comps = vt[:k]
    else:
        evals, evecs = np.linalg.eigh(xc.T @ xc)
        order = np.argsort(evals)[::-1][:k]
        var = np.clip(evals[order], 0.0, None) / (n - 1)
        comps = evecs[:, order].T
    if var[-1] <= 1e-14 * max(var[0], 1e-300):  # relative: below this, a direction is round-off
        raise DatasetError(
            f"pca={k}: the fit points span fewer than {k} directions (variance {var[-1]:.3g})"
        )
    return PCAFit(
        mean=mean,
        components=np.ascontiguousarray(_fix_signs(comps)),
        explained_variance=np.ascontiguousarray(var),
        n_fit=n,
        solver=solver,
    )


# -- cache --------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$WEIGHTSCAPE_CACHE/pca`` if set, else ``~/.cache/weightscape/pca``."""
    root = os.environ.get("WEIGHTSCAPE_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "weightscape"
    return base / "pca"


def _parts(x) -> list[np.ndarray]:
    return [x] if isinstance(x, np.ndarray) else [np.asarray(p) for p in x]


def fingerprint(x: np.ndarray | Sequence[np.ndarray]) -> str:
    """A cheap content fingerprint of ``x`` (an array or the parts of a stacked one): each
    part's shape, column sums and a hash of ~1000 of its rows."""
    h = hashlib.sha256()
    for part in _parts(x):
        h.update(json.dumps(list(part.shape)).encode())
        if part.size:
            step = max(1, part.shape[0] // 1000)
            h.update(np.ascontiguousarray(part[::step]).tobytes())
            h.update(np.ascontiguousarray(part.sum(axis=0)).tobytes())
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def _load_cached(npz: Path, meta: Path, fp: str) -> PCAFit | None:
    try:
        info = json.loads(meta.read_text())
        if info.get("fingerprint") != fp or info.get("version") != CACHE_VERSION:
            return None
        with np.load(npz, allow_pickle=False) as f:
            return PCAFit(
                mean=f["mean"],
                components=f["components"],
                explained_variance=f["explained_variance"],
                n_fit=int(info["n_fit"]),
                solver=str(info["solver"]),
            )
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # missing or damaged entry: refit and overwrite


def fit_pca_cached(
    x: np.ndarray | Sequence[np.ndarray],
    k: int,
    key_data: dict,
    cache_dir: str | Path | None = None,
) -> tuple[PCAFit, dict]:
    """:func:`fit_pca` with an on-disk cache.

    ``x`` is the fit points ``[n, D]``, or a list of parts to stack (stacked only on a miss).

    The cache key hashes ``key_data`` (the data source and every option and transform before the
    fit), ``k`` and a content :func:`fingerprint` of ``x``. Entries are ``<key>.npz`` (arrays) and
    ``<key>.json`` (metadata), each written atomically; the json is written last and rechecked on
    reading, so a damaged or half-written entry is refitted.

    Returns:
        ``(fit, info)`` with ``info = {"cache_key", "cache_hit", "cache_dir"}``.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fp = fingerprint(x)
    payload = {"version": CACHE_VERSION, "k": int(k), "data": key_data, "fingerprint": fp}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    npz, meta = cache / f"{key}.npz", cache / f"{key}.json"
    fit = _load_cached(npz, meta, fp)
    hit = fit is not None
    if not hit:
        parts = _parts(x)
        fit = fit_pca(parts[0] if len(parts) == 1 else np.concatenate(parts), k)
        try:
            buf = io.BytesIO()
            np.savez(
                buf,
                mean=fit.mean,
                components=fit.components,
                explained_variance=fit.explained_variance,
            )
            _atomic_write_bytes(npz, buf.getvalue())
            info = {**payload, "n_fit": fit.n_fit, "solver": fit.solver}
            _atomic_write_bytes(meta, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        except OSError:
            pass  # an unwritable cache only costs a refit next time
    fit = replace(fit, cache_key=key)
    return fit, {"cache_key": key, "cache_hit": hit, "cache_dir": str(cache)}
