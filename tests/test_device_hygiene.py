"""The ``--device cuda`` code paths, checked without a GPU (tests/_fakecuda.py emulates cuda:0).

Oracle: each hot path run with ``device="cuda"`` under the emulator (CPU numerics, CUDA's device
rules: no CPU tensor of dimension > 0 meets a CUDA one, no ``.numpy()`` of a CUDA tensor, no CPU
generator sampling a CUDA tensor) raises nothing and returns the CPU run's numbers (integers and
flags exactly, floats to 1e-12: BLAS rounding may depend on buffer alignment; the emulated "cuda"
generator is a CPU generator with the same seed), and some of its ops ran on the emulated GPU.
Before their fixes these raised here: ``TAPInversion`` (``torch.eye`` without ``device=`` met the
CUDA moments), the Hessian of CUDA parameters with CPU data (the labels stayed on the CPU; jamming's
spectra near N* do this), ``write_npz`` of a CUDA tensor. The emulator itself is checked first
against the rules it claims to enforce.

Syncs (``.item()``, ``float(t)``, ``.cpu()``) are counted per call site: the training loop's stay
bounded by its poll interval, Metropolis, the BP stability radius and the greedy clustering read
the device once per call (or per new point), not once per sweep / step / comparison.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from weightscape.config import Precision

from ._fakecuda import DeviceMismatch, FakeCudaTensor, fake_cuda

F64 = torch.float64


def _host(x):
    """Plain CPU values of a (nested) result: fake-CUDA tensors unwrapped, dataclasses as dicts."""
    if isinstance(x, FakeCudaTensor):
        return x._inner.detach().clone()
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _host(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _host(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_host(v) for v in x]
    return x


# keys naming clock times or the device are not compared
_CLOCKS = ("seconds", "time", "wall", "elapsed", "device", "provenance", "timings")
# float results agree to rounding: BLAS kernels may round differently on differently aligned
# buffers (the emulator allocates its own); a device mistake raises instead
RTOL = ATOL = 1e-12


def _close(a: np.ndarray, b: np.ndarray, path: str) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, path
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=path)
    else:
        np.testing.assert_array_equal(a, b, err_msg=path)


def assert_same(a, b, path="result"):
    """Equality of two host results (floats to 1e-12, the rest exact; NaN == NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            if not any(c in str(k) for c in _CLOCKS):
                assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and b.device.type == "cpu", path
        _close(a.numpy(), b.numpy(), path)
    elif isinstance(a, np.ndarray):
        _close(a, b, path)
    elif isinstance(a, pd.DataFrame):
        cols = [c for c in a.columns if not any(t in str(c) for t in _CLOCKS)]
        pd.testing.assert_frame_equal(a[cols], b[cols], rtol=RTOL, atol=ATOL, obj=path)
    elif isinstance(a, float):
        assert isinstance(b, float) and (
            (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)
        ), (path, a, b)
    elif isinstance(a, int | str | bool | type(None)):
        assert a == b, path


def cpu_and_cuda(fn):
    """``fn(device)`` on the CPU and on the emulated GPU; returns both host results and the
    GPU run's sync counts."""
    ref = _host(fn("cpu"))
    with fake_cuda() as mode:
        out = _host(fn("cuda"))
    assert mode.device_ops > 0, "nothing ran on the GPU"
    return ref, out, mode.syncs


def check(fn):
    ref, out, syncs = cpu_and_cuda(fn)
    assert_same(ref, out)
    return syncs


# ---------------------------------------------------------------------------------------------
# the emulator obeys CUDA's rules


def test_emulator_raises_where_cuda_raises():
    with fake_cuda():
        a = torch.ones(3, dtype=F64, device="cuda")
        assert a.device == torch.device("cuda", 0) and a.is_cuda
        assert (a * 2 + torch.tensor(1.0)).device.type == "cuda"  # 0-d CPU tensors are allowed
        with pytest.raises(DeviceMismatch):
            a + torch.zeros(3, dtype=F64)  # implicit-device factory meets a CUDA tensor
        with pytest.raises(DeviceMismatch):
            torch.zeros(3, dtype=F64) @ a
        with pytest.raises(TypeError, match="cpu"):
            a.numpy()
        with pytest.raises(TypeError):
            np.asarray(a)
        with pytest.raises(DeviceMismatch, match="generator"):
            torch.randn(2, generator=torch.Generator().manual_seed(0), device="cuda")
        g = torch.Generator(device="cuda").manual_seed(0)
        with pytest.raises(DeviceMismatch, match="generator"):
            torch.randn(2, generator=g)  # a CUDA generator for a CPU tensor
        assert torch.randn(2, generator=g, device="cuda").device.type == "cuda"
        assert isinstance(g, torch.Generator)
        # a CUDA tensor may be indexed by CPU indices; a CPU tensor not by CUDA ones
        assert a[torch.tensor([0, 2])].device.type == "cuda"
        with pytest.raises(DeviceMismatch):
            torch.zeros(3)[torch.tensor([0, 2], device="cuda")]
        a[torch.tensor([0, 2])] = 5.0
        a[1:2] = 7.0
        assert a.cpu().tolist() == [5.0, 7.0, 5.0]
        assert torch.cuda.is_available() and Precision(device="cuda").torch_device.type == "cuda"


def test_emulator_keeps_cpu_numerics_through_autograd_and_torch_func():
    from torch.func import grad, jvp, vmap

    gen = torch.Generator().manual_seed(0)
    x0, w0 = torch.randn(5, 3, generator=gen, dtype=F64), torch.randn(3, generator=gen, dtype=F64)

    def f(th, x):
        return (torch.tanh(x @ th) ** 2).sum()

    def run(dev):
        x, w = x0.to(dev), w0.to(dev).requires_grad_(True)
        f(w, x).backward()
        hvp = vmap(lambda v: jvp(lambda t: grad(f)(t, x), (w.detach(),), (v,))[1])
        return w.grad, hvp(torch.eye(3, dtype=F64, device=dev))

    ref, out, _ = cpu_and_cuda(run)
    assert_same(ref, out)


def test_emulator_counts_syncs():
    with fake_cuda() as mode:
        a = torch.ones(3, dtype=F64, device="cuda")
        for _ in range(4):
            a.sum().item()
        float(a[0]), a.cpu(), a.tolist()
    assert sum(mode.syncs.values()) == 7


def test_npz_writer_takes_cuda_tensors(tmp_path):
    from weightscape.store import write_npz

    x = torch.linspace(-1, 1, 6, dtype=F64).reshape(2, 3)
    with fake_cuda():
        write_npz(tmp_path / "a.npz", t=x.to("cuda").requires_grad_(True), n=np.arange(3))
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["t"], x.numpy())
        np.testing.assert_array_equal(z["n"], np.arange(3))


# ---------------------------------------------------------------------------------------------
# nets + train (the ensemble step)


_RUN_KW = ("checkpoint_path", "checkpoint_every", "resume_from", "compact_every")


def _train_case(dev, *, steps=60, **train_kw):
    from weightscape.nets import Ensemble, MLPSpec
    from weightscape.train import TrainConfig, train

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 5, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (40,), generator=gen).to(F64) * 2 - 1
    specs = [MLPSpec(d_in=5, widths=(w, w)) for w in (3, 6, 9)]
    ens = Ensemble.init(specs, [0, 1, 2], device=dev)
    run_kw = {k: train_kw.pop(k) for k in _RUN_KW if k in train_kw}
    kw = {"lr": 0.01, "max_steps": steps, "poll_every": 20, **train_kw}
    cfg = TrainConfig(**kw, precision=Precision(device=dev))
    res = train(ens, x.to(dev), y.to(dev), cfg, progress=False, **run_kw)
    return {"params": res.model.params, "summary": res.summary, "gaps": res.gaps}


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"optimizer": "sgd", "batch_size": 16, "schedule": "plateau"},
        pytest.param(
            {"optimizer": "fire", "stop": ("unsat_zero", "grad_norm")}, marks=pytest.mark.slow
        ),
        pytest.param({"optimizer": "lbfgs", "lr": 1.0}, marks=pytest.mark.slow),
    ],
    ids=["adam", "sgd-minibatch-plateau", "fire", "lbfgs"],
)
def test_train_on_cuda_equals_cpu(kw):
    syncs = check(lambda dev: _train_case(dev, **kw))
    # the loop syncs at polls (every 20 of 60 steps) and at the end, never once per step
    loop = sum(v for k, v in syncs.items() if k.startswith("weightscape/train/"))
    assert loop < 40, syncs.most_common(5)


@pytest.mark.slow
def test_train_checkpoint_resume_and_compaction_on_cuda(tmp_path):
    def run(dev):
        ck = tmp_path / f"ck-{dev}"
        _train_case(dev, checkpoint_path=ck, checkpoint_every=20)
        return _train_case(dev, resume_from=ck)

    check(run)
    check(lambda dev: _train_case(dev, compact_every=20, lr=0.1))


@pytest.mark.slow
def test_train_cli_device_cuda_writes_the_cpu_run(tmp_path):
    from weightscape.cli import main

    base = ["train", "--data", "random", "-o", "P=60", "-o", "d=6", "--depth", "2", "--lr",
            "0.01", "--max-steps", "100", "--quiet", "--width", "3,6",
            "--seeds", "0-1"]  # fmt: skip

    def run(dev):
        out = tmp_path / dev
        assert main([*base, "--device", dev, "--out", str(out)]) == 0
        with np.load(out / "arrays.npz") as z:
            return {k: z[k] for k in z.files}

    check(run)


# ---------------------------------------------------------------------------------------------
# curvature


def _curv_problem(dev):
    from weightscape.nets import Ensemble, MLPSpec

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(12, 3, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (12,), generator=gen).to(F64) * 2 - 1
    return Ensemble.init(MLPSpec.uniform(3, 2, 4), [0, 1], device=dev), x.to(dev), y.to(dev)


@pytest.mark.parametrize("method", ["structured", "autodiff"])
def test_dense_hessian_on_cuda_equals_cpu(method):
    from weightscape.curvature import dense_hessian, hessian_split

    check(lambda dev: hessian_split(*_curv_problem(dev), method=method, eigenvectors=True))
    check(lambda dev: dense_hessian(*_curv_problem(dev)))


def test_hessian_of_cuda_params_with_cpu_data_equals_cpu():
    # jamming's spectra near N* pass the in-memory nets (CUDA after a --device cuda run) with
    # CPU data: x followed the parameters, the labels did not (the hinge loss raised)
    from weightscape.curvature import hinge_hessian_split, n_eff

    def run(dev):
        ens, x, y = _curv_problem("cpu")
        params = [p.to(dev) for p in ens.member_params(0)]
        return hinge_hessian_split((params, ens.specs[0]), x, y), n_eff((params, ens.specs[0]), x)

    check(run)


@pytest.mark.slow
def test_lanczos_and_n_eff_on_cuda_equal_cpu():
    from weightscape.curvature import (
        HessianOperator,
        extreme_eigenvalues,
        lanczos,
        n_eff,
        slq_density,
    )

    def run(dev):
        ens, x, y = _curv_problem(dev)
        op = HessianOperator(ens, x, y, member=0)
        return (
            extreme_eigenvalues(op, k=3, seed=1),
            slq_density(op, num_probes=2, num_steps=6, seed=2),
            lanczos(op, 5, seed=3),
            n_eff(ens, x),
        )

    check(run)


def _hessian_spy(monkeypatch) -> list[tuple[str, torch.dtype, str, torch.dtype]]:
    """Record ``(params device, params dtype, x device, x dtype)`` of every dense Hessian that
    ``weightscape hessian`` computes."""
    from weightscape.curvature import _run

    seen = []
    split = _run.hessian_split

    def spy(model, x, *args, **kwargs):
        seen.append((model.device.type, model.dtype, x.device.type, x.dtype))
        return split(model, x, *args, **kwargs)

    monkeypatch.setattr(_run, "hessian_split", spy)
    return seen


@pytest.fixture(scope="module")
def _trained_run(tmp_path_factory):
    from weightscape.cli import main

    path = tmp_path_factory.mktemp("hessian") / "run"
    argv = ["train", "--data", "random", "-o", "P=12", "-o", "d=3", "--width", "2,3",
            "--seeds", "0-1", "--max-steps", "30", "--quiet", "--out", str(path)]  # fmt: skip
    assert main(argv) == 0
    return path


def test_hessian_cli_device_cuda_writes_the_cpu_spectra(_trained_run, tmp_path, monkeypatch):
    # `weightscape hessian` had no --device: the spectra were computed on the CPU
    import json
    import shutil

    from weightscape.cli import main

    seen = _hessian_spy(monkeypatch)

    def run(dev):
        seen.clear()
        path = tmp_path / dev
        shutil.copytree(_trained_run, path)
        assert main(["hessian", str(path), "--device", dev]) == 0
        assert seen and set(seen) == {(dev, F64, dev, F64)}, seen
        meta = json.loads((path / "hessian.json").read_text())
        assert meta["provenance"]["device"].startswith(dev)
        with np.load(path / "hessian.npz") as z:
            return {k: z[k] for k in z.files}, meta["members"]

    ref, out, _ = cpu_and_cuda(run)
    assert_same(ref, out)
    assert len(ref[0]["members"]) == 4  # 2 widths x 2 seeds


# ---------------------------------------------------------------------------------------------
# landscape: batched spin model


@pytest.mark.slow
def test_spin_glass_descent_and_enumeration_on_cuda_equal_cpu():
    from weightscape.landscape import (
        DenseSpinGlass,
        DescentConfig,
        EnumerationConfig,
        SpinGlass,
        descend,
        enumerate_stationary,
        random_sphere_points,
    )

    def run(dev):
        p = Precision(device=dev)
        w0 = random_sphere_points((2, 8), 6, generator=torch.Generator().manual_seed(0))
        w5 = random_sphere_points((2, 8), 5, generator=torch.Generator().manual_seed(0))
        return (
            descend(SpinGlass.sample(6, 3, 2, seed=4, precision=p), w0.to(dev), DescentConfig()),
            descend(DenseSpinGlass.sample(5, 3, 2, seed=4, precision=p), w5.to(dev)),
            enumerate_stationary(
                SpinGlass.sample(3, 3, 1, seed=4, precision=p), EnumerationConfig(n_starts=20)
            ),
        )

    check(run)


def test_distinct_points_reads_the_device_once_per_new_point():
    from weightscape.landscape import distinct_points

    pts = torch.randn(40, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
    pts = torch.cat([pts, -pts[:10], pts[:10] + 1e-12])  # 40 classes, 20 repeats

    def run(dev):
        return distinct_points(pts.to(dev), 1e-6, sign_symmetric=True)

    ref, out, syncs = cpu_and_cuda(run)
    assert_same(ref, out)
    assert ref["counts"].sum() == 60 and len(ref["representatives"]) == 40
    # the greedy pass reads K distances once per point it compares (was 3-4 reads)
    assert sum(v for k, v in syncs.items() if "_analysis" in k) <= 60 + 5, syncs


def _spy_spin_loops(monkeypatch) -> list[tuple[str, str, torch.dtype]]:
    """Record ``(loop, device type, dtype)`` of the points every hot-loop call of the spin model
    receives: the enumeration's Newton steps and the batched GD restarts (and their polish)."""
    from weightscape.landscape import _minima, _stationary

    seen: list[tuple[str, str, torch.dtype]] = []
    step, column = _stationary.newton_step, _minima._ColumnModel.__call__

    def newton(model, w, **kw):
        seen.append(("newton", w.device.type, w.dtype))
        return step(model, w, **kw)

    def gd(self, wt):
        seen.append(("gd", wt.device.type, wt.dtype))
        return column(self, wt)

    monkeypatch.setattr(_stationary, "newton_step", newton)
    monkeypatch.setattr(_minima, "newton_step", newton)
    monkeypatch.setattr(_minima._ColumnModel, "__call__", gd)
    return seen


class _StopBeforeNets(Exception):
    pass


# the spin part of `reproduce landscape`, cut to a few seconds (the nets are never reached)
_SPIN_SCALE = {
    "analytic_N": (60,),
    "analytic_H": (2, 3, 4, 5, 6),
    "counts": {"Ns": (12,), "H": (3,), "D": 1, "starts": 20, "rounds": 1},
    "minima": {"N": 24, "H": (3,), "D": 1, "B": 8},
    "nets": {
        "activations": ("tanh",),
        "depths": (1,),
        "base": {"dataset": "iris", "n_params": 27, "n_inits": 1},
        "relu_max_steps": 1,
        "chunks": 1,
    },
}
_SPIN_TABLES = ("spin_counts", "spin_samples", "spin_minima", "spin_overlaps")


def test_reproduce_landscape_spin_tables_on_cuda_equal_cpu(tmp_path, monkeypatch):
    # before the fix `reproduce landscape --device cuda` ran the enumeration and the GD
    # restarts on the CPU (only the real nets got ctx.precision): nothing ran on the emulated
    # GPU and the spy saw CPU points
    from weightscape.landscape import reproduce as lr
    from weightscape.reproduce import StudyContext

    monkeypatch.setitem(lr.SCALES, "smoke", _SPIN_SCALE)

    def stop(*args, **kwargs):
        raise _StopBeforeNets

    monkeypatch.setattr(lr, "realnet_sweep", stop)
    seen = _spy_spin_loops(monkeypatch)

    def run(dev):
        seen.clear()
        out = tmp_path / dev / "landscape"
        with pytest.raises(_StopBeforeNets):
            lr.run(StudyContext(scale="smoke", out=out, precision=Precision(device=dev)))
        assert {loop for loop, *_ in seen} == {"newton", "gd"}
        assert set(seen) <= {("newton", dev, F64), ("gd", dev, F64)}, set(seen)
        return {n: pd.read_parquet(out / "cache" / f"{n}.parquet") for n in _SPIN_TABLES}

    check(run)


def test_spin_tables_compute_in_the_given_dtype(monkeypatch):
    # the dtype reaches the loops too; float32 cannot meet grad_tol = 1e-8 (see
    # docs/studies/landscape.md), hence the short budgets
    from weightscape.landscape import DescentConfig, EnumerationConfig, spin_counts, spin_minima

    seen = _spy_spin_loops(monkeypatch)
    p32 = Precision(dtype="float32")
    ecfg = EnumerationConfig(n_starts=6, max_rounds=1, newton_iters=3)
    counts = spin_counts(6, [3], 1, ecfg, precision=p32)
    spin_minima(9, [3], 1, 4, DescentConfig(max_steps=5, polish_steps=1), precision=p32)
    assert {loop for loop, *_ in seen} == {"newton", "gd"}
    assert set(seen) == {("newton", "cpu", torch.float32), ("gd", "cpu", torch.float32)}
    assert counts.n_starts.tolist() == [6]
    with pytest.raises(Exception, match="precision"):
        spin_counts(6, [3], 1, ecfg, precision="float32")


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_realnet_runs_on_cuda_equal_cpu(activation):
    from weightscape.landscape import RealNetConfig, run_realnet

    cfg = RealNetConfig(dataset="iris", activation=activation, depth=1, n_params=27,
                        l2=0.0 if activation == "relu" else 1e-3, n_inits=2, grad_tol=1e-9,
                        lbfgs_tol=1e-6, max_steps=300)  # fmt: skip
    check(lambda dev: run_realnet(cfg, precision=Precision(device=dev)))


# ---------------------------------------------------------------------------------------------
# maxent: BP, Metropolis, LR-nets, inverse methods


def _ising(dev="cpu"):
    from weightscape.maxent import IsingModel

    return IsingModel.random(8, coupling_std=0.3, field_std=0.3, seed=1).to(device=dev)


@pytest.mark.slow
def test_bp_and_metropolis_on_cuda_equal_cpu():
    from weightscape.maxent import (
        BetheConfig,
        BPConfig,
        MetropolisConfig,
        ReferenceSampling,
        bethe_solve,
        bp_solve,
        metropolis_sample,
        sample_references,
    )

    def run(dev):
        mc = MetropolisConfig(
            n_chains=4, n_samples=6, burn_in=20, thin=2, precision=Precision(device=dev)
        )
        fields = torch.linspace(-0.5, 0.5, 24, dtype=F64).reshape(3, 8).to(dev)
        return (
            bp_solve(_ising(dev), BPConfig()),
            bethe_solve(_ising(dev), BetheConfig(), fields=fields),
            metropolis_sample(_ising(), mc),
            metropolis_sample(_ising(dev), replace(mc, rule="heat_bath")),
            sample_references(_ising(), ReferenceSampling(n_per_class=1, metropolis=mc)),
        )

    check(run)


def test_metropolis_and_bp_stability_read_the_device_once():
    # the acceptance counts and the power iteration's norm stay on the device: a sweep (or a
    # step) costs no host read, the whole call a handful
    from weightscape.maxent import (
        BPConfig,
        MetropolisConfig,
        bp_jacobian_radius,
        bp_solve,
        metropolis_sample,
    )

    mc = MetropolisConfig(n_chains=4, n_samples=5, burn_in=50, thin=3, block_size=3)
    check(lambda dev: metropolis_sample(_ising(), replace(mc, precision=Precision(device=dev))))
    messages = bp_solve(_ising(), BPConfig())[0]

    def radius(dev):
        return bp_jacobian_radius(_ising(dev), messages.to(dev), n_iter=100)

    ref, out, syncs = cpu_and_cuda(radius)
    assert ref == out
    with fake_cuda() as mode:
        metropolis_sample(_ising(), replace(mc, precision=Precision(device="cuda")))
    per_file = Counter()
    for site, k in (syncs + mode.syncs).items():
        per_file[site.split(":")[0]] += k
    assert per_file["weightscape/maxent/_metropolis.py"] <= 5, mode.syncs
    assert per_file["weightscape/maxent/_bp_learning.py"] <= 2, syncs


def test_entropy_landscape_and_tap_on_cuda_equal_cpu():
    from weightscape.maxent import LandscapeConfig, bp_fixed_points, entropy_landscapes
    from weightscape.maxent._tap import TAPConfig, tap_landscape

    refs = np.random.default_rng(0).choice([-1.0, 1.0], (2, 8))

    def run(dev):
        p = Precision(device=dev)
        cfg = LandscapeConfig(x_min=-1, x_max=1, x_step=0.25, precision=p)
        # references may be given as a tensor on the device (np.asarray of it raised)
        refs_t = torch.as_tensor(refs, device=dev)
        return (
            entropy_landscapes(_ising(), refs_t, cfg),
            bp_fixed_points(_ising(), n_starts=4, reference=refs[0], x=0.5, precision=p),
            tap_landscape(_ising(), TAPConfig(n_starts=10, max_iter=50, precision=p)),
        )

    check(run)


def test_tap_inversion_on_cuda_equals_cpu():
    # raised DeviceMismatch before its fix (torch.eye without device= met the CUDA moments)
    from weightscape.maxent import TAPInversion, sample_moments

    S = np.random.default_rng(0).choice([-1.0, 1.0], (200, 8))
    check(lambda dev: TAPInversion().fit(sample_moments(torch.as_tensor(S, device=dev))))


@pytest.mark.slow
def test_maxent_landscape_cli_device_cuda_writes_the_cpu_run(tmp_path):
    from weightscape.cli import main

    _ising().save(tmp_path / "model.npz")
    argv = ["maxent", "landscape", str(tmp_path / "model.npz"), "--x-min", "-1", "--x-max", "1",
            "--x-step", "0.5", "--n-per-class", "1", "--mc-chains", "4", "--mc-samples", "10",
            "--mc-burn-in", "20", "--no-plots"]  # fmt: skip

    def run(dev):
        out = tmp_path / dev
        assert main([*argv, "--device", dev, "--out", str(out)]) == 0
        with np.load(out / "landscape.npz") as z:
            arrays = {k: z[k] for k in z.files}
        return arrays, pd.read_parquet(out / "landscape.parquet")

    check(run)


@pytest.mark.slow
def test_inverse_methods_on_cuda_equal_cpu():
    from weightscape.maxent import (
        BoltzmannBP,
        BoltzmannBPConfig,
        ExactBoltzmann,
        MeanFieldInversion,
        MetropolisConfig,
        PseudoLikelihood,
        TAPInversion,
        metropolis_sample,
        sample_moments,
    )

    S = metropolis_sample(_ising(), MetropolisConfig(n_chains=20, n_samples=20, burn_in=50))[0]

    def run(dev):
        X = torch.as_tensor(S, dtype=F64, device=dev)
        mom = sample_moments(X)
        methods = [BoltzmannBP(BoltzmannBPConfig(n_iter=5, keep_from=1)), MeanFieldInversion(),
                   TAPInversion(), ExactBoltzmann()]  # fmt: skip
        return [m.fit(mom)[0] for m in methods] + [PseudoLikelihood().fit(X)[0]]

    check(run)


def test_lrnet_samples_and_frozen_centre_on_cuda_equal_cpu():
    from weightscape.maxent import (
        FrozenCentreConfig,
        LRNetConfig,
        SampleConfig,
        draw_weight_samples,
        train_frozen_centre,
        train_lrnet,
    )

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 8)), rng.integers(0, 3, 200)

    def run(dev):
        lc = LRNetConfig(arch="8-6-6-3", n_runs=2, epochs=2, batch_size=50,
                         precision=Precision(device=dev))  # fmt: skip
        res = train_lrnet(X, Y, lc)
        ws = draw_weight_samples(res, X[:50], Y[:50], SampleConfig(n_draws=5))
        fz = train_frozen_centre(X, Y, X[:50], Y[:50], FrozenCentreConfig(lrnet=lc, eval_draws=2))
        return res, ws, fz

    check(run)


# ---------------------------------------------------------------------------------------------
# jamming: the protocol's runs


@pytest.mark.slow
def test_jamming_members_on_cuda_equal_cpu():
    from weightscape.jamming import get_protocol, train_members

    def run(dev):
        p = get_protocol("fast", device=dev, max_steps=200)
        return train_members([p.run_config(depth=1, width=3, seed=s, P=30) for s in (0, 1)])

    check(run)


@pytest.mark.slow
def test_jamming_in_memory_records_analyse_on_cuda():
    # executor="memory" (reproduce --scale smoke) keeps the trained nets in the records; the
    # post-analysis (dead-unit report, Hessians near N*) builds CPU inputs for them. Before the
    # fix the records held CUDA parameters and the dead-unit report raised.
    from weightscape.jamming import get_protocol, run_records
    from weightscape.jamming._runner import _dead_report

    def run(dev):
        p = get_protocol("fast", device=dev, max_steps=100)
        recs = run_records([p.run_config(depth=1, width=3, seed=s, P=30) for s in (0, 1)])
        return [r.load_net()[0] for r in recs], [_dead_report(r) for r in recs]

    check(run)


@pytest.mark.slow
def test_jamming_spectra_near_nstar_on_cuda_equal_cpu():
    # the path that raised before the label fix: in-memory (smoke) runs keep CUDA nets, the
    # spectra near N* evaluate them on CPU data
    from weightscape.jamming import PlateauRule, Problem, get_protocol, scan_widths
    from weightscape.jamming import spectra_near_nstar as spectra

    rule = PlateauRule(min_step=300, ndelta_atol=2, ndelta_rtol=0.05, loss_rtol=0.05)

    def run(dev):
        prot = replace(get_protocol("fast"), max_steps=1000, plateau=rule, device=dev)
        scan = scan_widths(Problem(P=30, depth=1), [2, 10], prot, seeds=2, n_boot=20)
        sp = spectra(scan, with_neff=True)
        return sp.table, sp.eigs

    check(run)


def test_resolve_precision_is_the_one_check_of_precision_arguments(tmp_path):
    """``None`` is float64 on the CPU, a Precision passes through, anything else is a
    ConfigError naming it — in run_reproduce and the spin-model tables alike."""
    from weightscape.config import resolve_precision
    from weightscape.errors import ConfigError
    from weightscape.landscape._study import spin_minima
    from weightscape.reproduce import run_reproduce

    assert resolve_precision(None) == Precision()
    p = Precision(dtype="float32")
    assert resolve_precision(p) is p
    from weightscape import maxent

    for call in (
        lambda: resolve_precision("float32"),
        lambda: run_reproduce("maxent", "smoke", tmp_path / "out", precision="float32"),
        lambda: spin_minima(12, [3], 1, 2, precision="float32"),
        # every maxent config with a precision (they crashed later with AttributeError)
        lambda: maxent.LandscapeConfig(precision="float32"),
        lambda: maxent.MCLandscapeConfig(precision="float32"),
        lambda: maxent.MetropolisConfig(precision="float32"),
        lambda: maxent.LRNetConfig(precision="float32"),
        lambda: maxent.TAPConfig(precision="float32"),
        lambda: maxent.bp_fixed_points(maxent.IsingModel.zeros(3), precision="float32"),
    ):
        with pytest.raises(
            ConfigError, match=r"precision='float32' must be a weightscape\.Precision"
        ):
            call()
    assert not (tmp_path / "out").exists()
