"""``weightscape maxent accuracy``: the fitted model as a model of networks, end to end.

Oracles: every stored energy equals a NumPy ``-(½ σᵀJσ + hᵀσ) / n`` of the samples file's
spins; the level table and headline numbers equal :func:`energy_accuracy`'s; the walks equal
:func:`mc_accuracy` run on the same starts, data and seed (bitwise); each stored configuration,
rebuilt into a whole network (the start's weights outside the moving layer), re-tested with
:func:`network_accuracy` gives the stored accuracy, and its overlap with the start the stored
overlap; the start (sweep 0) is the kept sample itself (overlap 1, its own accuracy).
"""

import json

import numpy as np
import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.maxent import (
    IsingModel,
    MCAccuracyConfig,
    energy_accuracy,
    load_weight_samples,
    mc_accuracy,
    network_accuracy,
    save_weight_samples,
)

from .conftest import LRNET_ARCH, train_and_sample

pytest.importorskip("mlxtend")

ARCH = LRNET_ARCH  # N = 120 + 72 + 120 = 312; ITR = 120:192
N = 312


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = train_and_sample(tmp_path_factory.mktemp("maxent-accuracy"), draws=30)
    # weak couplings: heat-bath walks move far from their starts within a few sweeps
    IsingModel.random(N, coupling_std=0.05, field_std=0.3, seed=1).save(root / "all.npz")
    IsingModel.random(72, coupling_std=0.1, field_std=0.3, seed=2).save(root / "itr.npz")
    return root


def _test_data(root):
    from weightscape.data import load

    meta = json.loads((root / "tr" / "config.json").read_text())
    ds = load(meta["data"]["name"], **meta["data"]["options"])
    return ds.x_test.copy(), ds.y_test.copy()


def _energy(model, s):
    """NumPy energy per spin ``-(½ σᵀJσ + hᵀσ) / n`` of every row of ``s``."""
    J, h = model.J.numpy(), model.h.numpy()
    x = s.astype(np.float64)
    return -(0.5 * np.einsum("si,ij,sj->s", x, J, x) + x @ h) / len(h)


def _run(root, capsys, name, argv):
    out = root / name
    assert main(["maxent", "accuracy", *argv, "--out", str(out)]) == 0
    return out, capsys.readouterr().out.strip().splitlines()


def test_whole_net_files_agree_with_the_library(pipeline, capsys):
    argv = [str(pipeline / "all.npz"), "--samples", str(pipeline / "sm"), "--starts", "3"]
    argv += ["--sweeps", "6", "--record-every", "2", "--bin-width", "0.02", "--seed", "5"]
    out, lines = _run(pipeline, capsys, "acc-all", argv)
    for f in ("energy_accuracy.parquet", "energy_accuracy_levels.parquet", "mc_accuracy.parquet",
              "mc_accuracy.npz", "summary.json", "config.json", "DONE",
              "figures/mc_accuracy.png"):  # fmt: skip
        assert (out / f).is_file(), f
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    model = IsingModel.load(pipeline / "all.npz")
    S = ws.sigma.shape[0]

    # energy vs accuracy: per sample, per level, headline numbers
    ea = pd.read_parquet(out / "energy_accuracy.parquet")
    np.testing.assert_array_equal(ea["sample"], np.arange(S))
    np.testing.assert_array_equal(ea.run, ws.run)
    np.testing.assert_array_equal(ea.accuracy, ws.accuracy)
    np.testing.assert_allclose(ea.energy, _energy(model, ws.sigma), rtol=0, atol=1e-12)
    lib = energy_accuracy(model, ws.sigma, ws.accuracy, bin_width=0.02)
    levels = pd.read_parquet(out / "energy_accuracy_levels.parquet")
    pd.testing.assert_frame_equal(levels, lib.table, check_exact=False, rtol=1e-12)
    assert levels.n.sum() == S and (np.diff(levels.acc_lo) > 0).all()
    summary = json.loads((out / "summary.json").read_text())
    for k, v in lib.to_dict().items():
        assert summary["energy_accuracy"][k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
    assert summary["layer"] == "all" and summary["span"] == [0, N]
    assert summary["chance"] == pytest.approx(0.1) and summary["data"] == "mnist-sample"

    # the walks: starts from distinct runs, sweep 0 is the start, records re-test as stored
    z = np.load(out / "mc_accuracy.npz")
    starts = z["starts"]
    assert len(set(starts.tolist())) == 3 and set(ws.run[starts[:2]]) == {0, 1}
    assert summary["start_samples"] == starts.tolist()
    np.testing.assert_array_equal(z["sweeps"], [0, 2, 4, 6])
    np.testing.assert_array_equal(z["span"], [0, N])
    sig = z["sigma"]
    assert sig.dtype == np.int8 and sig.shape == (4, 3, N)
    np.testing.assert_array_equal(sig[0], ws.sigma[starts])
    mc = pd.read_parquet(out / "mc_accuracy.parquet")
    assert list(mc.columns) == ["sweep", "step", "chain", "sample", "accuracy", "energy", "overlap"]
    assert len(mc) == 4 * 3
    x, y = _test_data(pipeline)
    first = mc[mc.sweep == 0].sort_values("chain")
    np.testing.assert_array_equal(first["sample"], starts)
    np.testing.assert_array_equal(first.overlap, 1.0)
    np.testing.assert_array_equal(first.accuracy, network_accuracy(ws.sigma[starts], ARCH, x, y))
    np.testing.assert_allclose(first.accuracy, ws.accuracy[starts], atol=1e-12)
    for t, sweep in enumerate(z["sweeps"]):
        rec = mc[mc.sweep == sweep].sort_values("chain")
        np.testing.assert_array_equal(rec.accuracy, network_accuracy(sig[t], ARCH, x, y))
        np.testing.assert_allclose(rec.energy, _energy(model, sig[t]), rtol=0, atol=1e-12)
        q = (sig[t].astype(float) * ws.sigma[starts]).mean(1)
        np.testing.assert_allclose(rec.overlap, q, rtol=0, atol=1e-12)
    assert mc[mc.sweep == 6].overlap.max() < 0.8  # the walks did move
    # the library on the same starts, data and seed gives the same walks
    ref = mc_accuracy(model, ws.sigma[starts], ARCH, x, y,
                      MCAccuracyConfig(sweeps=6, record_every=2, seed=5))  # fmt: skip
    np.testing.assert_array_equal(ref.sigma, sig)
    np.testing.assert_array_equal(ref.accuracy.ravel(), mc.accuracy)
    for k, v in ref.summary().items():
        assert summary["mc_accuracy"][k] == pytest.approx(v), k
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seeds"] == [5] and cfg["kind"] == "maxent-accuracy"
    assert cfg["config"]["mc"]["rule"] == "heat_bath" and "git_commit" in cfg["provenance"]

    # printed: energy vs accuracy, the walks, the run
    assert len(lines) == 3 and lines[-1] == f"run: {out}"
    assert f"Spearman rho {lib.spearman:.4f}" in lines[0] and f"{S} samples" in lines[0]
    assert f"Pearson r {lib.pearson:.4f}" in lines[0]
    s = ref.summary()
    walk = (f"accuracy {s['accuracy_mean_start']:.4f} → {s['accuracy_mean_first']:.4f} (sweep 2)"
            f" → {s['accuracy_mean_end']:.4f} (sweep 6)")  # fmt: skip
    assert walk in lines[1] and "chance 0.1000" in lines[1]
    assert f"overlap at the end {s['overlap_mean_end']:.4f}" in lines[1]


def test_layer_walks_move_only_that_layer(pipeline, capsys):
    argv = [str(pipeline / "itr.npz"), "--samples", str(pipeline / "sm"), "--layer", "ITR"]
    argv += ["--starts", "4", "--sweeps", "3", "--seed", "1", "--no-plots"]
    out, lines = _run(pipeline, capsys, "acc-itr", argv)
    assert not (out / "figures").exists()
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    model = IsingModel.load(pipeline / "itr.npz")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layer"] == "ITR" and summary["span"] == [120, 192]
    assert summary["mc_accuracy"]["span"] == [120, 192]
    ea = pd.read_parquet(out / "energy_accuracy.parquet")
    np.testing.assert_allclose(ea.energy, _energy(model, ws.sigma[:, 120:192]), atol=1e-12)
    z = np.load(out / "mc_accuracy.npz")
    np.testing.assert_array_equal(z["span"], [120, 192])
    sig, starts = z["sigma"], z["starts"]
    assert sig.shape == (4, 4, 72)
    start = ws.sigma[starts]
    np.testing.assert_array_equal(sig[0], start[:, 120:192])
    mc = pd.read_parquet(out / "mc_accuracy.parquet")
    x, y = _test_data(pipeline)
    for t in range(4):
        rec = mc[mc.sweep == t].sort_values("chain")
        nets = start.copy()
        nets[:, 120:192] = sig[t]  # the weights outside ITR stay at the start
        np.testing.assert_array_equal(rec.accuracy, network_accuracy(nets, ARCH, x, y))
        q = (sig[t].astype(float) * start[:, 120:192]).mean(1)
        np.testing.assert_allclose(rec.overlap, q, atol=1e-12)
        np.testing.assert_allclose(rec.energy, _energy(model, sig[t]), atol=1e-12)
    assert mc[mc.sweep == 3].overlap.max() < 0.9  # ITR did move
    # the library with span = ITR on the same starts gives the same walks
    ref = mc_accuracy(model, start, ARCH, x, y, MCAccuracyConfig(sweeps=3, seed=1),
                      span=(120, 192))  # fmt: skip
    np.testing.assert_array_equal(ref.sigma, sig)
    assert "ITR moving" in lines[1] and "N = 72" in lines[0]


def test_fit_run_dir_gives_model_samples_and_layer(pipeline, capsys):
    fit = pipeline / "fit"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "pseudo", "--layer", "RB"]
    assert main([*argv, "--max-iter", "5", "--out", str(fit)]) == 0
    capsys.readouterr()
    out, lines = _run(pipeline, capsys, "acc-fit", [str(fit), "--starts", "2", "--sweeps", "1"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layer"] == "RB" and summary["span"] == [192, 312]
    assert summary["samples"] == str((pipeline / "sm" / "samples.npz").resolve())
    assert np.load(out / "mc_accuracy.npz")["sigma"].shape == (2, 2, 120)
    assert "(RB, N = 120" in lines[0] and "RB moving" in lines[1]


def _bad(capsys, argv, out):
    code = main(["maxent", "accuracy", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not out.exists()
    return err[0]


def test_bad_inputs(pipeline, capsys, tmp_path):
    out = tmp_path / "never"
    sm = str(pipeline / "sm")
    m_all, m_itr = str(pipeline / "all.npz"), str(pipeline / "itr.npz")
    msg = _bad(capsys, [m_itr, "--samples", sm], out)  # 72 spins, the whole net has 312
    assert "N = 72" in msg and "312" in msg and "'all'" in msg
    msg = _bad(capsys, [m_all, "--samples", sm, "--layer", "ITR"], out)
    assert "N = 312" in msg and "selects 72" in msg
    msg = _bad(capsys, [m_all, "--samples", sm, "--sweeps", "10", "--record-every", "3"], out)
    assert "--record-every=3" in msg and "sweeps=10" in msg
    assert "--starts=0" in _bad(capsys, [m_all, "--samples", sm, "--starts", "0"], out)
    assert "--sweeps=0" in _bad(capsys, [m_all, "--samples", sm, "--sweeps", "0"], out)
    msg = _bad(capsys, [m_all, "--samples", sm, "--starts", "999"], out)
    assert "--starts=999" in msg and "kept samples" in msg
    msg = _bad(capsys, [m_all, "--samples", sm, "--bin-width", "1.5"], out)
    assert "--bin-width=1.5" in msg and "(0, 1]" in msg
    assert "--bin-width=0.0" in _bad(capsys, [m_all, "--samples", sm, "--bin-width", "0"], out)
    msg = _bad(capsys, [m_all, "--samples", sm, "--rule", "glauber"], out)
    assert "glauber" in msg and "heat_bath" in msg
    assert "--seed=-1" in _bad(capsys, [m_all, "--samples", sm, "--seed", "-1"], out)
    msg = _bad(capsys, [m_all, "--samples", sm, "--layer", "MID"], out)
    assert "MID" in msg and "ITR" in msg
    assert "no --samples" in _bad(capsys, [m_all], out)
    msg = _bad(capsys, [m_all, "--samples", sm, "--train-run", sm], out)
    assert "not a run" in msg
    # a samples file that records no training run, or one that does not exist
    ws, meta = load_weight_samples(pipeline / "sm" / "samples.npz")
    bare = tmp_path / "bare.npz"
    save_weight_samples(ws, bare, arch=meta["arch"], data=meta["data"])
    msg = _bad(capsys, [m_all, "--samples", str(bare)], out)
    assert "bare.npz" in msg and "records no training run" in msg and "--train-run" in msg
    gone = tmp_path / "gone.npz"
    save_weight_samples(ws, gone, arch=meta["arch"], train_run=str(tmp_path / "nowhere"))
    msg = _bad(capsys, [m_all, "--samples", str(gone)], out)
    assert "nowhere" in msg and "does not exist" in msg and "--train-run" in msg
    # ... and --train-run supplies it
    argv = [m_all, "--samples", str(bare), "--train-run", str(pipeline / "tr")]
    assert main(["maxent", "accuracy", *argv, "--starts", "2", "--sweeps", "1", "--no-plots",
                 "--out", str(tmp_path / "given")]) == 0  # fmt: skip
    capsys.readouterr()
    # an existing --out is refused, and left as it was
    existing = tmp_path / "exists"
    existing.mkdir()
    assert main(["maxent", "accuracy", m_all, "--samples", sm, "--out", str(existing)]) == 2
    assert not any(existing.iterdir())


def test_samples_record_the_training_run_as_an_absolute_path(pipeline, monkeypatch, capsys):
    """A relative training-run path given to `maxent sample` is stored resolved, so `maxent
    accuracy` finds the test data from any working directory."""
    monkeypatch.chdir(pipeline)
    argv = ["maxent", "sample", "tr", "--draws", "4", "--threshold", "0.25", "--out", "sm_rel"]
    assert main(argv) == 0
    _, meta = load_weight_samples(pipeline / "sm_rel" / "samples.npz")
    assert meta["train_run"] == str((pipeline / "tr").resolve())
    monkeypatch.chdir(pipeline.parent)
    out, _ = _run(
        pipeline,
        capsys,
        "acc_rel",
        [
            str(pipeline / "all.npz"),
            "--samples",
            str(pipeline / "sm_rel"),
            "--starts",
            "2",
            "--sweeps",
            "2",
            "--no-plots",
        ],
    )
    assert json.loads((out / "summary.json").read_text())["train_run"] == meta["train_run"]


def test_tilted_walks_equal_the_library_and_stay_near_the_start(pipeline, capsys):
    argv = [str(pipeline / "all.npz"), "--samples", str(pipeline / "sm"), "--starts", "3",
            "--sweeps", "4", "--seed", "2", "--tilt", "3", "--no-plots"]  # fmt: skip
    out, lines = _run(pipeline, capsys, "acc_tilt", argv)
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    x, y = _test_data(pipeline)
    z = np.load(out / "mc_accuracy.npz")
    model = IsingModel.load(pipeline / "all.npz")
    tr = mc_accuracy(model, ws.sigma[z["starts"]], ARCH, x, y,
                     MCAccuracyConfig(sweeps=4, seed=2), tilt=3.0)  # fmt: skip
    np.testing.assert_array_equal(z["sigma"], tr.sigma)
    assert tr.overlap[-1].mean() > 0.9  # pinned near the start (untilted: far, see above)
    assert json.loads((out / "summary.json").read_text())["tilt"] == 3.0
    assert "tilt 3" in lines[1]
    assert main(["maxent", "accuracy", *argv[:-3], "--tilt", "nan", "--out",
                 str(pipeline / "acc_nan")]) == 2  # fmt: skip
    assert not (pipeline / "acc_nan").exists()


def test_random_site_walks_recorded_every_step(pipeline, capsys):
    """--order random-site --record-every-steps 1: one record per single-site step, equal to the
    library's walk bitwise; consecutive records differ in at most one weight."""
    argv = [str(pipeline / "itr.npz"), "--samples", str(pipeline / "sm"), "--layer", "ITR",
            "--starts", "3", "--sweeps", "1", "--seed", "4", "--order", "random-site",
            "--record-every-steps", "1", "--no-plots"]  # fmt: skip
    out, lines = _run(pipeline, capsys, "acc_rs", argv)
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    x, y = _test_data(pipeline)
    z = np.load(out / "mc_accuracy.npz")
    a, b = ws.layers["ITR"]
    cfg = MCAccuracyConfig(sweeps=1, seed=4, order="random_site", record_every_steps=1)
    tr = mc_accuracy(IsingModel.load(pipeline / "itr.npz"), ws.sigma[z["starts"]], ARCH, x, y,
                     cfg, span=(a, b))  # fmt: skip
    np.testing.assert_array_equal(z["sigma"], tr.sigma)
    np.testing.assert_array_equal(z["steps"], np.arange(b - a + 1))
    assert (z["sigma"][1:] != z["sigma"][:-1]).sum(-1).max() <= 1
    table = pd.read_parquet(out / "mc_accuracy.parquet")
    assert sorted(table.step.unique()) == list(range(b - a + 1))
    np.testing.assert_allclose(table.accuracy.to_numpy(), tr.accuracy.ravel())
    assert "(random-site)" in lines[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["order"] == "random-site" and summary["mc_accuracy"]["step_first"] == 1


def test_random_site_bad_inputs(pipeline, capsys, tmp_path):
    out = tmp_path / "never"
    base = [str(pipeline / "itr.npz"), "--samples", str(pipeline / "sm"), "--layer", "ITR"]
    msg = _bad(capsys, [*base, "--order", "diagonal"], out)
    assert "--order='diagonal'" in msg and "random-site" in msg
    msg = _bad(capsys, [*base, "--record-every-steps", "2"], out)
    assert "--record-every-steps=2" in msg and "--order random-site" in msg
    rs = [*base, "--order", "random-site"]
    assert "--record-every-steps=0" in _bad(capsys, [*rs, "--record-every-steps", "0"], out)
    msg = _bad(capsys, [*rs, "--sweeps", "1", "--record-every-steps", "5"], out)
    assert "--record-every-steps=5" in msg and "1 x 72" in msg
