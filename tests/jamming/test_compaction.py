"""Jamming runs with compaction (stopped members leave the ensemble) equal runs without it."""

import dataclasses

import numpy as np
import pandas as pd

import weightscape.jamming._runner as runner
from weightscape.jamming import PlateauRule, Problem, get_protocol, records_frame, run_records
from weightscape.nets import Ensemble


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
    a, b = frames
    st = a.steps[a.width == 10]  # SAT members stop at different steps: compaction happened
    assert st.nunique() >= 2 and st.min() < 2000
    assert set(a.criterion) >= {"plateau", "unsat_zero"}
    cols = [c for c in a.columns if c != "grad_norm"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=1e-14, atol=1e-300)
    for ra, rb in zip(*recs, strict=True):
        np.testing.assert_array_equal(ra.gaps_train, rb.gaps_train)
        for p, q in zip(ra.net[0], rb.net[0], strict=True):
            assert (p == q).all()
