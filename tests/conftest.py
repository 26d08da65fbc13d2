"""Shared test fixtures and tolerances.

Tolerances (float64): exact-algebra identities 1e-12; finite differences 1e-6 relative.
"""

import os

import pytest
import torch

# A fixed thread count makes CPU results bitwise reproducible across runs.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))

TOL_EXACT = 1e-12
TOL_FD = 1e-6


@pytest.fixture
def f64():
    return torch.float64
