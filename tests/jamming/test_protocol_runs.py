"""Protocol presets, the train loop's stop hook, the plateau hook, and jamming run records."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.errors import ConfigError
from weightscape.jamming import (
    PROTOCOLS,
    PlateauRule,
    Problem,
    get_protocol,
    n_weights,
    plateau_hook,
    plateau_status,
    records_frame,
    run_records,
    width_for_n,
)
from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import TrainConfig, train


# ------------------------------------------------------------------------------------------------
# protocol
def test_geiger2019_preset_is_the_papers_protocol():
    p = get_protocol("geiger2019")
    cfg = p.run_config(depth=3, width=51, seed=4, P=1000)
    # the spec's adam0: lr 1e-4, ÷10 every 250k steps (the train schedule "geiger2019"), float64
    assert (cfg["train.optimizer"], cfg["train.lr"], cfg["train.schedule"]) == (
        "adam",
        1e-4,
        "geiger2019",
    )
    assert cfg["precision.dtype"] == "float64"
    assert cfg["train.loss"] == "quadratic_hinge" and cfg["train.kappa"] == 1.0
    assert cfg["net.init"] == "geiger2019" and cfg["net.output_norm"] == 1.0
    assert cfg["data.center"] is True and cfg["data.normalize"] == "sqrt_d"
    assert cfg["data.d"] == 51  # d = h by default
    assert cfg["train.stop"] == ["unsat_zero"] and cfg["jamming.plateau"] is False
    # the alternatives of the spec are presets too
    assert {"fire", "sgd-momentum", "adam-plateau", "fast"} <= set(PROTOCOLS)
    assert PROTOCOLS["sgd-momentum"].momentum == 0.9


def test_protocol_validation_names_the_bad_value():
    with pytest.raises(ConfigError, match="protocol"):
        get_protocol("adam1")
    with pytest.raises(ConfigError, match="momentum"):
        get_protocol("fast", momentum=0.9)  # only for sgd
    with pytest.raises(ConfigError, match="bogus"):
        get_protocol("fast", bogus=1)


def test_geiger2019_preset_keeps_the_papers_step_decay():
    # the preset's schedule is unchanged by the step-decay options: ÷10 every 250k steps from
    # step 250k on, floor 1e-7, no delay (the spec's adam0)
    from weightscape.jamming._runner import _train_config

    p = get_protocol("geiger2019")
    cfg = p.run_config(depth=3, width=51, seed=4, P=1000)
    assert [cfg[f"jamming.schedule.{k}"] for k in ("every", "factor", "floor", "delay")] == [
        250_000,
        0.1,
        1e-7,
        0,
    ]
    tcfg = _train_config(cfg)
    assert tcfg.schedule == "geiger2019"
    assert tcfg.schedule_options == {"every": 250_000, "factor": 0.1, "floor": 1e-7, "delay": 0}
    hand = {0: 1e-4, 249_999: 1e-4, 250_000: 1e-5, 500_000: 1e-6, 750_000: 1e-7, 10**7: 1e-7}
    for step, lr in hand.items():
        assert p.lr_at(step) == pytest.approx(lr, rel=1e-14)
    # constant-rate presets carry the papers' values unused
    assert _train_config(get_protocol("fast").run_config(depth=1, width=3, seed=0, P=9)) == (
        dataclasses.replace(_train_config(cfg), schedule="constant", schedule_options={}, lr=3e-3,
                            max_steps=20_000, measure_every=500)
    )  # fmt: skip


def test_fast_decay_schedule_is_the_hand_table_in_the_runs():
    # lr 3e-3 to step 12k, ÷10 every 2k steps, floor 3e-7 from 18k; with the schedule scaled to
    # a 200-step budget (÷100): 3e-3 to step 119, 3e-4 from 120, ..., 3e-7 from 180
    p = get_protocol("fast-decay")
    hand = {0: 3e-3, 11_999: 3e-3, 12_000: 3e-4, 14_000: 3e-5, 16_000: 3e-6, 17_999: 3e-6,
            18_000: 3e-7, 20_000: 3e-7, 40_000: 3e-7}  # fmt: skip
    for step, lr in hand.items():
        assert p.lr_at(step) == pytest.approx(lr, rel=1e-14), step
    short = dataclasses.replace(p.with_budget(200, scale_schedule=True), plateau=None)
    assert (short.decay_every, short.decay_delay, short.max_steps) == (20, 100, 200)
    assert p.with_budget(200, scale_schedule=True).plateau.min_step == 180
    assert p.with_budget(40_000).decay_every == 2000  # without scaling only the budget changes
    short = dataclasses.replace(short, measure_every=10, n_log_points=0)
    # N = 10 weights for P = 60 points: jammed, runs the whole budget
    recs = run_records([Problem(P=60, depth=1).config(short, 2, s) for s in (0, 1)])
    for rec in recs:
        h = rec.history
        assert int(rec.summary["steps"]) == 200
        expect = [3e-3] * 12 + [3e-4] * 2 + [3e-5] * 2 + [3e-6] * 2 + [3e-7] * 3
        assert h.step.tolist() == list(range(0, 201, 10))
        assert h.lr.to_numpy() == pytest.approx(expect, rel=1e-14)
        assert [short.lr_at(int(t)) for t in h.step] == pytest.approx(expect, rel=1e-14)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decay_factor": 1.5}, "decay_factor=1.5 must be in (0, 1]"),
        ({"decay_factor": 0.0}, "decay_factor=0.0 must be > 0"),
        ({"decay_every": 0}, "decay_every=0 must be > 0"),
        ({"decay_every": 2.5}, "decay_every=2.5 must be an integer"),
        ({"lr_floor": -1e-7}, "lr_floor=-1e-07 must be >= 0"),
        ({"decay_delay": -1}, "decay_delay=-1 must be >= 0"),
        ({"schedule": "constant"}, "decay_every=2000 is only for schedule 'geiger2019'"),
    ],
)
def test_step_decay_validation_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        get_protocol("fast-decay", **overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_step_decay_in_a_sweep_config_is_rejected():
    from weightscape.errors import WeightscapeError
    from weightscape.sweeps import Sweep

    cfg = get_protocol("fast-decay").run_config(depth=1, width=3, seed=0, P=9)
    Sweep(task="jamming.train", base=cfg)  # the preset's keys are valid
    with pytest.raises(WeightscapeError) as err:
        Sweep(task="jamming.train", base={**cfg, "jamming.schedule.delay": -5})
    assert "schedule delay=-5 must be >= 0" in str(err.value) and "\n" not in str(err.value)


def test_run_config_is_a_valid_sweep_config():
    from weightscape.sweeps import Sweep

    cfg = get_protocol("fast").run_config(depth=2, width=7, seed=1, P=50)
    s = Sweep(task="jamming.train", base=cfg)  # validated against the task's keys and types
    assert s.expand()[0]["jamming.plateau.min_step"] == 2000


def test_n_weights_matches_specs_and_paper_examples():
    # the spec's examples: L=3, d=h=51 → 7854; L=2, d=h=62 → 7750; L=5, d=h=40 → 8040
    assert [n_weights(3, 51), n_weights(2, 62), n_weights(5, 40)] == [7854, 7750, 8040]
    for L, h, d in [(1, 5, None), (2, 7, 10), (4, 3, 2)]:
        spec = MLPSpec.uniform(h if d is None else d, L, h)
        assert n_weights(L, h, d) == spec.n_weights


@settings(derandomize=True, deadline=None, max_examples=60)
@given(st.integers(1, 6), st.integers(1, 300), st.one_of(st.none(), st.integers(1, 50)))
def test_width_for_n_inverts_n_weights(L, h, d):
    # exact inverse of a quadratic: 1e-9 relative covers the square root's rounding
    assert width_for_n(L, n_weights(L, h, d), d) == pytest.approx(h, rel=1e-9)


# ------------------------------------------------------------------------------------------------
# train stop hook
def _problem(M=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(30, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    spec = MLPSpec.uniform(4, 1, 3)
    return x, y, spec


def _train(x, y, spec, seeds, max_steps, hook=None):
    ens = Ensemble.init(spec, seeds)
    cfg = TrainConfig(lr=1e-2, max_steps=max_steps, stop=(), poll_every=25, n_log_points=20)
    res = train(ens, x, y, cfg, progress=False, stop_hook=hook)
    return ens, res


def test_stop_hook_freezes_marked_member_at_next_step():
    # Oracle: a member marked by the hook at poll step t stops at step t with reason "hook"; its
    # parameters are bitwise those of the same ensemble trained for exactly t steps, and the other
    # members are bitwise those of a run without the hook (members are independent).
    x, y, spec = _problem()
    calls = []

    def hook(step, history):
        calls.append((step, history["step"].copy(), history["loss"].shape))
        return np.array([False, step >= 100, False])

    ens, res = _train(x, y, spec, [0, 1, 2], 300, hook)
    assert res.summary.stop_reason.tolist() == ["budget", "hook", "budget"]
    t = int(res.summary.steps[1])
    assert t == 100  # marked at the poll of step 100, stopped by the check of step 100
    short, _ = _train(x, y, spec, [0, 1, 2], t)
    for p, q in zip(ens.member_params(1), short.member_params(1), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    free, _ = _train(x, y, spec, [0, 1, 2], 300)
    for m in (0, 2):
        for p, q in zip(ens.member_params(m), free.member_params(m), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    # history: T measurement steps and [T, M] arrays; called only when measurements were added
    assert all(shape == (len(st_), 3) for _, st_, shape in calls)
    assert len({len(st_) for _, st_, _ in calls}) == len(calls)


def test_stop_hook_bad_shape_is_an_error():
    x, y, spec = _problem()
    with pytest.raises(ConfigError, match="stop_hook"):
        _train(x, y, spec, [0, 1, 2], 100, lambda s, h: np.zeros(2, bool))


def test_plateau_hook_equals_plateau_status_per_member():
    # Oracle: the vectorised hook is the per-member rule applied to each member's own rows.
    rng = np.random.default_rng(3)
    T, M = 40, 5
    steps = np.unique(np.geomspace(1, 4000, T).round().astype(int))
    T = len(steps)
    loss = np.abs(rng.normal(size=(T, M))).cumsum(0)[::-1] / 10 + 0.1
    nd = np.floor(loss * 50)
    nd[:, 2] = 7.0  # a flat member
    loss[:, 2] = 0.3
    active = np.ones((T, M), bool)
    active[-5:, 4] = False  # stopped member: not marked
    rule = PlateauRule(min_step=10, min_points=3)
    out = plateau_hook(rule)(
        int(steps[-1]), {"step": steps, "loss": loss, "n_unsat": nd, "active": active}
    )
    for m in range(4):
        assert out[m] == plateau_status(steps, loss[:, m], nd[:, m], rule).plateau
    assert out[2] and not out[4]


# ------------------------------------------------------------------------------------------------
# run records
def test_records_sat_runs_are_exact_and_criteria_reported():
    # A SAT run ends with N_Δ = 0, loss exactly 0 and every final gap ≤ 0; a deep-UNSAT run
    # (N = 10 weights for P = 60 points) is decided by the plateau rule long before the budget.
    prot = dataclasses.replace(
        get_protocol("fast"),
        max_steps=4000,
        plateau=PlateauRule(min_step=500, ndelta_atol=2, ndelta_rtol=0.05, loss_rtol=0.05),
    )
    configs = [Problem(P=60, depth=1).config(prot, w, s) for w in (2, 12) for s in (0, 1)]
    recs = run_records(configs)
    fr = records_frame(recs)
    sat = fr[fr.outcome == "sat"]
    assert len(sat) >= 1
    for i in sat.index:
        assert recs[i].summary["loss"] == 0.0 and recs[i].summary["n_unsat"] == 0
        assert np.max(recs[i].gaps_train) <= 0.0
        assert fr.criterion[i] == "unsat_zero"
    small = fr[fr.width == 2]
    assert (small.outcome == "jammed").all() and (small.criterion == "plateau").all()
    assert (small.steps < 4000).all() and (small.ndelta_frac > 0.5).all()
    assert math.isclose(fr.N[fr.width == 12].iloc[0], n_weights(1, 12))


def _budget_record(gaps, loss_hist, flat_ndelta=False):
    """A run that hit a 4000-step budget with the given final gaps and loss history (N_Δ falling
    from 40 to its final value, or constant with ``flat_ndelta``)."""
    import pandas as pd

    from weightscape.jamming import RunRecord

    gaps = np.asarray(gaps, dtype=np.float64)
    steps = np.arange(500, 4001, 500)
    nd = int(np.sum(gaps > 0))
    summary = {
        "stop_reason": "budget",
        "steps": 4000,
        "loss": float(np.sum(np.maximum(gaps, 0) ** 2) / (2 * gaps.size)),
        "n_unsat": nd,
        "N": 90,
        "grad_norm": 1e-10,  # above the trap test's zero-gradient tolerance
    }
    nd_hist = np.full(steps.size, nd) if flat_ndelta else np.linspace(40, nd, steps.size).round()
    hist = pd.DataFrame({"step": steps, "loss": loss_hist, "n_unsat": nd_hist})
    return RunRecord(config={}, summary=summary, history=hist, gaps_train=gaps)


def test_budget_run_with_every_gap_at_rounding_level_is_sat_otherwise_undecided():
    # Oracle: the loss is Σ relu(Δ)²/2P, so gaps of 1e-15 mean a loss ~1e-32 that still falls by
    # orders of magnitude: the run converges onto a zero of the loss (SAT), while the plateau
    # rule alone calls it undecided. One gap of 1e-3 (a finite loss) keeps it undecided.
    from weightscape.jamming._runner import SAT_GAP_TOL, classify_record

    rule = PlateauRule(min_step=500, ndelta_atol=2, ndelta_rtol=0.05, loss_rtol=0.05)
    falling = np.geomspace(1e-4, 1e-32, 8)
    base = -np.linspace(0.01, 2.0, 80)
    tiny = base.copy()
    tiny[:7] = [1e-15, 3e-16, 2e-15, 1e-16, 5e-16, 1e-15, SAT_GAP_TOL]
    rc, crit = classify_record(_budget_record(tiny, falling), rule)
    assert (rc.label, crit, rc.ndelta_frac, rc.n_delta) == ("sat", "budget", 0.0, 7)
    one_big = tiny.copy()
    one_big[6] = 1e-3
    rc, crit = classify_record(_budget_record(one_big, np.geomspace(1e-2, 1e-8, 8)), rule)
    assert (rc.label, crit) == ("undecided", "budget")
    assert rc.ndelta_frac == pytest.approx(7 / 90)
    # a decaying rate freezes such a run: a flat loss of ~1e-32 with every gap ≤ SAT_GAP_TOL is
    # SAT too (the plateau rule alone calls it jammed)
    frozen = _budget_record(tiny, np.full(8, 1e-32), flat_ndelta=True)
    h = frozen.history
    assert plateau_status(h.step, h.loss, h.n_unsat, rule).plateau
    rc, crit = classify_record(frozen, rule)
    assert (rc.label, crit, rc.ndelta_frac) == ("sat", "budget", 0.0)
    # a flat finite loss at the budget stays jammed whatever the rule for tiny gaps
    flat = base.copy()
    flat[:40] = 0.3
    rc, _ = classify_record(_budget_record(flat, np.full(8, 0.045)), rule)
    assert rc.label != "sat"


def test_record_read_back_turns_json_null_into_nan(tmp_path):
    # JSON has no NaN: a run folder's summary says null for it (a diverged run's loss). A record
    # read back from the folder (a resumed sweep) must carry NaN again, as a record made in
    # memory does, so records_frame takes it.
    prot = dataclasses.replace(get_protocol("fast"), max_steps=200)
    configs = [Problem(P=30, depth=1).config(prot, 3, 0)]
    run_records(configs, executor="inline", out=tmp_path)
    (summary,) = (tmp_path / "runs").glob("*/summary.json")
    s = json.loads(summary.read_text())
    s["loss"] = None
    summary.write_text(json.dumps(s))
    (rec,) = run_records(configs, executor="inline", out=tmp_path)
    assert math.isnan(rec.summary["loss"])
    assert math.isnan(records_frame([rec]).loss.iloc[0])
