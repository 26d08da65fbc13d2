"""Weight samples of trained LR-nets: ``σ ~ Bernoulli(σ(θ))``, test accuracy, acceptance, layers."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import NPZ_READ_ERRORS, ConfigError, DatasetError, check_choice, check_positive
from ._lrnet import LRNetResult, binary_forward, parse_arch

__all__ = [
    "THRESHOLD_KINDS",
    "SampleConfig",
    "WeightSamples",
    "draw_weight_samples",
    "layer_map",
    "load_weight_samples",
    "network_accuracy",
    "save_weight_samples",
]

THRESHOLD_KINDS = ("absolute", "quantile")


def layer_map(arch: str) -> dict[str, tuple[int, int]]:
    """Slices ``name → (start, stop)`` of each layer in the flattened weight vector.

    Three layers are named ``LB``, ``ITR``, ``RB`` (the paper's 20-15-15-10); one layer is
    ``all``; otherwise ``L1, L2, …``. Each layer's ``[n_out, n_in]`` is flattened row-major.
    """
    w = parse_arch(arch)
    sizes = [a * b for a, b in itertools.pairwise(w)]
    names = (
        ["LB", "ITR", "RB"]
        if len(sizes) == 3
        else ["all"]
        if len(sizes) == 1
        else [f"L{k + 1}" for k in range(len(sizes))]
    )
    out, start = {}, 0
    for name, n in zip(names, sizes, strict=True):
        out[name] = (start, start + n)
        start += n
    return out


# Bytes of one activation array [draws, P_test, width] of the test forward pass in
# draw_weight_samples (the draws of a run are tested in blocks of this size).
DRAW_BLOCK_BYTES = 1 << 27


@dataclass(frozen=True)
class SampleConfig:
    """How :func:`draw_weight_samples` draws and keeps samples.

    Attributes:
        n_draws: weight draws per run.
        threshold: accuracy threshold (``kind="absolute"``: a test accuracy in [0, 1]) or a
            quantile in [0, 1) of all draws' accuracies (``kind="quantile"``).
        kind: ``"absolute"`` or ``"quantile"``.
        seed: seed of the draws.
    """

    n_draws: int = 100
    threshold: float = 0.5
    kind: str = "quantile"
    seed: int = 0

    def __post_init__(self):
        check_positive("n_draws", self.n_draws, integer=True)
        check_choice("kind", self.kind, THRESHOLD_KINDS)
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
            raise ConfigError(f"threshold={t!r} must lie in [0, 1]")
        if self.kind == "quantile" and t >= 1.0:
            raise ConfigError(f"threshold={t!r} as a quantile must be < 1 (1 keeps nothing)")


@dataclass(frozen=True, eq=False)
class WeightSamples:
    """Kept weight samples.

    Attributes:
        sigma: ``[S, N]`` int8 ±1 (kept draws only).
        accuracy: test accuracy of each kept draw ``[S]``.
        run: the run each kept draw came from ``[S]``.
        all_accuracy: accuracy of every draw ``[M · n_draws]`` (kept or not).
        threshold: the accuracy cut actually applied.
        threshold_rule: e.g. ``"quantile 0.5"`` or ``"absolute 0.8"``.
        layers: :func:`layer_map` of the architecture.
    """

    sigma: np.ndarray
    accuracy: np.ndarray
    run: np.ndarray
    all_accuracy: np.ndarray
    threshold: float
    threshold_rule: str
    layers: dict[str, tuple[int, int]]

    def __post_init__(self):
        S, N = self.sigma.shape if self.sigma.ndim == 2 else (-1, -1)
        if S < 0:
            raise DatasetError(f"sigma has shape {self.sigma.shape}; expected [S, N]")
        for name in ("accuracy", "run"):
            shape = np.shape(getattr(self, name))
            if shape != (S,):
                raise DatasetError(f"{name} has shape {shape}; expected [S] = [{S}]")
        for name, (a, b) in self.layers.items():
            if not 0 <= a < b <= N:
                raise DatasetError(
                    f"layer {name!r} spans weights {a}:{b}, outside the samples' N = {N}"
                )

    def layer(self, name: str) -> np.ndarray:
        """Samples of one layer ``[S, n_layer]``."""
        check_choice("layer", name, tuple(self.layers))
        a, b = self.layers[name]
        return self.sigma[:, a:b]


def _accuracy(s: torch.Tensor, widths, layers, x, y, leak: float) -> torch.Tensor:
    """Test accuracy ``[S]`` of the ±1 networks ``s`` ``[S, N]`` (float64) on ``(x, y)``."""
    acc = torch.empty(s.shape[0], dtype=torch.float64)
    # the forward pass takes the networks in blocks: its activations are [networks, P_test,
    # width] (1.2 GB per 10^3 networks on 10^4 test images), so many networks at once (10^4
    # draws of a run for 2·10^6 samples from 200 runs) would not fit
    block = max(1, DRAW_BLOCK_BYTES // (x.shape[0] * max(widths) * x.element_size()))
    for d0 in range(0, s.shape[0], block):
        sb = s[d0 : d0 + block]
        ws = [
            sb[:, a:b].reshape(sb.shape[0], widths[k + 1], widths[k])
            for k, (a, b) in enumerate(layers.values())
        ]
        pred = binary_forward(ws, x, leak).argmax(-1)  # [D, B]
        acc[d0 : d0 + block] = (pred == y).double().mean(1)
    return acc


def network_accuracy(sigma, arch: str, x_test, y_test, leak: float = 0.1) -> np.ndarray:
    """Test accuracy of binary networks given as flat weight vectors (a plain forward pass).

    Args:
        sigma: ``[S, N]`` ±1 weights, flattened layer by layer as :func:`layer_map` says
            (``N`` the architecture's number of weights).
        arch: widths, e.g. ``"20-15-15-10"``.
        x_test: ``[P_test, d]`` inputs; y_test: ``[P_test]`` int labels.
        leak: LeakyReLU slope of the hidden units (the LR-nets' 0.1).

    Returns:
        ``[S]`` float64 fraction of test points classified correctly.
    """
    widths = parse_arch(arch)
    layers = layer_map(arch)
    n = sum(b - a for a, b in layers.values())
    s = torch.as_tensor(np.asarray(sigma)).to(torch.float64)
    if s.ndim != 2 or s.shape[1] != n:
        raise DatasetError(
            f"sigma has shape {tuple(s.shape)}; arch {arch!r} needs [S, {n}] ±1 weights"
        )
    if not bool(((s == 1) | (s == -1)).all()):
        raise DatasetError("sigma must contain only -1 and +1")
    x, y = _test_data(x_test, y_test, widths, arch)
    return _accuracy(s, widths, layers, x, y, leak).numpy()


def _test_data(x_test, y_test, widths, arch: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Test inputs ``[P, d]`` float64 and labels ``[P]`` long, checked against the architecture
    (one-line DatasetError: wrong shapes, no test point, non-finite inputs)."""
    x = torch.as_tensor(np.asarray(x_test), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y_test), dtype=torch.long)
    if x.ndim != 2 or x.shape[1] != widths[0] or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise DatasetError(
            f"test data have x {tuple(x.shape)}, y {tuple(y.shape)}; arch {arch!r} needs "
            f"x [P, {widths[0]}] and y [P] with P >= 1"
        )
    if not bool(torch.isfinite(x).all()):
        raise DatasetError("test inputs contain NaN or infinite values")
    return x, y


def draw_weight_samples(
    result: LRNetResult, x_test, y_test, config: SampleConfig = SampleConfig()
) -> WeightSamples:
    """Draw ``n_draws`` binary networks per run from ``θ``, test each, keep the accurate ones.

    Args:
        result: trained LR-nets (``M`` runs).
        x_test: ``[P_test, d]``; y_test: ``[P_test]`` int labels.
        config: draws, threshold and its kind, seed.

    Returns:
        :class:`WeightSamples`; draws with accuracy ≥ the threshold are kept.
    """
    cfg = config
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = _test_data(x_test, y_test, result.config.widths, result.config.arch)
    flat = torch.as_tensor(result.flat_theta)  # [M, N]
    M, N = flat.shape
    p = torch.sigmoid(flat)
    layers = layer_map(result.config.arch)
    widths = result.config.widths
    # Outputs are allocated once: appending small per-run tensors between the large per-run
    # temporaries of the forward pass pinned the allocator's heap (RSS grew by 6.3 GB over 192
    # runs on 10,000 test images after an LR-net training; 0 with preallocation).
    sig = torch.empty(M, cfg.n_draws, N, dtype=torch.int8)
    acc = torch.empty(M, cfg.n_draws, dtype=torch.float64)
    for r in range(M):
        s = torch.where(torch.rand(cfg.n_draws, N, generator=gen, dtype=torch.float64) < p[r],
                        1.0, -1.0).to(torch.float64)  # fmt: skip
        # the draws are taken in one call, so the samples do not depend on the forward pass's
        # blocks (network_accuracy)
        acc[r] = _accuracy(s, widths, layers, x, y, result.config.leak)
        sig[r] = s
    sigma = sig.reshape(M * cfg.n_draws, N).numpy()
    accuracy = acc.reshape(-1).numpy()
    run = np.repeat(np.arange(M), cfg.n_draws)
    if cfg.kind == "absolute":
        thr = float(cfg.threshold)
    else:
        thr = float(np.quantile(accuracy, cfg.threshold))
    keep = accuracy >= thr
    return WeightSamples(
        sigma=sigma[keep],
        accuracy=accuracy[keep],
        run=run[keep],
        all_accuracy=accuracy,
        threshold=thr,
        threshold_rule=f"{cfg.kind} {cfg.threshold:g}",
        layers=layers,
    )


def save_weight_samples(samples: WeightSamples, path: str | Path, **meta) -> Path:
    """Write kept samples to an ``.npz`` with the spins bit-packed (8 per byte).

    Arrays: ``bits`` ``[S, ceil(N/8)]`` uint8 (``numpy.packbits``, bit 1 ↔ +1), ``n_spins``,
    ``accuracy`` ``[S]``, ``run`` ``[S]``, ``all_accuracy``, ``threshold``, ``threshold_rule``,
    ``layer_names`` ``[L]`` and ``layer_bounds`` ``[L, 2]`` (start, stop) and ``meta_json``
    (``meta`` as JSON, e.g. the architecture and the data set). Read with
    :func:`load_weight_samples`.
    """
    from ..store._atomic import write_npz
    from ._moments import pack_spins

    sig = np.asarray(samples.sigma)
    packed = (
        pack_spins(sig).bits
        if sig.shape[0]
        else np.zeros((0, (sig.shape[1] + 7) // 8), dtype=np.uint8)
    )
    names = list(samples.layers)
    return write_npz(
        path,
        bits=packed,
        n_spins=np.asarray(sig.shape[1]),
        accuracy=np.asarray(samples.accuracy, dtype=np.float64),
        run=np.asarray(samples.run, dtype=np.int64),
        all_accuracy=np.asarray(samples.all_accuracy, dtype=np.float64),
        threshold=np.asarray(float(samples.threshold)),
        threshold_rule=np.asarray(samples.threshold_rule),
        layer_names=np.asarray(names, dtype=str),
        layer_bounds=np.asarray([samples.layers[k] for k in names], dtype=np.int64).reshape(-1, 2),
        meta_json=np.asarray(json.dumps(meta)),
    )


def load_weight_samples(path: str | Path) -> tuple[WeightSamples, dict]:
    """Read samples written by :func:`save_weight_samples`: ``(WeightSamples, meta)``.

    ``sigma`` is unpacked to int8 ±1 ``[S, N]``.
    """
    from ._moments import PackedSpins, unpack_spins

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"samples file {str(path)!r} does not exist")
    need = {"bits", "n_spins", "accuracy", "run", "layer_names", "layer_bounds"}
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(need - set(z.files))
            if missing:
                raise DatasetError(
                    f"{str(path)!r} lacks arrays {missing}; expected a samples .npz written by "
                    "save_weight_samples (weightscape maxent sample)"
                )
            n = int(z["n_spins"])
            sigma = unpack_spins(PackedSpins(z["bits"], n))
            layers = {
                str(k): (int(a), int(b))
                for k, (a, b) in zip(z["layer_names"], z["layer_bounds"], strict=True)
            }
            ws = WeightSamples(
                sigma=sigma,
                accuracy=z["accuracy"],
                run=z["run"],
                all_accuracy=z["all_accuracy"] if "all_accuracy" in z.files else z["accuracy"],
                threshold=float(z["threshold"]) if "threshold" in z.files else float("nan"),
                threshold_rule=str(z["threshold_rule"]) if "threshold_rule" in z.files else "",
                layers=layers,
            )
            meta = json.loads(str(z["meta_json"])) if "meta_json" in z.files else {}
    except DatasetError:
        raise
    except NPZ_READ_ERRORS as err:
        raise DatasetError(f"cannot read {str(path)!r} as a samples .npz: {err}") from None
    return ws, meta
