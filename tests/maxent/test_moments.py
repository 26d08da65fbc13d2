"""Sample moments vs explicit numpy sums; bit packing round trips; weights; third order."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    Moments,
    PackedSpins,
    all_states,
    exact_distribution,
    exact_moments,
    pack_spins,
    sample_moments,
    third_order_connected,
    unpack_spins,
)

from .conftest import random_model

# Sums of <= a few hundred ±1 products in float64: exact up to ~1e-15 relative.
TOL = 1e-12

spins = st.integers(1, 20).flatmap(
    lambda n: arrays(
        np.int8, st.tuples(st.integers(1, 40), st.just(n)), elements=st.sampled_from([-1, 1])
    )
)


@settings(derandomize=True, deadline=None, max_examples=40)
@given(spins)
def test_pack_unpack_round_trip(x):
    packed = pack_spins(x)
    assert packed.bits.dtype == np.uint8 and packed.bits.shape == (len(x), (x.shape[1] + 7) // 8)
    np.testing.assert_array_equal(unpack_spins(packed), x)
    np.testing.assert_array_equal(packed.rows(1, 3), x[1:3])


@settings(derandomize=True, deadline=None, max_examples=40)
@given(spins)
def test_moments_match_numpy_sums(x):
    xf = x.astype(float)
    mom = sample_moments(x, triplets="all", chunk_rows=7)  # small chunks exercise streaming
    m = xf.mean(0)
    np.testing.assert_allclose(mom.m.numpy(), m, atol=TOL)
    np.testing.assert_allclose(mom.C.numpy(), xf.T @ xf / len(x), atol=TOL)
    np.testing.assert_allclose(
        mom.connected.numpy(), np.cov(xf.T, bias=True).reshape(mom.C.shape), atol=TOL
    )
    d = xf - m
    np.testing.assert_allclose(
        mom.third.numpy(), np.einsum("si,sj,sk->ijk", d, d, d) / len(x), atol=TOL
    )
    packed = sample_moments(pack_spins(x), chunk_rows=5)
    np.testing.assert_allclose(packed.C.numpy(), mom.C.numpy(), atol=TOL)
    assert mom.n_samples == len(x)


def test_unweighted_moments_are_exact_counts_over_s():
    """Unweighted m and C are the integer counts (int64 numpy) divided by S, to the bit, with
    and without the float32 count path; float32 matmul shortcuts switch that path off."""
    rng = np.random.default_rng(3)
    x = np.where(rng.random((5003, 37)) < 0.8, 1, -1).astype(np.int8)  # polarised, S odd
    xi = x.astype(np.int64)
    m_ref = xi.sum(0) / len(x)
    C_ref = (xi.T @ xi) / len(x)
    for rows in (1 << 15, 1000, 7):
        mom = sample_moments(x, chunk_rows=rows)
        np.testing.assert_array_equal(mom.m.numpy(), m_ref)
        np.testing.assert_array_equal(mom.C.numpy(), C_ref)
        np.testing.assert_array_equal(sample_moments(pack_spins(x), chunk_rows=rows).C, C_ref)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        mom = sample_moments(x)  # float64 path with 1/S weights: rounding only
        np.testing.assert_allclose(mom.C.numpy(), C_ref, rtol=0, atol=TOL)
    finally:
        torch.set_float32_matmul_precision(before)


def test_weights_equal_repetition():
    rng = np.random.default_rng(0)
    x = rng.choice([-1, 1], size=(30, 6)).astype(np.int8)
    counts = rng.integers(0, 4, size=30)
    counts[0] = 1
    rep = np.repeat(x, counts, axis=0)
    a = sample_moments(x, weights=counts, triplets="all")
    b = sample_moments(rep, triplets="all")
    np.testing.assert_allclose(a.m, b.m, atol=TOL)
    np.testing.assert_allclose(a.C, b.C, atol=TOL)
    np.testing.assert_allclose(a.third, b.third, atol=TOL)


def test_all_states_weighted_by_probabilities_give_exact_moments():
    model = random_model(7, 0.4, 0.4, seed=2)
    a = sample_moments(all_states(7), weights=exact_distribution(model), triplets="all")
    b = exact_moments(model, triplets="all")
    np.testing.assert_allclose(a.m, b.m, atol=TOL)
    np.testing.assert_allclose(a.C, b.C, atol=TOL)
    np.testing.assert_allclose(a.third, b.third, atol=TOL)


def test_triplet_subset_and_function():
    rng = np.random.default_rng(1)
    x = rng.choice([-1, 1], size=(50, 8)).astype(np.int8)
    full = third_order_connected(x)
    trip = np.array([[0, 1, 2], [7, 3, 3], [4, 5, 6]])
    sub = third_order_connected(x, triplets=trip)
    np.testing.assert_allclose(sub, full[trip[:, 0], trip[:, 1], trip[:, 2]], atol=TOL)
    assert torch.allclose(full, full.permute(1, 0, 2)) and torch.allclose(
        full, full.permute(2, 1, 0)
    )


@settings(derandomize=True, deadline=None, max_examples=30)
@given(spins.filter(lambda x: x.shape[1] >= 3))
def test_raw_third_equals_the_plain_mean_of_triple_products(x):
    """Oracle: ``Moments.raw_third`` (from m, C and the connected third order) equals the
    plain sample mean of ``σ_i σ_j σ_k``, for the full tensor and for a triplet subset (repeated
    indices included: ⟨σ_i σ_i σ_k⟩ = m_k)."""
    xf = x.astype(np.float64)
    direct = np.einsum("si,sj,sk->ijk", xf, xf, xf) / len(x)
    full = sample_moments(x, triplets="all").raw_third.numpy()
    np.testing.assert_allclose(full, direct, atol=TOL)
    n = x.shape[1]
    trip = np.array([[0, 1, 2], [n - 1, 0, n - 1], [1, 1, 2]])
    sub = sample_moments(x, triplets=trip).raw_third.numpy()
    np.testing.assert_allclose(sub, direct[trip[:, 0], trip[:, 1], trip[:, 2]], atol=TOL)
    assert sample_moments(x).raw_third is None


@pytest.mark.parametrize("weighted", [False, True])
def test_triplet_blocks_change_no_number(weighted):
    """The third order is summed block by block over the triplets (bounded temporaries): any
    block size gives the numbers of one block holding every triplet (the unblocked code) bit for
    bit, over several row chunks too, and they equal a direct sum over the samples."""
    rng = np.random.default_rng(4)
    x = rng.choice([-1, 1], size=(300, 30)).astype(np.int8)
    w = rng.random(300) if weighted else None
    trip = np.sort(rng.integers(0, 30, size=(1000, 3)), axis=1)
    kw = {"weights": w, "triplets": trip}
    for rows in (300, 70):
        whole = third_order_connected(x, **kw, chunk_rows=rows, chunk_triplets=len(trip))
        for block in (1, 7, 256):
            blocked = third_order_connected(x, **kw, chunk_rows=rows, chunk_triplets=block)
            assert torch.equal(blocked, whole)
    p = np.full(300, 1 / 300) if w is None else w / w.sum()
    d = x - p @ x
    direct = [p @ (d[:, i] * d[:, j] * d[:, k]) for i, j, k in trip]
    np.testing.assert_allclose(whole.numpy(), direct, atol=TOL)
    with pytest.raises(ConfigError, match="chunk_triplets"):
        sample_moments(x, triplets=trip, chunk_triplets=0)


def test_input_validation():
    with pytest.raises(DatasetError, match="-1 and \\+1"):
        sample_moments(np.array([[0, 1], [1, 1]]))
    with pytest.raises(DatasetError, match="weights"):
        sample_moments(np.ones((3, 2)), weights=[1, -1, 1])
    with pytest.raises(DatasetError, match=r"weights have shape \(2,\); expected one per sample"):
        sample_moments(np.ones((3, 2)), weights=[1, 1])
    # weights are one per sample: a [2, 3] array is not flattened into S = 6
    with pytest.raises(DatasetError, match=r"weights have shape \(2, 3\)"):
        sample_moments(np.ones((6, 2)), weights=np.ones((2, 3)))
    # samples must be an array, not a list of rows
    with pytest.raises(DatasetError, match="samples are a list; give an"):
        sample_moments([[1, -1], [1, 1]])
    # moments of ±1 spins: finite, within [-1, 1], C symmetric
    for m, C, match in [
        ([1.5, 0.0], np.eye(2), "outside"),
        ([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], "outside"),
        ([0.0, math.nan], np.eye(2), "NaN"),
        ([0.0, 0.0], [[1.0, 0.5], [0.1, 1.0]], "not symmetric"),
    ]:
        with pytest.raises(DatasetError, match=match):
            Moments(torch.tensor(m, dtype=torch.float64), torch.tensor(C, dtype=torch.float64))
    with pytest.raises(ConfigError, match="N <= 64"):
        sample_moments(np.ones((2, 65)), triplets="all")
    with pytest.raises(DatasetError):
        PackedSpins(np.zeros((2, 3), dtype=np.uint8), 8)


def test_moments_slice_equals_moments_of_the_columns():
    """Oracle: the moments of the column slice of the samples; the slice does not alias."""
    x = np.where(np.random.default_rng(3).random((500, 9)) < 0.6, 1, -1).astype(np.int8)
    full = sample_moments(x, triplets="all")
    part = full.slice(2, 7)
    ref = sample_moments(x[:, 2:7])
    torch.testing.assert_close(part.m, ref.m, rtol=0, atol=1e-15)
    torch.testing.assert_close(part.C, ref.C, rtol=0, atol=1e-15)
    assert part.n_samples == 500 and part.third is None
    part.C[0, 1] = 5.0
    assert full.C[2, 3] != 5.0
