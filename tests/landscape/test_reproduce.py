"""``weightscape reproduce landscape``: plan, claim verdict rules, and the contract output."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from weightscape.landscape import analytic_table
from weightscape.landscape import reproduce as lr
from weightscape.reproduce import Plan, StudyContext, run_reproduce

MICRO = {
    "analytic_N": (60,),
    "analytic_H": (2, 3, 4, 5, 6, 7, 8),
    "counts": {"Ns": (12,), "H": (2, 3, 4, 6), "D": 4, "starts": 100, "rounds": 4},
    "minima": {"N": 24, "H": (3, 4), "D": 2, "B": 40},
    "nets": {
        "activations": ("tanh",),
        "depths": (1, 2),
        "base": {
            "dataset": "iris",
            "n_params": 51,
            "budget_tol": 0.05,
            "n_inits": 3,
            "max_steps": 800,
        },
        "relu_max_steps": 500,
        "chunks": 1,
    },
}


def test_plan_writes_nothing(tmp_path):
    ctx = StudyContext(scale="smoke", out=tmp_path / "landscape")
    p = lr.plan(ctx)
    assert isinstance(p, Plan) and len(p.runs) == 4 and p.cpu_s > 0
    assert not (tmp_path / "landscape").exists()


def test_claim_counts_rule_on_constructed_tables():
    # analytic curve at N = 60: exact, peak at H = 4, falls after it
    ana = pd.concat(
        [analytic_table(60, range(2, 9)), analytic_table(12, [2, 3, 4, 6])], ignore_index=True
    )
    kr = ana[ana.N == 12].set_index("H").log_kr_classes
    rng = np.random.default_rng(0)
    rows = []
    for H in (2, 3, 4, 6):
        for d in range(20):
            # counts scattered around the exact Kac–Rice mean (oracle for a complete enumeration)
            n = math.exp(kr[H]) if H == 2 else max(1, round(math.exp(kr[H]) + rng.normal(0, 1)))
            rows.append({"N": 12, "H": H, "lam": round(12 / H), "sample": d, "n_classes": n})
    good = pd.DataFrame(rows)
    claim, _ = lr._claim_counts(ana, good)
    assert claim.holds and "rises H=2→4" in claim.ours
    # an enumeration that misses half the classes at H = 3 contradicts Kac–Rice: does not hold
    bad = good.copy()
    bad.loc[bad.H == 3, "n_classes"] = (bad.loc[bad.H == 3, "n_classes"] / 2).round()
    claim, _ = lr._claim_counts(ana, bad)
    assert not claim.holds


def test_net_claims_say_when_counts_saturate():
    table = pd.DataFrame(
        {
            "activation": "tanh",
            "depth": [1, 2, 3],
            "n_distinct": [5, 5, 5],
            "n_minima": [5, 5, 5],
            "distinct_fraction": [1.0, 1.0, 1.0],
            "clustering": [0.1, 0.2, 0.3],
            "slope": [3.0, 2.0, 1.0],
            "slope_stderr": [0.1, 0.1, 0.1],
        }
    )
    c = {x.key: x for x in lr._net_claims(table)}
    assert set(c) == {"1-net-tanh", "2-net-tanh", "3-net-tanh"}
    assert not c["1-net-tanh"].holds and "lower bounds" in c["1-net-tanh"].ours
    assert c["2-net-tanh"].holds and c["3-net-tanh"].holds  # exact lines


@pytest.mark.slow  # ~1 min on the shared 2-core CPU
def test_reproduce_writes_claims_in_the_contract_format(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(lr.SCALES, "smoke", MICRO)
    res = run_reproduce("landscape", "smoke", tmp_path / "out")
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    keys = {c["key"] for c in summary["claims"]}
    assert keys == {"1-spin", "2-spin", "3-spin", "1-net-tanh", "2-net-tanh", "3-net-tanh"}
    for c in summary["claims"]:
        assert isinstance(c["holds"], bool) and c["verdict"] in ("holds", "does not hold")
        line = f"claim landscape.{c['key']}: {c['verdict']} — "
        assert line in out or f"claim {c['key']}: {c['verdict']} — " in out
    study = tmp_path / "out" / "landscape"
    for name in ("spin_counts_vs_depth", "spin_overlaps", "spin_logvolume", "net_logwidth"):
        assert (study / "figures" / f"{name}.png").exists()
    assert (study / "tables" / "net_table.parquet").exists()
    assert res is not None


@pytest.mark.parametrize("n", [8, 24, 100])
def test_no_repeat_bound_rejects_at_most_5_percent(n):
    # Exact birthday probability for K equally likely minima: P(n runs all different) =
    # prod_{i<n} (1 - i/K). At the stated 95% bound it is <= 0.05 (the Poisson approximation
    # is conservative for equal basins), and it exceeds 0.05 well above the bound.
    K = lr._no_repeat_bound(n)

    def p_all_different(k):
        return math.prod(1 - i / k for i in range(1, n))

    assert p_all_different(K) <= 0.05
    assert p_all_different(3 * K) > 0.05
