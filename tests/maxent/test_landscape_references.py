"""References for the landscape: file formats, slices, energy classes from Metropolis, and the
``weightscape maxent landscape`` command (outputs, printed summary, bad inputs write nothing)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from weightscape.cli import main
from weightscape.errors import ConfigError, DataNotFoundError, DatasetError
from weightscape.maxent import (
    LAYER_SLICES,
    IsingModel,
    MetropolisConfig,
    ReferenceSampling,
    parse_slice,
    read_references,
    sample_references,
)

from .conftest import random_model


def test_authors_and_plain_formats(tmp_path):
    rng = np.random.default_rng(0)
    sig = rng.choice([-1, 1], (3, 8))
    E, acc = np.array([-10.5, -3.0, 2.25]), np.array([0.81, 0.8, 0.83])
    np.savetxt(tmp_path / "authors.txt", np.c_[E, acc, sig])
    np.savetxt(tmp_path / "plain.txt", sig, fmt="%d")
    np.save(tmp_path / "plain.npy", sig.astype(np.int8))
    a = read_references(tmp_path / "authors.txt")
    np.testing.assert_array_equal(a.sigma, sig)
    np.testing.assert_array_equal(a.file_energy, E)
    np.testing.assert_array_equal(a.accuracy, acc)
    assert a.labels == ("file",) * 3 and np.isnan(a.energy).all()
    for name in ("plain.txt", "plain.npy"):
        p = read_references(tmp_path / name)
        np.testing.assert_array_equal(p.sigma, sig)
        assert np.isnan(p.file_energy).all()
    # a slice selects spin columns after the E, acc columns
    s = read_references(tmp_path / "authors.txt", columns=(2, 5))
    np.testing.assert_array_equal(s.sigma, sig[:, 2:5])
    model = random_model(3, 0.2, seed=1)
    with_e = s.with_model_energies(model)
    np.testing.assert_allclose(with_e.energy, model.energy(torch.as_tensor(sig[:, 2:5])).numpy())


def test_reference_file_errors(tmp_path):
    np.savetxt(tmp_path / "bad.txt", np.array([[1, -1, 0.5], [1, 1, 1]]))
    with pytest.raises(DatasetError, match="±1"):
        read_references(tmp_path / "bad.txt", fmt="plain")
    with pytest.raises(DataNotFoundError):
        read_references(tmp_path / "missing.txt")
    np.savetxt(tmp_path / "ok.txt", np.ones((2, 4)))
    with pytest.raises(ConfigError, match="does not fit"):
        read_references(tmp_path / "ok.txt", columns=(2, 9))
    with pytest.raises(DatasetError, match="--slice"):
        read_references(tmp_path / "ok.txt").with_model_energies(random_model(5, 0.1))


def test_parse_slice():
    assert parse_slice("3:10") == (3, 10)
    assert parse_slice("itr") == LAYER_SLICES["ITR"] == (300, 525)
    assert parse_slice(None) is None
    for bad in ("3", "a:b", "5:2"):
        with pytest.raises(ConfigError, match="slice"):
            parse_slice(bad)


def test_energy_classes_are_ordered_and_exact():
    model = random_model(30, 0.1, 0.2, seed=4)  # N = 30: a pool of 400 distinct samples
    cfg = ReferenceSampling(
        n_per_class=4,
        metropolis=MetropolisConfig(n_chains=40, n_samples=10, burn_in=100, thin=2, seed=1),
    )
    refs = sample_references(model, cfg)
    assert (
        refs.sigma.shape == (12, 30)
        and refs.labels == ("low",) * 4 + ("medium",) * 4 + ("high",) * 4
    )
    np.testing.assert_allclose(refs.energy, model.energy(torch.as_tensor(refs.sigma)).numpy())
    e = refs.energy.reshape(3, 4)
    assert e[0].max() < e[1].min() and e[1].max() < e[2].min()  # classes do not overlap
    assert len({r.tobytes() for r in refs.sigma}) == 12  # distinct configurations
    with pytest.raises(ConfigError, match="band"):
        ReferenceSampling(band=0.5)
    with pytest.raises(ConfigError, match="classes"):
        ReferenceSampling(classes=("lowest",))


# ------------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 16
    xi = rng.choice([-1.0, 1.0], n)
    J = 2.0 / n * np.outer(xi, xi)
    np.fill_diagonal(J, 0)
    np.savetxt(tmp_path / "J.txt", J)
    np.savetxt(tmp_path / "h.txt", np.zeros(n))
    # full-net references of 20 spins; the model is the slice 4:20
    full = np.c_[np.ones((2, 4)), np.stack([xi, -xi])]
    np.savetxt(tmp_path / "refs.txt", np.c_[[-5.0, -4.0], [0.8, 0.7], full])
    IsingModel.random(10, coupling_std=0.1, field_std=0.2, seed=2).save(tmp_path / "w.npz")
    return tmp_path


def test_cli_landscape_from_files(files, capsys):
    out = files / "out"
    argv = ["maxent", "landscape", "--couplings", str(files / "J.txt"), "--fields",
            str(files / "h.txt"), "--references", str(files / "refs.txt"), "--slice", "4:20",
            "--x-min", "-1", "--x-max", "1", "--x-step", "0.1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith("reference")]
    assert len(lines) == 2 and all("HYSTERESIS" in ln for ln in lines)
    # the planted two-state model is broken: its jump stays a jump when refined (--refine 8)
    assert all("JUMP (discontinuous, refined ratio" in ln for ln in lines)
    assert "d(0)=" in lines[0] and "max jump down" in lines[0] and "mean gap" in lines[0]
    for f in ("DONE", "config.json", "summary.json", "landscape.parquet", "landscape.npz",
              "references.npz", "figures/entropy_landscape.png", "figures/d_of_x.png"):  # fmt: skip
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    row = summary["references"][0]
    assert row["discontinuous"] is True and row["refined_ratio"] > 0.5
    assert summary["refine_factor"] == 8
    frame = pd.read_parquet(out / "landscape.parquet")
    assert len(frame) == 2 * 2 * 21 and set(frame["direction"]) == {"down", "up"}
    # the printed/stored summary equals the one recomputed from the stored table
    down = frame[(frame.reference == 0) & (frame.direction == "down")]
    assert np.isclose(row["mean_gap"], down["gap"][down["converged"]].mean())
    assert np.isclose(row["d_at_zero"], down.loc[np.isclose(down.x, 0), "d"].item())
    with np.load(out / "landscape.npz") as z:
        assert z["d"].shape == (2, 2, 21)
    with np.load(out / "references.npz") as z:
        assert z["sigma"].shape == (2, 16) and list(z["labels"]) == ["file", "file"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["landscape"]["bp"]["damping"] == 0.5 and cfg["n_spins"] == 16


def test_cli_landscape_sampled_references(files, capsys):
    out = files / "sampled"
    argv = ["maxent", "landscape", str(files / "w.npz"), "--n-per-class", "1", "--mc-chains",
            "20", "--mc-samples", "5", "--mc-burn-in", "20", "--mc-thin", "1", "--x-step",
            "0.5", "--no-plots", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "(low," in text and "(medium," in text and "(high," in text
    assert not (out / "figures").exists()


def test_cli_refine_tells_steep_from_jump(files, capsys):
    """Oracle: J = 0, h = 0 is a product measure with d(x) = (1 − tanh x)/2 on every reference,
    smooth. Flag its steps with a low --jump-threshold: refined at x_step/8, the largest coarse
    step (next to x = 0) splits into sub-steps whose largest is the one next to 0, so the ratio is
    tanh(x_step/8) / tanh(x_step) in closed form: "STEEP", not a jump."""
    n = 6
    np.savetxt(files / "J0.txt", np.zeros((n, n)))
    np.savetxt(files / "h0.txt", np.zeros(n))
    np.savetxt(files / "r0.txt", np.ones((1, n)), fmt="%d")
    base = ["maxent", "landscape", "--couplings", str(files / "J0.txt"), "--fields",
            str(files / "h0.txt"), "--references", str(files / "r0.txt"), "--x-min", "-1",
            "--x-max", "1", "--x-step", "0.2", "--jump-threshold", "0.01", "--tol", "1e-12",
            "--no-plots"]  # fmt: skip
    assert main([*base, "--out", str(files / "steep")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "STEEP (smooth when refined, ratio 0.13)" in line and "JUMP" not in line
    row = json.loads((files / "steep" / "summary.json").read_text())["references"][0]
    assert row["has_jump"] and row["discontinuous"] is False
    assert row["refined_ratio"] == pytest.approx(np.tanh(0.025) / np.tanh(0.2), rel=1e-6)
    # --refine 0: the coarse flag only, said to be unrefined
    assert main([*base, "--refine", "0", "--out", str(files / "coarse")]) == 0
    assert "JUMP (not refined)" in capsys.readouterr().out
    row = json.loads((files / "coarse" / "summary.json").read_text())["references"][0]
    assert row["discontinuous"] is None and row["refined_ratio"] is None  # NaN: JSON null


def test_cli_scan_finds_hysteresis_between_grid_points(files, capsys):
    """Curie-Weiss ferromagnet J = 1.1/N, N = 100, reference all +1: its two BP branches coexist
    for |x| < 0.014 (scalar BP spinodal; tested against it in test_landscape.py), between the
    grid points ±0.025. The coarse sweeps agree; --scan finds the window."""
    n = 100
    J = np.full((n, n), 1.1 / n)
    np.fill_diagonal(J, 0)
    np.savetxt(files / "Jcw.txt", J)
    np.savetxt(files / "hcw.txt", np.zeros(n))
    np.savetxt(files / "rcw.txt", np.ones((1, n)), fmt="%d")
    base = ["maxent", "landscape", "--couplings", str(files / "Jcw.txt"), "--fields",
            str(files / "hcw.txt"), "--references", str(files / "rcw.txt"), "--x-min",
            "-1.025", "--x-max", "1.025", "--x-step", "0.05", "--tol", "1e-10",
            "--no-plots"]  # fmt: skip
    assert main([*base, "--out", str(files / "scan")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "HYSTERESIS (fine)" in line and "at x=-0.013..0.013" in line  # fine points at odd 0.001s
    summary = json.loads((files / "scan" / "summary.json").read_text())
    row = summary["references"][0]
    assert not row["has_hysteresis"] and row["fine_has_hysteresis"] is True
    assert row["fine_hysteresis"] > 0.2 and summary["scan_factor"] == 25
    scan = pd.read_parquet(files / "scan" / "scan.parquet")
    fine = scan[scan.fine & (scan.direction == "down")]
    assert np.allclose(np.diff(fine.x.to_numpy()), 0.002)
    # --scan 0: the coarse result only, no fine file
    assert main([*base, "--scan", "0", "--out", str(files / "noscan")]) == 0
    assert "HYSTERESIS" not in capsys.readouterr().out
    assert not (files / "noscan" / "scan.parquet").exists()


def test_cli_monte_carlo_landscape_equals_the_library(files, capsys):
    """--method mc on the planted two-state model: the run directory holds exactly what
    mc_entropy_landscapes returns for the same settings (bitwise), and the loop is printed."""
    from weightscape.maxent import MCLandscapeConfig, mc_entropy_landscapes, read_references

    out = files / "mc"
    argv = ["maxent", "landscape", "--couplings", str(files / "J.txt"), "--fields",
            str(files / "h.txt"), "--references", str(files / "refs.txt"), "--slice", "4:20",
            "--x-min", "-1", "--x-max", "1", "--method", "mc", "--chains", "32",
            "--sweeps-per-x", "40", "--seed", "3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("reference")]
    assert len(lines) == 2 and all("HYSTERESIS (significant at" in ln for ln in lines)
    # two planted states: the loop persists at 4x the sweeps (--confirm 4, the default)
    assert all("PERSISTS at 160 sweeps per tilt" in ln for ln in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "mc" and summary["refine_factor"] == 0
    assert summary["confirm_factor"] == 4
    assert all(r["confirm_persists"] is True for r in summary["references"])
    cfg = MCLandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.1, n_chains=32, sweeps_per_x=40,
                            measure_sweeps=20, seed=3)  # fmt: skip
    model = IsingModel.from_files(files / "J.txt", files / "h.txt")
    refs = read_references(files / "refs.txt", columns=(4, 20))
    lib = mc_entropy_landscapes(model, refs.sigma, cfg)
    with np.load(out / "landscape.npz") as z:
        np.testing.assert_array_equal(z["d"], np.stack([r.d for r in lib]))
        np.testing.assert_array_equal(z["d_se"], np.stack([r.d_se for r in lib]))
        np.testing.assert_array_equal(z["s"], np.stack([r.s for r in lib]))
    for row, r in zip(summary["references"], lib, strict=True):
        assert row["n_significant"] == int(r.significant_hysteresis().sum()) > 0
        assert row["max_hysteresis"] == r.summary().max_hysteresis
    frame = pd.read_parquet(out / "landscape.parquet")
    assert "d_se" in frame and len(frame) == 2 * 2 * 21
    assert json.loads((out / "config.json").read_text())["config"]["landscape"]["n_chains"] == 32
    # --refine 0 / --scan 0 (off) are what --method mc does anyway: accepted, same result
    again = files / "mc_off"
    assert main([*argv[:-1], str(again), "--refine", "0", "--scan", "0"]) == 0
    capsys.readouterr()
    with np.load(again / "landscape.npz") as z:
        np.testing.assert_array_equal(z["d"], np.stack([r.d for r in lib]))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "exact"], "--method"),
        (["--method", "mc", "--damping", "0.7"], "--damping=0.7 applies to --method bp"),
        (["--method", "mc", "--refine", "4"], "--refine=4 applies to --method bp"),
        (["--chains", "8"], "--chains=8 applies to --method mc"),
        (["--sweeps-per-x", "50"], "--sweeps-per-x=50 applies to --method mc"),
        (["--method", "mc", "--sweeps-per-x", "3"], "--sweeps-per-x=3"),
        (["--method", "mc", "--chains", "1"], "--chains=1"),
        (["--method", "mc", "--confirm", "1"], "--confirm 1"),
        (["--confirm", "4"], "--confirm=4 applies to --method mc"),
    ],
)
def test_cli_monte_carlo_bad_inputs_write_nothing(files, capsys, extra, message):
    out = files / "never"
    code = main(["maxent", "landscape", str(files / "w.npz"), *extra, "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--refine", "1"], "--refine 1"),
        (["--refine", "-2"], "--refine -2"),
        (["--scan", "1"], "--scan 1"),
        (["--scan", "-3"], "--scan -3"),
        (["--x-step", "0.07"], "--x-step"),
        (["--slice", "0:4"], "--slice"),
        (["--couplings", "J.txt"], "not both"),
        (["--damping", "1.5"], "damping"),
        (["--accel", "fast"], "accel"),
        (["--first-sweep", "left"], "--first-sweep"),
    ],
)
def test_cli_bad_inputs_write_nothing(files, capsys, extra, message):
    out = files / "never"
    extra = [str(files / e) if e.endswith(".txt") else e for e in extra]
    code = main(["maxent", "landscape", str(files / "w.npz"), *extra, "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not out.exists()


def test_cli_no_model_and_existing_out(files, capsys):
    assert main(["maxent", "landscape", "--out", str(files / "x")]) == 2
    assert "no model" in capsys.readouterr().err
    (files / "exists").mkdir()
    code = main(["maxent", "landscape", str(files / "w.npz"), "--out", str(files / "exists")])
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_parse_range_reads_a_b_and_nothing_else():
    from weightscape.maxent import parse_range

    assert parse_range("3:10") == (3, 10)
    assert parse_range(" 0:675 ") == (0, 675)
    assert parse_range("10:3") == (10, 3)  # bounds are the caller's check
    for bad in ("LB", "3", "3:x", ":", "a:b", ""):
        assert parse_range(bad) is None


def test_a_spin_file_read_as_authors_format_says_so(tmp_path):
    # a ±1 file with one bad entry in its first two columns reads as 'E acc σ…' (two spins
    # fewer): the N mismatch names that reading and the flag that reads every column as spins,
    # which then names the bad entry
    from weightscape.errors import DatasetError
    from weightscape.maxent import IsingModel, read_references

    a = np.ones((2, 10))
    a[0, 0] = 0.5
    np.savetxt(tmp_path / "r.txt", a)
    refs = read_references(tmp_path / "r.txt")
    with pytest.raises(DatasetError, match=r"read as the authors' 'E acc .*--references-format"):
        refs.with_model_energies(IsingModel.zeros(10))
    with pytest.raises(DatasetError, match=r"must be ±1 \(found 0.5\)"):
        read_references(tmp_path / "r.txt", fmt="plain")
