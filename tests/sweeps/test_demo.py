"""The demo.ridge task against independent oracles (closed-form ridge, unpacked runs)."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

from weightscape.store import RunDir
from weightscape.sweeps import DEMO_TASK, Sweep, make_packs, ridge_exact, run_pack

from . import _tasks


def _run(task, sweep, tmp_path, name):
    cfgs, hashes = sweep.expand(), sweep.hashes()
    dirs = [tmp_path / name / h for h in hashes]
    for p in make_packs(task, cfgs, hashes, dirs):
        run_pack(task, list(p.configs), list(p.dirs))
    return [RunDir(d) for d in dirs]


def test_gradient_descent_reaches_the_exact_ridge_minimum(tmp_path):
    s = Sweep(
        task="demo.ridge",
        base={"steps": 3000, "lr": 0.3, "log_every": 500},
        axes={"seed": [0, 1], "width": [3, 12]},
    )
    for rd, cfg in zip(_run(DEMO_TASK, s, tmp_path, "a"), s.expand(), strict=True):
        summ = rd.read_json("summary.json")
        # oracle for loss_exact: the augmented least-squares problem solved by scipy's lstsq,
        # min 1/2 ||[phi/sqrt(n); sqrt(lam) I] a - [y/sqrt(n); 0]||^2 (agrees to rounding, 1e-12)
        from weightscape.sweeps._demo import _data, _features

        x, y = _data(cfg)
        phi = _features(cfg, x)
        n, w = phi.shape
        lam = cfg["ridge"]
        big = np.vstack([phi / np.sqrt(n), np.sqrt(lam) * np.eye(w)])
        rhs = np.concatenate([y / np.sqrt(n), np.zeros(w)])
        a_ls = scipy.linalg.lstsq(big, rhs)[0]
        r = big @ a_ls - rhs
        assert summ["loss_exact"] == pytest.approx(0.5 * r @ r, rel=1e-12)
        # GD on a quadratic has a closed form: with H = phi^T phi/n + lam I = Q diag(l) Q^T and
        # c = Q^T (a_0 - a*), the excess after T steps is 1/2 sum_i l_i (1 - lr l_i)^(2T) c_i^2.
        # Both sides are differences of O(0.1) numbers: compare to 1e-13 absolute.
        h = phi.T @ phi / n + lam * np.eye(w)
        evals, q = np.linalg.eigh(h)
        c = q.T @ (0.0 - a_ls)
        steps, lr = cfg["steps"], cfg["lr"]
        analytic = 0.5 * np.sum(evals * (1 - lr * evals) ** (2 * steps) * c**2)
        assert summ["excess"] == pytest.approx(analytic, abs=1e-13)
        # strong convexity, L(a) - L* >= mu/2 |a - a*|^2 with mu = lambda_min(H), bounds the
        # distance to the minimizer (slack 1e-9 for the rounding of the excess)
        dist = np.linalg.norm(rd.read_arrays()["a"] - a_ls)
        assert dist <= np.sqrt(2 * max(summ["excess"], 0.0) / evals[0]) + 1e-9
        m = rd.read_metrics()
        loss = m[m.name == "loss"].sort_values("step")
        assert list(loss.step) == list(range(0, 3001, 500))
        # the objective never increases under GD with a step below 2/L
        assert np.all(np.diff(loss.value.to_numpy()) <= 1e-15)


def test_packing_does_not_change_results(tmp_path):
    # widths differ inside a pack: zero-padded columns must not change any member's result;
    # only the summation order of dot products may differ, so compare at 1e-12 relative
    s = Sweep(task="demo.ridge", base={"steps": 100}, axes={"seed": [0, 1, 2], "width": [2, 5, 9]})
    packed = _run(DEMO_TASK, s, tmp_path, "packed")
    single = _run(_tasks.UNPACKED, s, tmp_path, "single")
    assert DEMO_TASK.pack_key is not None and len({DEMO_TASK.pack_key(c) for c in s.expand()}) == 1
    for a, b in zip(packed, single, strict=True):
        sa, sb = a.read_json("summary.json"), b.read_json("summary.json")
        assert sa.keys() == sb.keys()
        for k in sa:
            assert sa[k] == pytest.approx(sb[k], rel=1e-12, abs=1e-15)
        pd.testing.assert_frame_equal(a.read_metrics(), b.read_metrics(), rtol=1e-12)


def test_data_seed_and_seed_are_separate(tmp_path):
    s = Sweep(
        task="demo.ridge", base={"steps": 5}, zip=[{"seed": [0, 1, 0], "data_seed": [0, 0, 1]}]
    )
    out = [rd.read_json("summary.json")["loss_exact"] for rd in _run(DEMO_TASK, s, tmp_path, "z")]
    assert len(set(out)) == 3
    # the same config twice gives the same numbers bit for bit
    again = _run(DEMO_TASK, s, tmp_path, "z2")
    assert out == [rd.read_json("summary.json")["loss_exact"] for rd in again]
    assert ridge_exact(np.eye(2), np.ones(2), 0.0)[1] == pytest.approx(0.0, abs=1e-15)
