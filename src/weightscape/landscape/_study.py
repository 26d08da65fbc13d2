"""Study B's computations vs depth at a fixed budget, as tables: spin model and real nets.

* :func:`spin_counts` — exhaustive enumeration of stationary classes at small N, per H and
  disorder sample, beside the exact Kac–Rice means.
* :func:`spin_minima` — batched projected-GD restarts at larger N: distinct minima, overlaps,
  clustering index against the random baseline ``<q^2> = 1/lam``, log-volume vs energy slopes.
* :func:`realnet_sweep` — the real-network settings as a ``landscape.realnet`` sweep
  (``inline``/``local``/``slurm``, resumable), read back as :class:`RealNetMinima` per setting.
* :func:`depth_trend` — the verdict rule of the study: an OLS slope against depth and whether it
  has the claimed sign at two standard errors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import Precision, resolve_precision
from ..errors import ConfigError
from ._analysis import fit_line
from ._minima import MINIMA_CLUSTER_TOL, DescentConfig, descend, summarize_minima
from ._model import ParameterBudget, SpinGlass, lam_for_budget
from ._realnets import (
    REALNET_TASK,
    RealNetConfig,
    RealNetMinima,
    clustering_index,
    load_realnet,
)
from ._sphere import random_sphere_points
from ._stationary import EnumerationConfig, enumerate_stationary

__all__ = ["Trend", "depth_trend", "realnet_sweep", "spin_counts", "spin_minima"]


def _seed(*parts: int) -> int:
    """A deterministic seed from integers (no Python ``hash``: it is salted per process)."""
    s = 0
    for p in parts:
        s = (s * 1_000_003 + int(p)) % (2**31 - 1)
    return s


def spin_counts(
    n_params: int,
    depths: Sequence[int],
    n_disorder: int,
    config: EnumerationConfig | None = None,
    *,
    budget: ParameterBudget | None = None,
    seed: int = 0,
    precision: Precision | None = None,
) -> pd.DataFrame:
    """Stationary classes found by exhaustive enumeration, one row per (H, disorder sample).

    The disorder is drawn on the CPU (the same numbers on every device); the Newton solves of
    all starts run in ``precision`` (dtype and device; default float64 on the CPU).

    Columns: ``N, H, lam, sample, n_classes, n_minima`` (points of index 0, both members of a
    class counted), ``n_starts, n_converged``, ``chao1`` (capture–recapture estimate).
    """
    cfg = config or EnumerationConfig()
    prec = resolve_precision(precision)
    rows = []
    for H in depths:
        lam = lam_for_budget(n_params, H, budget)
        model = SpinGlass.sample(
            lam, H, n_disorder, seed=_seed(seed, n_params, H, 1), precision=prec
        )
        ecfg = dataclasses.replace(cfg, seed=_seed(seed, n_params, H, 2))
        for d, sc in enumerate(enumerate_stationary(model, ecfg)):
            rows.append(
                {
                    "N": n_params,
                    "H": H,
                    "lam": lam,
                    "sample": d,
                    "n_classes": sc.n_classes,
                    "n_minima": int((sc.point_indices() == 0).sum()),
                    "n_starts": sc.n_starts,
                    "n_converged": sc.n_converged,
                    "chao1": float(sc.estimates.get("chao1", math.nan)),
                }
            )
    return pd.DataFrame(rows)


def spin_minima(
    n_params: int,
    depths: Sequence[int],
    n_disorder: int,
    n_restarts: int,
    config: DescentConfig | None = None,
    *,
    budget: ParameterBudget | None = None,
    seed: int = 0,
    cluster_tol: float = MINIMA_CLUSTER_TOL,
    precision: Precision | None = None,
) -> dict[str, pd.DataFrame]:
    """Minima from ``n_restarts`` projected-GD restarts per disorder sample, per H.

    The disorder and the starting points are drawn on the CPU (the same numbers on every
    device; the starts in float64 for every dtype); the batched descent, polish and Hessians
    run in ``precision`` (dtype and device; default float64 on the CPU).

    Returns:
        ``{"samples": ..., "minima": ..., "overlaps": ...}``: one row per (H, sample) with
        ``N, H, lam, sample, n_restarts, n_minima_found, n_distinct, best_fraction, e_min,
        rms_q, clustering, slope, slope_stderr``; one row per distinct minimum with ``energy``,
        ``log_volume`` (per tangent direction, ``/(lam - 1)``), ``hits``; one row per pair of
        distinct minima with the overlap ``q`` (``|q|`` for even H).
    """
    prec = resolve_precision(precision)
    samples, minima, overlaps = [], [], []
    for H in depths:
        if H < 3:
            raise ConfigError(f"H={H}: minima restarts need H >= 3 (H = 2 has one minimum class)")
        lam = lam_for_budget(n_params, H, budget)
        model = SpinGlass.sample(
            lam, H, n_disorder, seed=_seed(seed, n_params, H, 3), precision=prec
        )
        gen = torch.Generator().manual_seed(_seed(seed, n_params, H, 4))
        # drawn in float64 whatever the dtype (descend casts them): the same starts everywhere
        w0 = random_sphere_points(
            (n_disorder, n_restarts), lam, generator=gen, device=prec.torch_device
        )
        for d, ms in enumerate(descend(model, w0, config)):
            sm = summarize_minima(ms, cluster_tol=cluster_tol)
            q = sm.overlaps
            samples.append(
                {
                    "N": n_params,
                    "H": H,
                    "lam": lam,
                    "sample": d,
                    "n_restarts": sm.n_restarts,
                    "n_minima_found": sm.n_minima_found,
                    "n_distinct": sm.n_distinct,
                    "best_fraction": sm.best_fraction,
                    "e_min": float(sm.energy.min()) if sm.energy.size else math.nan,
                    "rms_q": math.sqrt(float(np.mean(q**2))) if q.size else math.nan,
                    "clustering": clustering_index(q, 1.0 / lam) if q.size else math.nan,
                    "slope": sm.slope.slope if sm.slope else math.nan,
                    "slope_stderr": sm.slope.slope_stderr if sm.slope else math.nan,
                }
            )
            for e, lv, h in zip(sm.energy, sm.log_volume, sm.clusters.counts, strict=True):
                minima.append(
                    {
                        "N": n_params,
                        "H": H,
                        "lam": lam,
                        "sample": d,
                        "energy": float(e),
                        "log_volume": float(lv) / (lam - 1),
                        "hits": int(h),
                    }
                )
            overlaps += [{"N": n_params, "H": H, "lam": lam, "sample": d, "q": float(v)} for v in q]
    return {
        "samples": pd.DataFrame(samples),
        "minima": pd.DataFrame(minima),
        "overlaps": pd.DataFrame(overlaps, columns=["N", "H", "lam", "sample", "q"]),
    }


def realnet_sweep(
    base: RealNetConfig,
    depths: Sequence[int],
    out: str | Path,
    *,
    chunks: int = 1,
    executor: str = "inline",
    resume: bool = True,
    precision=None,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> dict[int, RealNetMinima]:
    """Run ``base`` at every depth through :func:`weightscape.sweeps.run_sweep`; one
    :class:`RealNetMinima` per depth (the ``base.n_inits`` runs split into ``chunks`` runs of
    consecutive seeds, e.g. one Slurm job each).

    Raises:
        ConfigError: when a pack failed (the sweep folder keeps the finished runs for
            ``resume``).
    """
    from ..sweeps import Sweep, run_sweep

    if not isinstance(chunks, int) or not 1 <= chunks <= base.n_inits:
        raise ConfigError(f"chunks={chunks!r} must be an integer in [1, n_inits={base.n_inits}]")
    prec = precision or Precision()
    size = math.ceil(base.n_inits / chunks)
    starts = list(range(base.seed, base.seed + base.n_inits, size))
    sizes = [min(size, base.seed + base.n_inits - s) for s in starts]
    cfg = {k: v for k, v in base.to_dict().items() if k not in ("depth", "seed", "n_inits")}
    cfg["precision.dtype"], cfg["precision.device"] = prec.dtype, prec.device
    sweep = Sweep(
        task=REALNET_TASK,
        base=cfg,
        axes={"depth": list(depths)},
        zip=[{"seed": starts, "n_inits": sizes}],
    )
    res = run_sweep(
        sweep,
        out,
        executor=executor,
        resume=resume,
        max_workers=max_workers,
        slurm=slurm,
    )
    if res.failures:
        first = str(res.failures[0].get("error", ""))[:300]
        raise ConfigError(f"{len(res.failures)} real-net pack(s) failed: {first}")
    by_depth: dict[int, list] = {}
    for c, h in zip(sweep.expand(), sweep.hashes(), strict=True):
        by_depth.setdefault(int(c["depth"]), []).append(load_realnet(Path(out) / "runs" / h))
    return {d: RealNetMinima.concat(parts) for d, parts in sorted(by_depth.items())}


@dataclass(frozen=True)
class Trend:
    """OLS of a quantity against depth and the verdict of the study's rule.

    Attributes:
        slope, stderr: fitted slope per unit of depth and its standard error (NaN if < 3 points).
        n: points in the fit; n_depths: distinct depths among them.
        sign: the claimed sign (-1 falls with depth, +1 rises).
        holds: ``sign * slope > 2 * stderr`` with at least 3 points on 2 depths.
    """

    slope: float
    stderr: float
    n: int
    n_depths: int
    sign: int
    holds: bool

    def text(self, fmt: str = ".3g") -> str:
        if not math.isfinite(self.slope):
            return f"too few points ({self.n} on {self.n_depths} depths)"
        return f"slope {self.slope:{fmt}} ± {self.stderr:{fmt}} per layer ({self.n} points)"


def depth_trend(depth, value, sign: int) -> Trend:
    """Fit ``value`` against ``depth`` (NaNs dropped) and test the claimed sign at 2 sigma.

    The rule is fixed before looking at any number: a claim "X falls (rises) with depth" holds
    when the OLS slope is negative (positive) by more than two standard errors. With fewer than
    3 points or 2 depths it does not hold ("too few points").
    """
    if sign not in (-1, 1):
        raise ConfigError(f"sign={sign!r} must be -1 or +1")
    d = np.asarray(depth, dtype=np.float64).ravel()
    v = np.asarray(value, dtype=np.float64).ravel()
    ok = np.isfinite(d) & np.isfinite(v)
    d, v = d[ok], v[ok]
    nd = len(np.unique(d))
    if len(d) < 3 or nd < 2:
        return Trend(math.nan, math.nan, len(d), nd, sign, False)
    if np.ptp(v) == 0:
        return Trend(0.0, 0.0, len(d), nd, sign, False)
    f = fit_line(d, v)
    return Trend(f.slope, f.slope_stderr, f.n, nd, sign, bool(sign * f.slope > 2 * f.slope_stderr))
