"""FIRE and L-BFGS on a convex problem with a known minimum; schedules against torch's."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import Geiger2019LR, PlateauLR, TrainConfig, train


def _least_squares_problem(M=3, P=50, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, d, generator=g, dtype=torch.float64)
    t = torch.randn(M, P, generator=g, dtype=torch.float64)  # one target vector per member
    ens = Ensemble.init(MLPSpec(d_in=d, widths=(), init="normal"), seeds=M)
    X1 = np.hstack([x.numpy(), np.ones((P, 1))])
    sol = [np.linalg.lstsq(X1, t[m].numpy(), rcond=None)[0] for m in range(M)]
    # smallest Hessian eigenvalue of the mean ½‖X1 θ − t‖²/P, to turn a gradient tolerance into
    # a parameter tolerance: ‖θ − θ*‖ ≤ ‖∇L‖ / λ_min
    lam_min = np.linalg.eigvalsh(X1.T @ X1 / P).min()
    return ens, x, t, sol, lam_min


@pytest.mark.parametrize(("optimizer", "lr", "tol"), [("lbfgs", 1.0, 1e-11), ("fire", 0.1, 1e-9)])
def test_reaches_least_squares_minimum(optimizer, lr, tol):
    ens, x, t, sol, lam_min = _least_squares_problem()
    cfg = TrainConfig(
        loss="mse", optimizer=optimizer, lr=lr, max_steps=5000, stop=("grad_norm",), grad_tol=tol
    )
    res = train(ens, x, t, cfg, progress=False)
    assert (res.summary.stop_reason == "grad_norm").all()
    assert (res.summary.grad_norm < tol).all()
    for m in range(ens.M):
        w, b = ens.member_params(m)
        theta = np.concatenate([w.numpy().ravel(), b.numpy()])
        assert np.abs(theta - sol[m]).max() <= tol / lam_min
    if optimizer == "lbfgs":
        # a quadratic in 5 unknowns: L-BFGS with exact-enough steps needs few iterations
        assert res.summary.steps.max() < 60


def test_lbfgs_budget_keeps_best_accepted_point():
    ens, x, t, _sol, _ = _least_squares_problem(seed=1)
    res = train(
        ens,
        x,
        t,
        TrainConfig(loss="mse", optimizer="lbfgs", lr=1.0, max_steps=3, stop=()),
        progress=False,
    )
    # the final loss is no larger than the loss at the start (a rejected trial is undone)
    first = res.metrics[(res.metrics.step == 0) & (res.metrics.name == "loss")].value.to_numpy()
    assert (res.summary.loss.to_numpy() <= first).all()


def test_geiger2019_schedule():
    base = torch.tensor([1e-4, 3e-4], dtype=torch.float64)
    s = Geiger2019LR(base)
    expect = {
        0: 1e-4,
        249_999: 1e-4,
        250_000: 1e-5,
        499_999: 1e-5,
        500_000: 1e-6,
        750_000: 1e-7,
        1_000_000: 1e-7,
        10_000_000: 1e-7,
    }
    for step, lr in expect.items():
        got = s.lr(step)
        assert got[0].item() == pytest.approx(lr, rel=1e-15)
        k = step // 250_000
        assert got[1].item() == pytest.approx(max(3e-4 * 0.1**k, 1e-7), rel=1e-15)
    assert s.lr(0)[0].item() == pytest.approx(1e-4, rel=1e-15)  # recomputed going back


def test_geiger2019_schedule_with_delay_hand_table():
    # hand-computed: ÷10 every 2000 steps after a hold of 10000 extra steps, floor 3e-7
    # (the fast-decay preset's numbers); members 1e-2 and 1e-8 (below the floor: raised to it)
    base = torch.tensor([3e-3, 1e-2, 1e-8], dtype=torch.float64)
    s = Geiger2019LR(base, every=2000, factor=0.1, floor=3e-7, delay=10_000)
    expect = {
        0: (3e-3, 1e-2, 3e-7),
        11_999: (3e-3, 1e-2, 3e-7),
        12_000: (3e-4, 1e-3, 3e-7),
        13_999: (3e-4, 1e-3, 3e-7),
        14_000: (3e-5, 1e-4, 3e-7),
        16_000: (3e-6, 1e-5, 3e-7),
        17_999: (3e-6, 1e-5, 3e-7),
        18_000: (3e-7, 1e-6, 3e-7),
        20_000: (3e-7, 3e-7, 3e-7),
        10**7: (3e-7, 3e-7, 3e-7),
    }
    for step, lrs in expect.items():
        got = s.lr(step).tolist()
        assert got == pytest.approx(lrs, rel=1e-14), step
    assert [s.decays(t) for t in (0, 11_999, 12_000, 20_000)] == [0, 0, 1, 5]


def test_geiger2019_schedule_options_reach_the_loop():
    # the learning rate the loop records at each step equals the hand table of the options
    ens, x, t, _sol, _ = _least_squares_problem(seed=2)
    cfg = TrainConfig(
        loss="mse",
        lr=0.01,
        schedule="geiger2019",
        schedule_options={"every": 5, "factor": 0.5, "floor": 0.002, "delay": 3},
        max_steps=30,
        stop=(),
        measure_every=1,
    )
    res = train(ens, x, t, cfg, progress=False)
    lr = res.metrics[res.metrics.name == "lr"].groupby("step").value.first()
    hand = {0: 0.01, 7: 0.01, 8: 0.005, 12: 0.005, 13: 0.0025, 18: 0.002, 30: 0.002}
    for step, v in hand.items():
        assert lr[step] == pytest.approx(v, rel=1e-14), step


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": -1}, "schedule delay=-1 must be >= 0"),
        ({"delay": 1.5}, "schedule delay=1.5 must be an integer"),
        ({"every": 0}, "schedule every=0 must be > 0"),
        ({"floor": -1e-7}, "schedule floor=-1e-07 must be >= 0"),
        ({"start": 3}, "does not take options ['start']"),
    ],
)
def test_geiger2019_schedule_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig(schedule="geiger2019", schedule_options=options)
    assert message in str(err.value) and "\n" not in str(err.value)


def _torch_plateau_lrs(losses, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=kw.pop("lr"))
    sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", **kw)
    out = []
    for v in losses:
        sch.step(v)
        out.append(opt.param_groups[0]["lr"])
    return out


@settings(derandomize=True, deadline=None, max_examples=15)
@given(
    seqs=st.lists(
        st.lists(
            st.sampled_from([1.0, 0.99999, 0.9, 0.5, 0.49, 2.0, math.nan]), min_size=30, max_size=30
        ),
        min_size=3,
        max_size=3,
    ),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    mode=st.sampled_from(["rel", "abs"]),
    factor=st.sampled_from([0.1, 0.5]),
    min_lr=st.sampled_from([0.0, 1e-3]),
)
def test_plateau_matches_torch_scheduler(seqs, patience, cooldown, mode, factor, min_lr):
    lrs = [1.0, 0.1, 0.002]
    kw = dict(
        patience=patience,
        cooldown=cooldown,
        threshold_mode=mode,
        factor=factor,
        min_lr=min_lr,
        threshold=1e-3,
    )
    s = PlateauLR(torch.tensor(lrs, dtype=torch.float64), every=1, **kw)
    ours = []
    for step in range(30):
        s.observe(step, torch.tensor([q[step] for q in seqs], dtype=torch.float64))
        ours.append(s.lr(step + 1).tolist())
    for m in range(3):
        ref = _torch_plateau_lrs(seqs[m], lr=lrs[m], **kw)
        assert [o[m] for o in ours] == ref  # the same decisions, the same floats


def test_plateau_in_training_reduces_lr():
    # a stalled member (lr far too small) is reduced; decisions follow the mean loss per window
    ens = Ensemble.init(MLPSpec(d_in=3, widths=(), init="normal"), seeds=1)
    x = torch.randn(20, 3, dtype=torch.float64)
    t = torch.randn(1, 20, dtype=torch.float64)
    res = train(
        ens,
        x,
        t,
        TrainConfig(
            loss="mse",
            optimizer="sgd",
            lr=0.5,
            max_steps=200,
            stop=(),
            schedule="plateau",
            schedule_options={"every": 5, "patience": 2},
        ),
        progress=False,
    )
    assert res.summary.lr[0] < 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "loss='hinge'"),
        ({"optimizer": "adam", "optimizer_options": {"momentum": 0.9}}, "momentum"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"lr": ()}, "empty"),
        ({"schedule": "cosine"}, "schedule"),
        ({"schedule": "plateau", "schedule_options": {"factor": 2.0}}, "factor"),
        ({"stop": ("never",)}, "stop rule"),
        ({"loss": "mse", "stop": ("unsat_zero",)}, "binary"),
        ({"batch_size": 10, "optimizer": "lbfgs"}, "full batch"),
        ({"max_steps": 1.5}, "max_steps"),
        ({"loss_options": {"kappa": -1.0}}, "kappa"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_measure_steps():
    cfg = TrainConfig(max_steps=1_000_000, n_log_points=150)
    steps = cfg.measure_steps()
    assert steps[0] == 0 and steps[-1] == 1_000_000
    assert 100 <= len(steps) <= 152  # duplicates at small steps merge
    ratios = np.diff(np.log(steps[-50:]))
    assert np.allclose(ratios, np.log(1e6) / 149, rtol=0.05)


class _LinearModel:
    """A custom Trainable (no Ensemble): f = x wᵀ per member, hand-written backward."""

    def __init__(self, M, d):
        self.params = [torch.zeros(M, 1, d, dtype=torch.float64)]

    def forward_cached(self, x):
        return torch.matmul(x, self.params[0].transpose(1, 2)), x

    def backward(self, cache, dout):
        return [torch.matmul(dout.transpose(1, 2), cache)]


def test_custom_trainable_reaches_least_squares():
    from weightscape.train import Trainable

    g = torch.Generator().manual_seed(4)
    x = torch.randn(30, 3, generator=g, dtype=torch.float64)
    t = torch.randn(2, 30, generator=g, dtype=torch.float64)
    model = _LinearModel(2, 3)
    assert isinstance(model, Trainable)
    res = train(
        model,
        x,
        t,
        TrainConfig(
            loss="mse",
            optimizer="lbfgs",
            lr=1.0,
            max_steps=200,
            stop=("grad_norm",),
            grad_tol=1e-12,
        ),
        progress=False,
    )
    assert (res.summary.stop_reason == "grad_norm").all()
    for m in range(2):
        sol = np.linalg.lstsq(x.numpy(), t[m].numpy(), rcond=None)[0]
        # ‖θ − θ*‖ ≤ ‖∇L‖/λ_min with λ_min ≳ 0.1 here: 1e-10 is ample
        np.testing.assert_allclose(model.params[0][m, 0].numpy(), sol, rtol=0, atol=1e-10)
