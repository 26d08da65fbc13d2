"""Transition statistics, spectra near N* and the generalization curve on tiny problems."""

import dataclasses

import numpy as np
import pytest

from weightscape.jamming import (
    PlateauRule,
    Problem,
    cusp_height,
    generalization_curve,
    get_protocol,
    scan_widths,
    spectra_near_nstar,
    transition_stats,
)

PROT = dataclasses.replace(
    get_protocol("fast"),
    max_steps=3000,
    plateau=PlateauRule(min_step=500, ndelta_atol=2, ndelta_rtol=0.05, loss_rtol=0.05),
)


@pytest.fixture(scope="module")
def scan():
    # P = 30 at depth 1: width 2 (N = 6) is deep UNSAT, width 10 (N = 110) SAT
    return scan_widths(Problem(P=30, depth=1), [2, 10], PROT, seeds=3, n_boot=100)


def test_transition_jump_is_the_mean_ndelta_of_jammed_runs_at_lo(scan):
    assert scan.bracket == (2, 10)
    tr = transition_stats([scan], n_boot=50)
    jam = scan.runs[(scan.runs.width == 2) & (scan.runs.outcome == "jammed")]
    assert tr.jump == pytest.approx(jam.ndelta_frac.mean(), rel=1e-12)
    assert tr.min_jammed == pytest.approx(jam.ndelta_frac.min(), rel=1e-12)
    assert tr.bimodal  # SAT runs at 0, jammed ones at N_Δ/N of order 1
    assert tr.hist_jammed.n_neg + tr.hist_jammed.n_pos > 0


def test_spectra_sat_side_is_exactly_zero_and_h0_has_rank_at_most_ndelta(scan):
    # Oracles: at N_Δ = 0 no gap contributes, so H0 = Hp = H = 0 exactly; H0 = JᵀJ/P over the
    # N_Δ unsatisfied points is PSD with rank ≤ N_Δ (numerical zero: 1e-10 relative to max).
    sp = spectra_near_nstar(scan, with_neff=True)
    sat = sp.table[sp.table.side == "sat"].iloc[0]
    for k in ("H0", "Hp", "H"):
        assert np.all(sp.eigs[sat.label][k] == 0)
    jam = sp.table[sp.table.side == "jammed"].iloc[0]
    e = sp.eigs[jam.label]["H0"]
    assert e.min() >= -1e-10 * e.max()
    assert int((e > 1e-10 * e.max()).sum()) <= jam.n_unsat
    # N_eff ≤ parameters − hidden units (rescaling symmetry)
    assert sat.n_eff <= sat.n_params - sat.hidden_units


def _numpy_forward(params, x):
    """Independent forward pass (numpy, explicit ReLU layers) of a bias MLP ``[P, d] -> [P]``."""
    a = np.asarray(x, dtype=np.float64)
    ps = [p.detach().cpu().numpy() for p in params]
    layers = [(ps[i], ps[i + 1]) for i in range(0, len(ps), 2)]
    for k, (w, b) in enumerate(layers):
        a = a @ w.T + b
        if k < len(layers) - 1:
            a = np.maximum(a, 0.0)
    return a[:, 0]


@pytest.mark.slow
def test_generalization_curve_final_and_early_stopped_errors():
    # Oracles: (i) every run's final test error equals the count of y f <= 0 over the test set
    # from an independent numpy forward pass of the trained net (exact integer equality); (ii)
    # the early-stopped error is the minimum of the recorded test-error history, whose last
    # entry is the final error, so ES <= final run by run; (iii) the table is the per-width mean.
    g = generalization_curve(60, [1, 8], 1, PROT, 2, dataset="mnist-sample", test_size=300)
    assert g.dataset == "mnist-sample" and g.n_test == 300
    assert len(g.records) == len(g.runs)
    for i, rec in enumerate(g.records):
        params, spec = rec.load_net()
        assert spec.bias and spec.depth == 1
        ds = rec.load_data()
        f = _numpy_forward(params, ds.x_test)
        wrong = int(np.sum(np.asarray(ds.y_test) * f <= 0))
        assert wrong == int(g.runs.test_errors.iloc[i])
        hist = rec.history.dropna(subset=["test_errors"])
        assert hist.test_errors.iloc[-1] == wrong
        assert g.runs.test_err_es.iloc[i] == pytest.approx(hist.test_errors.min() / 300)
    assert (g.runs.test_err_es <= g.runs.test_err + 1e-15).all()
    for w, grp in g.runs.groupby("width"):
        row = g.table[g.table.width == w].iloc[0]
        assert row.test_err == pytest.approx(grp.test_errors.mean() / 300)
        assert row.test_err_es == pytest.approx(grp.test_err_es.mean())


def test_cusp_height_constructed_curves():
    # a local maximum: 0.30 above the higher neighbour (0.20), error hypot(0.03, 0.04) = 0.05
    h, e = cusp_height([0.1, 0.2, 0.5, 0.15], [0.01, 0.04, 0.03, 0.02], 2)
    assert h == pytest.approx(0.30) and e == pytest.approx(0.05)
    # a monotone decreasing curve has no cusp anywhere inside: negative height
    h, e = cusp_height([0.5, 0.4, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0], 1)
    assert h == pytest.approx(-0.1) and e == 0.0
    # nan errors count as 0; endpoints cannot be judged
    assert cusp_height([0.1, 0.3, 0.2], [np.nan, np.nan, np.nan], 1) == pytest.approx((0.1, 0.0))
    assert all(np.isnan(cusp_height([0.3, 0.2, 0.1], [0, 0, 0], 0)))
    assert all(np.isnan(cusp_height([0.1, 0.2, 0.3], [0, 0, 0], 2)))
    with pytest.raises(ValueError):
        cusp_height([0.1, 0.2], [0.1], 0)
