"""Batched projected-GD restarts on the spherical H-spin glass vs one restart at a time in NumPy.

Both sides run the same algorithm on the same disorder and the same starts: fixed-step projected
gradient descent on the sphere |w|^2 = Lambda (step ``default_step(H)``) until the Riemannian
gradient norm is < 1e-8, with the energy evaluated through the same flattening
``F(w) = phi_a(w)^T M phi_b(w)`` of the monomial coefficients (the fastest dense-free form; the
baseline gets it too, so the ratio measures batching, not the representation). Ours: all restarts
in one torch float64 batch (``weightscape.landscape.descend``), converged restarts leave the batch.
Baseline: a NumPy loop over restarts, each a loop over steps (matrix-vector products); ``--seq``
restarts are timed and their time per GD step is scaled to the total steps of all ``--restarts``
restarts (same steps on both sides; the per-restart linear extrapolation is printed too).

Usage (real size, <= 10 min on an idle machine):
    python benchmarks/spin_restarts.py                 # Lambda = 60, H = 4, 1000 vs 20
    python benchmarks/spin_restarts.py --lam 12 --restarts 40 --seq 4   # quick check
The last line is ``ratio: X`` = (extrapolated NumPy time) / (batched torch time).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from weightscape.landscape import (
    DescentConfig,
    SpinGlass,
    default_step,
    derivative_table,
    descend,
    multisets,
    random_sphere_points,
)


def numpy_gd(model: SpinGlass, w: np.ndarray, eta: float, tol: float, max_steps: int):
    """One restart of projected GD in NumPy, the same arithmetic as the batched torch path."""
    lam, a, b = model.lam, model.a, model.b
    M = model.flattening[0].cpu().numpy()
    scale = model.scale
    rows = {d: multisets(lam, d) for d in {a, b, a - 1, max(b - 1, 0)}}
    tabs = {d: derivative_table(lam, d) for d in {a, b} if d > 0}

    def phi(x, d):
        return np.ones(1) if d == 0 else np.prod(x[rows[d]], axis=1)

    def jt(y, x, d):
        if d == 0:
            return np.zeros(lam)
        t = tabs[d]
        return np.bincount(
            t.var, weights=y[t.source] * t.coef * phi(x, d - 1)[t.target], minlength=lam
        )

    for it in range(max_steps + 1):
        pa = phi(w, a)
        z = pa @ M
        if a == b:
            g = 2.0 * jt(z, w, a)
        else:
            g = jt(M @ phi(w, b), w, a) + jt(z, w, b)
        g *= scale
        gr = g - (w @ g) / (w @ w) * w
        if np.linalg.norm(gr) < tol:
            return w, it
        w = w - eta * gr
        w *= math.sqrt(lam) / np.linalg.norm(w)
    return w, max_steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lam", type=int, default=60)
    p.add_argument("--H", type=int, default=4)
    p.add_argument("--restarts", type=int, default=1000)
    p.add_argument("--seq", type=int, default=20, help="NumPy restarts timed (extrapolated)")
    p.add_argument("--tol", type=float, default=1e-8)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    model = SpinGlass.sample(args.lam, args.H, 1, seed=args.seed)
    if args.device != "cpu":
        model = SpinGlass(model.coefficients.to(args.device), args.lam, args.H)
    w0 = random_sphere_points(
        (1, args.restarts), args.lam, generator=torch.Generator().manual_seed(args.seed + 1)
    )
    eta = default_step(args.H)
    print(
        f"spin glass Lambda={args.lam} H={args.H}: flattening {model.a}+{model.b}, "
        f"M {tuple(model.flattening.shape[1:])}; step {eta:.4f}; tol {args.tol:g}; "
        f"torch threads {torch.get_num_threads()}, device {args.device}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus"
    )

    cfg = DescentConfig(
        step=eta, grad_tol=args.tol, max_steps=args.max_steps, polish_steps=0, hessian=False
    )
    descend(model, w0[:, :2].to(args.device), cfg)  # warm-up (tables, allocator)
    if args.device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = descend(model, w0.to(args.device), cfg)[0]
    if args.device != "cpu":
        torch.cuda.synchronize()
    t_batched = time.perf_counter() - t0
    print(
        f"batched torch: {args.restarts} restarts in {t_batched:.2f} s "
        f"({1e3 * t_batched / args.restarts:.2f} ms/restart); "
        f"converged {res.converged.mean():.3f}; "
        f"steps median {np.median(res.steps):.0f}, max {res.steps.max()}"
    )

    cpu_model = (
        model if args.device == "cpu" else SpinGlass(model.coefficients.cpu(), args.lam, args.H)
    )
    starts = w0[0, : args.seq].numpy()
    t0 = time.perf_counter()
    outs = [numpy_gd(cpu_model, s.copy(), eta, args.tol, args.max_steps) for s in starts]
    t_seq = time.perf_counter() - t0
    t_linear = t_seq * args.restarts / args.seq
    dw = max(np.abs(o[0] - res.points[i]).max() for i, o in enumerate(outs))
    dsteps = max(abs(o[1] - int(res.steps[i])) for i, o in enumerate(outs))
    print(
        f"agreement on the first {args.seq} restarts: max |dw| = {dw:.2e}, max |dsteps| = {dsteps}"
    )
    # Both sides take the same steps on the same starts (checked above), and the step counts
    # are heavy-tailed (a few restarts near marginal minima take 10-20x the median), so the
    # per-step time of the timed restarts scaled by the total steps of all restarts is the
    # low-variance extrapolation; the plain per-restart one is printed beside it.
    seq_steps = sum(o[1] + 1 for o in outs)
    all_steps = int((res.steps + 1).sum())
    t_extra = t_seq * all_steps / seq_steps
    print(
        f"numpy one at a time: {args.seq} restarts in {t_seq:.2f} s, {seq_steps} steps "
        f"({1e3 * t_seq / seq_steps:.3f} ms/step) -> {t_extra:.1f} s for the {all_steps} steps "
        f"of all {args.restarts} restarts (per-restart extrapolation: {t_linear:.1f} s, "
        f"ratio {t_linear / t_batched:.1f}); batched: {1e3 * t_batched / all_steps:.3f} ms/step"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"ratio: {t_extra / t_batched:.1f}")


if __name__ == "__main__":
    main()
