"""Dense float64 Hessian spectra at a jammed point: weightscape.curvature vs the authors' way.

Point (a prescribed N_Δ): depth 3, d = h = 30 (N = 2821 parameters), P = 2000 random Gaussian
inputs with ±1 labels, quadratic hinge κ = 1, trained here by plain full-batch Adam (lr 1e-3) from
the geiger2019 init, stopped at the first step where N_Δ ≤ ``--n-unsat`` (default P/2; checked
every 10 steps, at most ``--steps``). With N = 2821 > N* ≈ P/3 this net is over-parametrised: run
to the end, Adam reaches N_Δ = 0 (measured: 0 after 3000 steps) and the Hessian vanishes, so the
point is taken on the way down, where the cost matches a jammed point with N_Δ ≈ P/2.

Baseline (what the authors' scripts do): one forward of the unsatisfied points with a graph, then
one ``autograd.grad`` backward per unsatisfied sample, accumulating ``H0 += g gᵀ / P``; ``Hp`` row
by row with double backward of ``(1/P) Σ_{Δ>0} Δ·∇Δ``; three dense ``eigvalsh`` (H0, Hp, H).
Ours: ``hinge_hessian_split`` (one batched Jacobian + GEMM for H0 and its spectrum from the
N_Δ × N_Δ Gram matrix; layer-structured Hp in a few GEMMs; two dense ``eigvalsh``).

Ours runs once before and twice after the baseline (median reported). Prints the time and peak
memory of each part for both, the agreement of the two H, the ratio per
part and in total, and ends with ``ratio: X`` (total baseline time / total ours).
Optional parts (the lead's final timings): ``--max-n`` (largest N whose dense spectrum finishes in
60 s), ``--lanczos`` (Lanczos top-20 and an SLQ density at N ≈ 30k).

    python benchmarks/hessian.py [--device cuda] [--quick] [--max-n] [--lanczos]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch

from weightscape.curvature import (
    HessianOperator,
    extreme_eigenvalues,
    flatten_params,
    hinge_hessian_split,
    slq_density,
)
from weightscape.nets import Ensemble, MLPSpec, mlp_forward
from weightscape.train.losses import QuadraticHinge


# ------------------------------------------------------------------------------------------------
# timing and memory
class PeakMemory:
    """Peak memory above the start of a block: CUDA allocator stats, or sampled RSS on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = self._rss()
            self._stop = threading.Event()
            self._max = self.base

            def sample():
                while not self._stop.wait(0.005):
                    self._max = max(self._max, self._rss())

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._max, self._rss()) - self.base
        self.seconds = time.perf_counter() - self.t0


def mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


# ------------------------------------------------------------------------------------------------
# the jammed point
def jammed_point(P, d, h, depth, steps, lr, seed, device, n_unsat_target=None):
    spec = MLPSpec.uniform(d, depth, h)
    params = [p.to(device) for p in Ensemble.init(spec, [seed]).member_params(0)]
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(P, d, generator=gen, dtype=torch.float64).to(device)
    y = (torch.randint(0, 2, (P,), generator=gen).to(torch.float64) * 2 - 1).to(device)
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.Adam(ps, lr=lr)
    loss = QuadraticHinge(1.0)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        f = mlp_forward(ps, x, spec)
        if n_unsat_target is not None and step % 10 == 0:
            if int(((1.0 - y * f.detach()[:, 0]) > 0).sum()) <= n_unsat_target:
                break
        loss.per_sample(f, y).mean().backward()
        opt.step()
    params = [p.detach() for p in ps]
    with torch.no_grad():
        f = mlp_forward(params, x, spec)[:, 0]
    n_unsat = int(((1.0 - y * f) > 0).sum())
    return spec, params, x, y, n_unsat, step


# ------------------------------------------------------------------------------------------------
# the baseline
def baseline(spec, params, x, y, kappa, device):
    P = x.shape[0]
    N = spec.n_params
    ps = [p.clone().requires_grad_(True) for p in params]
    with torch.no_grad():
        gap = kappa - y * mlp_forward(params, x, spec)[:, 0]
    idx = torch.nonzero(gap > 0)[:, 0]
    times, peaks = {}, {}
    with PeakMemory(device) as pm:
        out = kappa - y[idx] * mlp_forward(ps, x[idx], spec)[:, 0]  # Δ of the unsatisfied points
        H0 = torch.zeros(N, N, dtype=torch.float64, device=device)
        for i in range(idx.numel()):
            g = torch.autograd.grad(out[i], ps, retain_graph=True)
            g = torch.cat([t.reshape(-1) for t in g])
            H0.addr_(g, g, alpha=1.0 / P)
    times["H0"], peaks["H0"] = pm.seconds, pm.peak
    with PeakMemory(device) as pm:
        delta = kappa - y[idx] * mlp_forward(ps, x[idx], spec)[:, 0]
        obj = (delta.detach() * delta).sum() / P
        g = torch.autograd.grad(obj, ps, create_graph=True)
        g = torch.cat([t.reshape(-1) for t in g])
        rows = []
        for i in range(N):
            r = torch.autograd.grad(g[i], ps, retain_graph=True, materialize_grads=True)
            rows.append(torch.cat([t.reshape(-1) for t in r]))
        Hp = torch.stack(rows)
        H = H0 + Hp
    times["Hp"], peaks["Hp"] = pm.seconds, pm.peak
    with PeakMemory(device) as pm:
        eigs = [torch.linalg.eigvalsh(A) for A in (H0, Hp, H)]
    times["eig"], peaks["eig"] = pm.seconds, pm.peak
    return H, eigs, times, peaks


def ours(spec, params, x, y, kappa, device):
    with PeakMemory(device) as pm:
        s = hinge_hessian_split((params, spec), x, y, kappa=kappa)
    t = s.timings
    times = {"H0": t["H0"], "Hp": t["Hp"], "eig": t["eig_H0"] + t["eig_Hp"] + t["eig_H"]}
    return s, times, pm.peak, pm.seconds


# ------------------------------------------------------------------------------------------------
# optional parts
def largest_dense_n(P, depth, device, budget_s=60.0, seed=0):
    """Largest N (depth 3, d = h) whose full dense split + three spectra finish in budget_s."""
    best = None
    for h in (30, 40, 50, 60, 70, 80, 90, 100):
        spec = MLPSpec.uniform(h, depth, h)
        params = [p.to(device) for p in Ensemble.init(spec, [seed]).member_params(0)]
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(P, h, generator=gen, dtype=torch.float64).to(device)
        y = (torch.randint(0, 2, (P,), generator=gen).to(torch.float64) * 2 - 1).to(device)
        t0 = time.perf_counter()
        s = hinge_hessian_split((params, spec), x, y)
        dt = time.perf_counter() - t0
        print(f"  dense N = {spec.n_params:6d} (h = {h}, N_Δ = {s.n_unsat}): {dt:7.2f} s")
        del s
        if dt > budget_s:
            break
        best = spec.n_params
    return best


def lanczos_30k(P, device, seed=0):
    h = 100  # depth 3, d = h = 100: N = 30401
    spec, params, x, y, n_unsat, _ = jammed_point(P, h, h, 3, 200, 1e-3, seed, device)
    op = HessianOperator((params, spec), x, y, memory_budget=2**30)
    t0 = time.perf_counter()
    top = extreme_eigenvalues(op, 20, which="largest", tol=1e-8)
    t1 = time.perf_counter()
    dens = slq_density(op, num_probes=10, num_steps=80)
    t2 = time.perf_counter()
    print(
        f"  N = {spec.n_params}, N_Δ = {n_unsat} (Adam 200 steps): Lanczos top-20 "
        f"{t1 - t0:.2f} s ({top.steps} steps, converged={top.converged}, "
        f"λ_max={top.values[0]:.4g}); SLQ 10 probes x 80 steps {t2 - t1:.2f} s "
        f"(mean λ ≈ {dens.expect(lambda t: t):.3g})"
    )


# ------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--P", type=int, default=2000)
    ap.add_argument("--width", type=int, default=30, help="d = h")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5000, help="Adam steps at most")
    ap.add_argument("--n-unsat", type=int, default=None, help="stop at N_Δ <= this (P/2)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a check run")
    ap.add_argument("--max-n", action="store_true", help="largest N dense in 60 s")
    ap.add_argument("--lanczos", action="store_true", help="Lanczos + SLQ at N ≈ 30k")
    a = ap.parse_args()
    if a.quick:
        a.P, a.width, a.steps = 300, 12, 300
    device = torch.device(a.device)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"P={a.P} d=h={a.width} depth={a.depth}"
    )
    t0 = time.perf_counter()
    target = a.P // 2 if a.n_unsat is None else a.n_unsat
    spec, params, x, y, n_unsat, steps = jammed_point(
        a.P, a.width, a.width, a.depth, a.steps, a.lr, a.seed, device, target
    )
    print(
        f"point: Adam {steps} steps (lr {a.lr}, stop at N_Δ <= {target}) in "
        f"{time.perf_counter() - t0:.1f} s: "
        f"N = {spec.n_params}, N_Δ = {n_unsat} (N_Δ/P = {n_unsat / a.P:.2f})"
    )
    # ours once before and twice after the long baseline, reporting the median run (by wall
    # time): on a shared machine the load drifts over the baseline's minutes
    runs = [ours(spec, params, x, y, 1.0, device)]
    H_b, eigs_b, t_base, peak_base = baseline(spec, params, x, y, 1.0, device)
    runs += [ours(spec, params, x, y, 1.0, device) for _ in range(2)]
    walls = [r[3] for r in runs]
    s, t_ours, peak_ours, wall_ours = sorted(runs, key=lambda r: r[3])[1]
    print("ours wall times (s): " + ", ".join(f"{w:.3f}" for w in walls) + " -> median")
    err = float((s.H - H_b).abs().max() / H_b.abs().max())
    eig_err = float((s.eigs_H - eigs_b[2]).abs().max() / eigs_b[2].abs().max())
    print(f"agreement: max|H_ours − H_base| / max|H| = {err:.2e}; spectra of H: {eig_err:.2e}")
    c = s.counts["H"]
    print(
        f"H: {c.negative} negative / {c.zero} zero / {c.positive} positive (rtol 1e-9); "
        f"|θ| = {float(flatten_params(params).norm()):.3g}"
    )
    print(f"{'part':6s} {'baseline':>10s} {'ours':>10s} {'ratio':>8s}   peak mem baseline / ours")
    for part in ("H0", "Hp", "eig"):
        b, o = t_base[part], t_ours[part]
        print(f"{part:6s} {b:9.3f}s {o:9.3f}s {b / o:7.1f}x   {mib(peak_base[part])}")
    # ours in total: the whole hinge_hessian_split call (forward, loss derivatives and
    # bookkeeping included), not only the sum of the parts above
    total_b, total_o = sum(t_base.values()), wall_ours
    print(
        f"{'total':6s} {total_b:9.3f}s {total_o:9.3f}s {total_b / total_o:7.1f}x   "
        f"{mib(max(peak_base.values()))} / {mib(peak_ours)}"
    )
    if a.max_n:
        best = largest_dense_n(a.P, a.depth, device)
        print(f"largest N with a dense spectrum in 60 s: {best}")
    if a.lanczos:
        lanczos_30k(a.P, device)
    print(f"ratio: {total_b / total_o:.1f}")


if __name__ == "__main__":
    main()
