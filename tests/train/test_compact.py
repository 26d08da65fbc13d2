"""Compaction (``train(compact_every=...)``): dropping stopped members from the computation
leaves every member's trajectory, stop step, metrics and final state unchanged."""

import numpy as np
import pandas as pd
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import TrainConfig, train

from ._cases import binary_data, mixed_ensemble


def _hook(stops):
    """Marks member m once the step reaches ``stops[m]`` (a stand-in for the plateau rule)."""

    def hook(step, history):
        return np.array([step >= s for s in stops])

    return hook


def _run(ens, x, y, cfg, compact, **kw):
    return train(ens, x, y, cfg, progress=False, compact_every=compact, **kw)


def _same(a, b, ea, eb, rtol):
    cols = [c for c in a.summary.columns if c != "stop_reason"]
    assert list(a.summary.stop_reason) == list(b.summary.stop_reason)
    assert (a.summary.steps == b.summary.steps).all()
    if rtol == 0:
        # trajectories, losses and counts bitwise; the gradient norm (a metric, not used by the
        # update) is a reduction whose summation order may depend on the ensemble size: 1 ulp
        ka = a.summary.drop(columns="grad_norm")
        pd.testing.assert_frame_equal(ka, b.summary.drop(columns="grad_norm"), check_exact=True)
        np.testing.assert_allclose(a.summary.grad_norm, b.summary.grad_norm, rtol=1e-14)
        ma, mb = a.metrics, b.metrics
        g = ma.name == "grad_norm"
        pd.testing.assert_frame_equal(ma[~g], mb[~g], check_exact=True)
        np.testing.assert_allclose(ma.value[g], mb.value[g], rtol=1e-14, atol=1e-300)
        np.testing.assert_array_equal(a.gaps["train"], b.gaps["train"])
        assert all(torch.equal(p, q) for p, q in zip(ea.params, eb.params, strict=True))
    else:
        for c in cols:
            np.testing.assert_allclose(a.summary[c], b.summary[c], rtol=rtol, atol=1e-300)
        pd.testing.assert_frame_equal(
            a.metrics.drop(columns="value"), b.metrics.drop(columns="value"), check_exact=True
        )
        np.testing.assert_allclose(a.metrics.value, b.metrics.value, rtol=rtol, atol=1e-300)
        for p, q in zip(ea.params, eb.params, strict=True):
            assert (p - q).abs().max() <= rtol * p.abs().max()


def test_compaction_same_widths_is_bitwise():
    # six members, per-member data, same architecture: SAT members stop on N_Δ = 0, two are
    # stopped by the hook; compacting every 20 steps gives bitwise the uncompacted run
    x, y = binary_data(40, 6, seed=11, M=6)
    cfg = TrainConfig(lr=(3e-2, 2e-2, 1e-2, 5e-2, 2e-2, 3e-2), max_steps=1500, poll_every=10)
    stops = [10**9, 50, 10**9, 10**9, 200, 10**9]
    res, ens = [], []
    for compact in (None, 20):
        e = Ensemble.init(MLPSpec.uniform(6, 2, 10), seeds=6)
        res.append(_run(e, x, y, cfg, compact, stop_hook=_hook(stops)))
        ens.append(e)
    a, b = res
    assert "hook" in set(a.summary.stop_reason) and "unsat_zero" in set(a.summary.stop_reason)
    assert len(set(a.summary.steps)) >= 3  # members stop at different steps: compaction happens
    _same(a, b, ens[0], ens[1], rtol=0)


def _count_compactions(monkeypatch):
    """Records the last poll step before each ``Ensemble.select`` (a compaction happens at a
    poll, after the callback): returns the list and the callback to pass to ``train``."""
    at, polled = [], [0]
    select = Ensemble.select
    monkeypatch.setattr(Ensemble, "select", lambda e, m: at.append(polled[0]) or select(e, m))
    return at, lambda step: polled.__setitem__(0, step)


def test_compaction_step_decay_is_bitwise(monkeypatch):
    # the papers' step decay (geiger2019: lr_m · 0.5^⌊t/60⌋, floor 1e-4) with per-member base
    # rates: two members SAT early (N_Δ = 0), one later, two stopped by the hook (one late,
    # leaving a single active member, which keeps a stopped one alongside), one at the budget;
    # the rate decays before, at and after the compactions; bitwise the uncompacted run
    x, y = binary_data(60, 6, seed=11, M=6)
    cfg = TrainConfig(
        lr=(3e-2, 2e-2, 1e-2, 5e-2, 2e-2, 3e-2),
        max_steps=600,
        poll_every=10,
        schedule="geiger2019",
        schedule_options={"every": 60, "factor": 0.5, "floor": 1e-4, "delay": 0},
    )
    stops = [450, 50, 300, 10**9, 10**9, 10**9]
    at, callback = _count_compactions(monkeypatch)
    res, ens = [], []
    for compact in (None, 20):
        e = Ensemble.init(MLPSpec.uniform(6, 2, 10), seeds=6)
        res.append(_run(e, x, y, cfg, compact, stop_hook=_hook(stops), callback=callback))
        ens.append(e)
    a, b = res
    reasons = ["hook", "hook", "hook", "unsat_zero", "unsat_zero", "budget"]
    assert list(a.summary.stop_reason) == reasons
    assert list(a.summary.steps) == [450, 50, 310, 55, 110, 600]  # SAT at 55 and 110
    # compactions at the polls after the stops (6 -> 4 -> 3 -> 2 members; at 450 the last
    # active member keeps member 0 alongside: no compaction); decays every 60 steps: at the
    # first two compactions, between them and after the last
    assert at == [60, 120, 320]
    m5 = a.metrics[(a.metrics.member == 5) & (a.metrics.name == "lr")]
    expect = np.maximum(3e-2 * 0.5 ** (m5.step.to_numpy() // 60), 1e-4)
    np.testing.assert_allclose(m5.value, expect, rtol=1e-15)  # the schedule ran, decays 0..8
    _same(a, b, ens[0], ens[1], rtol=0)


@pytest.mark.parametrize("schedule", ["constant", "geiger2019"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_compaction_mixed_widths_with_mask(optimizer, schedule):
    # members of different widths and input sizes, masked samples: after a compaction the
    # ensemble is repadded to the remaining members' sizes; trajectories agree to rounding
    # (step decay: ÷2 every 40 steps, before and after the compactions at 10, 20 and 150)
    sched = {"every": 40, "factor": 0.5, "floor": 1e-5} if schedule == "geiger2019" else {}
    P = 40
    res, ens = [], []
    for compact in (None, 10):
        e = mixed_ensemble()
        gs = [torch.Generator().manual_seed(m) for m in range(e.M)]
        xs = [
            torch.randn(P, s.d_in, generator=gm, dtype=torch.float64)
            for s, gm in zip(e.specs, gs, strict=True)
        ]
        g = torch.Generator().manual_seed(2)
        y = torch.randint(0, 2, (e.M, P), generator=g).double() * 2 - 1
        mask = (torch.rand(e.M, P, generator=g) > 0.25).double()
        opts = {"momentum": 0.9} if optimizer == "sgd" else {}
        cfg = TrainConfig(
            lr=(1e-2, 2e-2, 5e-3),
            optimizer=optimizer,
            optimizer_options=opts,
            schedule=schedule,
            schedule_options=sched,
            max_steps=300,
            poll_every=5,
            stop=(),
        )
        # the widest member (index 1) stops first: the rest is repadded smaller
        r = _run(
            e,
            e.pad_inputs(xs),
            y,
            cfg,
            compact,
            sample_mask=mask,
            stop_hook=_hook([150, 20, 10**9]),
        )
        res.append(r)
        ens.append(e)
    a, b = res
    assert list(a.summary.steps) == [150, 20, 300]
    _same(a, b, ens[0], ens[1], rtol=1e-12)


def test_compaction_input_validation():
    x, y = binary_data(20, 3, seed=1)
    e = Ensemble.init(MLPSpec.uniform(3, 1, 4), seeds=2)
    with pytest.raises(ConfigError, match="compact_every"):
        train(e, x, y, TrainConfig(max_steps=5), compact_every=0, progress=False)
    with pytest.raises(ConfigError, match="optimizer adam/sgd, got 'fire'"):
        train(e, x, y, TrainConfig(max_steps=5, optimizer="fire"), compact_every=5, progress=False)
    with pytest.raises(ConfigError, match=r"constant/geiger2019 .* not 'plateau': its per"):
        cfg = TrainConfig(max_steps=5, schedule="plateau")
        train(e, x, y, cfg, compact_every=5, progress=False)


def test_compactable_schedules_are_functions_of_the_step():
    # a compaction rebuilds the schedule over the kept members' base rates: that gives them the
    # rates of the full schedule only while the rate is a function of (step, base rate) alone,
    # i.e. the schedule has no per-member state and ignores the losses fed to observe. Oracle:
    # a schedule rebuilt at any step over a subset of members (and one run on from step 0) gives
    # that subset's rates bitwise, for many steps across the decays and the floor
    from weightscape.train._config import SCHEDULE_OPTIONS
    from weightscape.train._loop import _COMPACTABLE_SCHEDULES
    from weightscape.train._schedule import ConstantLR, make_schedule

    assert set(_COMPACTABLE_SCHEDULES) < set(SCHEDULE_OPTIONS)
    base = torch.tensor([3e-2, 1e-3, 7e-5, 2e-1, 5e-4], dtype=torch.float64)
    keep = torch.tensor([1, 3, 4])
    opts = {"constant": {}, "geiger2019": {"every": 7, "factor": 0.3, "floor": 1e-6, "delay": 5}}
    g = torch.Generator().manual_seed(0)
    for name in _COMPACTABLE_SCHEDULES:
        full = make_schedule(name, base, opts[name])
        assert type(full)._state == () and type(full).observe is ConstantLR.observe, name
        sub = make_schedule(name, base[keep], opts[name])
        for step in range(0, 120):
            rates = full.lr(step)[keep].clone()
            full.observe(step, torch.rand(5, generator=g, dtype=torch.float64))
            assert torch.equal(sub.lr(step), rates), (name, step)
            fresh = make_schedule(name, base[keep], opts[name])
            assert torch.equal(fresh.lr(step), rates), (name, step)
    geiger = make_schedule("geiger2019", base, opts["geiger2019"])  # the formula, for the record
    for step in (0, 11, 12, 40, 119):
        want = torch.clamp(base * 0.3 ** (max(step - 5, 0) // 7), min=1e-6)
        assert torch.equal(geiger.lr(step), want), step


def test_compactable_optimizers_have_no_finalize_step():
    # the compacted loop never calls opt.finalize (its state covers only the last kept
    # members): that loses nothing only while every optimizer compaction admits keeps the base
    # class's no-op finalize (L-BFGS, which restores its last accepted point, is refused)
    from weightscape.train._loop import _COMPACTABLE_OPTIMIZERS
    from weightscape.train._optim import BatchedOptimizer, make_optimizer

    p = [torch.zeros(2, 3, dtype=torch.float64)]
    for name in _COMPACTABLE_OPTIMIZERS:
        opt = make_optimizer(name, p, TrainConfig(optimizer=name).optimizer_options)
        assert type(opt).finalize is BatchedOptimizer.finalize, name
    x, y = binary_data(20, 3, seed=1)
    e = Ensemble.init(MLPSpec.uniform(3, 1, 4), seeds=2)
    with pytest.raises(ConfigError, match="adam/sgd"):
        cfg = TrainConfig(max_steps=5, optimizer="lbfgs")
        train(e, x, y, cfg, compact_every=5, progress=False)
