"""Metropolis sampling of a dense Ising model: ours (weightscape.maxent.metropolis_sample, many
chains at once) vs a single-chain NumPy sampler like the authors' (one site at a time, the site's
field as a dot product of its row of J with the configuration, a random site order per sweep).

Model: N = 675 spins (the whole 20-15-15-10 net), couplings J_ij ~ N(0, 0.03²) (the paper's
fitted scale), fields h_i ~ N(0, 0.3²); Metropolis acceptance on both sides. The paper's
validation runs 10^4 relaxation and 10^5 more sweeps of one chain per model; the cost compared
here is the time per *chain-sweep* (one chain, every site visited once), ours with ``--chains``
chains in one call, the baseline with one chain. Both sides' mean energy per spin is printed
(after ``--burn-in`` sweeps) as an accuracy check: they sample the same distribution.

Ours runs its site loop twice: on NumPy views (the CPU default) and on torch tensors (what it
runs on other devices, and what it ran on the CPU before 4 December 2026), so the gain of the
NumPy loop alone is printed too.

    python benchmarks/metropolis_sweep.py                 # N = 675, 100 chains, 1 thread
    python benchmarks/metropolis_sweep.py --n 300 --chains 1000
    python benchmarks/metropolis_sweep.py --device cuda --chains 10000   # ours on the GPU

On a GPU ours runs its torch loop only (the NumPy loop is the CPU's); the baseline stays NumPy.

The last line is ``ratio: X`` = the baseline's seconds per chain-sweep / ours (the NumPy loop on
the CPU, the torch loop on a GPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import weightscape.maxent._metropolis as metropolis_module
from weightscape.config import Precision
from weightscape.maxent import IsingModel, MetropolisConfig, metropolis_sample


def authors_style_chain(J, h, sweeps: int, burn_in: int, seed: int):
    """The baseline: one chain, sites in a fresh random order every sweep; per site its field
    ``J_i · σ + h_i``, ``ΔE = 2 σ_i F_i``, accept with probability ``min(1, e^{-ΔE})``.
    Returns ``(seconds, energies per spin of the sweeps after burn_in)``."""
    rng = np.random.default_rng(seed)
    n = len(h)
    sigma = rng.choice([-1.0, 1.0], n)
    energies = []
    t0 = time.perf_counter()
    for sweep in range(burn_in + sweeps):
        for i in rng.permutation(n):
            field = J[i] @ sigma + h[i]
            if rng.uniform() < min(1.0, np.exp(-2.0 * sigma[i] * field)):
                sigma[i] = -sigma[i]
        if sweep >= burn_in:
            energies.append(-(0.5 * sigma @ J @ sigma + h @ sigma) / n)
    return time.perf_counter() - t0, np.asarray(energies)


def ours(model, chains: int, sweeps: int, burn_in: int, seed: int, loop: str, device: str):
    """``metropolis_sample`` with ``chains`` chains, ``burn_in`` sweeps, then one record per
    sweep for ``sweeps`` sweeps. Returns ``(seconds, energies per spin [sweeps, chains])``."""
    metropolis_module._CPU_LOOP = loop
    try:
        cfg = MetropolisConfig(
            n_chains=chains, n_samples=sweeps, burn_in=burn_in, thin=1, seed=seed,
            precision=Precision(device=device),
        )  # fmt: skip
        t0 = time.perf_counter()
        _, _, trace = metropolis_sample(model, cfg)  # returns host arrays: synchronised
        return time.perf_counter() - t0, trace.energies.numpy() / model.n_spins
    finally:
        metropolis_module._CPU_LOOP = "numpy"


def mean_se(e) -> tuple[float, float]:
    """Mean and a standard error from the chains' own means (ours) or from 5 batch means of a
    single chain (baseline)."""
    if e.ndim == 2:
        per_chain = e.mean(0)
        return float(per_chain.mean()), float(per_chain.std(ddof=1) / np.sqrt(len(per_chain)))
    batches = np.array_split(e, 5)
    means = np.array([b.mean() for b in batches])
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(len(means)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=675)
    ap.add_argument("--coupling-std", type=float, default=0.03)
    ap.add_argument("--field-std", type=float, default=0.3)
    ap.add_argument("--chains", type=int, default=100)
    ap.add_argument("--sweeps", type=int, default=50, help="recorded sweeps of ours")
    ap.add_argument("--baseline-sweeps", type=int, default=100)
    ap.add_argument("--burn-in", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="where ours runs: cpu, cuda, cuda:<k>")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    n = args.n
    J = rng.normal(0.0, args.coupling_std, (n, n))
    J = np.triu(J, 1) + np.triu(J, 1).T
    h = rng.normal(0.0, args.field_std, n)
    model = IsingModel(torch.as_tensor(J), torch.as_tensor(h))
    print(
        f"N = {n}, J std {args.coupling_std}, h std {args.field_std}, Metropolis, "
        f"{args.threads} thread(s), torch {torch.__version__}, NumPy {np.__version__}"
    )
    with threadpool_limits(args.threads):
        loops = ("numpy", "torch") if args.device == "cpu" else ("torch",)
        ours(model, args.chains, 2, 0, args.seed, loops[0], args.device)  # warm-up
        res = {}
        for loop in loops:
            t, e = ours(model, args.chains, args.sweeps, args.burn_in, args.seed, loop,
                        args.device)  # fmt: skip
            per = t / (args.chains * (args.burn_in + args.sweeps))
            res[loop] = per
            mu, se = mean_se(e)
            print(f"ours ({loop} loop, {args.device}): {t:7.2f} s for {args.chains} chains × "
                  f"{args.burn_in + args.sweeps} sweeps = {per * 1e3:.4f} ms per chain-sweep; "
                  f"energy per spin {mu:.5f} ± {se:.5f}")  # fmt: skip
        tb, eb = authors_style_chain(J, h, args.baseline_sweeps, args.burn_in, args.seed)
        per_b = tb / (args.burn_in + args.baseline_sweeps)
        mu, se = mean_se(eb)
        print(f"baseline (one chain, authors' style): {tb:7.2f} s for "
              f"{args.burn_in + args.baseline_sweeps} sweeps = {per_b * 1e3:.4f} ms per "
              f"chain-sweep; energy per spin {mu:.5f} ± {se:.5f}")  # fmt: skip
    if "numpy" in res:
        print(f"numpy loop vs torch loop (ours): {res['torch'] / res['numpy']:.2f}x")
    print(f"ratio: {per_b / res[loops[0]]:.1f}")


if __name__ == "__main__":
    main()
