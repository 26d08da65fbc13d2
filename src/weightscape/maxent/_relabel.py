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
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError
from ._lrnet import parse_arch
from ._moments import Moments, _check_pm1, sample_moments
from ._pseudo import PseudoLikelihood, PseudoLikelihoodConfig
from ._samples import layer_map
from ._validate import coupling_table

__all__ = [
    "OrbitAverage",
    "RelabelResult",
    "hidden_symmetry_defect",
    "permute_hidden_units",
    "random_hidden_permutations",
    "relabel_experiment",
    "relabel_samples",
    "symmetrised_data",
    "symmetrised_moments",
    "symmetrised_sample_moments",
    "symmetrised_third_order",
]

#: The paper's relabelled fractions (plus 0, the unrelabelled reference).
#: Rows and orbit keys per block when orbit averages are evaluated (bounds memory: an operand
#: block is rows × hidden width × keys float64, 1024 × 15 × 256 × 8 B ≈ 31 MB).
ORBIT_CHUNK_ROWS, ORBIT_CHUNK_KEYS = 1024, 256
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


def symmetrised_moments(samples, arch: str, *, start: int = 0) -> Moments:
    """Moments averaged over all hidden-unit permutations (:func:`permute_hidden_units`).

    ``m_sym[s]`` and ``C_sym[s, t]`` are the averages of ``m`` and ``C`` of the samples over the
    orbit of spin ``s`` (pair ``(s, t)``) under the product of the symmetric groups of the
    hidden layers; e.g. the first layer's ``m_sym`` depends only on the input index, and
    ``C_sym`` between two first-layer weights only on their input indices and on whether they
    feed the same hidden unit. This equals the moments of the samples relabelled by every
    group element, pooled (the orbit average of a transitive action weighs each member
    equally).

    Args:
        samples: ``[S, N]`` ±1 weight samples (or :class:`PackedSpins`) of the whole net, or of
            its spins ``start … start + N - 1`` (whole layers, e.g. Monte Carlo samples of one
            layer's model).
        arch: their architecture.
        start: index of the samples' first spin in the flattened net.

    Returns:
        :class:`Moments` (float64) with ``m`` ``[N]`` and ``C`` ``[N, N]`` (diagonal 1).
    """
    mom = sample_moments(samples)
    m, C = OrbitAverage(arch, samples.shape[1], start=start)(mom.m, mom.C)
    return Moments(m, C, mom.n_samples)


class OrbitAverage:
    """The average over hidden-unit relabellings of a layer slice's ``m`` and ``C`` (the
    projection of :func:`symmetrised_moments`), with the orbits computed once.

    ``m_sym[s]`` is the mean of ``m`` over the orbit of spin ``s`` and ``C_sym[s, t]`` the mean
    of ``C`` over the orbit of the pair ``(s, t)``; the diagonal of ``C`` is set to 1. Applying
    it to moments that are already invariant changes nothing (a projection). Used where the
    same slice is averaged many times, as in a learning loop.

    Args:
        arch: the net's widths; n: spins in the slice; start: its first spin in the net.
    """

    def __init__(self, arch: str, n: int, *, start: int = 0):
        lab, _ = _slice_labels(arch, start, n)
        # single spins: orbit = (layer, fixed input, fixed output)
        _, inv1 = np.unique(lab[:, :3], axis=0, return_inverse=True)
        inv1 = inv1.ravel()
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
        self.n = n
        self._inv1, self._inv2 = inv1, inv2.ravel()
        self._cnt1 = np.bincount(self._inv1).astype(np.float64)
        self._cnt2 = np.bincount(self._inv2).astype(np.float64)
        self._torch: dict = {}

    @property
    def n_orbits(self) -> tuple[int, int]:
        """Orbits of single spins and of ordered pairs (the free parameters of an invariant
        ``m`` and ``C``)."""
        return len(self._cnt1), len(self._cnt2)

    def _index(self, device):
        import torch

        key = str(device)
        if key not in self._torch:
            self._torch[key] = tuple(
                torch.as_tensor(a, device=device)
                for a in (self._inv1, self._inv2, self._cnt1, self._cnt2)
            )
        return self._torch[key]

    def __call__(self, m, C):
        """``(m_sym [n], C_sym [n, n])`` of torch ``m`` ``[n]`` and ``C`` ``[n, n]`` (same dtype
        and device as the inputs; ``C_sym`` symmetric with diagonal 1)."""
        import torch

        m, C = torch.as_tensor(m), torch.as_tensor(C)
        if m.shape != (self.n,) or C.shape != (self.n, self.n):
            raise DatasetError(
                f"moments have m {tuple(m.shape)} and C {tuple(C.shape)}; this orbit average "
                f"is for [{self.n}] and [{self.n}, {self.n}]"
            )
        inv1, inv2, cnt1, cnt2 = self._index(m.device)
        dt = m.dtype
        s1 = torch.zeros(len(cnt1), dtype=dt, device=m.device).index_add_(0, inv1, m)
        m_sym = (s1 / cnt1.to(dt))[inv1]
        s2 = torch.zeros(len(cnt2), dtype=dt, device=m.device).index_add_(0, inv2, C.reshape(-1))
        C_sym = (s2 / cnt2.to(dt))[inv2].reshape(self.n, self.n)
        C_sym = 0.5 * (C_sym + C_sym.T)
        C_sym.fill_diagonal_(1.0)
        return m_sym, C_sym


def symmetrised_data(sigma, arch: str, copies: int, seed: int = 0) -> tuple[Moments, np.ndarray]:
    """A net's weight samples as a hidden-unit-symmetric data set: the exact symmetrised moments
    and relabelled copies of the samples.

    Why: the network function does not depend on the labelling of its hidden units, and runs
    pooled from independent trainings carry arbitrary labellings; the moments a max-ent model of
    such samples should match are the orbit averages (:func:`symmetrised_moments`, the limit of
    infinitely many relabelled copies). Other statistics can be taken from ``copies`` random
    relabellings of every sample; the third-order moments have an exact orbit average,
    :func:`symmetrised_third_order`, which is noise-free and should be preferred.

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


def _slice_labels(arch: str, start: int, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Spin labels (:func:`_spin_labels`) of spins ``start … start + n - 1`` of the net; the
    slice must be whole weight layers (e.g. one layer's model)."""
    widths = parse_arch(arch)
    total = sum(a * b for a, b in itertools.pairwise(widths))
    bounds = {0} | {b for _, b in layer_map(arch).values()}
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or start not in bounds:
        raise ConfigError(f"start={start!r} must be a layer boundary of {arch!r}: {sorted(bounds)}")
    start = int(start)
    if start + n not in bounds or n < 1:
        raise DatasetError(
            f"samples have N = {n} spins from spin {start}; arch {arch!r} needs whole layers "
            f"(layer boundaries {sorted(bounds)}, {total} spins in all)"
        )
    return _spin_labels(arch)[start : start + n], widths


def _set_partitions(q: int) -> list[list[list[int]]]:
    """All set partitions of ``range(q)`` (lists of blocks)."""
    if q == 0:
        return [[]]
    out = []
    for p in _set_partitions(q - 1):
        for k in range(len(p)):
            out.append([*p[:k], [*p[k], q - 1], *p[k + 1 :]])
        out.append([*p, [q - 1]])
    return out


def _mobius(partition) -> int:
    """μ(0̂, π) of the partition lattice: Π over blocks of (−1)^{|B|−1} (|B|−1)!."""
    out = 1
    for block in partition:
        k = len(block)
        out *= (-1) ** (k - 1) * math.factorial(k - 1)
    return out


def _orbit_keys(lab: np.ndarray, tuples: np.ndarray) -> np.ndarray:
    """Orbit key of each index tuple ``[T, r]``: per position the spin's layer and fixed
    (input / output) indices, and per hidden layer the unit renamed in order of first
    appearance within the tuple (−1 where the spin does not touch that layer). Two tuples lie
    in the same orbit of the hidden-unit permutation group iff their keys are equal."""
    T, r = tuples.shape
    L = lab[tuples]  # [T, r, 3 + H]
    fixed, hid = L[:, :, :3], L[:, :, 3:].copy()
    for ell in range(hid.shape[2]):
        col = hid[:, :, ell]
        ren = np.full_like(col, -1)
        for p in range(r):
            # first position with the same unit (a "variable" id), for positions touching ell
            same = (col[:, : p + 1] == col[:, p : p + 1]) & (col[:, p : p + 1] >= 0)
            first = np.argmax(same, axis=1)
            ren[:, p] = np.where(col[:, p] >= 0, first, -1)
        hid[:, :, ell] = ren
    return np.concatenate([fixed, hid], axis=2).reshape(T, -1)


def _components(subs: list[str]) -> list[list[int]]:
    """Positions grouped into connected components by shared hidden letters (not ``s``/``u``)."""
    parent = list(range(len(subs)))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    owner: dict[str, int] = {}
    for p, sub in enumerate(subs):
        for c in sub:
            if c in "su":
                continue
            if c in owner:
                parent[find(p)] = find(owner[c])
            else:
                owner[c] = p
    comps: dict[int, list[int]] = {}
    for p in range(len(subs)):
        comps.setdefault(find(p), []).append(p)
    return list(comps.values())


def _structure_terms(key: np.ndarray, r: int, H: int, n_layers: int, widths) -> tuple:
    """Contraction plan of one orbit structure (a key without its fixed indices).

    Returns ``(terms, denom)``: ``terms`` is a list of ``(coefficient, [(positions,
    einsum spec), …])`` — the unrestricted sum over assignments constant on the blocks of one
    combination of set partitions (one per hidden layer), factorised into connected
    components; ``denom`` the number of injective assignments of the variables.
    """
    K = key.reshape(r, 3 + H)
    variables = [sorted({int(v) for v in K[:, 3 + ell] if v >= 0}) for ell in range(H)]
    denom = 1.0
    for ell in range(H):
        denom *= math.perm(widths[ell + 1], len(variables[ell]))
    terms = []
    for combo in itertools.product(*[_set_partitions(len(v)) for v in variables]):
        coef, letter_of, used = 1, {}, 0
        for ell, part in enumerate(combo):
            coef *= _mobius(part)
            for block in part:
                for v in block:
                    letter_of[ell, variables[ell][v]] = "abcdefghijklmnopqrtvwxyz"[used]
                used += 1
        subs = []
        for p in range(r):
            k = int(K[p, 0])
            sub = ""
            if k < n_layers - 1:  # output side is hidden layer k
                sub += letter_of[k, int(K[p, 3 + k])]
            if k > 0:  # input side is hidden layer k - 1
                sub += letter_of[k - 1, int(K[p, 3 + k - 1])]
            if k == 0 or k == n_layers - 1:  # a fixed index: one operand column per key
                sub += "u"
            subs.append("s" + sub)
        comps = []
        for pos in _components(subs):
            out = "s" + ("u" if any("u" in subs[p] for p in pos) else "")
            comps.append((tuple(pos), ",".join(subs[p] for p in pos) + "->" + out))
        terms.append((coef, comps))
    return terms, denom


def _orbit_products(samples, arch, tuples, *, start=0, weights=None, groups=None):
    """Orbit averages of the products ``σ_{t_1} ⋯ σ_{t_r}`` over hidden-unit permutations.

    For every index tuple ``t`` (rows of ``tuples`` ``[T, r]``, spin indices relative to
    ``start``) the average of the product over the tuple's orbit under the product of the
    symmetric groups of the hidden layers, per sample, weighted by the normalised ``weights``
    and summed within each group of ``groups``. The orbit average is exact: a group element
    acts on a tuple by mapping the distinct hidden units it names (its "variables", per hidden
    layer) injectively, each injective assignment being reached equally often, and the sum over
    injective assignments is obtained from unrestricted sums (tensor contractions of each
    sample's weight matrices) by Möbius inversion over the set partitions of the variables.
    Tuples of one structure (the same layers and coincidences, any fixed input / output
    indices) are evaluated together, a fixed index becoming an extra operand axis.

    Returns:
        float64 ``[G, T]`` (``G = 1`` without ``groups``): per group, the weighted sum over its
        samples of the orbit-averaged product; summed over groups it is the orbit average of
        the (weighted) sample moment.
    """
    S, n = samples.shape
    if S == 0:
        raise DatasetError("no samples: the orbit averages need S >= 1")
    lab, widths = _slice_labels(arch, start, n)
    tuples = np.asarray(tuples, dtype=np.int64)
    if tuples.ndim != 2 or (tuples.size and (tuples.min() < 0 or tuples.max() >= n)):
        raise ConfigError(f"index tuples must be an integer [T, r] array with entries in [0, {n})")
    r = tuples.shape[1]
    n_layers = len(widths) - 1
    H = n_layers - 1
    keys, inverse = np.unique(_orbit_keys(lab, tuples), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    K = keys.reshape(len(keys), r, 3 + H)
    structure = K.copy()
    structure[:, :, 1:3] = structure[:, :, 1:3] >= 0  # fixed indices → present or not
    structs, s_inv = np.unique(structure.reshape(len(keys), -1), axis=0, return_inverse=True)
    s_inv = s_inv.ravel()
    offsets, pos = {}, -start  # layers inside the slice, offset relative to start
    for k, (a, b) in enumerate(itertools.pairwise(widths)):
        if 0 <= pos < n:
            offsets[k] = pos
        pos += a * b
    plans = [_structure_terms(st, r, H, n_layers, widths) for st in structs]
    if weights is None:
        w_all = np.full(S, 1.0 / S)
    else:
        w_all = np.asarray(weights, dtype=np.float64)
        if w_all.shape != (S,) or not np.isfinite(w_all).all() or (w_all < 0).any():
            raise DatasetError(f"weights must be [S = {S}] finite non-negative numbers")
        if not w_all.sum() > 0:
            raise DatasetError("weights are all zero")
        w_all = w_all / w_all.sum()
    if groups is None:
        g_all, G = np.zeros(S, dtype=np.int64), 1
    else:
        g_all = np.asarray(groups, dtype=np.int64).reshape(-1)
        if g_all.shape[0] != S or (g_all < 0).any():
            raise DatasetError(f"groups must be [S = {S}] non-negative integers")
        G = int(g_all.max()) + 1
    out = np.zeros((G, len(keys)))
    paths: dict = {}
    rows, ucols = ORBIT_CHUNK_ROWS, ORBIT_CHUNK_KEYS
    for a in range(0, S, rows):
        b = min(a + rows, S)
        x = samples.rows(a, b) if hasattr(samples, "rows") else np.asarray(samples[a:b])
        x = np.asarray(x, dtype=np.float64)
        _check_pm1(x)
        X = {
            k: x[:, o : o + widths[k] * widths[k + 1]].reshape(b - a, widths[k + 1], widths[k])
            for k, o in offsets.items()
        }
        wg = np.zeros((G, b - a))
        wg[g_all[a:b], np.arange(b - a)] = w_all[a:b]  # group-sum matrix with the weights
        for si, (terms, denom) in enumerate(plans):
            members = np.flatnonzero(s_inv == si)
            for c0 in range(0, len(members), ucols):
                mem = members[c0 : c0 + ucols]
                ops = []
                for p in range(r):
                    k = int(K[mem[0], p, 0])
                    if n_layers == 1:
                        ops.append(X[k][:, K[mem, p, 2], K[mem, p, 1]])
                    elif k == 0:
                        ops.append(X[k][:, :, K[mem, p, 1]])
                    elif k == n_layers - 1:
                        ops.append(X[k][:, K[mem, p, 2], :].transpose(0, 2, 1))
                    else:
                        ops.append(X[k])
                cache: dict = {}
                acc = np.zeros((b - a, len(mem)))
                for coef, comps in terms:
                    val = np.full((b - a, 1), float(coef))
                    for positions, spec in comps:
                        if (positions, spec) not in cache:
                            args = [ops[p] for p in positions]
                            # ≤ 2 hidden letters: a direct loop (≤ 225 terms per entry) beats
                            # the batched-matmul path's copies; more: a contraction order
                            if len(set(spec) - set("su,->")) <= 2:
                                v = np.einsum(spec, *args)
                            else:
                                pk = (spec, *(o.shape for o in args))
                                if pk not in paths:
                                    paths[pk] = np.einsum_path(spec, *args, optimize="greedy")[0]
                                v = np.einsum(spec, *args, optimize=paths[pk])
                            cache[positions, spec] = v if v.ndim == 2 else v[:, None]
                        val = val * cache[positions, spec]
                    acc += val
                out[:, mem] += wg @ acc / denom
    return out[:, inverse]


def symmetrised_third_order(
    samples, arch: str, triplets, *, start: int = 0, weights=None, moments: Moments | None = None
):
    """Third-order connected moments of the hidden-unit-symmetrised distribution, exactly.

    The symmetrised distribution is the samples relabelled by every element of the product of
    the hidden layers' symmetric groups, pooled (the limit of infinitely many relabelled copies
    in :func:`symmetrised_data`). Its connected moment of a triplet ``(i, j, k)`` is

    .. math::

        κ_{ijk} = \\bar T_{ijk} - \\bar m_i \\bar C_{jk} - \\bar m_j \\bar C_{ik}
                  - \\bar m_k \\bar C_{ij} + 2 \\bar m_i \\bar m_j \\bar m_k,

    with ``\\bar T``, ``\\bar C``, ``\\bar m`` the orbit averages of the sample moments
    (:func:`_orbit_products`; ``\\bar m``, ``\\bar C`` equal :func:`symmetrised_moments`).
    For samples of a distribution that is itself invariant under the group (e.g. Monte Carlo
    samples of a symmetric model, see :func:`hidden_symmetry_defect`) this estimates the same
    moments as the plain sample estimate, with less noise.

    Args:
        samples: ``[S, n]`` ±1 samples of spins ``start … start + n - 1`` of the net (whole
            layers; e.g. ``start = 300`` and ``n = 225`` for ITR of 20-15-15-10), numpy or
            :class:`PackedSpins`.
        arch: the net's widths.
        triplets: ``[T, 3]`` integer indices relative to ``start``.
        start: index of the first spin of the slice in the flattened net.
        weights: optional ``[S]`` non-negative sample weights (e.g. exact probabilities).
        moments: the samples' :func:`symmetrised_moments` when already at hand (unweighted
            samples only): its ``m`` and ``C`` are ``\\bar m`` and ``\\bar C``, which are then
            not recomputed.

    Returns:
        float64 tensor ``[T]``.
    """
    import torch

    trip = np.asarray(triplets, dtype=np.int64)
    if trip.ndim != 2 or trip.shape[1] != 3:
        raise ConfigError(f"triplets have shape {trip.shape}; expected an integer [T, 3] array")
    if trip.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64)
    i, j, k = trip.T
    T3 = _orbit_products(samples, arch, trip, start=start, weights=weights)[0]
    if moments is not None:
        if weights is not None:
            raise ConfigError("moments= are the unweighted symmetrised moments; omit weights")
        mm, CC = moments.m.cpu().numpy(), moments.C.cpu().numpy()
        C = np.stack([CC[j, k], CC[i, k], CC[i, j]])
        m = mm[trip.T]
    else:
        pairs = np.concatenate([np.stack([j, k], 1), np.stack([i, k], 1), np.stack([i, j], 1)])
        C = _orbit_products(samples, arch, pairs, start=start, weights=weights)[0].reshape(3, -1)
        m = _orbit_products(samples, arch, trip.reshape(-1, 1), start=start, weights=weights)[0]
        m = m.reshape(-1, 3).T
    kappa = T3 - m[0] * C[0] - m[1] * C[1] - m[2] * C[2] + 2 * m[0] * m[1] * m[2]
    return torch.as_tensor(kappa)


def hidden_symmetry_defect(model, arch: str, *, start: int = 0) -> float:
    """Largest change of ``J`` or ``h`` under a hidden-unit relabelling of the net's spins
    ``start … start + N - 1`` (whole layers): 0 iff the model is invariant under the whole
    group. Checked on the group's generators (a transposition and an ``n``-cycle of every
    hidden layer), which is exact: invariance under generators is invariance under the group.

    Returns:
        ``max |J[p, p] − J|, |h[p] − h|`` over the generators ``p`` (0 for a net with no hidden
        layer).
    """
    J = model.J.detach().cpu().numpy()
    h = model.h.detach().cpu().numpy()
    n = J.shape[0]
    _, widths = _slice_labels(arch, start, n)
    hidden = widths[1:-1]
    total = sum(a * b for a, b in itertools.pairwise(widths))
    idx = np.arange(total)
    worst = 0.0
    for ell, n_h in enumerate(hidden):
        if n_h < 2:
            continue
        for gen in (np.r_[1, 0, 2:n_h], np.r_[1:n_h, 0]):
            perms = [np.arange(w) for w in hidden]
            perms[ell] = gen
            p = permute_hidden_units(idx, arch, perms)[start : start + n] - start
            worst = max(worst, float(np.abs(J[np.ix_(p, p)] - J).max()))
            worst = max(worst, float(np.abs(h[p] - h).max()))
    return worst


#: A model counts as invariant under hidden-unit relabelling (its Monte Carlo samples may be
#: orbit-averaged) when no generator changes any J or h by more than this.
SYMMETRY_TOL = 1e-10


def symmetrised_sample_moments(samples, arch: str, triplets=None, *, start: int = 0) -> Moments:
    """``m``, ``C`` and (optionally) third-order connected moments of the hidden-unit-symmetrised
    distribution of ``samples``: :func:`symmetrised_moments` and
    :func:`symmetrised_third_order` in one :class:`Moments`.

    Used on both sides of a validation: on data, it is the exact moments the symmetrised fit
    targets (no random relabelled copies); on Monte Carlo samples of a model that is itself
    invariant (:func:`hidden_symmetry_defect` ≤ :data:`SYMMETRY_TOL`), it estimates the
    model's own moments with less noise (the average of an unbiased estimator over the group).

    Args:
        samples: ``[S, n]`` ±1 samples of spins ``start … start + n - 1`` (whole layers).
        arch: the net's widths; triplets: ``None`` or ``[T, 3]`` indices relative to ``start``.
        start: index of the first spin in the flattened net.

    Returns:
        :class:`Moments` (``n_samples = S``; ``third`` ``[T]`` when ``triplets`` are given).
    """
    import torch

    sym = symmetrised_moments(samples, arch, start=start)
    if triplets is None:
        return sym
    trip = np.asarray(triplets, dtype=np.int64)
    third = symmetrised_third_order(samples, arch, trip, start=start, moments=sym)
    return Moments(sym.m, sym.C, sym.n_samples, third, torch.as_tensor(trip))


def _model_sample_moments(model, x, arch: str, triplets=None, *, start: int = 0):
    """Moments of Monte Carlo samples ``x`` ``[S, n]`` of ``model`` (a layer model of ``arch``
    starting at spin ``start``), orbit-averaged over hidden-unit relabellings when the model is
    invariant (:func:`hidden_symmetry_defect` ≤ :data:`SYMMETRY_TOL`: the same moments with
    less noise), else plain :func:`~weightscape.maxent.sample_moments`.

    Returns:
        ``(Moments, defect, orbit)``: the moments (``third`` on ``triplets`` when given), the
        model's symmetry defect and whether the moments are orbit-averaged.
    """
    defect = hidden_symmetry_defect(model, arch, start=start)
    orbit = defect <= SYMMETRY_TOL
    if orbit:
        return symmetrised_sample_moments(x, arch, triplets, start=start), defect, True
    return sample_moments(x, triplets=triplets), defect, False
