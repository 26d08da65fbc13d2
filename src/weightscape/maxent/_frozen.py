"""Frozen-centre training: an LR-net whose central layer is redrawn at random every epoch.

The paper's algorithmic reading of the liquid-like centre (Zou & Huang 2021): if the central
layer's weights behave as randomly as possible, a deep binary net should still learn when its
central weights are not trained at all but redrawn at random every epoch. Here, at the start of
every epoch, the central layer gets fresh uniform random binary weights ``w ∈ {±1}`` (each +1
with probability ½) that stay fixed during the epoch and are excluded from the optimiser; all
other layers are trained as in :func:`train_lrnet`. The comparison run trains every layer.

In LR-net terms the frozen layer has ``θ = w · ∞``: ``μ = tanh(θ/2) = w`` and zero variance, so
the forward pass (:func:`lrnet_forward`, unchanged) sees the concrete random matrix and the test
nets use it too. (Redrawing ``θ`` from the initial ``N(0, init_std²)`` instead would make the
central pre-activations pure noise in LR-net training, ``μ ≈ 0``: no signal would pass the
centre during training, while a binary net drawn for testing has a concrete random matrix — a
mismatch, not the experiment.) The stored ``θ`` of the frozen layer are ``±inf``.

Random streams (so that each part can be checked on its own):

* the training stream (initialisation, minibatch order, LR-net noise ``ε``) is that of
  :func:`train_lrnet` with ``config.seed``: full training reproduces :func:`train_lrnet`
  bit for bit;
* the redraws of the central weights use their own generator seeded with ``redraw_seed``: draw
  ``e`` is ``2 · randint(0, 2, (M, n_out, n_in)) − 1``, the ``e``-th call on that generator;
* the test evaluation (``eval_draws`` binary nets ``σ ~ Bernoulli(σ(θ))`` per run after each
  epoch, plain forward pass, mean test accuracy) uses a third generator (``eval_seed``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, check_positive
from ._lrnet import LRNetConfig, LRNetResult, _check_data, binary_forward, train_epoch

__all__ = [
    "FrozenCentreConfig",
    "FrozenCentreResult",
    "frozen_centre_experiment",
    "plot_frozen_centre",
    "train_frozen_centre",
]


@dataclass(frozen=True)
class FrozenCentreConfig:
    """Settings of :func:`train_frozen_centre`.

    Attributes:
        lrnet: the LR-net settings (architecture, runs, epochs, optimiser, seed).
        frozen_layer: index of the weight layer redrawn every epoch (``None``: the central one,
            which needs an odd number of weight layers, e.g. 3 for ``784-100-100-10``).
        eval_draws: binary nets drawn per run for the test accuracy after each epoch.
        redraw_seed: seed of the central layer's redraws.
        eval_seed: seed of the evaluation draws.
    """

    lrnet: LRNetConfig = field(default_factory=lambda: LRNetConfig(arch="784-100-100-10"))
    frozen_layer: int | None = None
    eval_draws: int = 10
    redraw_seed: int = 1
    eval_seed: int = 2

    def __post_init__(self):
        if not isinstance(self.lrnet, LRNetConfig):
            raise ConfigError(f"lrnet={self.lrnet!r} must be an LRNetConfig")
        check_positive("eval_draws", self.eval_draws, integer=True)
        for name in ("redraw_seed", "eval_seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{name}={v!r} must be an integer")
        _ = self.layer  # validates frozen_layer

    @property
    def layer(self) -> int:
        """The frozen weight layer's index."""
        n_layers = len(self.lrnet.widths) - 1
        if self.frozen_layer is None:
            if n_layers < 3 or n_layers % 2 == 0:
                raise ConfigError(
                    f"arch {self.lrnet.arch!r} has {n_layers} weight layer(s): no single central "
                    "one; give frozen_layer (an index 1..L-2) or an odd number of layers >= 3"
                )
            return n_layers // 2
        k = self.frozen_layer
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n_layers:
            raise ConfigError(
                f"frozen_layer={k!r} must be a weight-layer index in 0..{n_layers - 1} "
                f"for arch {self.lrnet.arch!r}"
            )
        return k


@dataclass(frozen=True, eq=False)
class FrozenCentreResult:
    """One training (frozen centre or full).

    Attributes:
        frozen: whether the central layer was redrawn every epoch.
        accuracy: mean test accuracy of ``eval_draws`` binary nets per run after each epoch
            ``[epochs, M]``.
        loss: mean training loss per epoch and run ``[epochs, M]``.
        centre: the central layer's weights during each epoch ``[epochs, M, n_out, n_in]``:
            the ±1 draw (frozen) or the trained ``θ`` after the epoch (full).
        result: the final ``θ`` of all layers as an :class:`LRNetResult`.
        layer: the central (frozen) layer's index.
    """

    frozen: bool
    accuracy: np.ndarray
    loss: np.ndarray
    centre: np.ndarray
    result: LRNetResult
    layer: int

    def to_frame(self) -> pd.DataFrame:
        """Long table ``mode, epoch, run, accuracy, loss`` (epochs counted from 1)."""
        E, M = self.accuracy.shape
        return pd.DataFrame(
            {
                "mode": "frozen_centre" if self.frozen else "full",
                "epoch": np.repeat(np.arange(1, E + 1), M),
                "run": np.tile(np.arange(M), E),
                "accuracy": self.accuracy.ravel(),
                "loss": self.loss.ravel(),
            }
        )


def _test_accuracy(thetas, x, y, draws: int, leak: float, gen) -> torch.Tensor:
    """Mean test accuracy over ``draws`` binary nets per run ``[M]``."""
    M = thetas[0].shape[0]
    acc = torch.zeros(M, dtype=torch.float64)
    for r in range(M):
        ws = []
        for t in thetas:
            p = torch.sigmoid(t[r].detach())
            u = torch.rand((draws, *p.shape), generator=gen, dtype=p.dtype, device=p.device)
            ws.append(torch.where(u < p, 1.0, -1.0).to(p.dtype))
        pred = binary_forward(ws, x, leak).argmax(-1)  # [draws, B]
        acc[r] = (pred == y).double().mean().cpu()
    return acc


def train_frozen_centre(
    x, y, x_test, y_test, config: FrozenCentreConfig = FrozenCentreConfig(), *, frozen=True
) -> FrozenCentreResult:
    """Train ``M`` LR-nets with the central layer redrawn every epoch (or fully, ``frozen=False``).

    Args:
        x: training inputs ``[P, d]``; y: int labels ``[P]``.
        x_test, y_test: test set ``[P_test, d]``, ``[P_test]``.
        config: :class:`FrozenCentreConfig`.
        frozen: redraw the central layer every epoch (``True``) or train it (``False``).

    Returns:
        :class:`FrozenCentreResult` with test-accuracy and loss curves per epoch.
    """
    fc = config
    cfg = fc.lrnet
    layer = fc.layer
    dtype, device = cfg.precision.torch_dtype, cfg.precision.torch_device
    widths = cfg.widths
    x = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long, device=device)
    xt = torch.as_tensor(np.asarray(x_test), dtype=dtype, device=device)
    yt = torch.as_tensor(np.asarray(y_test), dtype=torch.long, device=device)
    for xs, ys, part in ((x, y, "training"), (xt, yt, "test")):
        _check_data(xs, ys, widths, cfg.arch, part)  # shapes, P >= 1, finite, label range
    # the training stream: identical to train_lrnet's
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    redraw = torch.Generator(device=device).manual_seed(fc.redraw_seed)
    evalg = torch.Generator(device=device).manual_seed(fc.eval_seed)
    M = cfg.n_runs
    thetas = [
        (
            cfg.init_std * torch.randn(M, b, a, dtype=dtype, device=device, generator=gen)
        ).requires_grad_(True)
        for a, b in itertools.pairwise(widths)
    ]
    if frozen:
        thetas[layer].requires_grad_(False)
    trained = [t for k, t in enumerate(thetas) if not (frozen and k == layer)]
    opt = torch.optim.Adam(trained, lr=cfg.lr, weight_decay=cfg.l2)
    losses = np.zeros((cfg.epochs, M))
    accs = np.zeros((cfg.epochs, M))
    centre = np.zeros((cfg.epochs, *thetas[layer].shape))
    for epoch in range(cfg.epochs):
        if frozen:
            n_out, n_in = thetas[layer].shape[1:]
            w = 2 * torch.randint(0, 2, (M, n_out, n_in), generator=redraw, device=device) - 1
            # θ = w·∞: μ = w exactly, variance 0; not a leaf of the optimiser: never trained
            thetas[layer] = w.to(dtype) * torch.inf
            centre[epoch] = w.cpu().numpy()
        losses[epoch] = train_epoch(thetas, opt, x, y, cfg, gen)
        if not frozen:
            centre[epoch] = thetas[layer].detach().cpu().numpy()
        with torch.no_grad():
            accs[epoch] = _test_accuracy(thetas, xt, yt, fc.eval_draws, cfg.leak, evalg).numpy()
    final = [t.detach().cpu().to(torch.float64).numpy() for t in thetas]
    return FrozenCentreResult(
        frozen=frozen,
        accuracy=accs,
        loss=losses,
        centre=centre,
        result=LRNetResult(final, losses, cfg),
        layer=layer,
    )


def frozen_centre_experiment(
    x, y, x_test, y_test, config: FrozenCentreConfig = FrozenCentreConfig()
) -> tuple[FrozenCentreResult, FrozenCentreResult, pd.DataFrame]:
    """Frozen-centre and full training with the same seeds: ``(frozen, full, curves)``.

    ``curves`` is the long table of both (:meth:`FrozenCentreResult.to_frame`).
    """
    fz = train_frozen_centre(x, y, x_test, y_test, config, frozen=True)
    full = train_frozen_centre(x, y, x_test, y_test, config, frozen=False)
    return fz, full, pd.concat([fz.to_frame(), full.to_frame()], ignore_index=True)


def plot_frozen_centre(curves: pd.DataFrame, title: str = ""):
    """Test accuracy vs epoch, mean ± standard deviation over runs, for both modes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for k, (mode, d) in enumerate(curves.groupby("mode", sort=False)):
        g = d.groupby("epoch").accuracy
        mu, sd = g.mean(), g.std(ddof=0)
        ax.plot(mu.index, mu.values, "o-", ms=3, color=f"C{k}", label=mode.replace("_", " "))
        ax.fill_between(mu.index, mu - sd, mu + sd, color=f"C{k}", alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (binary nets)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    return fig
