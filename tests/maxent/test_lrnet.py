"""LR-net and weight samples: moments against Monte Carlo over binary weights, layer map."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import (
    LRNetConfig,
    LRNetResult,
    SampleConfig,
    binary_forward,
    draw_weight_samples,
    layer_map,
    lrnet_forward,
    preactivation_moments,
    train_lrnet,
)


def _mc_setup(S=40000):
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(2, 4, 6, dtype=torch.float64, generator=g)  # [M, n_out, n_in]
    x = torch.randn(5, 6, dtype=torch.float64, generator=g)
    p = torch.sigmoid(theta)
    w = torch.where(torch.rand(S, *theta.shape, generator=g, dtype=torch.float64) < p, 1.0, -1.0)
    w = w.double()
    z = torch.einsum("smoi,bi->smbo", w, x)  # [S, M, B, n_out]
    return theta, x, z


def test_preactivation_moments_match_monte_carlo_over_binary_weights():
    theta, x, z = _mc_setup()
    mean, var = preactivation_moments(theta, x)
    S = z.shape[0]
    zm, zv = z.mean(0), z.var(0)
    # standard errors: mean sqrt(var/S); variance sqrt((m4 - var^2)/S) with the sample 4th moment
    se_m = (zv / S).sqrt()
    m4 = ((z - zm) ** 4).mean(0)
    se_v = ((m4 - zv**2).clamp_min(1e-300) / S).sqrt()
    # 40 entries each; 5 standard errors: a false failure has probability < 1e-4 (seeded anyway)
    assert ((zm - mean).abs() / se_m).max() < 5
    assert ((zv - var).abs() / se_v).max() < 5


def test_lrnet_first_layer_sampled_preactivation_has_the_binary_moments():
    # The LR forward of a one-layer net returns z = mean + sqrt(var) eps: its sample mean and
    # variance over many eps draws must match the Monte Carlo over binary weights.
    theta, x, z = _mc_setup()
    g = torch.Generator().manual_seed(5)
    # one batched call: x repeated, so each row gets its own eps -> [S, M, B, n_out]
    out = lrnet_forward([theta], x.repeat(20000, 1), generator=g)
    zs = out.reshape(2, 20000, 5, 4).transpose(0, 1)
    S = zs.shape[0]
    se_m = (z.var(0) / S).sqrt() * np.sqrt(2)  # difference of two independent sample means
    assert ((zs.mean(0) - z.mean(0)).abs() / se_m).max() < 5
    # relative error of a sample variance ~ sqrt(2/S) (Gaussian) per estimate; 5 SE of both
    rel = (zs.var(0) / z.var(0) - 1).abs()
    assert rel.max() < 5 * np.sqrt(2 * 2 / S) * 1.5


def test_binary_forward_is_the_plain_network():
    g = torch.Generator().manual_seed(0)
    w1 = torch.where(torch.rand(3, 4, 5, generator=g) < 0.5, 1.0, -1.0).double()
    w2 = torch.where(torch.rand(3, 2, 4, generator=g) < 0.5, 1.0, -1.0).double()
    x = torch.randn(7, 5, dtype=torch.float64, generator=g)
    out = binary_forward([w1, w2], x)
    for s in range(3):
        h = torch.nn.functional.leaky_relu(x @ w1[s].T, 0.1) / np.sqrt(5)
        torch.testing.assert_close(out[s], h @ w2[s].T)


def test_training_learns_a_linearly_separable_task():
    # oracle: chance level 1/2; a 2-class task with a ±1-weight teacher is learnable exactly
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    teacher = np.array([1, -1, 1, 1, -1, 1.0])
    y = (x @ teacher > 0).astype(int)
    res = train_lrnet(x, y, LRNetConfig(arch="6-2", n_runs=3, epochs=15, batch_size=50, lr=0.1))
    assert res.loss[-1].mean() < res.loss[0].mean()
    s = draw_weight_samples(res, x, y, SampleConfig(n_draws=20, threshold=0.0, kind="absolute"))
    assert s.sigma.shape == (60, 12)
    assert np.median(s.all_accuracy) > 0.8


def test_layer_map_and_samples_threshold():
    assert layer_map("20-15-15-10") == {"LB": (0, 300), "ITR": (300, 525), "RB": (525, 675)}
    assert layer_map("20-10") == {"all": (0, 200)}
    theta = [np.zeros((2, 3, 4)), np.zeros((2, 2, 3))]
    res = LRNetResult(theta, np.zeros((1, 2)), LRNetConfig(arch="4-3-2", n_runs=2))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30)
    s = draw_weight_samples(res, x, y, SampleConfig(n_draws=50, threshold=0.5, kind="quantile"))
    assert s.threshold == pytest.approx(np.quantile(s.all_accuracy, 0.5))
    assert (s.accuracy >= s.threshold).all() and len(s.accuracy) >= 50
    assert s.threshold_rule == "quantile 0.5"
    # θ = 0: each weight is ±1 with probability 1/2 (binomial, 5 SE)
    assert abs(s.sigma.mean()) < 5 / np.sqrt(s.sigma.size)


def test_draws_tested_in_blocks_equal_one_block(monkeypatch):
    """The test forward pass goes through a run's draws in blocks (bounded memory): any block
    size gives the same samples and the same accuracies, and each accuracy is that of a plain
    forward pass of its own sample."""
    import weightscape.maxent._samples as samples_mod

    rng = np.random.default_rng(2)
    theta = [rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 2, 3))]
    res = LRNetResult(theta, np.zeros((1, 2)), LRNetConfig(arch="4-3-2", n_runs=2))
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30)
    cfg = SampleConfig(n_draws=23, threshold=0.0, kind="absolute", seed=5)
    whole = draw_weight_samples(res, x, y, cfg)
    monkeypatch.setattr(samples_mod, "DRAW_BLOCK_BYTES", 30 * 3 * 8 * 4)  # 4 draws per block
    blocked = draw_weight_samples(res, x, y, cfg)
    np.testing.assert_array_equal(blocked.sigma, whole.sigma)
    np.testing.assert_array_equal(blocked.all_accuracy, whole.all_accuracy)
    for sig, acc in zip(whole.sigma[::7], whole.all_accuracy[::7], strict=True):
        w1 = torch.as_tensor(sig[:12].reshape(3, 4), dtype=torch.float64)
        w2 = torch.as_tensor(sig[12:].reshape(2, 3), dtype=torch.float64)
        logits = binary_forward([w1[None], w2[None]], torch.as_tensor(x), 0.1)[0]
        assert acc == (logits.argmax(-1).numpy() == y).mean()


def test_bad_configs():
    with pytest.raises(ConfigError):
        LRNetConfig(arch="20")
    for name in ("lr", "l2", "init_std", "leak"):  # inf trained to loss nan
        with pytest.raises(ConfigError, match=f"{name}=inf must be finite"):
            LRNetConfig(**{name: math.inf})
    with pytest.raises(ConfigError):
        SampleConfig(kind="best")
    with pytest.raises(ConfigError):
        SampleConfig(threshold=1.0, kind="quantile")


def test_bad_data_are_one_line_errors(tmp_path):
    from weightscape.errors import DatasetError
    from weightscape.maxent import load_lrnet, load_weight_samples, network_accuracy, save_lrnet

    rng = np.random.default_rng(0)
    theta = [np.zeros((2, 3, 4)), np.zeros((2, 2, 3))]
    res = LRNetResult(theta, np.zeros((1, 2)), LRNetConfig(arch="4-3-2", n_runs=2))
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30)
    cfg = SampleConfig(n_draws=5)
    # test sets: empty, of the wrong width, non-finite (a ZeroDivisionError, a bmm shape error
    # and NaN accuracies before)
    for xt, yt, match in [
        (x[:0], y[:0], "P >= 1"),
        (x[:, :3], y, r"needs x \[P, 4\]"),
        (np.where(np.arange(4) == 1, np.nan, x), y, "NaN"),
    ]:
        with pytest.raises(DatasetError, match=match):
            draw_weight_samples(res, xt, yt, cfg)
        with pytest.raises(DatasetError, match=match):
            network_accuracy(np.ones((2, 18)), "4-3-2", xt, yt)
    # training data: empty, non-finite
    for xt, yt, match in [(x[:0], y[:0], "P >= 1"), (x * np.nan, y, "NaN")]:
        with pytest.raises(DatasetError, match=match):
            train_lrnet(xt, yt, LRNetConfig(arch="4-3-2", n_runs=1, epochs=1))
    # damaged files: empty, truncated, a config from elsewhere
    (tmp_path / "empty.npz").write_bytes(b"")
    path = save_lrnet(res, tmp_path / "net.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:100])
    for bad in ("empty.npz", "cut.npz"):
        with pytest.raises(DatasetError, match=r"cannot read .* as an LR-net \.npz"):
            load_lrnet(tmp_path / bad)
        with pytest.raises(DatasetError, match=r"cannot read .* as a samples \.npz"):
            load_weight_samples(tmp_path / bad)
    z = dict(np.load(path))
    z["config_json"] = np.asarray('{"arch": "4-3-2", "momentum": 0.9}')
    np.savez(tmp_path / "other.npz", **z)
    with pytest.raises(DatasetError, match="LR-net config this version cannot read"):
        load_lrnet(tmp_path / "other.npz")


def test_lrnet_trained_on_a_gpu_loads_on_a_cpu(tmp_path, monkeypatch):
    # θ are plain arrays: a file written where device='cuda' reads on a machine without CUDA
    # (its config then says cpu) instead of failing Precision's device check.
    import json

    from weightscape.maxent import load_lrnet, save_lrnet

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    theta = [np.ones((1, 3, 4)), np.ones((1, 2, 3))]
    path = save_lrnet(LRNetResult(theta, np.zeros((1, 1)), LRNetConfig(arch="4-3-2", n_runs=1)),
                      tmp_path / "net.npz")  # fmt: skip
    z = dict(np.load(path))
    raw = json.loads(str(z["config_json"]))
    raw["precision"]["device"] = "cuda"
    z["config_json"] = np.asarray(json.dumps(raw))
    np.savez(tmp_path / "gpu.npz", **z)
    back = load_lrnet(tmp_path / "gpu.npz")
    assert back.config.precision.device == "cpu" and back.config.arch == "4-3-2"
    np.testing.assert_array_equal(back.thetas[1], theta[1])
