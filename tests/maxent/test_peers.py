"""The ConIII runner's own checks (no peers environment needed): bad samples are refused before
the subprocess, a missing ConIII is named with its import error, a timeout is a RuntimeError."""

import subprocess
import sys

import numpy as np
import pytest

from weightscape.errors import DatasetError
from weightscape.maxent import _peers, coniii_fit


@pytest.mark.parametrize("samples", [np.array([[0, 1], [1, 1]]), 0.4 * np.ones((3, 2)), np.ones(4)])
def test_samples_must_be_pm1_before_anything_runs(samples, monkeypatch):
    # 0/1 codes or fractions were cast to int8 and fitted (0/1 gave h 0.46 where ±1 gives 0)
    monkeypatch.setattr(_peers, "peers_python", lambda: pytest.fail("reached the subprocess"))
    with pytest.raises(DatasetError):
        coniii_fit(samples)


def test_missing_coniii_names_the_import_error(tmp_path, monkeypatch):
    env = tmp_path / "peers"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)  # a Python without ConIII
    monkeypatch.setenv("WEIGHTSCAPE_PEERS", str(env))
    py, reason = _peers.peers_python()
    assert py is None and "No module named 'coniii'" in reason


def test_timeout_is_a_runtime_error(monkeypatch):
    monkeypatch.setattr(_peers, "peers_python", lambda: (sys.executable, "ok"))

    def slow(*args, **kw):
        raise subprocess.TimeoutExpired(args[0], kw["timeout"])

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(RuntimeError, match="did not finish within 5 s"):
        coniii_fit(np.ones((3, 2)), timeout=5)
