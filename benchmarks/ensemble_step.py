"""Time per net-step: a batched ensemble (weightscape.train) vs the authors' one-net loop.

Problem (the jamming protocol at small size): random Gaussian data, P = 2000, d = h = 30, depth 3,
float64, quadratic hinge (κ = 1), Adam (lr 1e-4). Both sides start from the same initial nets.

* baseline: a loop over single ``torch.nn`` nets (``Ensemble.to_module``), each step doing what
  the authors' scripts do: a no-grad forward over all P, the unsatisfied subset Δ > 0, a second
  forward/backward on that subset, ``.item()`` reads, ``torch.optim.Adam``;
* ours: :func:`weightscape.train.train` on an ensemble of M members (fused step, on-device stop
  rules and metrics).

Printed: seconds per net-step of each, the ensemble's achieved GFLOP/s (dense forward + backward
count over all P) as a fraction of a large float64 matmul timed in the same run, and last
``ratio: X`` = baseline time per net-step / ensemble time per net-step.

Usage: ``python benchmarks/ensemble_step.py [--M 64] [--steps 20] [--device cuda --M 1024]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import TrainConfig, train


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_data(P, d, device, seed=0):
    """Centred Gaussian inputs rescaled to norm √d, balanced ±1 labels (the paper's recipe)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, d, generator=g, dtype=torch.float64)
    x -= x.mean(0)
    x *= d**0.5 / x.norm(dim=1, keepdim=True)
    y = torch.ones(P, dtype=torch.float64)
    y[torch.randperm(P, generator=g)[: P // 2]] = -1
    return x.to(device), y.to(device)


def baseline(ens, x, y, steps, n_nets, lr, device):
    """Seconds per net-step of the authors' per-step procedure, one net after the other."""
    P = x.shape[0]
    total = 0.0
    for m in range(n_nets):
        net = ens.to_module(m)
        opt = torch.optim.Adam(net.parameters(), lr=lr)

        def step(net=net, opt=opt):
            with torch.no_grad():
                delta = 1.0 - y * net(x).squeeze(-1)
                unsat = delta > 0
                loss_all = 0.5 * (delta[unsat] ** 2).sum() / P
            n_unsat = int(unsat.sum().item())
            _ = loss_all.item()
            if n_unsat == 0:
                return
            opt.zero_grad()
            out = net(x[unsat]).squeeze(-1)
            loss = 0.5 * ((1.0 - y[unsat] * out) ** 2).sum() / P
            loss.backward()
            opt.step()
            _ = loss.item()

        step()  # warm-up (allocator, kernels)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        total += time.perf_counter() - t0
    return total / (n_nets * steps)


def ensemble(spec, M, x, y, steps, lr, device):
    """Seconds per net-step of weightscape.train on an M-member ensemble."""
    cfg = TrainConfig(
        loss="quadratic_hinge",
        optimizer="adam",
        lr=lr,
        max_steps=steps,
        stop=("unsat_zero",),
        n_log_points=150,
        poll_every=max(steps, 1),
    )
    warm = Ensemble.init(spec, seeds=M, device=device)
    train(warm, x, y, TrainConfig(lr=lr, max_steps=2, stop=()), progress=False)
    ens = Ensemble.init(spec, seeds=M, device=device)
    _sync(device)
    t0 = time.perf_counter()
    res = train(ens, x, y, cfg, progress=False)
    _sync(device)
    dt = time.perf_counter() - t0
    return dt / (M * steps), res


def dense_flops(spec, P):
    """FLOPs of one net-step counted densely over all P: forward, weight and input gradients
    (no input gradient for the first layer)."""
    s = spec.sizes
    fwd = sum(2 * P * s[i] * s[i + 1] for i in range(len(s) - 1))
    back_in = sum(2 * P * s[i] * s[i + 1] for i in range(1, len(s) - 1))
    return 2 * fwd + back_in


def matmul_gflops(device, n):
    a = torch.randn(n, n, dtype=torch.float64, device=device)
    b = torch.randn(n, n, dtype=torch.float64, device=device)
    a @ b
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0 or reps < 3:
        a @ b
        _sync(device)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--M", type=int, default=64, help="ensemble members")
    ap.add_argument("--P", type=int, default=2000)
    ap.add_argument("--d", type=int, default=30, help="input dimension = width")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--baseline-nets", type=int, default=None, help="default min(M, 64)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = MLPSpec.uniform(args.d, args.depth, args.d)
    x, y = random_data(args.P, args.d, device)
    n_base = args.baseline_nets or min(args.M, 64)
    print(
        f"device={device} threads={torch.get_num_threads()} M={args.M} P={args.P} d=h={args.d} "
        f"depth={args.depth} N={spec.n_weights} steps={args.steps} baseline_nets={n_base}"
    )
    ref_ens = Ensemble.init(spec, seeds=n_base, device=device)
    t_base = baseline(ref_ens, x, y, args.steps, n_base, args.lr, device)
    t_ours, res = ensemble(spec, args.M, x, y, args.steps, args.lr, device)
    flops = dense_flops(spec, args.P)
    gf_ours = flops / t_ours / 1e9
    gf_mm = matmul_gflops(device, 1024 if device.type == "cpu" else 8192)
    n_unsat = res.summary.n_unsat.mean()
    print(f"N_Delta/P at the end (mean over members): {n_unsat / args.P:.3f}")
    print(f"baseline (authors' per-net loop): {t_base * 1e3:.3f} ms per net-step")
    print(f"ensemble (weightscape.train, M={args.M}): {t_ours * 1e3:.3f} ms per net-step")
    print(
        f"ensemble achieved {gf_ours:.2f} GFLOP/s (dense count {flops / 1e6:.1f} MFLOP per "
        f"net-step); large float64 matmul {gf_mm:.2f} GFLOP/s; fraction {gf_ours / gf_mm:.2f}"
    )
    print(f"ratio: {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
