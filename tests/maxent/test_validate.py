"""``validate_model``: model (Metropolis) vs data moments.

Oracles: exact enumeration of a small model (its exact m and C passed as ``data_moments`` must
appear verbatim as the data side of the scatter, and the Metropolis side must agree with them
within a stated Monte Carlo tolerance), ``np.corrcoef`` for the reported r.
"""

import numpy as np
import pytest

from weightscape.errors import DatasetError
from weightscape.maxent import (
    MetropolisConfig,
    exact_moments,
    metropolis_sample,
    validate_model,
)

from .conftest import random_model


def test_validate_with_given_data_moments():
    model = random_model(7, 0.3, 0.5, seed=4)
    exact = exact_moments(model)
    mc = MetropolisConfig(n_chains=200, n_samples=100, burn_in=200, thin=5, seed=1)
    x, _, _ = metropolis_sample(model, MetropolisConfig(n_chains=50, n_samples=40, seed=2))
    res = validate_model(model, x, mc, n_triplets=10, data_moments=exact)
    sc = res.scatter
    m_data = sc[sc.statistic == "m"].data.to_numpy()
    np.testing.assert_array_equal(m_data, exact.m.numpy())
    iu = np.triu_indices(7, 1)
    np.testing.assert_array_equal(sc[sc.statistic == "C"].data.to_numpy(), exact.C.numpy()[iu])
    # the third order comes from the samples: as many entries as triplets
    assert (sc.statistic == "third").sum() == len(res.triplets) == 10
    # the plain third moments: the data side is the samples' mean of σ_i σ_j σ_k verbatim (up to
    # rounding), the model side within 0.05 (> 5 standard errors) of the exact ones
    t = res.triplets
    xf = x.astype(np.float64)
    direct = (xf[:, t[:, 0]] * xf[:, t[:, 1]] * xf[:, t[:, 2]]).mean(0)
    raw = sc[sc.statistic == "third_raw"]
    np.testing.assert_allclose(raw.data.to_numpy(), direct, atol=1e-12)
    exact_raw = exact_moments(model, triplets=t).raw_third.numpy()
    assert np.abs(raw.model.to_numpy() - exact_raw).max() < 0.05
    assert res.r["third_raw"] == pytest.approx(np.corrcoef(raw.data, raw.model)[0, 1])
    # Metropolis vs exact: 2·10^4 correlated records; |Δm| ≤ 0.05 is > 5 standard errors here
    m_model = sc[sc.statistic == "m"].model.to_numpy()
    assert np.abs(m_model - m_data).max() < 0.05
    assert res.r["m"] == pytest.approx(np.corrcoef(m_data, m_model)[0, 1])
    assert res.r["m"] > 0.95
    with pytest.raises(DatasetError, match="N = 7"):
        validate_model(random_model(6, 0.3, seed=0), x[:, :6], mc, data_moments=exact)


def test_validate_symmetric_model_with_orbit_averages():
    """A group-invariant model (the ITR layer of 2-4-4-2, 16 spins, S4 × S4) and data drawn
    exactly from it (seeded, 2·10^4 draws from the enumerated distribution). With
    ``hidden_symmetry`` both sides are orbit-averaged: the data side equals
    ``symmetrised_sample_moments`` of the samples verbatim, the model side is within 0.005 of
    the exact third-order moments (plain estimates have a standard error ≈ 0.01, three times
    their spread), and the third-order r exceeds 0.9 (measured 0.97; plain estimates: 0.18)."""
    import torch

    from weightscape.errors import ConfigError
    from weightscape.maxent import (
        IsingModel,
        exact_distribution,
        hidden_symmetry_defect,
        symmetrised_sample_moments,
    )

    from .test_relabel import _symmetric_itr_model

    arch, a, model = _symmetric_itr_model()
    n = model.n_spins
    gen = torch.Generator().manual_seed(7)
    idx = torch.multinomial(exact_distribution(model), 20_000, replacement=True, generator=gen)
    data = (2 * ((idx[:, None] >> torch.arange(n)) & 1) - 1).to(torch.int8).numpy()
    mc = MetropolisConfig(n_chains=200, n_samples=50, burn_in=200, thin=5, seed=5)
    res = validate_model(model, data, mc, n_triplets=300, triplet_seed=4,
                         hidden_symmetry=arch, start=a)  # fmt: skip
    assert res.extras["model_moments"] == "orbit-averaged Metropolis"
    assert res.extras["model_symmetry_defect"] < 1e-12
    sc = res.scatter
    ref = symmetrised_sample_moments(data, arch, res.triplets, start=a)
    np.testing.assert_array_equal(sc[sc.statistic == "third"].data.to_numpy(), ref.third.numpy())
    np.testing.assert_array_equal(sc[sc.statistic == "m"].data.to_numpy(), ref.m.numpy())
    exact = exact_moments(model, triplets=res.triplets).third.numpy()
    assert np.abs(sc[sc.statistic == "third"].model.to_numpy() - exact).max() < 0.005
    assert res.r["third"] > 0.9
    plain = validate_model(model, data, mc, n_triplets=300, triplet_seed=4)
    assert plain.r["third"] < 0.6  # noise-limited without the orbit average
    # a model that is not invariant: plain Metropolis moments, its defect reported
    h = model.h.numpy().copy()
    h[0] += 0.3
    skew = IsingModel(model.J, torch.as_tensor(h))
    res2 = validate_model(skew, data, mc, n_triplets=10, hidden_symmetry=arch, start=a)
    assert res2.extras["model_moments"] == "Metropolis"
    assert res2.extras["model_symmetry_defect"] == pytest.approx(
        hidden_symmetry_defect(skew, arch, start=a)
    )
    with pytest.raises(ConfigError, match="not both"):
        validate_model(model, data, mc, data_moments=ref, hidden_symmetry=arch, start=a)


def test_bad_inputs_are_one_line_errors():
    from weightscape.errors import ConfigError
    from weightscape.maxent import IsingModel, random_triplets, validate_model

    model = IsingModel.zeros(4)
    x = np.ones((10, 4), dtype=np.int8)
    for kw, err, match in [
        ({"triplet_seed": -1}, ConfigError, "triplet_seed=-1"),
        ({"triplet_seed": 1.5}, ConfigError, "triplet_seed=1.5"),
    ]:
        with pytest.raises(err, match=match):
            validate_model(model, x, **kw)
    for samples, match in [([[1, -1, 1, 1]] * 3, "samples are a list"), (np.ones(4), "shape")]:
        with pytest.raises(DatasetError, match=match):
            validate_model(model, samples)
    with pytest.raises(ConfigError, match="n=-5"):
        random_triplets(-5, 3)
