"""``weightscape hessian RUN_DIR`` on a run folder built here (config.json + arrays.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from weightscape.cli import main
from weightscape.cli.hessian import parse_members
from weightscape.curvature import RunInputs, hinge_hessian_split, run_hessian
from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec
from weightscape.store import RunDir


def _make_run(tmp_path, *, with_data=True, l2=0.0):
    spec = MLPSpec.uniform(4, 2, 5, init="normal")
    ens = Ensemble.init(spec, 3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(15, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (15,), generator=gen).to(torch.float64) * 2 - 1
    rd = RunDir.create(tmp_path / "run")
    cfg = {"loss": "quadratic_hinge", "loss_options": {"kappa": 0.5}, "l2": l2}
    rd.write_config(cfg)
    arrays = {**ens.state_arrays(), "specs_json": np.asarray(ens.specs_json())}
    if with_data:
        arrays.update(x_train=x.numpy(), y_train=y.numpy())
    rd.write_arrays(**arrays)
    rd.mark_done()
    return rd.path, ens, x, y


def test_cli_writes_spectra_of_chosen_members(tmp_path):
    path, ens, x, y = _make_run(tmp_path)
    assert main(["hessian", str(path), "--members", "0,2"]) == 0
    with np.load(path / "hessian.npz") as z:
        assert list(z["members"]) == [0, 2]
        ref = hinge_hessian_split(ens, x, y, kappa=0.5, members=[2])[0]
        assert np.array_equal(z["eigs_H_2"], ref.eigs_H.numpy())
        assert np.array_equal(z["eigs_H0_2"], ref.eigs_H0.numpy())
        assert int(z["n_unsat_2"]) == ref.n_unsat
    meta = json.loads((path / "hessian.json").read_text())
    assert set(meta["members"]) == {"0", "2"}
    assert meta["members"]["2"]["H"]["zero"] == ref.counts["H"].zero
    # a second call adds member 1 and keeps the others
    assert main(["hessian", str(path), "--members", "1"]) == 0
    with np.load(path / "hessian.npz") as z:
        assert list(z["members"]) == [0, 1, 2]


def test_l2_from_config_is_added_to_h(tmp_path):
    path, ens, x, y = _make_run(tmp_path, l2=0.1)
    payload = run_hessian(path, members=[0])
    ref = hinge_hessian_split(ens, x, y, kappa=0.5, members=[0], l2=0.1)[0]
    assert payload["members"]["0"]["H"]["min"] == pytest.approx(float(ref.eigs_H[0]), abs=1e-14)


def test_custom_loader(tmp_path):
    path, ens, x, y = _make_run(tmp_path, with_data=False)
    from weightscape.train.losses import QuadraticHinge

    payload = run_hessian(path, loader=lambda p: RunInputs(ens, x, y, QuadraticHinge(0.5)))
    assert set(payload["members"]) == {"0", "1", "2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--members", "7"], "out of range"),
        (["--members", "a"], "--members"),
        (["--method", "fast"], "method"),
        (["--memory-mib", "0"], "--memory-mib"),
    ],
)
def test_user_errors_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    path, *_ = _make_run(tmp_path)
    assert main(["hessian", str(path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (path / "hessian.npz").exists() and not (path / "hessian.json").exists()


def test_missing_or_unfinished_run_exits_2(tmp_path, capsys):
    assert main(["hessian", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path, *_ = _make_run(tmp_path)
    (path / "DONE").unlink()
    assert main(["hessian", str(path)]) == 2
    assert "not finished" in capsys.readouterr().err


def test_run_without_data_or_recipe_is_a_run_dir_error(tmp_path, capsys):
    path, *_ = _make_run(tmp_path, with_data=False)
    assert main(["hessian", str(path)]) == 2
    assert "no training data" in capsys.readouterr().err


def test_parse_members():
    assert parse_members("0-2,5") == [0, 1, 2, 5]
    assert parse_members(None) is None
    with pytest.raises(ConfigError):
        parse_members("3-1")
