"""Hidden-unit relabelling of weight samples, and the relabelling experiment of the paper.

A network's function is unchanged when the units of a hidden layer are permuted: if hidden
layer ``l`` (the output of weight layer ``l``) has its units reordered by ``p`` — new unit ``k``
is old unit ``p[k]`` — then the rows of ``W_l`` and the columns of ``W_{l+1}`` are reordered by
the same ``p``:

.. math::

    W_l' = W_l[p, :], \\qquad W_{l+1}' = W_{l+1}[:, p],

and ``z'_{l+1} = W'_{l+1} f(W'_l a) = W_{l+1} f(W_l a)`` because ``f`` acts elementwise (the
``1/√n_in`` of the hidden activation does not depend on the order). A weight layer between two
hidden layers is permuted on both sides. Weight samples pooled over independent runs carry an
arbitrary labelling per run; the paper relabels a fraction (30/60/90 %) of the samples by random
permutations and refits the model to see how the couplings depend on it.

Samples are ``[S, N]`` ±1 with each layer's ``[n_out, n_in]`` flattened row-major, layers in
order (:func:`weightscape.maxent.layer_map`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError
from ._lrnet import parse_arch
from ._moments import Moments, sample_moments
from ._pseudo import PseudoLikelihood, PseudoLikelihoodConfig
from ._samples import layer_map
from ._validate import coupling_table

__all__ = [
    "RelabelResult",
    "permute_hidden_units",
    "random_hidden_permutations",
    "relabel_experiment",
    "relabel_samples",
    "symmetrised_data",
    "symmetrised_moments",
]

#: The paper's relabelled fractions (plus 0, the unrelabelled reference).
PAPER_FRACTIONS = (0.0, 0.3, 0.6, 0.9)


def _check_sigma(sigma, arch: str) -> tuple[np.ndarray, tuple[int, ...], bool]:
    widths = parse_arch(arch)
    n = sum(a * b for a, b in itertools.pairwise(widths))
    x = np.asarray(sigma)
    single = x.ndim == 1
    if single:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n:
        raise DatasetError(
            f"samples have shape {np.asarray(sigma).shape}; arch {arch!r} needs [S, {n}] or [{n}]"
        )
    return x, widths, single


def random_hidden_permutations(arch: str, n_samples: int, rng) -> list[np.ndarray]:
    """One uniformly random permutation per sample and hidden layer.

    Returns:
        a list over hidden layers (``len(widths) - 2`` of them) of int64 ``[n_samples, n_h]``.
    """
    widths = parse_arch(arch)
    rng = np.random.default_rng(rng)
    return [
        np.argsort(rng.random((n_samples, n_h)), axis=1).astype(np.int64) for n_h in widths[1:-1]
    ]


def permute_hidden_units(sigma, arch: str, perms: list) -> np.ndarray:
    """Apply hidden-unit permutations to weight samples (the network functions are unchanged).

    Args:
        sigma: ``[S, N]`` (or ``[N]``) weights, layers flattened as in :func:`layer_map`.
        arch: widths ``"in-h1-…-out"``.
        perms: one permutation per hidden layer, each ``[n_h]`` (same for every sample) or
            ``[S, n_h]`` (per sample); new unit ``k`` is old unit ``perm[k]``.

    Returns:
        the permuted samples, same shape and dtype as ``sigma``.
    """
    x, widths, single = _check_sigma(sigma, arch)
    S = x.shape[0]
    hidden = widths[1:-1]
    if len(perms) != len(hidden):
        raise ConfigError(
            f"arch {arch!r} has {len(hidden)} hidden layer(s); got {len(perms)} permutation(s)"
        )
    full = []
    for n_h, p in zip(hidden, perms, strict=True):
        p = np.asarray(p, dtype=np.int64)
        if p.ndim == 1:
            p = np.broadcast_to(p, (S, p.shape[0]))
        if p.shape != (S, n_h) or not (np.sort(p, axis=1) == np.arange(n_h)).all():
            raise ConfigError(f"each permutation must be a reordering of 0..{n_h - 1} per sample")
        full.append(p)
    out = x.copy()
    rows = np.arange(S)[:, None, None]
    for k, (a, b) in enumerate(layer_map(arch).values()):
        n_in, n_out = widths[k], widths[k + 1]
        W = x[:, a:b].reshape(S, n_out, n_in)
        r = full[k] if k < len(full) else np.broadcast_to(np.arange(n_out), (S, n_out))
        c = full[k - 1] if k >= 1 else np.broadcast_to(np.arange(n_in), (S, n_in))
        W = W[rows, r[:, :, None], c[:, None, :]]  # W'[s, i, j] = W[s, r[s, i], c[s, j]]
        out[:, a:b] = W.reshape(S, -1)
    return out[0] if single else out


def relabel_samples(sigma, arch: str, fraction: float, seed: int = 0):
    """Relabel the hidden units of a random ``fraction`` of the samples by random permutations.

    Exactly ``round(fraction · S)`` samples (chosen uniformly, seeded) get an independent uniform
    permutation of every hidden layer; the others are returned unchanged.

    Returns:
        ``(relabelled [S, N], mask [S] bool of the relabelled samples)``.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"fraction={fraction!r} must be a number in [0, 1]")
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"fraction={fraction!r} must lie in [0, 1]")
    x, _, single = _check_sigma(sigma, arch)
    if single:
        raise DatasetError("relabel_samples needs [S, N] samples")
    S = x.shape[0]
    rng = np.random.default_rng(seed)
    k = round(fraction * S)
    chosen = rng.choice(S, size=k, replace=False) if k else np.zeros(0, dtype=np.int64)
    mask = np.zeros(S, dtype=bool)
    mask[chosen] = True
    out = x.copy()
    if k:
        perms = random_hidden_permutations(arch, k, rng)
        out[chosen] = permute_hidden_units(x[chosen], arch, perms)
    return out, mask


@dataclass(frozen=True, eq=False)
class RelabelResult:
    """The relabelling experiment.

    Attributes:
        table: one row per (fraction, layer): ``fraction, n_relabelled, layer, n_spins, J_mean,
            J_std, J_max_abs, h_mean, h_std, h_max_abs, fit_iterations, fit_converged``.
        models: ``{(fraction, layer): IsingModel}``.
    """

    table: pd.DataFrame
    models: dict


def relabel_experiment(
    sigma,
    arch: str,
    fractions=PAPER_FRACTIONS,
    *,
    layers=None,
    method=None,
    seed: int = 0,
) -> RelabelResult:
    """Relabel a fraction of the samples, refit each layer's model, tabulate the couplings.

    Args:
        sigma: weight samples ``[S, N]``.
        arch: their architecture.
        fractions: relabelled fractions (each in [0, 1]; the paper: 0.3, 0.6, 0.9).
        layers: layer names of :func:`layer_map` to fit (default: all), each fitted separately.
        method: an inverse method with ``fit(samples)`` (default: pseudo-likelihood with
            ``l2 = 1e-3``, no Newton polish, no moment evaluation).
        seed: seed of the relabelling (fraction ``f`` uses ``seed + round(1000 f)``).

    Returns:
        :class:`RelabelResult` (couplings vs fraction per layer).
    """
    x, _, single = _check_sigma(sigma, arch)
    if single or x.shape[0] < 2:
        raise DatasetError("the relabelling experiment needs at least 2 samples [S, N]")
    lmap = layer_map(arch)
    names = list(lmap) if layers is None else list(layers)
    for name in names:
        if name not in lmap:
            raise ConfigError(f"layer {name!r} is not allowed; choose among {list(lmap)}")
    if method is None:
        method = PseudoLikelihood(
            PseudoLikelihoodConfig(l2=1e-3, newton_steps=0, evaluate="none", max_iter=500)
        )
    rows, models = [], {}
    for f in fractions:
        relab, mask = relabel_samples(x, arch, float(f), seed=seed + round(1000 * f))
        for name in names:
            a, b = lmap[name]
            model, report = method.fit(relab[:, a:b])
            models[(float(f), name)] = model
            stats = coupling_table(model, {name: (0, b - a)}).iloc[0].to_dict()
            rows.append(
                {
                    "fraction": float(f),
                    "n_relabelled": int(mask.sum()),
                    **stats,
                    "fit_iterations": report.iterations,
                    "fit_converged": report.converged,
                    "fit_error": report.error,
                }
            )
    return RelabelResult(pd.DataFrame(rows), models)


def _spin_labels(arch: str) -> np.ndarray:
    """Per spin: ``[layer, fixed input, fixed output, unit in hidden layer 0, 1, …]`` (−1 where
    not applicable). Fixed indices are the network's input (first layer) and output (last
    layer) indices, which no hidden permutation moves."""
    widths = parse_arch(arch)
    L, H = len(widths) - 1, len(widths) - 2
    rows = []
    for k in range(L):
        n_in, n_out = widths[k], widths[k + 1]
        o, i = np.divmod(np.arange(n_in * n_out), n_in)  # row-major [n_out, n_in]
        lab = np.full((n_in * n_out, 3 + H), -1, dtype=np.int64)
        lab[:, 0] = k
        if k == 0:
            lab[:, 1] = i
        else:
            lab[:, 3 + k - 1] = i  # input side is hidden layer k - 1
        if k == L - 1:
            lab[:, 2] = o
        else:
            lab[:, 3 + k] = o  # output side is hidden layer k
        rows.append(lab)
    return np.concatenate(rows)


def symmetrised_moments(samples, arch: str) -> Moments:
    """Moments averaged over all hidden-unit permutations (:func:`permute_hidden_units`).

    ``m_sym[s]`` and ``C_sym[s, t]`` are the averages of ``m`` and ``C`` of the samples over the
    orbit of spin ``s`` (pair ``(s, t)``) under the product of the symmetric groups of the
    hidden layers; e.g. the first layer's ``m_sym`` depends only on the input index, and
    ``C_sym`` between two first-layer weights only on their input indices and on whether they
    feed the same hidden unit. This equals the moments of the samples relabelled by every
    group element, pooled (the orbit average of a transitive action weighs each member
    equally).

    Args:
        samples: ``[S, N]`` ±1 weight samples (or :class:`PackedSpins`).
        arch: their architecture.

    Returns:
        :class:`Moments` (float64) with ``m`` ``[N]`` and ``C`` ``[N, N]`` (diagonal 1).
    """
    import torch

    widths = parse_arch(arch)
    n = sum(a * b for a, b in itertools.pairwise(widths))
    if samples.shape[1] != n:
        raise DatasetError(f"samples have N = {samples.shape[1]} spins; arch {arch!r} needs {n}")
    mom = sample_moments(samples)
    lab = _spin_labels(arch)
    # single spins: orbit = (layer, fixed input, fixed output)
    _, inv1 = np.unique(lab[:, :3], axis=0, return_inverse=True)
    inv1 = inv1.ravel()
    m = mom.m.cpu().numpy()
    m_sym = (np.bincount(inv1, weights=m) / np.bincount(inv1))[inv1]
    # ordered pairs: both spins' orbit keys + per hidden layer: 0 (not both touch it),
    # 1 (same unit), 2 (different units)
    s_idx, t_idx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    s_idx, t_idx = s_idx.ravel(), t_idx.ravel()
    hs, ht = lab[s_idx, 3:], lab[t_idx, 3:]
    both = (hs >= 0) & (ht >= 0)
    rel = np.where(both, np.where(hs == ht, 1, 2), 0)
    key = np.concatenate(
        [inv1[s_idx, None], inv1[t_idx, None], rel, (s_idx == t_idx)[:, None]], axis=1
    ).astype(np.int64)
    _, inv2 = np.unique(key, axis=0, return_inverse=True)
    inv2 = inv2.ravel()
    C = mom.C.cpu().numpy().ravel()
    C_sym = (np.bincount(inv2, weights=C) / np.bincount(inv2))[inv2].reshape(n, n)
    np.fill_diagonal(C_sym, 1.0)
    return Moments(torch.as_tensor(m_sym), torch.as_tensor(0.5 * (C_sym + C_sym.T)), mom.n_samples)


def symmetrised_data(sigma, arch: str, copies: int, seed: int = 0) -> tuple[Moments, np.ndarray]:
    """A net's weight samples as a hidden-unit-symmetric data set: the exact symmetrised moments
    and relabelled copies of the samples.

    Why: the network function does not depend on the labelling of its hidden units, and runs
    pooled from independent trainings carry arbitrary labellings; the moments a max-ent model of
    such samples should match are the orbit averages (:func:`symmetrised_moments`, the limit of
    infinitely many relabelled copies). Statistics without a closed-form orbit average (e.g. the
    third-order moments on random triplets) are taken from ``copies`` random relabellings of
    every sample.

    Args:
        sigma: ``[S, N]`` ±1 samples of the whole net; arch: its widths.
        copies: relabelled copies of each sample (≥ 1); seed: seed of the permutations.

    Returns:
        ``(Moments [N], relabelled samples [copies·S, N] int8)``; copy ``c`` of sample ``s`` is
        row ``c·S + s``.
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ConfigError(f"copies={copies!r} must be an integer >= 1")
    sym = symmetrised_moments(sigma, arch)
    rng = np.random.default_rng(seed)
    x, _, single = _check_sigma(sigma, arch)
    if single:
        raise DatasetError("symmetrised_data needs [S, N] samples")
    aug = np.concatenate([
        permute_hidden_units(x, arch, random_hidden_permutations(arch, len(x), rng))
        for _ in range(copies)
    ])  # fmt: skip
    return sym, aug.astype(np.int8, copy=False)
