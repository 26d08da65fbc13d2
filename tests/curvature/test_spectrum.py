"""Spectrum counts and log-volume against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weightscape.curvature import log_volume, spectrum_counts
from weightscape.errors import ConfigError, NumericalError


def test_counts_use_relative_tolerance():
    eigs = np.array([-2.0, -1e-12, 0.0, 3e-10, 1e-8, 4.0])
    c = spectrum_counts(eigs, rtol=1e-9)  # tol = 4e-9
    assert (c.negative, c.zero, c.positive) == (1, 3, 2)
    assert c.tol == pytest.approx(4e-9)
    c = spectrum_counts(torch.tensor(eigs), rtol=0.0)
    assert (c.negative, c.zero, c.positive) == (2, 1, 3)
    c = spectrum_counts(eigs, rtol=0.0, atol=1e-6)
    assert (c.negative, c.zero, c.positive) == (1, 4, 1)


def test_zero_spectrum_counts_all_zero():
    c = spectrum_counts(np.zeros(7))
    assert (c.negative, c.zero, c.positive, c.tol) == (0, 7, 0, 0.0)
    assert c.to_dict()["zero"] == 7


def test_log_volume_sums_logs_above_cutoff():
    eigs = np.array([-1.0, 1e-9, 0.5, 2.0, 8.0])
    assert log_volume(eigs, 1e-6) == pytest.approx(-0.5 * math.log(0.5 * 2.0 * 8.0), abs=1e-14)
    assert log_volume(eigs, 100.0) == 0.0


def test_bad_inputs():
    with pytest.raises(ConfigError, match="cutoff"):
        log_volume([1.0], 0.0)
    with pytest.raises(ConfigError, match="rtol"):
        spectrum_counts([1.0], rtol=-1.0)
    with pytest.raises(NumericalError, match="non-finite"):
        spectrum_counts([1.0, float("nan")])
