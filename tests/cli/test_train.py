"""``weightscape train``: the run directory it writes, reproducibility, and bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from weightscape.cli import main
from weightscape.nets import Ensemble
from weightscape.runs import load_run

BASE = [
    "--data", "random", "-o", "P=120", "-o", "d=6", "-o", "center=true",
    "-o", "normalize=sqrt_d", "--depth", "2", "--lr", "0.01", "--max-steps", "400", "--quiet",
]  # fmt: skip


def _train(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["train", *BASE, *extra, "--out", str(out)]) == 0
    return out


def test_run_directory_contents(tmp_path):
    out = _train(tmp_path, "r", "--width", "3,12", "--seeds", "0-1")
    for f in ("config.json", "metrics.parquet", "summary.parquet", "summary.json", "arrays.npz"):
        assert (out / f).is_file()
    assert (out / "DONE").exists()
    meta = json.loads((out / "config.json").read_text())
    prov = meta["provenance"]
    for key in ("weightscape_version", "git_commit", "torch_version", "device", "torch_threads"):
        assert key in prov
    assert meta["seeds"] == [0, 1, 0, 1]
    assert [m["net.width"] for m in meta["config"]["members"]] == [3, 3, 12, 12]
    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary["N"]) == [6 * 3 + 9 + 3] * 2 + [6 * 12 + 144 + 12] * 2
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert {"member", "step", "name", "value"} <= set(metrics.columns)
    # a SAT member has loss exactly 0 and N_Δ = 0; its stored gaps are all <= 0
    ens, _, datasets = load_run(out)
    assert isinstance(ens, Ensemble) and ens.M == 4
    gaps = np.load(out / "arrays.npz")["gaps_train"]
    for m, row in summary.iterrows():
        if row["stop_reason"] == "unsat_zero":
            assert row["loss"] == 0 and row["n_unsat"] == 0 and (gaps[m] <= 0).all()
    # the stored parameters reproduce the stored gaps (1e-12)
    x = torch.as_tensor(datasets[0].x.copy())
    y = torch.as_tensor(datasets[0].y.copy())
    f = ens.forward(x).squeeze(-1)
    np.testing.assert_allclose((1.0 - y * f).numpy(), gaps, atol=1e-12)


def test_same_seed_same_threads_is_bitwise_identical(tmp_path):
    a = _train(tmp_path, "a", "--width", "5", "--seeds", "3")
    b = _train(tmp_path, "b", "--width", "5", "--seeds", "3")
    za, zb = np.load(a / "arrays.npz"), np.load(b / "arrays.npz")
    for k in za.files:
        assert np.array_equal(za[k], zb[k]), k
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "metrics.parquet"), pd.read_parquet(b / "metrics.parquet")
    )


def test_config_file_equals_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'seeds = [0, 1]\nwidths = [4]\n[data]\nname = "random"\nP = 120\nd = 6\ncenter = true\n'
        'normalize = "sqrt_d"\n[net]\ndepth = 2\n[train]\nlr = 0.01\nmax_steps = 400\n'
    )
    a = tmp_path / "a"
    assert main(["train", "--config", str(cfg), "--out", str(a), "--quiet"]) == 0
    b = _train(tmp_path, "b", "--width", "4", "--seeds", "0,1")
    za, zb = np.load(a / "arrays.npz"), np.load(b / "arrays.npz")
    assert all(np.array_equal(za[k], zb[k]) for k in za.files)


BAD = [
    ["--data", "nope"],
    ["--data", "random", "--depth", "-1"],
    ["--data", "random", "--width", "0"],
    ["--data", "random", "--width", "a,b"],
    ["--data", "random", "--seeds", "5-1"],
    ["--data", "random", "--lr", "-1"],
    ["--data", "random", "--optimizer", "rmsprop"],
    ["--data", "random", "--set", "net.foo=1"],
    ["--data", "random", "--set", "nokeyvalue"],
    ["--data", "mnist", "-o", "path=/nonexistent-dir"],
    ["--config", "/nonexistent.toml"],
    ["--data", "random", "--activation", "sigmoid"],
    ["--data", "random", "--loss", "mse"],  # unsat_zero stop needs a hinge loss
    ["--data", "random", "--dtype", "float16"],
    ["--data", "random", "-o", "P=-5"],
    ["--data", "random", "-o", "colour=red"],
    ["--data", "random", "--batch-size", "0"],
    ["--data", "random", "--device", "tpu"],
    ["--data", "random", "--stop", "nothing"],
    ["--data", "random", "--init", "xavier"],
    ["--data", "random", "--max-steps", "ten"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_inputs_one_line_exit_2_nothing_written(tmp_path, capsys, args):
    out = tmp_path / "out"
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["-o", "P"], "error: --data-option 'P' is not of the form key=value"),
        (["--set", "train.lr"], "error: --set 'train.lr' is not of the form key=value"),
        (
            ["--set", "train.lr=0.1", "--set", "train.lr=0.2"],
            "error: --set train.lr is given twice ('train.lr=0.1' and 'train.lr=0.2')",
        ),
    ],
)
def test_key_value_errors_name_the_flag(tmp_path, capsys, args, msg):
    out = tmp_path / "out"
    assert main(["train", "--data", "random", *args, "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [msg]
    assert not out.exists()


def test_existing_output_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["train", *BASE, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


def test_bad_config_file_contents(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[net\ndepth = 2")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_hessian_command_reads_a_train_run(tmp_path):
    """`weightscape hessian` on a train run: a SAT member's Hessian is exactly 0 (no Δ > 0);
    the jammed member's H0 spectrum is PSD (to 1e-10 of its largest eigenvalue)."""
    out = _train(tmp_path, "r", "--width", "2,12", "--seeds", "0")
    assert main(["hessian", str(out)]) == 0
    summary = pd.read_parquet(out / "summary.parquet")
    z = np.load(out / "hessian.npz")
    for m, row in summary.iterrows():
        h = z[f"eigs_H_{m}"]
        assert h.shape == (row["n_params"],)
        if row["n_unsat"] == 0:
            assert np.all(h == 0)
        else:
            h0 = z[f"eigs_H0_{m}"]
            assert h0.min() >= -1e-10 * h0.max()
    assert (summary["n_unsat"] == 0).any() and (summary["n_unsat"] > 0).any()


def test_config_file_seeds_and_widths_as_in_the_flags(tmp_path):
    # seeds/widths in a config file may be written as on the command line ("0-1", a single int)
    cfg = tmp_path / "c.toml"
    cfg.write_text('seeds = "0-1"\nwidths = 4\n[data]\nname = "random"\nP = 20\nd = 3\n')
    out = tmp_path / "r"
    assert (
        main(["train", "--config", str(cfg), "--max-steps", "2", "--quiet", "--out", str(out)]) == 0
    )
    meta = json.loads((out / "config.json").read_text())
    assert meta["seeds"] == [0, 1]
    assert [m["net.width"] for m in meta["config"]["members"]] == [4, 4]
