"""Float32 miscounts near-zero gaps that float64 counts right."""

import numpy as np
import torch

from weightscape.jamming import count_unsatisfied, float32_gap_miscount_example
from weightscape.train.losses import gaps


def test_float32_misses_an_unsatisfied_point():
    ex = float32_gap_miscount_example(1e-9)
    # float64 resolves both gaps to ~1e-16 absolute (unit roundoff 1.1e-16 at magnitude 1)
    np.testing.assert_allclose(ex.delta64, [1e-9, -1e-9], rtol=1e-6)
    assert ex.n_delta64 == 1
    # float32's spacing at 1 is 1.2e-7 (6e-8 below 1): 1 ± 1e-9 rounds to exactly 1
    np.testing.assert_array_equal(ex.delta32, [0.0, 0.0])
    assert ex.n_delta32 == 0


def test_same_miscount_with_the_training_gaps_in_torch():
    # Independent path: the training module's gap function on torch tensors of each dtype.
    ex = float32_gap_miscount_example(1e-9)
    for dtype, expected in ((torch.float64, 1), (torch.float32, 0)):
        w = torch.tensor(ex.w, dtype=dtype)
        x = torch.tensor(ex.x, dtype=dtype)
        y = torch.tensor(ex.y, dtype=dtype)
        f = (x @ w)[None, :, None]  # [M=1, P, 1]
        assert int((gaps(f, y) > 0).sum()) == expected


def test_gaps_above_float32_resolution_count_alike():
    ex = float32_gap_miscount_example(1e-5)  # well above float32's 6e-8
    assert ex.n_delta64 == ex.n_delta32 == 1


def test_count_unsatisfied_brute_force():
    rng = np.random.default_rng(0)
    f = rng.normal(size=200)
    y = rng.choice([-1.0, 1.0], 200)
    expected = sum(1 for fi, yi in zip(f, y, strict=True) if 1.0 - yi * fi > 0)
    assert count_unsatisfied(f, y) == expected
    assert count_unsatisfied(f, y, kappa=0.0) == int(np.sum(y * f < 0))
