"""Transition statistics, spectra near N* and the generalization curve on tiny problems."""

import dataclasses

import numpy as np
import pytest

from weightscape.jamming import (
    PlateauRule,
    Problem,
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


@pytest.mark.slow
def test_generalization_curve_bookkeeping():
    g = generalization_curve(60, [1, 8], 1, PROT, 2, dataset="mnist-sample", test_size=300)
    assert g.dataset == "mnist-sample" and g.n_test == 300
    for w, grp in g.runs.groupby("width"):
        row = g.table[g.table.width == w].iloc[0]
        assert row.test_err == pytest.approx(grp.test_errors.mean() / 300)
        assert row.test_err_es <= grp.test_err_es.max() + 1e-12
    assert (g.runs.test_err_es <= 1).all()
