"""The training loop: ensemble vs standalone members, freezing, determinism, checkpoints,
measurements."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import TrainConfig, train

from ._cases import binary_data, mixed_ensemble

# a member inside a larger ensemble runs the same algebra through batched kernels of other
# shapes: equal to rounding, 1e-12 relative on the trajectory
TOL = 1e-12


def _record(ens, out):
    return lambda step: out.append([p.clone() for p in ens.params])


def _bitwise_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "fire"])
def test_member_alone_equals_member_in_mixed_ensemble(optimizer):
    ens = mixed_ensemble()
    g = torch.Generator().manual_seed(0)
    P = 30
    xs = [torch.randn(P, s.d_in, generator=g, dtype=torch.float64) for s in ens.specs]
    y = torch.randint(0, 2, (ens.M, P), generator=g).double() * 2 - 1
    mask = torch.rand(ens.M, P, generator=g) > 0.25
    opts = {"momentum": 0.9} if optimizer == "sgd" else {}
    lrs = (1e-2, 2e-2, 5e-3)
    base = dict(optimizer=optimizer, optimizer_options=opts, max_steps=40, stop=(), poll_every=1)
    traj = []
    res = train(
        ens,
        ens.pad_inputs(xs),
        y,
        TrainConfig(lr=lrs, **base),
        sample_mask=mask,
        callback=_record(ens, traj),
        progress=False,
    )
    for m in range(ens.M):
        keep = mask[m]
        alone = Ensemble.init([ens.specs[m]], [ens.seeds[m]])
        t1 = []
        r1 = train(
            alone,
            xs[m][keep],
            y[m][keep],
            TrainConfig(lr=lrs[m], **base),
            callback=_record(alone, t1),
            progress=False,
        )
        for step, (a, b) in enumerate(zip(t1, traj, strict=True)):
            for pa, pb in zip(alone.member_params(0, a), ens.member_params(m, b), strict=True):
                assert (pa - pb).abs().max() <= TOL * pa.abs().max(), (m, step)
        assert r1.summary.loss[0] == pytest.approx(res.summary.loss[m], rel=TOL, abs=1e-300)
        assert r1.summary.n_train[0] == res.summary.n_train[m] == int(keep.sum())


def test_nonfinite_member_is_frozen_and_others_unchanged_bitwise():
    x, y = binary_data(50, 6, seed=3)
    ens_a = Ensemble.init(MLPSpec.uniform(6, 2, 10), seeds=3)
    ens_b = Ensemble.init(MLPSpec.uniform(6, 2, 10), seeds=3)
    init1 = [p[1].clone() for p in ens_a.params]
    base = dict(max_steps=30, stop=(), poll_every=1)
    ta, tb = [], []
    ra = train(
        ens_a,
        x,
        y,
        TrainConfig(lr=(1e-2, math.inf, 3e-2), **base),
        callback=_record(ens_a, ta),
        progress=False,
    )
    train(
        ens_b,
        x,
        y,
        TrainConfig(lr=(1e-2, 2e-2, 3e-2), **base),
        callback=_record(ens_b, tb),
        progress=False,
    )
    assert list(ra.summary.stop_reason) == ["budget", "nonfinite", "budget"]
    assert ra.summary.steps[1] == 0
    for a, b in zip(ta, tb, strict=True):
        for pa, pb in zip(a, b, strict=True):
            assert torch.equal(pa[[0, 2]], pb[[0, 2]])  # bitwise
    # the frozen member keeps its initial (finite) parameters, bitwise
    assert all(torch.equal(p[1], q) for p, q in zip(ens_a.params, init1, strict=True))
    assert np.isfinite(ra.summary.loss[1])


def test_sat_members_freeze_with_loss_exactly_zero():
    x, y = binary_data(40, 8, seed=5)
    ens = Ensemble.init(MLPSpec.uniform(8, 2, 16), seeds=4)
    traj = []
    res = train(
        ens,
        x,
        y,
        TrainConfig(lr=1e-2, max_steps=3000, poll_every=1),
        callback=_record(ens, traj),
        progress=False,
    )
    s = res.summary
    assert (s.stop_reason == "unsat_zero").all()
    assert (s.loss == 0.0).all() and (s.n_unsat == 0).all()
    # parameters are bitwise constant after each member's stop step
    for m in range(ens.M):
        k = int(s.steps[m])
        for later in traj[k:]:
            assert all(torch.equal(p[m], q[m]) for p, q in zip(later, ens.params, strict=True))
        # the last metrics row of the member is its stop step with N_Δ = 0
        rows = res.metrics[(res.metrics.member == m) & (res.metrics.name == "n_unsat")]
        assert rows.step.max() <= k
    assert res.gaps["train"].shape == (4, 40) and (res.gaps["train"] <= 0).all()


def test_metrics_are_the_losses_along_the_trajectory():
    x, y = binary_data(30, 5, seed=7)
    xt, yt = binary_data(20, 5, seed=8)
    ens = Ensemble.init(MLPSpec.uniform(5, 1, 6), seeds=2)
    p0 = [p.clone() for p in ens.params]
    traj = []
    cfg = TrainConfig(
        lr=1e-2, max_steps=50, measure_every=10, n_log_points=8, stop=(), poll_every=1
    )
    res = train(ens, x, y, cfg, x_test=xt, y_test=yt, callback=_record(ens, traj), progress=False)
    states = [p0, *traj]
    steps = sorted(res.metrics.step.unique())
    assert steps == cfg.measure_steps()
    assert {0, 10, 20, 30, 40, 50, 1, 2}.issubset(steps)
    for step in steps:
        out = ens.forward(x, params=states[step])
        loss = (0.5 * torch.relu(1 - y * out.squeeze(-1)) ** 2).mean(1)
        n_unsat = (1 - y * out.squeeze(-1) > 0).sum(1)
        tout = ens.forward(xt, params=states[step])
        terr = (yt * tout.squeeze(-1) <= 0).sum(1)
        for m in range(2):
            row = res.metrics[(res.metrics.member == m) & (res.metrics.step == step)]
            v = dict(zip(row.name, row.value, strict=True))
            assert v["loss"] == pytest.approx(loss[m].item(), rel=1e-13)
            assert v["n_unsat"] == n_unsat[m].item()
            assert v["test_errors"] == terr[m].item()
            assert v["lr"] == 1e-2
    final = ens.forward(xt)
    gt = 1 - yt * final.squeeze(-1)
    np.testing.assert_allclose(res.gaps["test"], gt.numpy(), rtol=0, atol=1e-15)
    assert (res.summary.test_errors.to_numpy() == (gt >= 1).sum(1).numpy()).all()


def _run(tmp_path=None, every=None, resume=None, interrupt=None, max_steps=60):
    x, y = binary_data(64, 6, seed=11)
    ens = Ensemble.init(MLPSpec.uniform(6, 2, 9), seeds=[1, 2])
    cfg = TrainConfig(
        lr=(3e-3, 1e-2),
        batch_size=10,
        max_steps=max_steps,
        measure_every=7,
        poll_every=5,
        seed=42,
        schedule="plateau",
        schedule_options={"every": 4, "patience": 1},
    )

    def cb(step):
        if interrupt is not None and step == interrupt:
            raise KeyboardInterrupt

    res = train(
        ens,
        x,
        y,
        cfg,
        checkpoint_path=tmp_path,
        checkpoint_every=every,
        resume_from=resume,
        callback=cb,
        progress=False,
    )
    return ens, res


def test_same_seed_bitwise_and_checkpoint_resume_bitwise(tmp_path):
    ens1, r1 = _run()
    ens2, _r2 = _run()
    assert _bitwise_equal(ens1.params, ens2.params)
    ck = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        _run(ck, every=20, interrupt=25)  # the checkpoint of step 20 exists, then it dies
    ens3, r3 = _run(ck, every=20, resume=ck)
    assert _bitwise_equal(ens1.params, ens3.params)
    assert r1.metrics.equals(r3.metrics)
    assert r1.summary.equals(r3.summary)
    # a different minibatch seed changes the run
    with pytest.raises(ConfigError):
        x, y = binary_data(64, 6, seed=11)
        ens = Ensemble.init(MLPSpec.uniform(6, 2, 9), seeds=[1, 2])
        train(ens, x, y, TrainConfig(lr=1e-2, max_steps=60), resume_from=ck, progress=False)


def test_minibatch_covers_each_point_once_per_epoch():
    # with lr tiny the loss barely moves; check the sampler instead: one epoch = a permutation
    from weightscape.train._loop import _Sampler

    s = _Sampler(23, 5, seed=3, device="cpu")
    seen = torch.cat([s.next() for _ in range(5)])
    assert sorted(seen.tolist()) == list(range(23))


def test_input_validation_messages():
    x, y = binary_data(10, 4)
    ens = Ensemble.init(MLPSpec.uniform(4, 1, 3), seeds=2)
    with pytest.raises(ConfigError, match="sample_mask"):
        train(ens, x, y, TrainConfig(), sample_mask=torch.ones(3, 10), progress=False)
    with pytest.raises(ConfigError, match="lr has 3 values"):
        train(ens, x, y, TrainConfig(lr=(1.0, 1.0, 1.0)), progress=False)
    with pytest.raises(ConfigError, match="d=5"):
        train(ens, torch.randn(10, 5, dtype=torch.float64), y, TrainConfig(), progress=False)
