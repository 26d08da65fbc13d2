"""Entropy-landscape BP: ours (weightscape.maxent.entropy_landscapes) vs a vectorised NumPy BP like
the authors' (all messages updated at once per sweep), on one full two-direction tilt sweep.

Model: N = 675 spins, couplings J_ij ~ N(0, 0.03²) (the paper's fitted scale), fields
h_i ~ N(0, 0.1²); references are seeded uniform ±1 configurations. Both solvers use the spec's
conventions: messages start at 0 at x = +3, sweep down to -3 then back up (121 tilts × 2 at step
0.05), warm start from the previous x, damping 0.5, converged when the largest message change of
a damped step is below 1e-6; at every converged x both compute m, q, the Bethe free energy and the
energy. Ours iterates as the landscape does by default (``--accel``: adaptive damping, Anderson
mixing once convergence turns slow, which never happens on this model; extrapolated warm starts,
``--predictor``); the criterion is the same.

The baseline solves one reference (its time is multiplied by R when R references are asked for,
and this is printed); ours solves all R references batched. ``--device cuda`` runs ours on the GPU
(the baseline stays NumPy on the CPU). Both use ``--threads`` CPU threads (default 1: NumPy's
elementwise kernels are single-threaded).

    python benchmarks/bp_landscape.py                       # N = 675, CPU, 1 reference
    python benchmarks/bp_landscape.py --device cuda --references 30
    python benchmarks/bp_landscape.py --n 120 --x-step 0.25 # quick check

Allocator: by default (``--malloc heap``) glibc is told (``mallopt``) to serve arrays up to 32 MiB
from the heap and keep freed memory. Otherwise every NumPy temporary of the baseline (3.6 MB at
N = 675) can be a fresh ``mmap``, i.e. ~900 page faults, and its sweep then costs 9-11 ms instead
of 3.6 ms (half of it kernel time), depending on the allocator's state left by earlier work and on
the machine's load, not on the algorithm. ``--malloc default`` keeps glibc's behaviour.

The last line is ``ratio: X`` = baseline seconds / our seconds (for all R references).
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np
import torch

from weightscape.config import Precision
from weightscape.maxent import BetheConfig, IsingModel, LandscapeConfig, entropy_landscapes


def numpy_bp_landscape(J, h, ref, xs_down, damping=0.5, tol=1e-6, max_iter=1000):
    """The baseline: authors'-style synchronous BP in NumPy, swept down then up with warm starts.

    Messages ``M[k, i] = m_{k→i}``; one sweep computes every cavity field with arctanh and every
    message with tanh; converged when ``max|M_new - M_old| < tol`` (the damped change).
    Returns ``(d [2, K] in ascending-x order, converged [2, K], total sweeps)``.
    """
    n = len(h)
    tJ = np.tanh(J)
    lncosh = 0.5 * np.log(np.cosh(J)).sum()
    M = np.zeros((n, n))
    K = len(xs_down)
    d = np.full((2, K), np.nan)
    conv = np.zeros((2, K), dtype=bool)
    sweeps = 0
    for row, order in ((0, range(K)), (1, range(K - 1, -1, -1))):
        for k in order:
            x = xs_down[k]
            hx = h + x * ref
            ok = False
            for _ in range(max_iter):
                U = np.arctanh(tJ * M)
                H = hx + U.sum(0)
                new = np.tanh(H[:, None] - U.T)
                np.fill_diagonal(new, 0.0)
                new = damping * M + (1.0 - damping) * new
                delta = np.abs(new - M).max()
                M = new
                sweeps += 1
                if delta < tol:
                    ok = True
                    break
            # marginals and thermodynamics at the fixed point (as the authors do per x)
            Y = tJ * M
            H = hx + np.arctanh(Y).sum(0)
            m = np.tanh(H)
            mm = M * M.T
            C = (tJ + mm) / (1.0 + tJ * mm)
            free = (lncosh + np.log(2 * np.cosh(H)).sum() + 0.5 * np.log1p(-Y * Y).sum()
                    - 0.5 * np.log1p(tJ * mm).sum()) / n  # fmt: skip
            energy = -(0.5 * (J * C).sum() + hx @ m) / n
            _ = free, energy
            q = ref @ m / n
            col = K - 1 - k  # ascending-x column
            d[row, col] = 0.5 * (1 - q)
            conv[row, col] = ok
    return d, conv, sweeps


def cpu_line() -> str:
    """The CPU model and whether it has AVX-512: the baseline's N² NumPy tanh/arctanh per sweep
    run ~5x faster with AVX-512 (NumPy's SIMD kernels) than with AVX2 (scalar libm), ours
    computes O(N) of them, so the ratio depends on the host (BENCHMARKS.md)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return "cpu unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.startswith("model name")), "unknown")  # fmt: skip
    return f"cpu {model}, {'AVX-512' if ' avx512f' in text else 'no AVX-512'}"


def keep_large_arrays_on_the_heap() -> bool:
    """glibc ``mallopt``: no ``mmap`` (and page faults) per array below 32 MiB, no heap trimming.
    Returns whether it took effect (False off glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's parameter numbers
    return bool(
        libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=675)
    ap.add_argument("--coupling-std", type=float, default=0.03)
    ap.add_argument("--field-std", type=float, default=0.1)
    ap.add_argument("--x-step", type=float, default=0.05)
    ap.add_argument("--references", type=int, default=1, help="R references (ours: batched)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--accel", default=LandscapeConfig().bp.accel,
        help="ours: BP acceleration (default: the landscape's, adaptive+anderson), adaptive, "
             "anderson or none",
    )  # fmt: skip
    ap.add_argument(
        "--predictor",
        default=LandscapeConfig().predictor,
        help="ours: previous, linear, quadratic, cubic (default: the landscape's)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--malloc", default="heap", choices=("heap", "default"),
        help="heap: keep arrays < 32 MiB on the glibc heap (no page faults per temporary)",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    heap = args.malloc == "heap" and keep_large_arrays_on_the_heap()

    model = IsingModel.random(
        args.n, coupling_std=args.coupling_std, field_std=args.field_std, seed=args.seed
    )
    refs = np.random.default_rng(args.seed).choice([-1.0, 1.0], (args.references, args.n))
    cfg = LandscapeConfig(
        x_step=args.x_step,
        predictor=args.predictor,
        bp=BetheConfig(damping=0.5, tol=1e-6, accel=args.accel),
        precision=Precision(device=args.device),
    )
    K = len(cfg.grid)
    print(f"N = {args.n}, J std {args.coupling_std}, h std {args.field_std}, "
          f"{K} tilts x 2 directions, R = {args.references}, device {args.device}, "
          f"threads {args.threads}, allocator {'heap' if heap else 'default'}, "
          f"{cpu_line()}")  # fmt: skip

    # ours (warm-up on a 3-tilt grid first: allocator, CUDA context, kernels)
    warm = LandscapeConfig(x_min=-0.1, x_max=0.1, x_step=0.1, bp=cfg.bp, precision=cfg.precision)
    entropy_landscapes(model, refs, warm)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ours = entropy_landscapes(model, refs, cfg)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    it_ours = int(ours[0].iterations.sum())
    it_all = int(sum(int(r.iterations.sum()) for r in ours))
    print(f"ours:     {t_ours:8.2f} s for {args.references} reference(s); reference 0: "
          f"{it_ours} sweeps, {t_ours / args.references / (2 * K) * 1e3:.1f} ms per tilt "
          f"per reference, {t_ours / it_all * 1e3:.2f} ms per sweep (all work / all sweeps), "
          f"unconverged {int((~ours[0].converged).sum())}")  # fmt: skip

    # baseline (one reference; NumPy on the CPU)
    J = model.J.numpy()
    h = model.h.numpy()
    t0 = time.perf_counter()
    d_base, c_base, it_base = numpy_bp_landscape(J, h, refs[0], cfg.grid[::-1])
    t_one = time.perf_counter() - t0
    t_base = t_one * args.references
    print(f"baseline: {t_one:8.2f} s for 1 reference ({it_base} sweeps, "
          f"{t_one / (2 * K) * 1e3:.1f} ms per tilt, {t_one / it_base * 1e3:.2f} ms per sweep, "
          f"unconverged {int((~c_base).sum())}); "
          f"x {args.references} references = {t_base:.2f} s")  # fmt: skip
    both = c_base & ours[0].converged
    dd = float(np.abs(d_base - ours[0].d)[both].max()) if both.any() else float("nan")
    print(f"agreement: max |d_ours - d_baseline| over {int(both.sum())} points = {dd:.2e}")
    print(f"ratio: {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
