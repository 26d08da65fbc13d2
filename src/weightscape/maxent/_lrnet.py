"""LR-net: training binary-weight networks by the local reparameterisation trick.

Each weight ``w ∈ {±1}`` is independent with ``P(w = +1) = σ(θ)``, so its mean is
``μ = 2σ(θ) − 1`` and its variance ``1 − μ²``. For an input ``a`` the pre-activation
``z = Σ_k w_k a_k`` has

.. math::

    \\mathbb E z = \\sum_k μ_k a_k, \\qquad \\operatorname{Var} z = \\sum_k (1-μ_k^2) a_k^2,

and LR-net (Shayer et al., ICLR 2018) samples ``z = E z + sqrt(Var z) ε`` with ``ε ~ N(0, 1)``
per example and unit instead of sampling the weights. Hidden units apply
``f(z) = LeakyReLU_0.1(z)/√n_in``; the output layer is linear (``z`` itself); the loss is the
softmax cross-entropy; Adam on ``θ`` with an L2 penalty (Adam's ``weight_decay``, i.e. the
gradient of ``λ/2 Σ θ²``). ``M`` independent runs are trained together (one ``bmm`` per layer).

The training loop is our own torch autograd loop (not :func:`weightscape.train.train`) because
the loss is stochastic in the pre-activations, which that loop's ``Trainable`` contract does not
cover; it is a few lines.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import Precision, resolve_precision
from ..errors import NPZ_READ_ERRORS, ConfigError, DatasetError, check_positive, check_seed

__all__ = [
    "LRNetConfig",
    "LRNetResult",
    "binary_forward",
    "load_lrnet",
    "lrnet_forward",
    "parse_arch",
    "preactivation_moments",
    "save_lrnet",
    "train_lrnet",
]

# Floor under the pre-activation variance before the square root: keeps the gradient of sqrt
# finite where a weight is (numerically) deterministic; 1e-30 is far below any variance that
# matters (inputs are O(1)).
VAR_FLOOR = 1e-30


def parse_arch(arch: str) -> tuple[int, ...]:
    """``"20-15-15-10"`` → ``(20, 15, 15, 10)`` (at least two positive widths)."""
    try:
        widths = tuple(int(p) for p in str(arch).split("-"))
    except ValueError:
        widths = ()
    if len(widths) < 2 or any(w <= 0 for w in widths):
        raise ConfigError(
            f"arch={arch!r} must be widths joined by '-', e.g. '20-15-15-10' or '20-10'"
        )
    return widths


@dataclass(frozen=True)
class LRNetConfig:
    """Settings of :func:`train_lrnet`.

    Attributes:
        arch: widths ``"in-h1-…-out"`` (no biases).
        n_runs: ``M`` independent runs trained together.
        epochs: passes over the training set.
        batch_size: examples per Adam step.
        lr: Adam learning rate (the paper: 0.3–0.5).
        l2: L2 coefficient on ``θ`` (Adam ``weight_decay``; the paper: 1e-5).
        init_std: ``θ ~ N(0, init_std²)`` at the start (the paper: 0.1).
        leak: LeakyReLU slope of hidden units (the paper: 0.1).
        seed: seed of the initialisation, the minibatch order and the ε noise.
        precision: dtype/device.
    """

    arch: str = "20-15-15-10"
    n_runs: int = 4
    epochs: int = 20
    batch_size: int = 200
    lr: float = 0.3
    l2: float = 1e-5
    init_std: float = 0.1
    leak: float = 0.1
    seed: int = 0
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        parse_arch(self.arch)
        check_positive("n_runs", self.n_runs, integer=True)
        check_positive("epochs", self.epochs, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("lr", self.lr, finite=True)
        check_positive("l2", self.l2, allow_zero=True, finite=True)
        check_positive("init_std", self.init_std, finite=True)
        check_positive("leak", self.leak, allow_zero=True, finite=True)
        check_seed("seed", self.seed)

    @property
    def widths(self) -> tuple[int, ...]:
        return parse_arch(self.arch)

    @property
    def n_weights(self) -> int:
        w = self.widths
        return sum(a * b for a, b in itertools.pairwise(w))


@dataclass(frozen=True, eq=False)
class LRNetResult:
    """Trained ``θ`` of ``M`` runs.

    Attributes:
        thetas: one ``[M, n_out, n_in]`` array per layer (float64).
        loss: mean training loss per epoch and run ``[epochs, M]`` (stochastic forward).
        config: the :class:`LRNetConfig` used.
    """

    thetas: list[np.ndarray]
    loss: np.ndarray
    config: LRNetConfig

    @property
    def flat_theta(self) -> np.ndarray:
        """``θ`` ``[M, N]``: each layer's ``[n_out, n_in]`` flattened row-major, layers in order
        (the weight order of the samples: LB first)."""
        M = self.thetas[0].shape[0]
        return np.concatenate([t.reshape(M, -1) for t in self.thetas], axis=1)


def _as_batched_input(x: torch.Tensor, M: int) -> torch.Tensor:
    if x.ndim == 2:
        return x.unsqueeze(0).expand(M, -1, -1)
    if x.ndim == 3 and x.shape[0] == M:
        return x
    raise DatasetError(f"input has shape {tuple(x.shape)}; expected [B, d] or [M={M}, B, d]")


def preactivation_moments(
    theta: torch.Tensor, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``z = W a`` over ``W ~ Bernoulli(σ(θ))`` on ±1.

    Args:
        theta: ``[M, n_out, n_in]``.
        a: inputs ``[B, n_in]`` (shared) or ``[M, B, n_in]``.

    Returns:
        ``(mean, var)``, each ``[M, B, n_out]``.
    """
    M = theta.shape[0]
    a = _as_batched_input(a, M)
    mu = torch.tanh(theta / 2)  # = 2σ(θ) − 1, computed without cancellation
    mean = torch.bmm(a, mu.transpose(1, 2))
    var = torch.bmm(a * a, (1 - mu * mu).transpose(1, 2))
    return mean, var


def _hidden(z: torch.Tensor, n_in: int, leak: float) -> torch.Tensor:
    return torch.nn.functional.leaky_relu(z, leak) / math.sqrt(n_in)


def lrnet_forward(
    thetas: list[torch.Tensor],
    x: torch.Tensor,
    leak: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stochastic LR-net forward pass: logits ``[M, B, n_out]`` for inputs ``x`` ``[B, d]``."""
    a = x
    for k, theta in enumerate(thetas):
        mean, var = preactivation_moments(theta, a)
        eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        z = mean + var.clamp_min(VAR_FLOOR).sqrt() * eps
        a = z if k == len(thetas) - 1 else _hidden(z, theta.shape[2], leak)
    return a


def binary_forward(weights: list[torch.Tensor], x: torch.Tensor, leak: float = 0.1):
    """Plain forward pass of binary networks: logits ``[S, B, n_out]``.

    Args:
        weights: one ``[S, n_out, n_in]`` ±1 tensor per layer (``S`` networks).
        x: inputs ``[B, d]``.
        leak: LeakyReLU slope of hidden units.
    """
    a = _as_batched_input(x, weights[0].shape[0])
    for k, w in enumerate(weights):
        z = torch.bmm(a, w.transpose(1, 2))
        a = z if k == len(weights) - 1 else _hidden(z, w.shape[2], leak)
    return a


def train_epoch(thetas, opt, x, y, cfg: LRNetConfig, gen: torch.Generator) -> np.ndarray:
    """One epoch of minibatch LR-net training of all runs at once (in place on ``thetas``).

    Args:
        thetas: per layer ``[M, n_out, n_in]`` leaves of ``opt``.
        x, y: ``[P, d]`` inputs and ``[P]`` class labels.
    Returns:
        ``[M]`` the epoch's mean training cross-entropy per run.
    """
    P, M, C = x.shape[0], thetas[0].shape[0], thetas[-1].shape[1]
    perm = torch.randperm(P, generator=gen, device=x.device)
    total = torch.zeros(M, dtype=x.dtype, device=x.device)
    for start in range(0, P, cfg.batch_size):
        idx = perm[start : start + cfg.batch_size]
        logits = lrnet_forward(thetas, x[idx], cfg.leak, gen)  # [M, B, C]
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, C), y[idx].repeat(M), reduction="none"
        ).reshape(M, -1)
        per_run = ce.mean(1)
        opt.zero_grad()
        per_run.sum().backward()  # runs are independent: the sum separates
        opt.step()
        total += per_run.detach() * idx.shape[0]
    return (total / P).cpu().numpy()


def _check_data(x: torch.Tensor, y: torch.Tensor, widths, arch: str, part: str) -> None:
    """Inputs ``[P, d]`` and labels ``[P]`` that fit ``arch``: P >= 1, finite inputs, labels in
    ``0..n_out-1`` (one-line DatasetError naming ``part``)."""
    if x.ndim != 2 or x.shape[1] != widths[0] or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise DatasetError(
            f"{part} x {tuple(x.shape)} / y {tuple(y.shape)} do not fit arch {arch!r}: "
            f"expected x [P, {widths[0]}] and y [P] with P >= 1"
        )
    if not bool(torch.isfinite(x).all()):
        raise DatasetError(f"{part} inputs contain NaN or infinite values")
    if int(y.min()) < 0 or int(y.max()) >= widths[-1]:
        raise DatasetError(f"labels must lie in 0..{widths[-1] - 1} for arch {arch!r}")


def train_lrnet(x, y, config: LRNetConfig = LRNetConfig()) -> LRNetResult:
    """Train ``config.n_runs`` LR-nets on ``(x [P, d], y [P] int labels)`` together.

    Returns:
        :class:`LRNetResult` with ``θ`` per layer ``[M, n_out, n_in]``.
    """
    cfg = config
    dtype, device = cfg.precision.torch_dtype, cfg.precision.torch_device
    widths = cfg.widths
    x = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long, device=device)
    _check_data(x, y, widths, cfg.arch, "training")
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    M = cfg.n_runs
    thetas = [
        (
            cfg.init_std * torch.randn(M, b, a, dtype=dtype, device=device, generator=gen)
        ).requires_grad_(True)
        for a, b in itertools.pairwise(widths)
    ]
    opt = torch.optim.Adam(thetas, lr=cfg.lr, weight_decay=cfg.l2)
    losses = np.zeros((cfg.epochs, M))
    for epoch in range(cfg.epochs):
        losses[epoch] = train_epoch(thetas, opt, x, y, cfg, gen)
    return LRNetResult([t.detach().cpu().to(torch.float64).numpy() for t in thetas], losses, cfg)


def save_lrnet(result: LRNetResult, path: str | Path) -> Path:
    """Write trained ``θ`` to an ``.npz`` (atomically, no pickles).

    Arrays: ``theta_<k>`` ``[M, n_out, n_in]`` per layer ``k``, ``loss`` ``[epochs, M]`` and
    ``config_json`` (the :class:`LRNetConfig` as a JSON string). Read back with
    :func:`load_lrnet`.
    """
    from ..store._atomic import write_npz

    arrays = {f"theta_{k}": np.asarray(t, dtype=np.float64) for k, t in enumerate(result.thetas)}
    return write_npz(
        path,
        **arrays,
        loss=np.asarray(result.loss, dtype=np.float64),
        config_json=np.asarray(json.dumps(asdict(result.config))),
    )


def load_lrnet(path: str | Path) -> LRNetResult:
    """Read an :class:`LRNetResult` written by :func:`save_lrnet`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"LR-net file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "config_json" not in files or "theta_0" not in files:
                raise DatasetError(
                    f"{str(path)!r} holds arrays {sorted(files)}; expected theta_0.. and "
                    "config_json (written by save_lrnet)"
                )
            raw = json.loads(str(z["config_json"]))
            n_layers = sum(1 for f in files if f.startswith("theta_"))
            thetas = [z[f"theta_{k}"] for k in range(n_layers)]
            loss = z["loss"]
    except DatasetError:
        raise
    except NPZ_READ_ERRORS as err:
        raise DatasetError(f"cannot read {str(path)!r} as an LR-net .npz: {err}") from None
    prec = dict(raw.get("precision", {}))
    if str(prec.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        # trained on a GPU, read where there is none: θ are plain arrays; carry on on the CPU
        prec["device"] = "cpu"
    try:
        raw["precision"] = Precision(**prec)
        config = LRNetConfig(**raw)
    except (TypeError, ConfigError) as err:
        raise DatasetError(
            f"{str(path)!r} holds an LR-net config this version cannot read: {err}"
        ) from None
    return LRNetResult(thetas, loss, config)
