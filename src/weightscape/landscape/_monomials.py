"""Tables of monomials (multisets of variable indices) used by the tensor-free spin-glass path.

A monomial of degree ``d`` in ``lam`` variables is stored as its sorted index tuple
``i_1 <= i_2 <= ... <= i_d`` (one row of an integer array ``[P_d, d]``,
``P_d = C(lam + d - 1, d)``), in lexicographic order. Its multi-index is
``alpha_k = #{p : i_p = k}``.

Hand-written (vectorised NumPy) because ``itertools.combinations_with_replacement`` is a Python
loop (minutes at the 10^7 monomials of N = 240, H = 6) and no library offers rank/derivative tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb, factorial

import numpy as np

from ..errors import ConfigError

__all__ = [
    "DerivativeTable",
    "derivative_table",
    "monomial_keys",
    "multinomial_counts",
    "multisets",
    "n_monomials",
    "product_ranks",
    "rank_multisets",
    "second_derivative_table",
]


def n_monomials(lam: int, degree: int) -> int:
    """Monomials of degree ``degree`` in ``lam`` variables: ``C(lam+degree-1, degree)``."""
    return comb(lam + degree - 1, degree)


@lru_cache(maxsize=64)
def multisets(lam: int, degree: int) -> np.ndarray:
    """All sorted index tuples of length ``degree`` over ``range(lam)``, lex order, ``[P, degree]``.

    Built by extending each tuple of length ``d - 1`` by every index ``>= `` its last index, which
    keeps the lexicographic order. The result is read-only (it is cached).
    """
    if degree == 0:
        out = np.zeros((1, 0), dtype=np.int64)
    else:
        out = np.arange(lam, dtype=np.int64)[:, None]
        for _ in range(degree - 1):
            last = out[:, -1]
            counts = lam - last
            rows = np.repeat(out, counts, axis=0)
            starts = np.repeat(last, counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            out = np.concatenate([rows, (starts + offsets)[:, None]], axis=1)
    out.setflags(write=False)
    return out


def monomial_keys(rows: np.ndarray, lam: int) -> np.ndarray:
    """Integer key ``sum_p rows[:, p] * lam**(d-1-p)`` of sorted rows; increasing in lex order."""
    d = rows.shape[-1]
    if d and float(lam) ** d >= 2.0**62:
        raise ConfigError(
            f"lam={lam}, degree={d} is too large for int64 monomial keys (lam^d >= 2^62)"
        )
    powers = lam ** np.arange(d - 1, -1, -1, dtype=np.int64)
    return rows.astype(np.int64) @ powers if d else np.zeros(rows.shape[:-1], dtype=np.int64)


def rank_multisets(rows: np.ndarray, lam: int) -> np.ndarray:
    """Position of each (possibly unsorted) index row in :func:`multisets` ``(lam, d)``."""
    rows = np.sort(rows, axis=-1)
    keys = monomial_keys(multisets(lam, rows.shape[-1]), lam)
    return np.searchsorted(keys, monomial_keys(rows, lam))


def product_ranks(lam: int, a: int, b: int) -> np.ndarray:
    """``[P_a, P_b]``: the rank in :func:`multisets` ``(lam, a + b)`` of the product of the
    ``A``-th degree-``a`` and the ``B``-th degree-``b`` monomial (the index map of a flattening
    ``phi_a^T M phi_b``). Built in row chunks so the merged index rows stay below ~2^24 entries."""
    rows_a, rows_b = multisets(lam, a), multisets(lam, b)
    out = np.empty((len(rows_a), len(rows_b)), dtype=np.int64)
    step = max(1, int(2**24 // max(1, len(rows_b) * (a + b))))
    for s in range(0, len(rows_a), step):
        ra = rows_a[s : s + step]
        merged = np.concatenate(
            [
                np.broadcast_to(ra[:, None, :], (len(ra), len(rows_b), a)),
                np.broadcast_to(rows_b[None, :, :], (len(ra), len(rows_b), b)),
            ],
            axis=-1,
        )
        out[s : s + step] = rank_multisets(merged, lam)
    return out


def _run_lengths(rows: np.ndarray) -> np.ndarray:
    """For sorted rows, the position of each entry within its run of equal values (1, 2, ...)."""
    run = np.ones(rows.shape, dtype=np.int64)
    for p in range(1, rows.shape[-1]):
        same = rows[..., p] == rows[..., p - 1]
        run[..., p] = np.where(same, run[..., p - 1] + 1, 1)
    return run


def multinomial_counts(rows: np.ndarray) -> np.ndarray:
    """Number of ordered tuples with each sorted row's multiset, ``d! / prod_k alpha_k!``, ``[P]``.

    This is the variance of the monomial coefficient ``c_alpha = sum_{tuples -> alpha} X_tuple``
    when the ordered-tuple entries ``X`` are i.i.d. N(0, 1).
    """
    d = rows.shape[-1]
    # prod over runs of alpha_k! equals the product of within-run positions.
    return factorial(d) // np.prod(_run_lengths(rows), axis=-1)


@dataclass(frozen=True)
class DerivativeTable:
    """Sparse derivative of degree-``d`` monomials: ``d phi_A / d w_k = coef * phi_{A'}``.

    Attributes (all ``[T]``): ``source`` (A, degree d), ``var`` (k), ``target`` (A', degree d - 1),
    ``coef`` (alpha_k of A). For second derivatives, ``var`` and ``var2`` are the ordered pair
    (k, l) and ``target`` has degree d - 2.
    """

    source: np.ndarray
    var: np.ndarray
    target: np.ndarray
    coef: np.ndarray
    var2: np.ndarray | None = None


@lru_cache(maxsize=64)
def derivative_table(lam: int, degree: int) -> DerivativeTable:
    """First derivatives of all monomials of ``degree`` (one entry per distinct variable in A)."""
    rows = multisets(lam, degree)
    if degree == 0:
        empty = np.zeros(0, dtype=np.int64)
        return DerivativeTable(empty, empty, empty, np.zeros(0))
    run = _run_lengths(rows)
    # alpha_k of the variable at slot p: the length of its run = run at the run's last slot.
    alpha = run.copy()
    for p in range(degree - 2, -1, -1):
        same = rows[:, p] == rows[:, p + 1]
        alpha[:, p] = np.where(same, alpha[:, p + 1], run[:, p])
    src, var, tgt, coef = [], [], [], []
    for p in range(degree):
        first = run[:, p] == 1  # one entry per distinct variable
        a_idx = np.nonzero(first)[0]
        reduced = np.delete(rows[a_idx], p, axis=1)
        src.append(a_idx)
        var.append(rows[a_idx, p])
        tgt.append(rank_multisets(reduced, lam))
        coef.append(alpha[a_idx, p].astype(np.float64))
    return DerivativeTable(*(np.concatenate(x) for x in (src, var, tgt, coef)))


@lru_cache(maxsize=64)
def second_derivative_table(lam: int, degree: int) -> DerivativeTable:
    """Second derivatives: ``d^2 phi_A / d w_k d w_l = alpha_k (alpha_l - delta_kl) phi_{A''}``.

    Obtained by composing :func:`derivative_table` of degree ``d`` and ``d - 1``; entries cover
    ordered pairs (k, l).
    """
    if degree < 2:
        empty = np.zeros(0, dtype=np.int64)
        return DerivativeTable(empty, empty, empty, np.zeros(0), empty)
    t1 = derivative_table(lam, degree)
    t2 = derivative_table(lam, degree - 1)
    # For each first-derivative entry (A -> A'), attach every derivative entry of A'.
    order = np.argsort(t2.source, kind="stable")
    starts = np.searchsorted(t2.source[order], np.arange(n_monomials(lam, degree - 1)))
    ends = np.searchsorted(t2.source[order], np.arange(n_monomials(lam, degree - 1)), side="right")
    counts = (ends - starts)[t1.target]
    rep = np.repeat(np.arange(len(t1.source)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    j = order[np.repeat(starts[t1.target], counts) + within]
    return DerivativeTable(
        source=t1.source[rep],
        var=t1.var[rep],
        target=t2.target[j],
        coef=t1.coef[rep] * t2.coef[j],
        var2=t2.var[j],
    )
