"""Minima of real networks at a fixed parameter budget (study B, item 4 of the protocol).

For one setting (data set, activation, hidden depth) :func:`run_realnet` trains ``n_inits``
randomly initialised nets of about ``n_params`` parameters as one batched ensemble, full batch in
float64, with the MSE loss plus a stated L2 penalty,

.. math::
    F(\\theta) = \\frac{1}{P} \\sum_\\mu \\tfrac12 |f(x_\\mu; \\theta) - t_\\mu|^2
        + \\frac{\\lambda}{2} |\\theta|^2,

by L-BFGS until ``|grad F| < grad_tol``; then, for every converged run, forms the full Hessian of
``F`` (:func:`weightscape.curvature.hessian_split`) and records its spectrum, the index, the
log-width and the symmetry-reduced spectrum, the canonical parameters (:func:`canonicalize`) and
the outputs on the training set. :func:`summarize_realnet` turns a set of minima into the study's
numbers: distinct minima, loss distribution, distances in function and parameter space, overlaps
against the canonicalised initial points, log-width vs loss slope and the fraction of runs reaching
the best loss.

*Symmetry modes.* The MSE loss is invariant under the rescaling of a relu unit; with ``lambda > 0``
the objective is not, and each rescaling tangent ``v`` (:func:`rescaling_directions`) is an exact
eigenvector of ``Hess F`` with eigenvalue ``2 lambda`` at a stationary point (``0`` when
``lambda = 0``). The *reduced* spectrum is that of ``Hess F`` restricted to the orthogonal
complement of these directions; the log-width
``-1/2 sum log lambda_i`` runs over the reduced eigenvalues above ``width_cutoff``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import Precision
from ..errors import ConfigError, check_choice, check_positive
from ..nets import MLPSpec
from ._analysis import Clusters, LineFit, capture_recapture, distinct_points, fit_line
from ._kinks import (
    KINK_ACTIVATIONS,
    kink_point,
    lagrangian_hessian,
    polish_on_kinks,
    stratum_multipliers,
)
from ._symmetry import SYMMETRIC_ACTIVATIONS, canonicalize, rescaling_directions

__all__ = [
    "REALNET_TASK",
    "RealNetConfig",
    "RealNetMinima",
    "RealNetSummary",
    "clustering_index",
    "load_realnet",
    "pairwise_rms_distances",
    "run_realnet",
    "summarize_realnet",
    "widths_for_budget",
]

REALNET_TASK = "landscape.realnet"
DATASETS = ("digits", "iris", "wine", "breast-cancer", "diabetes")


# --------------------------------------------------------------------------------------------
# parameter budget
# --------------------------------------------------------------------------------------------
def _n_params(d_in: int, widths, out_dim: int, bias: bool) -> int:
    sizes = (d_in, *widths, out_dim)
    n = sum(sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    return n + (sum(sizes[1:]) if bias else 0)


def widths_for_budget(
    n_params: int,
    depth: int,
    d_in: int,
    out_dim: int,
    *,
    bias: bool = True,
    tol: float = 0.02,
    absorb: int = -1,
) -> tuple[int, ...]:
    """Hidden widths of ``depth`` layers with about ``n_params`` parameters (weights + biases).

    All layers get one width ``h`` except layer ``absorb``, whose width ``h_a`` absorbs the
    remainder: for each ``h`` the best ``h_a`` is the rounded solution of the (linear in ``h_a``)
    parameter count. Among the pairs within ``tol`` of the budget the most uniform one
    (smallest ``|h_a - h|``, then smallest error) wins.

    Args:
        n_params: target ``N`` (the spec's 1000).
        depth: hidden layers (>= 1).
        d_in, out_dim: input and output sizes.
        bias: biases in every layer (counted).
        tol: allowed relative deviation ``|N - n_params| / n_params``.
        absorb: index of the layer that absorbs the remainder (Python style: 0 = first hidden
            layer, -1 = last; the last is the finest step, ``h + 1 + out_dim`` parameters per
            unit).

    Returns:
        ``(h_1, ..., h_depth)``, every width >= 1.

    Raises:
        ConfigError: when no widths reach the budget within ``tol``.
    """
    for name, v in (("n_params", n_params), ("depth", depth), ("d_in", d_in)):
        check_positive(name, v, integer=True)
    check_positive("out_dim", out_dim, integer=True)
    check_positive("tol", tol)
    if isinstance(absorb, bool) or not (isinstance(absorb, int) and -depth <= absorb < depth):
        raise ConfigError(f"absorb={absorb!r} must be a layer index in [{-depth}, {depth - 1}]")
    absorb = absorb % depth
    best = None
    h = 1
    while True:
        base = [h] * depth
        base[absorb] = 0
        n0 = _n_params(d_in, base, out_dim, bias)
        base[absorb] = 1
        coef = _n_params(d_in, base, out_dim, bias) - n0  # parameters per unit of layer absorb
        if n0 + coef > n_params * (1 + tol):
            break  # even h_a = 1 is over budget, and it only grows with h
        ha = max(1, round((n_params - n0) / coef))
        widths = [h] * depth
        widths[absorb] = ha
        err = abs(_n_params(d_in, widths, out_dim, bias) - n_params) / n_params
        if err <= tol:
            score = (abs(ha - h), err)
            if best is None or score < best[0]:
                best = (score, tuple(widths))
        h += 1
        if depth == 1:
            break
    if best is None:
        raise ConfigError(
            f"no widths of depth {depth} (d_in={d_in}, out_dim={out_dim}) give "
            f"{n_params} ± {tol:.0%} parameters; change n_params or tol"
        )
    return best[1]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealNetConfig:
    """One setting of the real-network experiment.

    Attributes:
        dataset: ``digits`` (default; P x outputs = 17970 >> N, so minima are isolated), ``iris``,
            ``wine``, ``breast-cancer``, ``diabetes`` (small P: minima can form manifolds).
        train_size: use a seeded subset of this many training points (None = all).
        pca: project the inputs on this many principal components (None = raw inputs).
        data_seed: seed of the subset.
        activation: ``relu``, ``leaky_relu`` or ``tanh``.
        depth: hidden layers (the spec's 1-6).
        n_params: parameter budget N (weights + biases).
        budget_tol: allowed relative deviation from the budget.
        absorb: layer whose width absorbs the remainder (:func:`widths_for_budget`).
        l2: L2 coefficient ``lambda`` of the objective (``F = MSE + lambda/2 |theta|^2``).
        init: initialisation of :mod:`weightscape.nets` (default PyTorch's ``torch``).
        n_inits: random initialisations (members of one batched ensemble).
        seed: seed of the first member; members use ``seed, seed + 1, ...``.
        grad_tol: a run has converged when ``|grad F| < grad_tol`` (Euclidean, all parameters).
        lbfgs_tol: L-BFGS stops a run at ``|grad F| < lbfgs_tol``; Newton steps take it on
            (``lbfgs_tol <= grad_tol`` = L-BFGS all the way).
        max_steps: L-BFGS steps at most.
        history: L-BFGS memory.
        newton_steps: damped Newton steps at most per run, with the exact Hessian
            (Levenberg–Marquardt: ``(H + mu I) s = -g``, ``mu = 0`` where H is positive definite,
            raised until F decreases), from the L-BFGS end point when ``|grad F| < 1e-2``.
        kink_steps: relu / leaky relu only: Newton (SQP) steps at most on the kink stratum
            (:func:`weightscape.landscape._kinks.polish_on_kinks`), from the L-BFGS end point
            when its stationarity measure is below 1e-2; they replace the smooth Newton steps.
        hessian: form the Hessian of every converged run (needed for index and log-width).
        width_cutoff: eigenvalues of the reduced Hessian below this are left out of the
            log-width (absolute, in units of the objective).
        kink_tol: a hidden pre-activation with ``|z| < kink_tol`` on a training point (of a unit
            that is not dead) counts as pinned to a kink of relu (diagnostic ``n_kink``); for the
            stationarity measure every entry with ``|z| < kink_tol`` is pinned.
    """

    dataset: str = "digits"
    train_size: int | None = None
    pca: int | None = None
    data_seed: int = 0
    activation: str = "relu"
    depth: int = 1
    n_params: int = 1000
    budget_tol: float = 0.02
    absorb: int = -1
    l2: float = 1e-3
    init: str = "torch"
    n_inits: int = 100
    seed: int = 0
    grad_tol: float = 1e-7
    lbfgs_tol: float = 1e-5
    max_steps: int = 20_000
    history: int = 20
    newton_steps: int = 12
    kink_steps: int = 100
    hessian: bool = True
    width_cutoff: float = 1e-8
    kink_tol: float = 1e-6

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        for name in ("train_size", "pca"):
            v = getattr(self, name)
            if v is not None:
                check_positive(name, v, integer=True)
        check_positive("data_seed", self.data_seed, integer=True, allow_zero=True)
        check_choice("activation", self.activation, sorted(SYMMETRIC_ACTIVATIONS))
        for name in ("depth", "n_params", "n_inits", "max_steps", "history"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("budget_tol", self.budget_tol)
        if isinstance(self.absorb, bool) or not (
            isinstance(self.absorb, int) and -self.depth <= self.absorb < self.depth
        ):
            raise ConfigError(
                f"absorb={self.absorb!r} must be a layer index in [{-self.depth}, {self.depth - 1}]"
            )
        check_positive("l2", self.l2, allow_zero=True)
        check_positive("seed", self.seed, integer=True, allow_zero=True)
        check_positive("grad_tol", self.grad_tol)
        check_positive("lbfgs_tol", self.lbfgs_tol)
        check_positive("newton_steps", self.newton_steps, integer=True, allow_zero=True)
        check_positive("kink_steps", self.kink_steps, integer=True, allow_zero=True)
        check_positive("width_cutoff", self.width_cutoff)
        check_positive("kink_tol", self.kink_tol)
        if not isinstance(self.hessian, bool):
            raise ConfigError(f"hessian={self.hessian!r} must be true or false")
        from ..nets import available_inits

        check_choice("init", self.init, available_inits())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> RealNetConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown RealNetConfig keys {unknown}; allowed: {sorted(names)}")
        return cls(**dict(d))

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.activation} L={self.depth}"

    def load_data(self):
        """The training data ``(x [P, d], y, out_dim, dataset)`` of this setting."""
        from ..data import load

        opts: dict = {"seed": self.data_seed}
        if self.train_size is not None:
            opts["train_size"] = self.train_size
        if self.pca is not None:
            opts["pca"] = self.pca
        ds = load(self.dataset, **opts)
        out_dim = len(ds.classes) if ds.task == "multiclass" else 1
        return np.array(ds.x), np.array(ds.y), out_dim, ds

    def spec(self, d_in: int, out_dim: int) -> MLPSpec:
        widths = widths_for_budget(
            self.n_params,
            self.depth,
            d_in,
            out_dim,
            tol=self.budget_tol,
            absorb=self.absorb,
        )
        return MLPSpec(
            d_in=d_in, widths=widths, out_dim=out_dim, activation=self.activation, init=self.init
        )


# --------------------------------------------------------------------------------------------
# results of one setting
# --------------------------------------------------------------------------------------------
@dataclass
class RealNetMinima:
    """End points of the ``M`` runs of one setting.

    Attributes:
        config: the :class:`RealNetConfig`.
        d_in, widths: input size and hidden widths; ``n_params`` the exact parameter count N.
        theta: ``[M, N]`` final parameters (flat, ``[W0, b0, W1, b1, ...]``).
        canonical: ``[M, N]`` their canonical forms (:func:`canonicalize`).
        canonical_init: ``[M, N]`` canonical forms of the initial parameters (overlap baseline).
        outputs: ``[M, P, out]`` outputs on the training set.
        loss, objective, grad_norm: ``[M]`` MSE loss, ``loss + l2/2 |theta|^2``, ``|grad F|``.
        steps: ``[M]`` L-BFGS steps; ``newton``: ``[M]`` accepted Newton (relu: SQP) steps;
        converged: ``[M]`` ``stationarity < grad_tol``.
        n_kink: ``[M]`` pinned pre-activations (``|z| < kink_tol``, units alive on some point).
        eigs: ``[M, N]`` Hessian eigenvalues of F (ascending; NaN rows where not computed). For
            relu nets: of the Lagrangian Hessian on the tangent space of the kink stratum
            (:mod:`weightscape.landscape._kinks`), ``N - rank`` values, NaN-padded at the end.
        reduced_eigs: ``[M, N]`` ascending eigenvalues on the complement (within ``eigs``' space)
            of the member's ``n_sym`` non-zero rescaling directions, NaN-padded at the end
            (= ``eigs`` for tanh).
        n_sym: ``[M]`` rescaling directions removed (hidden units with non-zero weights).
        sym_rayleigh: ``[M, U]`` Rayleigh quotients ``v.Hv / v.v`` of the ``U`` rescaling
            directions (``2 l2`` at an exact stationary point; NaN for all-zero units).
        stationarity: ``[M]`` distance from 0 to the subdifferential over the pinned kinks
            (:func:`weightscape.landscape._kinks.kink_stationarity`; ``= grad_norm`` for tanh and
            wherever nothing is pinned). Defaults to ``grad_norm``.
        n_pinned: ``[M]`` pinned pre-activations ``|z| < kink_tol`` of the stationarity measure
            (all units); ``n_coupled``: ``[M]`` training points pinned in two or more layers.
            Default 0.
    """

    config: RealNetConfig
    d_in: int
    widths: tuple[int, ...]
    n_params: int
    theta: np.ndarray
    canonical: np.ndarray
    canonical_init: np.ndarray
    outputs: np.ndarray
    loss: np.ndarray
    objective: np.ndarray
    grad_norm: np.ndarray
    steps: np.ndarray
    newton: np.ndarray
    converged: np.ndarray
    n_kink: np.ndarray
    eigs: np.ndarray
    reduced_eigs: np.ndarray
    n_sym: np.ndarray
    sym_rayleigh: np.ndarray
    stationarity: np.ndarray | None = None
    n_pinned: np.ndarray | None = None
    n_coupled: np.ndarray | None = None

    def __post_init__(self):
        if self.stationarity is None:
            self.stationarity = np.asarray(self.grad_norm, dtype=np.float64).copy()
        for name in ("n_pinned", "n_coupled"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(len(self.loss), dtype=np.int64))

    @property
    def spec(self) -> MLPSpec:
        return MLPSpec(
            d_in=self.d_in,
            widths=self.widths,
            out_dim=self.outputs.shape[-1],
            activation=self.config.activation,
            init=self.config.init,
        )

    @property
    def index(self) -> np.ndarray:
        """Negative eigenvalues of ``Hess F`` beyond ``1e-9 max|lambda|``, ``[M]`` (-1 if none)."""
        out = np.full(len(self.loss), -1, dtype=np.int64)
        for m, e in enumerate(self.eigs):
            e = e[np.isfinite(e)]  # relu: NaN-padded spectrum on the kink stratum
            if e.size:
                tol = 1e-9 * np.abs(e).max()  # the curvature module's DEFAULT_RTOL
                out[m] = int((e < -tol).sum())
        return out

    @property
    def n_zero(self) -> np.ndarray:
        """Eigenvalues of ``Hess F`` with ``|lambda| <= 1e-9 max|lambda|``, ``[M]``."""
        out = np.full(len(self.loss), -1, dtype=np.int64)
        for m, e in enumerate(self.eigs):
            e = e[np.isfinite(e)]
            if e.size:
                out[m] = int((np.abs(e) <= 1e-9 * np.abs(e).max()).sum())
        return out

    @property
    def is_minimum(self) -> np.ndarray:
        """Converged with index 0, ``[M]``."""
        return self.converged & (self.index == 0)

    @property
    def log_width(self) -> np.ndarray:
        """``-1/2 sum log lambda`` over reduced eigenvalues above ``width_cutoff``; NaN if none."""
        c = self.config.width_cutoff
        e = np.nan_to_num(self.reduced_eigs, nan=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = -0.5 * np.log(np.where(e > c, e, 1.0)).sum(1)
        return np.where(np.isfinite(self.eigs).any(1), out, np.nan)

    def to_frame(self) -> pd.DataFrame:
        """One row per run: seed, loss, objective, grad_norm, stationarity, n_pinned, n_coupled,
        steps, newton, converged, n_kink, index, n_zero, minimum, log_width, min_eig,
        min_reduced_eig."""
        with np.errstate(invalid="ignore"):
            min_eig = np.nanmin(np.where(np.isfinite(self.eigs), self.eigs, np.inf), 1)
            min_red = np.nanmin(
                np.where(np.isfinite(self.reduced_eigs), self.reduced_eigs, np.inf), 1
            )
        return pd.DataFrame(
            {
                "seed": self.config.seed + np.arange(len(self.loss)),
                "loss": self.loss,
                "objective": self.objective,
                "grad_norm": self.grad_norm,
                "stationarity": self.stationarity,
                "n_pinned": self.n_pinned,
                "n_coupled": self.n_coupled,
                "steps": self.steps,
                "newton": self.newton,
                "converged": self.converged,
                "n_kink": self.n_kink,
                "index": self.index,
                "n_zero": self.n_zero,
                "minimum": self.is_minimum,
                "log_width": self.log_width,
                "min_eig": np.where(np.isfinite(min_eig), min_eig, np.nan),
                "min_reduced_eig": np.where(np.isfinite(min_red), min_red, np.nan),
            }
        )

    # ---- storage ---------------------------------------------------------------------------
    _ARRAYS = (
        "theta",
        "canonical",
        "canonical_init",
        "outputs",
        "loss",
        "objective",
        "grad_norm",
        "steps",
        "newton",
        "converged",
        "n_kink",
        "eigs",
        "reduced_eigs",
        "n_sym",
        "sym_rayleigh",
        "stationarity",
        "n_pinned",
        "n_coupled",
    )

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as ``.npz``-ready arrays (plus ``widths``)."""
        out = {k: np.asarray(getattr(self, k)) for k in self._ARRAYS}
        out["widths"] = np.asarray(self.widths, dtype=np.int64)
        out["d_in"] = np.asarray(self.d_in, dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, config: RealNetConfig, arrays: Mapping) -> RealNetMinima:
        widths = tuple(int(w) for w in arrays["widths"])
        # stationarity / n_pinned / n_coupled are absent from runs stored before they existed
        kw = {k: np.asarray(arrays[k]) for k in cls._ARRAYS if k in arrays}
        return cls(
            config=config,
            d_in=int(arrays["d_in"]),
            widths=widths,
            n_params=int(kw["theta"].shape[1]),
            **kw,
        )

    @classmethod
    def concat(cls, parts: list[RealNetMinima]) -> RealNetMinima:
        """Runs of one setting computed in chunks (consecutive seeds), in seed order."""
        if not parts:
            raise ConfigError("concat needs at least one RealNetMinima")
        parts = sorted(parts, key=lambda p: p.config.seed)
        base = parts[0]
        for p in parts[1:]:
            a = {**p.config.to_dict(), "seed": 0, "n_inits": 1}
            b = {**base.config.to_dict(), "seed": 0, "n_inits": 1}
            if a != b or p.widths != base.widths:
                raise ConfigError("concat: the parts belong to different settings")
        cfg = RealNetConfig(
            **{**base.config.to_dict(), "n_inits": int(sum(len(p.loss) for p in parts))}
        )
        kw = {k: np.concatenate([getattr(p, k) for p in parts]) for k in cls._ARRAYS}
        return cls(config=cfg, d_in=base.d_in, widths=base.widths, n_params=base.n_params, **kw)


def _objective_grad(theta, spec, x, y, l2, *, grad: bool = True):
    """``F(theta)`` and ``grad F`` ``[N]`` of one net (MSE + ``l2/2 |theta|^2``), by autograd."""
    from ..curvature import unflatten_params
    from ..nets import mlp_forward
    from ..train import get_loss

    loss = get_loss("mse")
    with torch.enable_grad():
        t = theta.detach().clone().requires_grad_(grad)
        f = mlp_forward(unflatten_params(t, spec), x, spec)
        obj = loss.per_sample(f, y).mean() + 0.5 * l2 * (t * t).sum()
        if not grad:
            return obj.detach(), None
        (g,) = torch.autograd.grad(obj, t)
    return obj.detach(), g


def _kinks(theta, spec, x, tol: float) -> np.ndarray:
    """Pinned pre-activations ``|z| < tol`` of hidden units that are active on some point, [M]."""
    from ..curvature import unflatten_params
    from ..nets import activate

    out = np.zeros(len(theta), dtype=np.int64)
    if spec.activation not in ("relu", "leaky_relu"):
        return out
    for m, t in enumerate(theta):
        a = x
        n = 0
        params = unflatten_params(t, spec)
        for l in range(spec.depth):
            z = a @ params[2 * l].T + params[2 * l + 1]
            alive = (z > tol).any(0)
            n += int(((z.abs() < tol) & alive[None, :]).sum())
            a = activate(z, spec)
        out[m] = n
    return out


class _FlatEnsemble:
    """An :class:`~weightscape.nets.Ensemble` seen by :func:`weightscape.train.train` as one
    parameter tensor ``[M, N]`` (a :class:`~weightscape.train.Trainable`).

    Why: the batched L-BFGS loops over parameter tensors in its two-loop recursion, ~10 small
    kernels per tensor and history entry; for nets of ~10^3 parameters that overhead, not the
    forward pass, sets the time per step. One flat tensor cuts it by the number of tensors
    (2 x (depth + 1)). Same arithmetic otherwise: the ensemble's own forward/backward on views.
    """

    def __init__(self, ens):
        self.ens = ens
        self.M = ens.M
        self.shapes = [tuple(p.shape[1:]) for p in ens.params]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.params = [torch.cat([p.reshape(self.M, -1) for p in ens.params], 1)]

    def split(self, theta: torch.Tensor) -> list[torch.Tensor]:
        parts = torch.split(theta, self.sizes, dim=1)
        return [p.reshape(self.M, *s) for p, s in zip(parts, self.shapes, strict=True)]

    def forward_cached(self, x):
        return self.ens.forward_cached(x, self.split(self.params[0]))

    def backward(self, cache, dout):
        grads = self.ens.backward(cache, dout)
        return [torch.cat([g.reshape(self.M, -1) for g in grads], 1)]


def _flat_members(ens) -> torch.Tensor:
    from ..curvature import flatten_params

    return torch.stack([flatten_params(ens.member_params(m)) for m in range(ens.M)])


def run_realnet(
    config: RealNetConfig,
    *,
    precision: Precision | None = None,
    progress: bool | None = False,
) -> RealNetMinima:
    """Train the ``n_inits`` runs of one setting and analyse their end points.

    Args:
        config: the setting.
        precision: dtype and device (default float64 on the CPU).
        progress: rich progress bar of the training loop.

    Returns:
        :class:`RealNetMinima`.
    """
    from ..curvature import hessian_split, unflatten_params
    from ..nets import Ensemble, mlp_forward
    from ..train import TrainConfig, train

    if not isinstance(config, RealNetConfig):
        raise ConfigError(f"config must be a RealNetConfig, got {type(config).__name__}")
    prec = precision or Precision()
    dtype, device = prec.torch_dtype, prec.torch_device
    x_np, y_np, out_dim, _ = config.load_data()
    spec = config.spec(x_np.shape[1], out_dim)
    seeds = [config.seed + i for i in range(config.n_inits)]
    ens = Ensemble.init(spec, seeds, dtype=dtype, device=device)
    theta0 = _flat_members(ens)
    x = torch.as_tensor(x_np, dtype=dtype, device=device)
    y = torch.as_tensor(y_np, device=device)
    if y.is_floating_point():
        y = y.to(dtype)
    tcfg = TrainConfig(
        loss="mse",
        l2=config.l2,
        optimizer="lbfgs",
        lr=1.0,
        optimizer_options={"history": config.history},
        max_steps=config.max_steps,
        stop=("grad_norm",),
        grad_tol=max(config.lbfgs_tol, config.grad_tol),
        n_log_points=0,
        poll_every=100,
        seed=config.seed,
    )
    flat = _FlatEnsemble(ens)
    res = train(flat, x, y, tcfg, progress=progress)
    s = res.summary
    # the ensemble is padding-free (one spec), so its flat order is flatten_params' per member
    theta = flat.params[0].detach().clone()
    M, N = theta.shape
    grad_norm = s["grad_norm"].to_numpy(dtype=np.float64).copy()
    n_newton = np.zeros(M, dtype=np.int64)
    eigs = np.full((M, N), np.nan)
    reduced = np.full((M, N), np.nan)
    n_sym = np.zeros(M, dtype=np.int64)
    n_units = sum(spec.widths) if SYMMETRIC_ACTIVATIONS[spec.activation] == "rescale" else 0
    rayleigh = np.full((M, n_units), np.nan)

    def hessian(m):
        return hessian_split((unflatten_params(theta[m], spec), spec), x, y, "mse", l2=config.l2).H

    def spectra(m, H, T=None):
        # T: [N, D] orthonormal basis of the space the spectrum lives on (relu: tangent space of
        # the kink stratum, which holds the rescaling directions); None = all of R^N
        HT = H if T is None else T.T @ H @ T
        D = HT.shape[0]
        eigs[m, :D] = torch.linalg.eigvalsh(HT).cpu().numpy()
        V = rescaling_directions(theta[m], spec).T  # [N, U]
        nrm = V.norm(dim=0)
        V = V[:, nrm > 0]  # units with all-zero weights have no orbit
        k = V.shape[1]
        n_sym[m] = k
        if k:
            ok = (nrm > 0).cpu().numpy()
            rayleigh[m, ok] = ((V * (H @ V)).sum(0) / (V * V).sum(0)).cpu().numpy()
            # orthonormal basis of the complement of the rescaling directions (within T)
            VT = V if T is None else T.T @ V
            q, _ = torch.linalg.qr(VT, mode="complete")
            Q = q[:, k:]
            reduced[m, : D - k] = torch.linalg.eigvalsh(Q.T @ HT @ Q).cpu().numpy()
        else:
            reduced[m] = eigs[m]

    kinked = spec.activation in KINK_ACTIVATIONS
    stationarity = grad_norm.copy()
    n_pinned = np.zeros(M, dtype=np.int64)
    n_coupled = np.zeros(M, dtype=np.int64)

    for m in range(M):
        if not np.isfinite(grad_norm[m]):
            continue
        if kinked:
            kp = kink_point(theta[m], spec, x, y, config.l2, pin_tol=config.kink_tol)
            if kp.stationarity < 1e-2:
                pol = polish_on_kinks(
                    theta[m],
                    spec,
                    x,
                    y,
                    config.l2,
                    grad_tol=config.grad_tol,
                    pin_tol=config.kink_tol,
                    max_steps=config.kink_steps,
                    hessian=False,
                )
                theta[m], kp, n_newton[m] = pol.theta, pol.point, pol.steps
            grad_norm[m] = float(_objective_grad(theta[m], spec, x, y, config.l2)[1].norm())
            stationarity[m] = kp.stationarity
            n_pinned[m], n_coupled[m] = kp.n_pinned, kp.n_coupled
            if kp.stationarity < config.grad_tol and config.hessian:
                H = lagrangian_hessian(
                    theta[m], spec, x, y, config.l2, kp.masks, stratum_multipliers(kp)
                )
                spectra(m, H, kp.tangent)
            continue
        for it in range(config.newton_steps + 1):
            obj, g = _objective_grad(theta[m], spec, x, y, config.l2)
            grad_norm[m] = float(g.norm())
            done = grad_norm[m] < config.grad_tol
            if not done and (it == config.newton_steps or grad_norm[m] >= 1e-2):
                break  # out of Newton steps, or far from any minimum
            if done and not config.hessian:
                break
            H = hessian(m)
            if done:
                spectra(m, H)
                break
            e, V = torch.linalg.eigh(H)
            gv = V.T @ g
            # Levenberg–Marquardt damping: plain Newton where H is positive definite, else
            # shift the spectrum above zero; raise the shift until F decreases.
            mu = 0.0 if bool(e[0] > 0) else 2.0 * float(-e[0]) + 1e-12
            for _ in range(20):
                step = -(V @ (gv / (e + mu)))
                obj_new, g_new = _objective_grad(theta[m] + step, spec, x, y, config.l2)
                if obj_new < obj or (
                    obj_new <= obj + 1e-13 * abs(float(obj)) and g_new.norm() < g.norm()
                ):
                    break
                mu = max(10.0 * mu, 1e-6 * float(e.abs().max()))
            else:
                break  # no decrease along any damped step: stop here
            theta[m] = theta[m] + step
            n_newton[m] += 1
    if not kinked:
        # smooth activation: the stationarity measure is the final gradient norm (own copy, so
        # the two result fields never alias)
        stationarity = grad_norm.copy()
    converged = stationarity < config.grad_tol
    with torch.no_grad():
        outputs = torch.stack([mlp_forward(unflatten_params(t, spec), x, spec) for t in theta])
    objective = np.array(
        [float(_objective_grad(t, spec, x, y, config.l2, grad=False)[0]) for t in theta]
    )
    loss = objective - 0.5 * config.l2 * (theta**2).sum(1).cpu().numpy()
    return RealNetMinima(
        config=config,
        d_in=spec.d_in,
        widths=spec.widths,
        n_params=spec.n_params,
        theta=theta.cpu().numpy(),
        canonical=canonicalize(theta, spec).cpu().numpy(),
        canonical_init=canonicalize(theta0, spec).cpu().numpy(),
        outputs=outputs.cpu().numpy(),
        loss=loss,
        objective=objective,
        grad_norm=grad_norm,
        steps=s["steps"].to_numpy(dtype=np.int64),
        newton=n_newton,
        converged=converged,
        n_kink=_kinks(theta, spec, x, config.kink_tol),
        eigs=eigs,
        reduced_eigs=reduced,
        n_sym=n_sym,
        sym_rayleigh=rayleigh,
        stationarity=stationarity,
        n_pinned=n_pinned,
        n_coupled=n_coupled,
    )


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def pairwise_rms_distances(points) -> np.ndarray:
    """RMS distances ``|x_a - x_b| / sqrt(P)`` of all pairs ``a < b`` of ``[n, P]``: ``[n(n-1)/2]``.

    Used for function space (``points`` = outputs on the training set, flattened) and for
    parameter space (canonical parameters).
    """
    x = torch.as_tensor(np.asarray(points, dtype=np.float64))
    if x.ndim != 2:
        raise ConfigError(f"points must be [n, P], got shape {tuple(x.shape)}")
    d = torch.cdist(x, x) / math.sqrt(x.shape[1])
    iu = torch.triu_indices(len(x), len(x), offset=1)
    return d[iu[0], iu[1]].numpy()


def _cosines(points) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    nrm = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(nrm > 0, nrm, 1.0)
    q = x @ x.T
    iu = np.triu_indices(len(x), 1)
    return q[iu]


def clustering_index(q, baseline) -> float:
    """Excess mean-square overlap over a baseline: ``(<q^2> - <q0^2>) / (1 - <q0^2>)``.

    Args:
        q: overlaps (cosines) between distinct minima.
        baseline: overlaps of the baseline (random directions, or canonicalised random
            initialisations), or directly its mean square ``<q0^2>`` as a number (``1/lam`` for
            uniform directions in ``R^lam``).

    Returns:
        0 for points as spread as the baseline, 1 when all points coincide (up to sign); NaN
        without pairs.
    """
    q = np.asarray(q, dtype=np.float64)
    if isinstance(baseline, int | float) and not isinstance(baseline, bool):
        m0 = float(baseline)
    else:
        q0 = np.asarray(baseline, dtype=np.float64)
        if q0.size == 0:
            return math.nan
        m0 = float(np.mean(q0**2))
    if q.size == 0:
        return math.nan
    return (float(np.mean(q**2)) - m0) / (1.0 - m0)


@dataclass(frozen=True)
class RealNetSummary:
    """The study's numbers for one setting.

    Attributes:
        n_runs, n_converged, n_minima: runs, converged runs, converged runs of index 0.
        clusters: distinct minima (function-space RMS distance below ``f_tol``).
        n_distinct: distinct minima; ``estimates``: capture–recapture (observed, chapman, chao1)
            from the two halves (even/odd seeds) of the runs.
        loss, objective, log_width: ``[K]`` per distinct minimum (first run of each).
        d_function, d_param: ``[K(K-1)/2]`` RMS distances between distinct minima in function
            space (outputs on the training set) and between canonical parameters.
        q, q_init: cosine overlaps of the canonical parameters of distinct minima and of the
            canonicalised initial points (baseline).
        clustering: :func:`clustering_index` of ``q`` against ``q_init``.
        slope: fit of log-width against loss over the distinct minima (None if < 3).
        best_fraction: fraction of the minima runs that reached the lowest-objective minimum.
    """

    label: str
    depth: int
    activation: str
    n_params: int
    n_runs: int
    n_converged: int
    n_minima: int
    clusters: Clusters
    estimates: dict
    loss: np.ndarray
    objective: np.ndarray
    log_width: np.ndarray
    d_function: np.ndarray
    d_param: np.ndarray
    q: np.ndarray
    q_init: np.ndarray
    clustering: float
    slope: LineFit | None
    best_fraction: float

    @property
    def n_distinct(self) -> int:
        return self.clusters.n_clusters

    def row(self) -> dict:
        """One flat row for a table."""
        sl = self.slope
        return {
            "label": self.label,
            "depth": self.depth,
            "activation": self.activation,
            "n_params": self.n_params,
            "n_runs": self.n_runs,
            "n_converged": self.n_converged,
            "n_minima": self.n_minima,
            "n_distinct": self.n_distinct,
            "distinct_fraction": self.n_distinct / self.n_minima if self.n_minima else math.nan,
            "chao1": self.estimates.get("chao1", math.nan),
            "chapman": self.estimates.get("chapman", math.nan),
            "best_loss": float(self.loss.min()) if self.loss.size else math.nan,
            "best_objective": float(self.objective.min()) if self.objective.size else math.nan,
            "median_loss": float(np.median(self.loss)) if self.loss.size else math.nan,
            "best_fraction": self.best_fraction,
            "median_d_function": _median(self.d_function),
            "median_d_param": _median(self.d_param),
            "rms_q": math.sqrt(float(np.mean(self.q**2))) if self.q.size else math.nan,
            "rms_q_init": math.sqrt(float(np.mean(self.q_init**2)))
            if self.q_init.size
            else math.nan,
            "clustering": self.clustering,
            "slope": sl.slope if sl else math.nan,
            "slope_stderr": sl.slope_stderr if sl else math.nan,
        }


def _median(a) -> float:
    return float(np.median(a)) if np.size(a) else math.nan


def summarize_realnet(minima: RealNetMinima, *, f_tol: float = 1e-4) -> RealNetSummary:
    """Distinct minima and their geometry for one setting.

    Two minima are the same when the RMS distance of their outputs on the training set is below
    ``f_tol`` (function space is blind to every parameter symmetry, so no canonicalisation is
    needed for counting). Distances and overlaps are then taken between the first run of each
    distinct minimum.

    Args:
        minima: the runs of one setting.
        f_tol: function-space identity tolerance (RMS over samples and outputs).
    """
    check_positive("f_tol", f_tol)
    keep = np.flatnonzero(minima.is_minimum)
    cfg = minima.config
    n_out = int(np.prod(minima.outputs.shape[1:]))
    q_init = _cosines(minima.canonical_init)
    if len(keep) == 0:
        empty = Clusters(*(np.zeros(0, np.int64) for _ in range(4)))
        z = np.zeros(0)
        return RealNetSummary(
            cfg.label, cfg.depth, cfg.activation, minima.n_params, len(minima.loss),
            int(minima.converged.sum()), 0, empty, {}, z, z, z, z, z, z, q_init, math.nan,
            None, math.nan,
        )  # fmt: skip
    f = minima.outputs[keep].reshape(len(keep), n_out)
    cl = distinct_points(f, f_tol * math.sqrt(n_out))
    reps = keep[cl.representatives]
    parity = (minima.config.seed + keep) % 2
    hits_a = np.bincount(cl.labels[parity == 0], minlength=cl.n_clusters)
    hits_b = np.bincount(cl.labels[parity == 1], minlength=cl.n_clusters)
    est = capture_recapture(hits_a, hits_b, cl.counts)
    loss = minima.loss[reps]
    obj = minima.objective[reps]
    lw = minima.log_width[reps]
    many = len(reps) > 1
    q = _cosines(minima.canonical[reps]) if many else np.zeros(0)
    slope = fit_line(loss, lw) if len(reps) >= 3 and np.isfinite(lw).sum() >= 3 else None
    best = int(np.argmin(obj))
    return RealNetSummary(
        label=cfg.label,
        depth=cfg.depth,
        activation=cfg.activation,
        n_params=minima.n_params,
        n_runs=len(minima.loss),
        n_converged=int(minima.converged.sum()),
        n_minima=len(keep),
        clusters=cl,
        estimates=est,
        loss=loss,
        objective=obj,
        log_width=lw,
        d_function=pairwise_rms_distances(f[cl.representatives]) if many else np.zeros(0),
        d_param=pairwise_rms_distances(minima.canonical[reps]) if many else np.zeros(0),
        q=q,
        q_init=q_init,
        clustering=clustering_index(q, q_init) if many else math.nan,
        slope=slope,
        best_fraction=float(cl.counts[best] / len(keep)),
    )


# --------------------------------------------------------------------------------------------
# the sweep task
# --------------------------------------------------------------------------------------------
def _task_defaults() -> dict:
    d = RealNetConfig().to_dict()
    d["precision.dtype"] = "float64"
    d["precision.device"] = "cpu"
    return d


def _split_flat(cfg: Mapping) -> tuple[RealNetConfig, Precision]:
    d = {k: v for k, v in cfg.items() if not k.startswith("precision.")}
    return RealNetConfig.from_dict(d), Precision(cfg["precision.dtype"], cfg["precision.device"])


def _validate(cfg: dict) -> None:
    _split_flat(cfg)


def _run_task(configs: list[dict], dirs: list[Path]) -> None:
    from ..store import RunDir

    for cfg, path in zip(configs, dirs, strict=True):
        rc, prec = _split_flat(cfg)
        mins = run_realnet(rc, precision=prec)
        rd = RunDir.create(path, exist="resume")
        rd.write_config(cfg, seeds={"seed": rc.seed, "n_inits": rc.n_inits}, device=prec.device)
        frame = mins.to_frame()
        long = frame.drop(columns=["seed"]).astype(float).reset_index(names="member")
        long = long.melt(id_vars="member", var_name="name", value_name="value")
        long.insert(1, "step", frame["steps"].to_numpy()[long["member"].to_numpy()])
        rd.write_metrics(long)
        rd.write_arrays(**mins.arrays())
        summ = summarize_realnet(mins).row()
        summ.update(widths=list(mins.widths))
        rd.write_json("summary.json", summ)
        rd.mark_done()


def load_realnet(run_dir: str | Path) -> RealNetMinima:
    """Read the :class:`RealNetMinima` of a finished ``landscape.realnet`` run folder."""
    from ..store import RunDir

    rd = RunDir.open(run_dir)
    cfg, _ = _split_flat(rd.read_config()["config"])
    return RealNetMinima.from_arrays(cfg, rd.read_arrays())


def register_realnet_task() -> None:
    """Register the ``landscape.realnet`` sweep task (one run = one setting's seed chunk)."""
    from ..sweeps import Task, register_task, task_names

    if REALNET_TASK in task_names():
        return
    register_task(
        Task(
            name=REALNET_TASK,
            defaults=_task_defaults(),
            run=_run_task,
            validate=_validate,
            pack_key=None,
            description="study B: minima of real nets at a fixed parameter budget",
        )
    )
