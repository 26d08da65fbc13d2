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
    # Metropolis vs exact: 2·10^4 correlated records; |Δm| ≤ 0.05 is > 5 standard errors here
    m_model = sc[sc.statistic == "m"].model.to_numpy()
    assert np.abs(m_model - m_data).max() < 0.05
    assert res.r["m"] == pytest.approx(np.corrcoef(m_data, m_model)[0, 1])
    assert res.r["m"] > 0.95
    with pytest.raises(DatasetError, match="N = 7"):
        validate_model(random_model(6, 0.3, seed=0), x[:, :6], mc, data_moments=exact)
