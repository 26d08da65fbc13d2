"""``weightscape hessian --dtype/--device``: the run is analysed in the precision asked for.

Oracle: the float64 spectra of the same run (the float32 ones agree to float32 roundoff of the
dense eigensolver, ~2e-7 of the largest eigenvalue here); the default is float64 on the CPU
whatever dtype the run was stored in. The CUDA path is checked in tests/test_device_hygiene.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from weightscape.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("hessian-precision") / "run"
    argv = ["train", "--data", "random", "-o", "P=16", "-o", "d=3", "--width", "3",
            "--seeds", "0-1", "--max-steps", "40", "--quiet", "--out", str(path)]  # fmt: skip
    assert main(argv) == 0
    return path


def _spectra(path, *flags):
    assert main(["hessian", str(path), *flags]) == 0
    with np.load(path / "hessian.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((path / "hessian.json").read_text())


def test_float32_spectra_agree_with_float64_to_float32_roundoff(trained, tmp_path):
    p64, p32 = tmp_path / "f64", tmp_path / "f32"
    shutil.copytree(trained, p64)
    shutil.copytree(trained, p32)
    ref, meta = _spectra(p64)
    out, meta32 = _spectra(p32, "--dtype", "float32", "--device", "auto")
    assert meta["provenance"]["device"] == "cpu"
    assert {meta["members"][k]["dtype"] for k in ("0", "1")} == {"float64"}
    assert {meta32["members"][k]["dtype"] for k in ("0", "1")} == {"float32"}
    for m in (0, 1):
        for name in ("H0", "Hp", "H"):
            a, b = ref[f"eigs_{name}_{m}"], out[f"eigs_{name}_{m}"]
            assert a.dtype == np.float64 and b.dtype == np.float32, name
            scale = np.abs(ref[f"eigs_H_{m}"]).max()
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * scale, err_msg=name)
        assert int(out[f"n_unsat_{m}"]) == int(ref[f"n_unsat_{m}"])


def test_a_float32_run_is_analysed_in_float64_by_default(trained, tmp_path):
    # a run stored in float32 (as --dtype float32 training writes it) gets float64 spectra
    # unless --dtype float32 is asked for
    p32 = tmp_path / "stored32"
    argv = ["train", "--data", "random", "-o", "P=16", "-o", "d=3", "--width", "3",
            "--seeds", "0", "--max-steps", "40", "--quiet", "--dtype", "float32",
            "--out", str(p32)]  # fmt: skip
    assert main(argv) == 0
    with np.load(p32 / "arrays.npz") as z:
        assert z["param_0"].dtype == np.float32
    out, _ = _spectra(p32)
    assert out["eigs_H_0"].dtype == np.float64
