"""Jamming runs with compaction (stopped members leave the ensemble) equal runs without it."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import weightscape.jamming._runner as runner
from weightscape.jamming import PlateauRule, Problem, get_protocol, records_frame, run_records
from weightscape.nets import Ensemble


def _with_and_without_compaction(monkeypatch, configs):
    """``(frames, records, calls)`` of ``configs`` run without compaction, then compacting
    every 50 steps; ``calls``: members left at each compaction (``Ensemble.select``)."""
    calls = []
    select = Ensemble.select
    monkeypatch.setattr(Ensemble, "select", lambda e, m: calls.append(len(m)) or select(e, m))
    frames, recs = [], []
    for every in (10**9, 50):
        monkeypatch.setattr(runner, "COMPACT_EVERY", every)
        r = run_records(configs)
        assert bool(calls) == (every == 50)  # compacted only when asked
        recs.append(r)
        frames.append(records_frame(r))
    return frames, recs, calls


def _assert_same_runs(a, b, recs):
    """Frames equal exactly but for the gradient norm (a reduction over the ensemble's rows,
    to 1e-14); gaps and nets equal bitwise."""
    cols = [c for c in a.columns if c != "grad_norm"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=1e-14, atol=1e-300)
    for ra, rb in zip(*recs, strict=True):
        np.testing.assert_array_equal(ra.gaps_train, rb.gaps_train)
        for p, q in zip(ra.net[0], rb.net[0], strict=True):
            assert (p == q).all()


def test_compacted_runs_equal_uncompacted(monkeypatch):
    # P = 40, a jammed width (stopped by the plateau rule) and a SAT one (N_Δ = 0), 5 seeds
    # each (one ensemble per width; members stop at different steps): the records are the same
    # with compaction every 50 steps and without any (the gradient norm, a reduction over the
    # ensemble's rows, to 1e-14)
    prot = dataclasses.replace(
        get_protocol("fast"),
        max_steps=2000,
        plateau=PlateauRule(min_step=500, ndelta_atol=2, ndelta_rtol=0.05, loss_rtol=0.05),
    )
    configs = [Problem(P=40, depth=1).config(prot, w, s) for w in (2, 10) for s in range(5)]
    (a, b), recs, _ = _with_and_without_compaction(monkeypatch, configs)
    st = a.steps[a.width == 10]  # SAT members stop at different steps: compaction happened
    assert st.nunique() >= 2 and st.min() < 2000
    assert set(a.criterion) >= {"plateau", "unsat_zero"}
    _assert_same_runs(a, b, recs)


def test_compacted_step_decay_runs_equal_uncompacted(monkeypatch):
    # the fast-decay protocol (adam, geiger2019 step decay) on a 2k budget, its decay moved
    # earlier (3e-3 held to 900, ÷10 at 900, 1100, 1300, 1500 and 1700: the floor 3e-7) and the
    # plateau rule from 1500: P = 40, depth 1, width 10, 8 seeds. Four members reach N_Δ = 0 at
    # 575-750 (compactions at 600, 700, 800, before the decays), four jam (plateau at 1600 and
    # 1700: the compaction at 1700 comes after them); the records are the same with compaction
    # every 50 steps and without (gradient norm to 1e-14, as above)
    base = get_protocol("fast-decay").with_budget(2000, scale_schedule=True)
    prot = dataclasses.replace(
        base,
        decay_delay=700,
        decay_every=200,
        plateau=dataclasses.replace(base.plateau, min_step=1500),
    )
    lrs = [prot.lr_at(t) for t in (899, 900, 1500, 1700)]
    np.testing.assert_allclose(lrs, [3e-3, 3e-4, 3e-7, 3e-7], rtol=1e-12)
    configs = [Problem(P=40, depth=1).config(prot, 10, s) for s in range(8)]
    (a, b), recs, calls = _with_and_without_compaction(monkeypatch, configs)
    assert list(a.steps) == [1600, 1600, 575, 640, 1700, 588, 1700, 750]
    crit = ["plateau"] * 2 + ["unsat_zero"] * 2 + ["plateau", "unsat_zero", "plateau", "unsat_zero"]
    assert list(a.criterion) == crit
    assert calls == [6, 5, 4, 2]  # members left after the compactions at 600, 700, 800, 1700
    lr = recs[0][4].history.set_index("step")["lr"]
    # the decay ran on the members still active
    assert lr.max() == 3e-3 and lr.min() == pytest.approx(3e-7, rel=1e-12)
    _assert_same_runs(a, b, recs)
    for ra, rb in zip(*recs, strict=True):  # summaries (final lr...) and histories too
        assert {k: v for k, v in ra.summary.items() if k != "grad_norm"} == {
            k: v for k, v in rb.summary.items() if k != "grad_norm"
        }
        ha, hb = ra.history, rb.history
        pd.testing.assert_frame_equal(
            ha.drop(columns="grad_norm"), hb.drop(columns="grad_norm"), check_exact=True
        )
        np.testing.assert_allclose(ha.grad_norm, hb.grad_norm, rtol=1e-14, atol=1e-300)
