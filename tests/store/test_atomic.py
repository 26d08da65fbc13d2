"""Atomic JSON writes are strict JSON: NaN and infinity become null, at any depth."""

import json
import math

import numpy as np
import pytest

from weightscape._atomic import json_safe
from weightscape.store import write_json


def _strict(text: str):
    def refuse(word):
        raise AssertionError(f"{word} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_write_json_writes_null_for_nan_and_infinity(tmp_path):
    obj = {
        "nan": math.nan,
        "inf": [math.inf, -math.inf, 1.5],
        "np": np.float64("nan"),
        "np32": np.float32(2.5),
        "arr": np.array([[np.nan, 2.0], [np.inf, 3.0]]),
        "nested": {"t": (1, math.nan), "ok": 0.25, "i": np.int64(7), "s": "NaN"},
        "none": None,
        "flag": True,
    }
    path = write_json(tmp_path / "a.json", obj)
    got = _strict(path.read_text())
    assert got == {
        "nan": None,
        "inf": [None, None, 1.5],
        "np": None,
        "np32": 2.5,
        "arr": [[None, 2.0], [None, 3.0]],
        "nested": {"t": [1, None], "ok": 0.25, "i": 7, "s": "NaN"},
        "none": None,
        "flag": True,
    }
    assert type(got["nested"]["i"]) is int  # NumPy integers stay integers


def test_json_safe_leaves_finite_values_alone():
    obj = {"a": [0.1, -2.0, 3], "b": {"c": "x", "d": False}}
    assert json_safe(obj) == obj


def test_write_json_still_refuses_what_json_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        write_json(tmp_path / "b.json", {"x": object()})
    assert not (tmp_path / "b.json").exists()  # nothing half-written


def test_written_files_get_the_umask_mode(tmp_path):
    # mkstemp's 0600 made every result unreadable to a group on a shared file system
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "a.json", {"x": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        path = write_json(tmp_path / "b.json", {"x": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
