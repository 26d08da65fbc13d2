"""``weightscape maxent train|sample|fit|validate`` end to end on tiny sizes, and bad inputs.

Oracles: the CLI's θ equal :func:`train_lrnet` on the same data and seed (bitwise); every stored
per-sample accuracy equals an independent NumPy forward pass of the unpacked ±1 weights; the
kept set is exactly the draws at or above the recorded threshold; an exact Boltzmann fit of a
small slice reproduces the data moments (1e-6, by enumeration); the layer table equals NumPy
statistics of the stored J; the validation's r equal ``np.corrcoef`` of its own scatter table.
"""

import json

import numpy as np
import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.maxent import (
    IsingModel,
    LRNetConfig,
    exact_moments,
    load_lrnet,
    load_weight_samples,
    train_lrnet,
)

from .conftest import LRNET_ARCH, numpy_logits, train_and_sample

pytest.importorskip("mlxtend")

ARCH = LRNET_ARCH


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return train_and_sample(tmp_path_factory.mktemp("maxent-cli"), draws=40)


def _numpy_accuracy(sig, widths, x, y):
    """Plain forward pass of one binary net (NumPy): hidden LeakyReLU_0.1(z)/sqrt(n_in).

    Returns the accuracy bounds ``(lo, hi)``: output units with identical ±1 weight rows give
    exactly tied logits (common in tiny nets), which either argmax may break; a point whose top
    two logits agree within 1e-9 counts as wrong in ``lo`` and right (if tied with the label)
    in ``hi``.
    """
    a = numpy_logits(sig, widths, x)
    top = a.max(1, keepdims=True)
    near = a >= top - 1e-9  # candidate argmaxes
    tied = near.sum(1) > 1
    right = a.argmax(1) == y
    lo = (right & ~tied).mean()
    hi = (right | (tied & near[np.arange(len(y)), y])).mean()
    return float(lo), float(hi)


def test_train_run_matches_library_and_names_data(pipeline):
    from weightscape.data import load

    tr = pipeline / "tr"
    for f in ("config.json", "lrnet.npz", "loss.parquet", "summary.json", "DONE"):
        assert (tr / f).exists(), f
    meta = json.loads((tr / "config.json").read_text())
    assert meta["seeds"] == [3]
    for key in ("weightscape_version", "git_commit", "torch_version"):
        assert key in meta["provenance"]
    assert meta["data"]["options"]["preset"] == "zou2021-pca20"
    summary = json.loads((tr / "summary.json").read_text())
    assert summary["data"] == "mnist-sample" and summary["P_train"] == 600
    assert summary["layers"] == {"LB": [0, 120], "ITR": [120, 192], "RB": [192, 312]}
    ds = load(meta["data"]["name"], **meta["data"]["options"])
    ref = train_lrnet(ds.x.copy(), ds.y.copy(), LRNetConfig(arch=ARCH, n_runs=2, epochs=1, seed=3))
    got = load_lrnet(tr / "lrnet.npz")
    for a, b in zip(got.thetas, ref.thetas, strict=True):
        np.testing.assert_array_equal(a, b)
    loss = pd.read_parquet(tr / "loss.parquet")
    np.testing.assert_array_equal(loss.loss.to_numpy().reshape(1, 2), ref.loss)


def test_sample_accuracies_threshold_and_packing(pipeline):
    from weightscape.data import load

    meta = json.loads((pipeline / "tr" / "config.json").read_text())
    ds = load(meta["data"]["name"], **meta["data"]["options"])
    raw = np.load(pipeline / "sm" / "samples.npz")
    assert raw["bits"].dtype == np.uint8 and raw["bits"].shape[1] == (312 + 7) // 8
    ws, smeta = load_weight_samples(pipeline / "sm" / "samples.npz")
    assert smeta["arch"] == ARCH and smeta["data"] == "mnist-sample"
    assert set(np.unique(ws.sigma)) <= {-1, 1} and ws.sigma.shape[1] == 312
    widths = (20, 6, 12, 10)
    for s in range(0, ws.sigma.shape[0], 7):
        lo, hi = _numpy_accuracy(ws.sigma[s], widths, ds.x_test, ds.y_test)
        assert lo - 1e-12 <= ws.accuracy[s] <= hi + 1e-12
        assert hi - lo <= 0.05  # ties are rare: the bounds pin the accuracy
    # kept = exactly the draws at or above the quantile threshold of all draws
    assert ws.all_accuracy.size == 80
    thr = float(np.quantile(ws.all_accuracy, 0.25))
    assert ws.threshold == pytest.approx(thr)
    assert ws.sigma.shape[0] == int((ws.all_accuracy >= thr).sum())
    assert ws.threshold_rule == "quantile 0.25"
    summary = json.loads((pipeline / "sm" / "summary.json").read_text())
    assert summary["threshold_kind"] == "quantile" and summary["n_kept"] == ws.sigma.shape[0]
    table = pd.read_parquet(pipeline / "sm" / "samples.parquet")
    np.testing.assert_array_equal(table.run.to_numpy(), ws.run)
    assert set(ws.run) <= {0, 1}


def test_sample_absolute_threshold_is_recorded(pipeline):
    out = pipeline / "abs"
    argv = ["maxent", "sample", str(pipeline / "tr"), "--draws", "20", "--kind", "absolute"]
    assert main([*argv, "--threshold", "0.05", "--out", str(out)]) == 0
    ws, _ = load_weight_samples(out / "samples.npz")
    assert ws.threshold == 0.05 and ws.threshold_rule == "absolute 0.05"
    assert (ws.accuracy >= 0.05).all()
    assert ws.sigma.shape[0] == int((ws.all_accuracy >= 0.05).sum())


def test_exact_fit_reproduces_data_moments_and_layer_table(pipeline):
    out = pipeline / "fx"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "exact", "--layer", "120:126"]
    assert main([*argv, "--l2", "0", "--max-iter", "3000", "--out", str(out)]) == 0
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    model = IsingModel.load(out / "model.npz")
    x = ws.sigma[:, 120:126].astype(float)
    mom = exact_moments(model)
    # spins frozen in the data (|m| = 1) cannot be matched exactly by finite fields
    free = np.abs(x.mean(0)) < 1 - 1e-12
    np.testing.assert_allclose(mom.m.numpy()[free], x.mean(0)[free], atol=1e-6)
    Cd = x.T @ x / len(x)
    both = np.outer(free, free)
    np.testing.assert_allclose(mom.C.numpy()[both], Cd[both], atol=1e-6)
    rep = json.loads((out / "fit_report.json").read_text())
    assert rep["method"] == "exact" and rep["slice"] == [120, 126]
    table = pd.read_parquet(out / "layer_table.parquet")
    assert list(table.layer) == ["ITR"]  # spins 120:126 lie in ITR
    J = model.J.numpy()[np.triu_indices(6, 1)]
    row = table.iloc[0]
    assert row.J_std == pytest.approx(J.std()) and row.J_max_abs == pytest.approx(np.abs(J).max())
    assert row.h_std == pytest.approx(model.h.numpy().std())


@pytest.mark.parametrize("method", ["pseudo", "bp", "tap"])
def test_fit_methods_write_models_of_the_layer(pipeline, method):
    out = pipeline / f"fit-{method}"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", method, "--layer", "ITR"]
    extra = ["--max-iter", "20"] + (["--ridge", "0.5"] if method == "tap" else [])
    code = main([*argv, *extra, "--out", str(out)])
    if method == "tap" and code == 2:
        pytest.skip("TAP refuses frozen spins in this tiny sample (a documented refusal)")
    assert code == 0
    model = IsingModel.load(out / "model.npz")
    assert model.n_spins == 72
    np.testing.assert_allclose(model.J.numpy(), model.J.numpy().T)


def test_fit_decimation_equals_library_and_writes_its_trace(pipeline, capsys):
    """--method decimation: the model is the library's :class:`PseudoLikelihoodDecimation` fit
    of the same slice with the CLI's settings (bitwise), and decimation.parquet is its trace."""
    from weightscape.maxent import (
        DecimationConfig,
        PseudoLikelihoodConfig,
        PseudoLikelihoodDecimation,
    )

    out = pipeline / "fit-dec"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "decimation", "--layer", "120:128"]
    assert main([*argv, "--decimation-step", "0.1", "--out", str(out)]) == 0
    assert "decimation: kept" in capsys.readouterr().out
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    pl = PseudoLikelihoodConfig(l2=1e-3, max_iter=500, evaluate="none")
    lib, rep = PseudoLikelihoodDecimation(DecimationConfig(pl, step=0.1)).fit(ws.sigma[:, 120:128])
    model = IsingModel.load(out / "model.npz")
    assert np.array_equal(model.J.numpy(), lib.J.numpy())
    assert np.array_equal(model.h.numpy(), lib.h.numpy())
    trace = pd.read_parquet(out / "decimation.parquet")
    assert list(trace.tilted_log_pl) == rep.extras["tilted"]
    assert list(trace.fraction_decimated) == rep.extras["fraction"]
    saved = json.loads((out / "fit_report.json").read_text())
    assert saved["method"] == "pseudo_decimation"
    assert saved["extras"]["couplings_kept"] == int(
        (lib.J.numpy()[np.triu_indices(8, 1)] != 0).sum()
    )


def test_fit_mc_symmetrised_equals_library(pipeline, capsys):
    """--method mc --symmetrise: the model equals :class:`MonteCarloBoltzmann` with the CLI's
    settings on the orbit-averaged moments of the layer (bitwise), fitted with orbit-averaged
    chain moments (its ``symmetry_start`` is the layer's first spin, 120 for ITR), so it is
    invariant under relabelling; the report is a Metropolis evaluation."""
    from weightscape.maxent import (
        MonteCarloBoltzmann,
        MonteCarloBoltzmannConfig,
        hidden_symmetry_defect,
        symmetrised_moments,
    )

    out = pipeline / "fit-mc"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "mc", "--layer", "ITR"]
    argv += ["--symmetrise", "--max-iter", "30", "--mc-chains", "50", "--seed", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "fitted mc to ITR" in capsys.readouterr().out
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    cfg = MonteCarloBoltzmannConfig(
        n_chains=50, n_iter=30, seed=3, symmetry=ARCH, symmetry_start=120
    )
    lib, rep = MonteCarloBoltzmann(cfg).fit(symmetrised_moments(ws.sigma, ARCH).slice(120, 192))
    model = IsingModel.load(out / "model.npz")
    assert np.array_equal(model.J.numpy(), lib.J.numpy())
    assert np.array_equal(model.h.numpy(), lib.h.numpy())
    assert hidden_symmetry_defect(model, ARCH, start=120) < 1e-12
    saved = json.loads((out / "fit_report.json").read_text())
    assert saved["method"] == "boltzmann_mc" and saved["evaluated_by"] == "metropolis"
    assert saved["error"] == rep.error


def test_fit_symmetrised_moments(pipeline, capsys):
    """--symmetrise fits the orbit-averaged moments: the model equals the library's fit of
    :func:`symmetrised_moments` (oracle of the CLI path), and it is itself invariant under
    relabelling the hidden units (a property of the data it was fitted to)."""
    from weightscape.maxent import BoltzmannBP, BoltzmannBPConfig, Moments, symmetrised_moments

    out = pipeline / "fit-sym"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "bp", "--layer", "ITR"]
    argv += ["--symmetrise", "--max-iter", "20", "--keep-from", "5"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "symmetrised moments" in capsys.readouterr().out
    model = IsingModel.load(out / "model.npz")
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    sym = symmetrised_moments(ws.sigma, ARCH)
    ref, rep = BoltzmannBP(BoltzmannBPConfig(n_iter=20, keep_from=5)).fit(
        Moments(sym.m[120:192].clone(), sym.C[120:192, 120:192].clone())
    )
    np.testing.assert_allclose(model.J.numpy(), ref.J.numpy(), atol=1e-13)
    np.testing.assert_allclose(model.h.numpy(), ref.h.numpy(), atol=1e-13)
    assert rep.extras["best_iteration"] >= 5
    # ITR = [12 (hidden 2), 6 (hidden 1)] row-major: relabelling maps (o, i) to (p2[o], p1[i])
    rng = np.random.default_rng(0)
    p1, p2 = rng.permutation(6), rng.permutation(12)
    o, i = np.divmod(np.arange(72), 6)
    idx = p2[o] * 6 + p1[i]
    J = model.J.numpy()
    np.testing.assert_allclose(J[np.ix_(idx, idx)], J, atol=1e-10)
    np.testing.assert_allclose(model.h.numpy()[idx], model.h.numpy(), atol=1e-10)
    assert json.loads((out / "fit_report.json").read_text())["symmetrised"] is True
    # validate compares with the data the model was fitted to: the symmetrised m and C
    val = pipeline / "val-sym"
    argv = ["maxent", "validate", str(out), "--mc-chains", "20", "--mc-samples", "20"]
    assert main([*argv, "--mc-burn-in", "50", "--triplets", "30", "--out", str(val)]) == 0
    rep = json.loads((val / "validation.json").read_text())
    assert rep["symmetrised"] is True
    sc = pd.read_parquet(val / "moments.parquet")
    np.testing.assert_allclose(sc[sc.statistic == "m"].data.to_numpy(), sym.m[120:192].numpy())
    iu = np.triu_indices(72, 1)
    C = sym.C[120:192, 120:192].numpy()[iu]
    np.testing.assert_allclose(sc[sc.statistic == "C"].data.to_numpy(), C)


def test_fit_bp_authors_scheme_equals_library(pipeline, capsys):
    """--bp-scheme authors: the model equals :meth:`BoltzmannBPConfig.authors` fitted by the
    library on the same symmetrised moments (bitwise; 100 steps and the best of 51-100 unless
    given), with the seed passed on; the config records the scheme."""
    from weightscape.maxent import BoltzmannBP, BoltzmannBPConfig, symmetrised_moments

    out = pipeline / "fit-authors"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "bp", "--layer", "ITR"]
    argv += ["--symmetrise", "--bp-scheme", "authors", "--seed", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "fitted bp to ITR" in capsys.readouterr().out
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    lib, rep = BoltzmannBP(BoltzmannBPConfig.authors(seed=2)).fit(
        symmetrised_moments(ws.sigma, ARCH).slice(120, 192)
    )
    model = IsingModel.load(out / "model.npz")
    assert np.array_equal(model.J.numpy(), lib.J.numpy())
    assert np.array_equal(model.h.numpy(), lib.h.numpy())
    cfg = json.loads((out / "config.json").read_text())["config"]["method_config"]
    assert (cfg["init"], cfg["n_iter"], cfg["keep_from"], cfg["seed"]) == ("authors", 100, 51, 2)
    assert json.loads((out / "fit_report.json").read_text())["error"] == rep.error


def test_validate_against_exact_model(pipeline):
    # an exact fit of 6 spins: its moments equal the data's, so its Metropolis moments must too
    fit = pipeline / "fit-v"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "exact", "--layer", "120:126"]
    assert main([*argv, "--l2", "0", "--max-iter", "3000", "--out", str(fit)]) == 0
    out = pipeline / "val"
    argv = ["maxent", "validate", str(fit), "--mc-chains", "100", "--mc-samples", "100"]
    assert main([*argv, "--mc-burn-in", "100", "--triplets", "20", "--out", str(out)]) == 0
    v = json.loads((out / "validation.json").read_text())
    assert v["slice"] == [120, 126] and v["n_model_samples"] == 10_000
    sc = pd.read_parquet(out / "moments.parquet")
    sizes = {"m": 6, "C": 15, "connected": 15, "third": 20, "third_raw": 20}
    for key, size in sizes.items():
        d = sc[sc.statistic == key]
        assert len(d) == size
        if v["r"][key] == v["r"][key]:
            assert v["r"][key] == pytest.approx(np.corrcoef(d.data, d.model)[0, 1])
    # 10^4 records every 10 sweeps of a 6-spin model are nearly independent: the standard error
    # of a moment is <= 0.01, so 0.04 is a 4-sigma bound on each entry
    for key in ("m", "C"):
        d = sc[sc.statistic == key]
        assert np.abs(d.model - d.data).max() < 0.04, key
    assert (out / "layer_table.parquet").is_file() and (out / "figures" / "scatter.png").is_file()


def test_relabel_command(pipeline):
    out = pipeline / "relabel"
    argv = ["maxent", "relabel", str(pipeline / "sm"), "--fractions", "0,0.5", "--layers", "RB"]
    assert main([*argv, "--max-iter", "30", "--out", str(out)]) == 0
    t = pd.read_parquet(out / "relabel.parquet")
    ws, _ = load_weight_samples(pipeline / "sm" / "samples.npz")
    S = ws.sigma.shape[0]
    assert list(t.layer) == ["RB", "RB"] and list(t.n_relabelled) == [0, round(0.5 * S)]
    z = np.load(out / "models.npz")
    J = z["J_0.5_RB"][np.triu_indices(120, 1)]
    assert t.J_std.iloc[1] == pytest.approx(J.std())


def test_frozen_centre_command(tmp_path):
    from weightscape.data import load
    from weightscape.maxent import FrozenCentreConfig, train_frozen_centre

    out = tmp_path / "fz"
    argv = ["maxent", "frozen-centre", "--arch", "20-8-8-10", "--preset", "zou2021-pca20"]
    argv += ["--P", "300", "--test-size", "200", "--epochs", "2", "--eval-draws", "3"]
    assert main([*argv, "--seed", "4", "--out", str(out)]) == 0
    curves = pd.read_parquet(out / "curves.parquet")
    assert set(curves["mode"]) == {"frozen_centre", "full"} and len(curves) == 2 * 2 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frozen_layer"] == 1 and summary["data"] == "mnist-sample"
    assert (out / "figures" / "frozen_centre.png").is_file()
    # the CLI's curves are the library's on the same data and seeds
    meta = json.loads((out / "config.json").read_text())
    ds = load(meta["data"]["name"], **meta["data"]["options"])
    cfg = FrozenCentreConfig(
        lrnet=LRNetConfig(arch="20-8-8-10", n_runs=2, epochs=2, seed=4),
        eval_draws=3,
        redraw_seed=5,
        eval_seed=6,
    )
    ref = train_frozen_centre(ds.x.copy(), ds.y.copy(), ds.x_test.copy(), ds.y_test.copy(), cfg)
    got = curves[curves["mode"] == "frozen_centre"].accuracy.to_numpy().reshape(2, 2)
    np.testing.assert_array_equal(got, ref.accuracy)


def _bad(capsys, argv, out):
    code = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not out.exists()
    return err[0]


def test_bad_inputs(pipeline, capsys, tmp_path):
    out = tmp_path / "never"
    tr, sm = str(pipeline / "tr"), str(pipeline / "sm")
    assert "20-x" in _bad(capsys, ["maxent", "train", "--arch", "20-x"], out)
    msg = _bad(capsys, ["maxent", "train", "--arch", "30-10"], out)
    assert "30-10" in msg and "20" in msg
    msg = _bad(capsys, ["maxent", "train", "--data", "cifar"], out)
    assert "cifar" in msg and "mnist-sample" in msg
    assert "--P" in _bad(capsys, ["maxent", "train", "--P", "0"], out)
    assert "--runs=0" in _bad(capsys, ["maxent", "train", "--runs", "0"], out)
    assert "--draws=-1" in _bad(capsys, ["maxent", "sample", tr, "--draws", "-1"], out)
    msg = _bad(capsys, ["maxent", "sample", tr, "--kind", "median"], out)
    assert "median" in msg and "quantile" in msg
    assert "1.5" in _bad(capsys, ["maxent", "sample", tr, "--threshold", "1.5"], out)
    msg = _bad(capsys, ["maxent", "sample", tr, "--kind", "absolute", "--threshold", "1"], out)
    assert "keeps no sample" in msg
    assert "not a run" in _bad(capsys, ["maxent", "sample", sm], out)
    msg = _bad(capsys, ["maxent", "fit", sm, "--method", "ace"], out)
    assert "ace" in msg and "pseudo" in msg
    msg = _bad(capsys, ["maxent", "fit", sm, "--layer", "MID"], out)
    assert "MID" in msg and "ITR" in msg
    assert "exact" in _bad(
        capsys, ["maxent", "fit", sm, "--method", "exact", "--layer", "ITR"], out
    )
    assert "--l1" in _bad(capsys, ["maxent", "fit", sm, "--method", "bp", "--l1", "0.1"], out)
    assert "0:999" in _bad(capsys, ["maxent", "fit", sm, "--layer", "0:999"], out)
    fit = pipeline / "fit-v"
    if fit.exists():
        msg = _bad(capsys, ["maxent", "validate", str(fit), "--layer", "RB"], out)
        assert "RB" in msg and "N = 6" in msg
    msg = _bad(capsys, ["maxent", "relabel", sm, "--fractions", "0.3,2"], out)
    assert "0.3,2" in msg and "[0, 1]" in msg
    msg = _bad(capsys, ["maxent", "frozen-centre", "--arch", "784-10-10-10-10"], out)
    assert "784-10-10-10-10" in msg and "frozen_layer" in msg
    err = _bad(capsys, ["maxent", "fit", sm, "--symmetrise"], out)
    assert "--symmetrise" in err and "pseudo" in err
    err = _bad(capsys, ["maxent", "fit", sm, "--keep-from", "3"], out)
    assert "--keep-from" in err and "bp" in err
    err = _bad(capsys, ["maxent", "fit", sm, "--decimation-step", "0.1"], out)
    assert "--decimation-step" in err and "decimation" in err
    dec = ["maxent", "fit", sm, "--method", "decimation"]
    assert "(0, 1)" in _bad(capsys, [*dec, "--decimation-step", "1.5"], out)
    assert "--symmetrise" in _bad(capsys, [*dec, "--symmetrise"], out)
    err = _bad(capsys, ["maxent", "fit", sm, "--method", "bp", "--mc-chains", "10"], out)
    assert "--mc-chains=10" in err and "mc" in err
    assert "--seed=2" in _bad(capsys, ["maxent", "fit", sm, "--seed", "2"], out)
    bp = ["maxent", "fit", sm, "--method", "bp"]
    assert "--seed=2" in _bad(capsys, [*bp, "--seed", "2"], out)  # the stable scheme: no seed
    err = _bad(capsys, [*bp, "--bp-scheme", "bethe"], out)
    assert "bethe" in err and "authors" in err
    err = _bad(capsys, ["maxent", "fit", sm, "--bp-scheme", "authors"], out)
    assert "--bp-scheme" in err and "pseudo" in err
    err = _bad(capsys, [*bp, "--bp-scheme", "authors", "--max-iter", "30"], out)
    assert "--max-iter=30" in err and "--keep-from" in err
    mc = ["maxent", "fit", sm, "--method", "mc", "--layer", "RB"]
    assert "--mc-chains" in _bad(capsys, [*mc, "--mc-chains", "0"], out)
    assert "--seed=-1" in _bad(capsys, [*mc, "--seed", "-1"], out)
    assert "'bp'" in _bad(capsys, [*mc, "--evaluate", "bp"], out)
    # an existing --out is refused, and left as it was
    existing = tmp_path / "exists"
    existing.mkdir()
    code = main(["maxent", "sample", tr, "--out", str(existing)])
    assert code == 2 and not any(existing.iterdir())


def test_out_holding_an_input_is_refused_even_with_force(pipeline, capsys, tmp_path):
    # --out naming the run a command reads (or a folder above it) with --force would delete
    # its input before reading it: refused, input intact
    import shutil

    tr, sm = tmp_path / "tr", tmp_path / "sm"
    shutil.copytree(pipeline / "tr", tr)
    shutil.copytree(pipeline / "sm", sm)
    before = sorted(p.name for p in sm.iterdir())
    for argv, out in [
        (["maxent", "sample", str(tr)], tr),
        (["maxent", "fit", str(sm), "--layer", "all", "--method", "mean-field"], sm),
        (["maxent", "fit", str(sm / "samples.npz"), "--layer", "all", "--method", "tap"], sm),
        (["maxent", "relabel", str(sm)], tmp_path),
    ]:
        code = main([*argv, "--out", str(out), "--force"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "holds the input" in err[0], err
    assert sorted(p.name for p in sm.iterdir()) == before and (tr / "DONE").exists()


def test_a_finished_run_survives_a_failure_after_done(tmp_path):
    # a closed stdout (`... | head`) raises while the summary lines are printed, after DONE:
    # the run is complete and stays; a failure before DONE still removes the partial run
    from weightscape.cli.maxent import _guarded
    from weightscape.store import RunDir

    def finish_then_print(rd):
        rd.write_json("summary.json", {"ok": 1})
        rd.mark_done()
        raise BrokenPipeError

    def fail_midway(rd):
        rd.write_json("summary.json", {"ok": 1})
        raise RuntimeError("boom")

    done = RunDir.create(tmp_path / "done")
    with pytest.raises(BrokenPipeError):
        _guarded(done, finish_then_print)
    assert done.done and (done.path / "summary.json").is_file()
    part = RunDir.create(tmp_path / "part")
    with pytest.raises(RuntimeError):
        _guarded(part, fail_midway)
    assert not part.path.exists()


def test_main_leaves_quietly_on_a_closed_pipe_and_names_an_interrupt(monkeypatch, capsys):
    import typer

    from weightscape import cli

    def raiser(exc):
        def app(**kw):
            raise exc

        return app

    monkeypatch.setattr(cli, "app", raiser(BrokenPipeError()))
    assert cli.main(["maxent", "--help"]) == 141 and capsys.readouterr().err == ""
    monkeypatch.setattr(cli, "app", raiser(typer.Exit(130)))
    assert cli.main(["maxent", "--help"]) == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_sigterm_unwinds_like_an_exception(monkeypatch):
    # the script entry point turns SIGTERM into SystemExit(143), so cleanup (a run folder not
    # yet DONE removed by _guarded) runs instead of the process dying mid-write
    import signal
    import sys

    from weightscape import cli

    old = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(sys, "argv", ["weightscape", "--version"])
    try:
        assert cli.main() == 0
        assert signal.getsignal(signal.SIGTERM) is cli._terminate
    finally:
        signal.signal(signal.SIGTERM, old)
    with pytest.raises(SystemExit) as info:
        cli._terminate(signal.SIGTERM, None)
    assert info.value.code == 143


def test_landscape_takes_the_run_dir_of_a_fit(pipeline, capsys, tmp_path):
    # MODEL may be the run directory of 'maxent fit', as for validate: same result as its
    # model.npz
    fit = tmp_path / "fit"
    argv = ["maxent", "fit", str(pipeline / "sm"), "--method", "mean-field", "--layer", "0:40"]
    assert main([*argv, "--out", str(fit)]) == 0
    grid = ["--x-min", "-1", "--x-max", "1", "--x-step", "0.5", "--no-plots"]
    assert main(["maxent", "landscape", str(fit), *grid, "--out", str(tmp_path / "a")]) == 0
    npz = str(fit / "model.npz")
    assert main(["maxent", "landscape", npz, *grid, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    with (
        np.load(tmp_path / "a" / "landscape.npz") as a,
        np.load(tmp_path / "b" / "landscape.npz") as b,
    ):
        np.testing.assert_array_equal(a["d"], b["d"])
    (tmp_path / "empty").mkdir()
    code = main(["maxent", "landscape", str(tmp_path / "empty"), "--out", str(tmp_path / "c")])
    assert code == 2 and "folder without model.npz" in capsys.readouterr().err
