"""Pseudo-likelihood decimation (Decelle & Ricci-Tersenghi 2014).

Oracles: exact samples of a sparse model (a ring, drawn from its enumerated distribution) whose
edge set the decimation must recover exactly, with x* the true fraction of absent couplings;
the first round equals a plain :class:`PseudoLikelihood` fit; the independent end equals the
closed-form value computed by explicit loops; every refit is stationary in its free parameters
with the pruned couplings exactly zero.
"""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import (
    DecimationConfig,
    IsingModel,
    Moments,
    PseudoLikelihood,
    PseudoLikelihoodConfig,
    PseudoLikelihoodDecimation,
    all_states,
    exact_distribution,
    sample_moments,
)
from weightscape.maxent._pseudo import pseudo_likelihood_objective

N_RING = 12
PLAIN = PseudoLikelihoodConfig(l2=0.0, evaluate="none", newton_steps=0)


def _ring(n=N_RING, coupling=0.6, seed=0) -> IsingModel:
    rng = np.random.default_rng(seed)
    J = np.zeros((n, n))
    for i in range(n):
        J[i, (i + 1) % n] = J[(i + 1) % n, i] = coupling * rng.choice([-1, 1])
    return IsingModel(torch.tensor(J), torch.tensor(rng.normal(0, 0.2, n)))


def _exact_samples(model: IsingModel, s: int, seed: int) -> np.ndarray:
    p = exact_distribution(model).numpy()
    idx = np.random.default_rng(seed).choice(p.size, size=s, p=p / p.sum())
    return all_states(model.n_spins).numpy()[idx]


@pytest.fixture(scope="module")
def ring_fit():
    truth = _ring()
    x = _exact_samples(truth, 10_000, seed=1)
    pl = PLAIN  # no Newton polishing: 66 refits in ~3 s instead of ~18 s
    cfg = DecimationConfig(pseudo=pl, step=1 / 66, stop_below=None, evaluate="none")
    model, report = PseudoLikelihoodDecimation(cfg).fit(x)
    return truth, x, model, report


def _pl(x, J, h):
    xs = torch.as_tensor(x, dtype=torch.float64)
    w = torch.full((xs.shape[0],), 1.0 / xs.shape[0], dtype=torch.float64)
    return pseudo_likelihood_objective([(xs, w)], J, h)


def test_recovers_the_edge_set_of_a_sparse_model(ring_fit):
    truth, x, model, report = ring_fit
    iu = np.triu_indices(N_RING, 1)
    true_edges = truth.J.numpy()[iu] != 0
    kept = model.J.numpy()[iu] != 0
    np.testing.assert_array_equal(kept, true_edges)
    assert report.extras["couplings_kept"] == N_RING
    assert report.extras["fraction_decimated"] == pytest.approx(1 - N_RING / 66)
    # closer to the truth than the plain pseudo-likelihood fit (which keeps 54 noise couplings)
    plain, _ = PseudoLikelihood(PLAIN).fit(x)
    err = lambda m: float((m.J - truth.J).pow(2).sum().sqrt())  # noqa: E731
    assert err(model) < 0.8 * err(plain), (err(model), err(plain))
    assert float((model.J - truth.J).abs().max()) < 0.05
    # the tilted curve: zero at both ends, its maximum where the noise couplings are gone
    t = report.extras["tilted"]
    assert t[0] == 0.0 and t[-1] == 0.0 and report.extras["fraction"][-1] == 1.0
    assert int(np.argmax(t)) == 66 - N_RING == report.extras["best_round"]
    assert report.history == t


def test_first_round_is_the_plain_pseudo_likelihood_fit(ring_fit):
    _, x, _, report = ring_fit
    plain, _ = PseudoLikelihood(PLAIN).fit(x)
    val, _, _ = _pl(x, plain.J, plain.h)
    assert report.extras["log_pl_full"] == pytest.approx(-float(val), rel=1e-12, abs=1e-12)
    assert report.extras["log_pl"][0] == report.extras["log_pl_full"]


def test_independent_end_is_the_closed_form(ring_fit):
    _, x, _, report = ring_fit
    m = x.mean(0)
    h = np.arctanh(m)
    # explicit per-spin Bernoulli log-likelihood, independent of the vectorised objective
    p_up = (1 + np.tanh(h)) / 2
    expect = float(np.mean(np.sum(np.where(x > 0, np.log(p_up), np.log1p(-p_up)), axis=1)))
    assert report.extras["log_pl_independent"] == pytest.approx(expect, rel=1e-12)
    assert report.extras["log_pl"][-1] == report.extras["log_pl_independent"]


def test_refit_is_stationary_with_pruned_couplings_zero():
    # the returned model is a refit with some couplings pruned: its free couplings and fields
    # satisfy the penalised stationarity conditions, the pruned ones are exactly zero
    x = _exact_samples(_ring(8, 0.6, seed=5), 3000, seed=2)
    l2 = 1e-2
    pl = PseudoLikelihoodConfig(l2=l2, evaluate="none")
    cfg = DecimationConfig(pseudo=pl, step=0.1, stop_below=None, evaluate="none")
    model, report = PseudoLikelihoodDecimation(cfg).fit(x)
    assert report.extras["rounds"] == 10 and report.extras["per_round"] == 3
    assert report.extras["best_round"] > 0
    iu = torch.triu_indices(8, 8, 1)
    active = model.J[iu[0], iu[1]] != 0
    assert int(active.sum()) == report.extras["couplings_kept"] < 28
    _, gJ, gh = _pl(x, model.J, model.h)
    g = gJ[iu[0], iu[1]] + l2 * model.J[iu[0], iu[1]]
    assert float(g[active].abs().max()) < 1e-7
    assert float(gh.abs().max()) < 1e-7


def test_report_fields_and_moment_error():
    truth = _ring(6, 0.5, seed=3)
    x = _exact_samples(truth, 2000, seed=4)
    cfg = DecimationConfig(step=0.2)
    model, report = PseudoLikelihoodDecimation(cfg).fit(x)
    assert report.method == "pseudo_decimation" and report.evaluated_by == "exact"
    assert np.isfinite(report.error) and report.converged
    ex = report.extras
    assert len(ex["fraction"]) == len(ex["log_pl"]) == len(ex["tilted"]) == ex["rounds"] + 1
    assert ex["couplings_total"] == 15 and ex["per_round"] == 3
    assert torch.equal(model.J, model.J.T) and float(model.J.diagonal().abs().max()) == 0.0


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"step": 0.0}, "step"),
        ({"step": 1.0}, "step=1.0 must be a fraction"),
        ({"stop_below": 1.0}, "stop_below=1.0 must lie"),
        ({"stop_below": -0.1}, "stop_below"),
        ({"evaluate": "nope"}, "evaluate"),
        ({"pseudo": PseudoLikelihoodConfig(l1=0.01)}, "pseudo.l1=0.01 must be 0"),
        ({"pseudo": {"l2": 1}}, "must be a PseudoLikelihoodConfig"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        DecimationConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_needs_samples_not_moments():
    mom = sample_moments(_exact_samples(_ring(6), 100, seed=0))
    assert isinstance(mom, Moments)
    with pytest.raises(ConfigError, match="needs samples"):
        PseudoLikelihoodDecimation().fit(mom)
