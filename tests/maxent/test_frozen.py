"""Frozen-centre training.

Oracles: full training reproduces :func:`train_lrnet` bit for bit (same seed, same stream); with
the centre frozen, the central θ used in epoch e equals the e-th fresh draw of an independent
generator (never trained), the other layers are trained (they move away from their
initialisation, which is train_lrnet's); the reported test accuracy equals an independent
recomputation from the final θ with the same evaluation stream; a seeded check that a net with a
random centre still learns a separable task far above chance.
"""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    FrozenCentreConfig,
    LRNetConfig,
    frozen_centre_experiment,
    plot_frozen_centre,
    train_frozen_centre,
    train_lrnet,
)


def _blobs(P, d, k, seed, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2.0
    y = rng.integers(0, k, size=P)
    return centres[y] + spread * rng.normal(size=(P, d)), y


_X, _Y = _blobs(600, 8, 3, 0)
X, Y, XT, YT = _X[:400], _Y[:400], _X[400:], _Y[400:]
CFG = FrozenCentreConfig(
    lrnet=LRNetConfig(arch="8-12-12-3", n_runs=3, epochs=4, batch_size=50, seed=5),
    eval_draws=4,
    redraw_seed=11,
)


def test_full_training_matches_train_lrnet():
    full = train_frozen_centre(X, Y, XT, YT, CFG, frozen=False)
    ref = train_lrnet(X, Y, CFG.lrnet)
    for a, b in zip(full.result.thetas, ref.thetas, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(full.loss, ref.loss)
    np.testing.assert_array_equal(full.centre[-1], ref.thetas[1])


def test_frozen_centre_is_a_fresh_draw_every_epoch_and_others_train():
    fz = train_frozen_centre(X, Y, XT, YT, CFG, frozen=True)
    assert fz.layer == 1
    g = torch.Generator().manual_seed(11)
    for e in range(4):
        draw = 2 * torch.randint(0, 2, (3, 12, 12), generator=g) - 1
        np.testing.assert_array_equal(fz.centre[e], draw.numpy())
    # the final central θ is the last draw, deterministic (θ = w·∞ ⇒ P(w=+1) = σ(θ) ∈ {0, 1})
    np.testing.assert_array_equal(np.sign(fz.result.thetas[1]), fz.centre[-1])
    assert np.isinf(fz.result.thetas[1]).all()
    # the draws differ between epochs (redrawn, not kept); about half the entries are +1
    assert (fz.centre[0] != fz.centre[1]).mean() > 0.3
    assert abs((fz.centre == 1).mean() - 0.5) < 0.05
    # the other layers start where train_lrnet starts (same stream) and are trained away from it
    g0 = torch.Generator().manual_seed(5)
    init = [0.1 * torch.randn(3, b, a, dtype=torch.float64, generator=g0) for a, b in
            ((8, 12), (12, 12), (12, 3))]  # fmt: skip
    for k in (0, 2):
        assert np.abs(fz.result.thetas[k] - init[k].numpy()).max() > 0.1


def test_reported_accuracy_is_the_binary_nets_accuracy():
    fz = train_frozen_centre(X, Y, XT, YT, CFG, frozen=True)
    # recompute the last epoch's evaluation: the eval stream draws eval_draws nets per run and
    # epoch, so skip the draws of the first 3 epochs, then evaluate with NumPy
    g = torch.Generator().manual_seed(CFG.eval_seed)
    thetas_by_epoch = [None] * 3 + [fz.result.thetas]
    for e in range(4):
        for r in range(3):
            nets = []
            for k, shape in enumerate(((12, 8), (12, 12), (3, 12))):
                u = torch.rand((4, *shape), generator=g, dtype=torch.float64)
                if thetas_by_epoch[e] is not None:
                    with np.errstate(over="ignore"):
                        p = 1 / (1 + np.exp(-thetas_by_epoch[e][k][r]))
                    nets.append(np.where(u.numpy() < p, 1.0, -1.0))
            if thetas_by_epoch[e] is None:
                continue
            accs = []
            for d in range(4):
                a = XT
                for k, W in enumerate(nets):
                    z = a @ W[d].T
                    a = z if k == 2 else np.where(z > 0, z, 0.1 * z) / np.sqrt(W[d].shape[1])
                accs.append((a.argmax(1) == YT).mean())
            assert fz.accuracy[e, r] == pytest.approx(np.mean(accs), abs=1e-12)


def test_random_centre_still_learns_separable_task():
    cfg = FrozenCentreConfig(
        lrnet=LRNetConfig(arch="8-32-32-3", n_runs=2, epochs=8, batch_size=20, seed=0),
        eval_draws=5,
    )
    fz, full, curves = frozen_centre_experiment(X, Y, XT, YT, cfg)
    # 3 balanced-ish classes: chance ≈ 1/3. Seeded; margins are wide (observed values are
    # printed on failure).
    assert fz.accuracy[-1].mean() > 0.7, fz.accuracy
    assert full.accuracy[-1].mean() > 0.7, full.accuracy
    assert set(curves["mode"]) == {"frozen_centre", "full"} and len(curves) == 2 * 8 * 2
    fig = plot_frozen_centre(curves)
    assert len(fig.axes) == 1


def test_bad_configs():
    with pytest.raises(ConfigError, match="central"):
        FrozenCentreConfig(lrnet=LRNetConfig(arch="8-4-4-4-3"))
    with pytest.raises(ConfigError, match="frozen_layer"):
        FrozenCentreConfig(lrnet=LRNetConfig(arch="8-4-4-3"), frozen_layer=3)
    assert FrozenCentreConfig(lrnet=LRNetConfig(arch="8-4-4-4-3"), frozen_layer=2).layer == 2
    with pytest.raises(DatasetError, match="arch"):
        train_frozen_centre(X[:, :5], Y, XT, YT, CFG)
    # empty or non-finite data sets, training or test: one-line errors (NaN inputs trained to
    # loss nan and still reported an accuracy; empty sets gave a raw RuntimeError)
    bad = np.where(np.arange(8) == 2, np.nan, X)
    for args, match in [
        ((X[:0], Y[:0], XT, YT), "training .* P >= 1"),
        ((X, Y, XT[:0], YT[:0]), "test .* P >= 1"),
        ((bad, Y, XT, YT), "training inputs contain NaN"),
        ((X, Y, XT * np.nan, YT), "test inputs contain NaN"),
    ]:
        with pytest.raises(DatasetError, match=match):
            train_frozen_centre(*args, CFG)
