"""Run classification, the plateau stop rule, and the dead-unit trap."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.errors import ConfigError
from weightscape.jamming import (
    PlateauRule,
    classify_run,
    dead_unit_report,
    dead_unit_report_ensemble,
    is_decided,
    plateau_status,
)
from weightscape.nets import Ensemble, MLPSpec

STEPS = np.unique(np.geomspace(10, 100_000, 150).round())


def test_flat_history_is_jammed():
    nd = np.full(STEPS.size, 600.0)
    loss = 0.05 + 1e-6 * np.cos(STEPS)  # jitter far below the 5 % loss tolerance
    r = classify_run(STEPS, loss, nd, n_weights=1000)
    assert r.label == "jammed" and r.ndelta_frac == pytest.approx(0.6)
    assert is_decided(STEPS, loss, nd)


def test_relaxing_loss_is_undecided():
    # loss ~ t^-0.5 falls by 1 - 2^-0.5 = 29 % over the last factor 2 of time: still relaxing,
    # even though N_Δ is flat (the spec's "loss falling fast while N_Δ/N ≈ 0.5")
    nd = np.full(STEPS.size, 500.0)
    loss = STEPS**-0.5
    r = classify_run(STEPS, loss, nd, n_weights=1000)
    assert r.label == "undecided" and "loss" in r.reason
    assert not is_decided(STEPS, loss, nd)


def test_falling_ndelta_is_undecided():
    nd = np.round(800 - 30 * np.log(STEPS))  # falls by 30 ln 2 ≈ 21 points over the window
    loss = np.full(STEPS.size, 0.1)
    r = classify_run(STEPS, loss, nd, n_weights=1000)
    assert r.label == "undecided" and "N_Δ" in r.reason
    # the same fall is within a 5 % tolerance on N_Δ ≈ 450
    assert plateau_status(STEPS, loss, nd, PlateauRule(ndelta_rtol=0.05)).plateau


def test_sat_and_too_short_histories():
    nd = np.full(STEPS.size, 300.0)
    nd[-1] = 0
    assert classify_run(STEPS, np.ones(STEPS.size), nd, 1000).label == "sat"
    # 3 measurements are fewer than min_points = 5
    assert classify_run([1, 2, 3], [1.0, 1.0, 1.0], [5, 5, 5], 1000).label == "undecided"
    rule = PlateauRule(min_step=10**6)
    assert not plateau_status(STEPS, np.ones(STEPS.size), np.full(STEPS.size, 5), rule).decided


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    n0=st.integers(10, 5000),
    fall=st.floats(0.0, 0.5),
    wiggle=st.floats(0.0, 1.0),
    T=st.integers(5, 60),
)
def test_never_jammed_while_ndelta_falls_beyond_tolerance(n0, fall, wiggle, T):
    # Independent brute-force oracle of the stated guarantee: if any measurement in the last half
    # of the run exceeds the final N_Δ by more than 1 % of it, the run is not called jammed.
    steps = np.arange(1, T + 1) * 100
    nd = np.round(n0 * (1 - fall * np.linspace(0, 1, T)) + wiggle * np.sin(np.arange(T)))
    nd = np.maximum(nd, 1)
    loss = np.full(T, 0.2)
    status = plateau_status(steps, loss, nd)
    window = nd[steps >= steps[-1] / 2]
    falls = any(v - nd[-1] > 0.01 * nd[-1] for v in window)
    if falls:
        assert not status.plateau
    else:
        assert status.plateau == (len(window) >= 5)


def test_trap_classification():
    steps = STEPS
    nd = np.full(steps.size, 3.0)  # 3 ≪ 0.1 N
    loss = np.full(steps.size, 1e-3)
    kw = dict(n_weights=1000, dead_units=True)
    assert classify_run(steps, loss, nd, grad_norm=0.0, **kw).label == "trap"
    # a non-zero gradient, or dead units missing, or N_Δ large: not a trap
    assert classify_run(steps, loss, nd, grad_norm=1e-9, **kw).label == "jammed"
    assert classify_run(steps, loss, nd, 1000, grad_norm=0.0, dead_units=False).label == "jammed"
    big = np.full(steps.size, 200.0)
    assert classify_run(steps, loss, big, grad_norm=0.0, **kw).label == "jammed"


def _dead_net():
    """Depth-2 ReLU net (d = 2, width 3) whose first layer is off whenever x ≤ 0 componentwise."""
    spec = MLPSpec.uniform(2, 2, 3)
    f64 = torch.float64
    W0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=f64)
    b0 = torch.zeros(3, dtype=f64)
    W1 = torch.tensor([[1.0, -1.0, 0.5], [0.3, 0.2, -0.1], [-0.4, 0.9, 0.1]], dtype=f64)
    b1 = torch.tensor([0.1, -0.2, 0.05], dtype=f64)
    W2 = torch.tensor([[0.7, -0.5, 1.1]], dtype=f64)
    b2 = torch.tensor([0.2], dtype=f64)
    ens = Ensemble.from_member_params([spec], [[W0, b0, W1, b1, W2, b2]])
    x = torch.tensor([[-1.0, -2.0], [1.0, 0.5], [-0.3, -0.1], [0.2, 2.0], [-1.0, 0.5]], dtype=f64)
    y = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0], dtype=f64)
    return ens, x, y


def test_dead_unit_report_matches_a_direct_forward_and_zero_weight_gradient():
    ens, x, y = _dead_net()
    rep = dead_unit_report_ensemble(ens, x, y, member=0)
    # independent oracle: a plain torch.nn.Sequential of the same member
    net = ens.to_module(0)
    out = net(x)[:, 0]
    unsat = (1.0 - y * out > 0).numpy()
    h1 = net[1](net[0](x)).detach().numpy()
    h2 = net[3](net[2](net[1](net[0](x)))).detach().numpy()
    expected = np.stack([np.all(h1 == 0, 1), np.all(h2 == 0, 1)], 1)[unsat]
    assert rep.n_unsatisfied == unsat.sum() > 0
    np.testing.assert_array_equal(rep.dead_layers, expected)
    # points 0 and 2 (x ≤ 0) have layer 1 dead by construction
    dead_points = np.flatnonzero(unsat)[rep.point_dead]
    assert set(dead_points) == {0, 2}
    assert not rep.all_dead  # points 1 and 3 are unsatisfied with live units
    # Physics of the trap: on a point whose layer 1 is dead, f does not depend on any weight
    # before or in the layer after it: autograd gradients are exactly zero there.
    for mu in dead_points:
        net.zero_grad()
        net(x[mu : mu + 1]).sum().backward()
        for lin in (net[0], net[2]):
            assert torch.count_nonzero(lin.weight.grad) == 0


def test_dead_unit_report_all_dead_and_padding():
    # 4 points, 2 layers; unsatisfied = points 0, 1, 3
    a1 = np.array([[0.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    a2 = np.array([[1.0, 0.0, 5.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.3, 0.0]])
    unsat = np.array([True, True, False, True])
    rep = dead_unit_report([a1, a2], unsat)
    np.testing.assert_array_equal(rep.dead_layers, [[True, False], [False, True], [True, False]])
    assert rep.all_dead
    # with unit 1 of layer 2 marked as padding, point 3's only live unit there is ignored
    rep = dead_unit_report([a1, a2], unsat, unit_masks=[[True, True], [True, False, True]])
    np.testing.assert_array_equal(rep.dead_layers, [[True, False], [False, True], [True, True]])
    # a point with live units in both layers breaks all_dead
    assert not dead_unit_report([a1, a2], [True, False, True, False]).all_dead


@pytest.mark.parametrize(
    "kw", [{"window_factor": 1.0}, {"ndelta_rtol": -0.1}, {"min_points": 0}, {"loss_rtol": "x"}]
)
def test_plateau_rule_validation(kw):
    with pytest.raises(ConfigError):
        PlateauRule(**kw)


def test_history_validation():
    with pytest.raises(ConfigError):
        plateau_status([1, 2], [1.0], [1, 1])
    with pytest.raises(ConfigError):
        plateau_status([2, 1], [1.0, 1.0], [1, 1])


def test_rounding_level_gaps_do_not_hide_a_trap():
    # Two points with layer 1 dead (trap points) and one with live units. With κ set 1e-13 above
    # the live point's y f, its gap is ~1e-13: on the SAT boundary up to rounding, as a re-evaluated
    # trained net leaves such points. gap_tol = 0 counts it unsatisfied (so not every
    # unsatisfied point is dead); gap_tol = 1e-9 (the records' SAT_GAP_TOL) does not.
    from weightscape.jamming._runner import SAT_GAP_TOL

    ens, x, y = _dead_net()
    x, y = x[[0, 2, 3]], torch.ones(3, dtype=y.dtype)  # dead, dead, live (f = 0.325, 0.325, 2.369)
    out = ens.to_module(0)(x)[:, 0].detach()
    kappa = float(y[2] * out[2]) + 1e-13
    delta = kappa - y * out
    assert 0 < delta[2] < 1e-12 and (delta[:2] > 1e-3).all()
    rep0 = dead_unit_report_ensemble(ens, x, y, member=0, kappa=kappa)
    assert rep0.n_unsatisfied == 3 and not rep0.all_dead
    rep = dead_unit_report_ensemble(ens, x, y, member=0, kappa=kappa, gap_tol=SAT_GAP_TOL)
    assert rep.n_unsatisfied == 2 and rep.all_dead
