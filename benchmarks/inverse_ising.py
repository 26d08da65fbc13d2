"""Benchmark: our pseudo-likelihood vs ConIII ``Pseudo``, then ours at N = 675, then BP learning.

1. N = 100 spins, 10^4 Metropolis samples of a random model: our joint L-BFGS pseudo-likelihood
   vs ConIII's ``Pseudo`` (run in the peers environment through a subprocess, timed inside it:
   setup + solve), both errors vs the true (J, h) printed. The ratio is ConIII time / our time.
2. Ours alone at N = 675, 10^5 samples.
3. BP (Bethe) Boltzmann learning at N = 675 from the sample moments: seconds per learning step.

Coupling scale (an assumption, see --coupling-std): J_ij ~ N(0, 0.02²), fields N(0, 0.5²) — the
order of the couplings the paper fits to weight samples (10^-2). Small sizes check the script:
``python benchmarks/inverse_ising.py --n 20 --samples 2000 --big-n 40 --big-samples 4000``.
The last line is ``ratio: X`` (``nan`` when ConIII is unavailable).

Ours optimises in centred, diagonally scaled variables (``precondition=True``, the library
default: the same objective and minimiser, 5 instead of ~65 L-BFGS iterations at this coupling
scale); the unpreconditioned fit is timed too and printed for reference (not in the ratio).

Our stopping rule here is SciPy's L-BFGS-B default (ftol 2.2e-9, gtol 1e-5), the one ConIII's
``Pseudo`` uses, so both stop at the same optimisation accuracy — far below the statistical error.
(The library default is much tighter, for exact-recovery use.)
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from weightscape.maxent import (
    BoltzmannBP,
    BoltzmannBPConfig,
    IsingModel,
    MetropolisConfig,
    PseudoLikelihood,
    PseudoLikelihoodConfig,
    coniii_fit,
    metropolis_sample,
    peers_python,
    sample_moments,
)

# SciPy's L-BFGS-B defaults (what ConIII's Pseudo runs with).
BENCH_PL = dict(evaluate="none", ftol=2.220446049250313e-09, gtol=1e-5)


def errors(model: IsingModel, truth: IsingModel) -> tuple[float, float]:
    """RMS error of the couplings (i<j) and of the fields."""
    iu = torch.triu_indices(truth.n_spins, truth.n_spins, 1)
    dJ = (model.J - truth.J)[iu[0], iu[1]]
    return float(dJ.pow(2).mean().sqrt()), float((model.h - truth.h).pow(2).mean().sqrt())


def sample(truth: IsingModel, n_samples: int, chains: int, burn_in: int, thin: int, seed: int):
    cfg = MetropolisConfig(
        n_chains=chains,
        n_samples=max(1, n_samples // chains),
        burn_in=burn_in,
        thin=thin,
        seed=seed,
    )
    t0 = time.perf_counter()
    x, _, _ = metropolis_sample(truth, cfg)
    return x, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--big-n", type=int, default=675)
    ap.add_argument("--big-samples", type=int, default=100_000)
    ap.add_argument("--bp-iters", type=int, default=5)
    ap.add_argument("--coupling-std", type=float, default=0.02)
    ap.add_argument("--field-std", type=float, default=0.5)
    args = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    # 1. ours vs ConIII at N = 100
    truth = IsingModel.random(
        args.n, coupling_std=args.coupling_std, field_std=args.field_std, seed=0
    )
    x, t_mc = sample(truth, args.samples, chains=100, burn_in=1000, thin=10, seed=1)
    print(f"[1] N={args.n}, S={len(x)}: Metropolis {t_mc:.1f} s (100 chains, 1000 + 10/record)")
    t0 = time.perf_counter()
    ours, rep = PseudoLikelihood(PseudoLikelihoodConfig(**BENCH_PL)).fit(x)
    t_ours = time.perf_counter() - t0
    eJ, eh = errors(ours, truth)
    print(
        f"    ours   pseudo-likelihood: {t_ours:7.2f} s  rms err J {eJ:.5f} h {eh:.5f}  "
        f"({rep.iterations} L-BFGS iterations, {rep.extras['evaluations']} evaluations)"
    )
    t0 = time.perf_counter()
    plain, rep0 = PseudoLikelihood(PseudoLikelihoodConfig(precondition=False, **BENCH_PL)).fit(x)
    t_plain = time.perf_counter() - t0
    eJ0, eh0 = errors(plain, truth)
    print(
        f"    (ours without preconditioning: {t_plain:7.2f} s  rms err J {eJ0:.5f} h {eh0:.5f}  "
        f"({rep0.iterations} iterations); not part of the ratio)"
    )
    py, reason = peers_python()
    ratio = float("nan")
    if py is None:
        print(f"    ConIII Pseudo skipped: {reason}")
    else:
        theirs, tm = coniii_fit(x, "pseudo")
        t_theirs = tm["setup_seconds"] + tm["solve_seconds"]
        tJ, th = errors(theirs, truth)
        print(
            f"    ConIII Pseudo           : {t_theirs:7.2f} s  rms err J {tJ:.5f} h {th:.5f}  "
            f"(setup {tm['setup_seconds']:.1f} s + solve {tm['solve_seconds']:.1f} s)"
        )
        d = max(float((ours.J - theirs.J).abs().max()), float((ours.h - theirs.h).abs().max()))
        print(f"    max |ours - ConIII| over (J, h): {d:.2e}")
        ratio = t_theirs / t_ours

    # 2. ours alone at N = 675
    big = IsingModel.random(
        args.big_n, coupling_std=args.coupling_std, field_std=args.field_std, seed=2
    )
    xb, t_mc = sample(big, args.big_samples, chains=1000, burn_in=200, thin=2, seed=3)
    print(f"[2] N={args.big_n}, S={len(xb)}: Metropolis {t_mc:.1f} s (1000 chains, 200 + 2/record)")
    t0 = time.perf_counter()
    plb, rep = PseudoLikelihood(PseudoLikelihoodConfig(**BENCH_PL)).fit(xb)
    t_big = time.perf_counter() - t0
    eJ, eh = errors(plb, big)
    print(
        f"    ours   pseudo-likelihood: {t_big:7.2f} s  rms err J {eJ:.5f} h {eh:.5f}  "
        f"({rep.iterations} iterations, {rep.extras['evaluations']} evaluations)"
    )

    # 3. BP learning at N = 675 from moments
    mom = sample_moments(xb)
    learner = BoltzmannBP(BoltzmannBPConfig(n_iter=args.bp_iters, evaluate="bp"))
    t0 = time.perf_counter()
    bpm, rep = learner.fit(mom)
    t_bp = time.perf_counter() - t0
    steps = rep.iterations + 1  # n_iter steps plus the final evaluation, each one BP solve
    eJ, eh = errors(bpm, big)
    print(
        f"[3] BP learning N={args.big_n}: {t_bp / steps:.3f} s per iteration "
        f"({steps} BP solves, {rep.extras['bp_sweeps']} sweeps, "
        f"{rep.extras['bp_not_converged']} not converged); moment error {rep.error:.4f}; "
        f"rms err J {eJ:.5f} h {eh:.5f} after {args.bp_iters} paper-default steps"
    )
    # the same with the authors' learning script's settings (what `reproduce maxent` uses):
    # every step's BP restarted undamped from random messages, so more sweeps per step
    cfg = dataclasses.replace(
        BoltzmannBPConfig.authors(seed=0),
        n_iter=args.bp_iters,
        keep_from=min(51, args.bp_iters),
        evaluate="bp",
    )
    t0 = time.perf_counter()
    _, rep = BoltzmannBP(cfg).fit(mom)
    t_au = time.perf_counter() - t0
    steps = rep.iterations + 1
    print(
        f"    authors' scheme: {t_au / steps:.3f} s per iteration ({steps} BP solves, "
        f"{rep.extras['bp_sweeps']} sweeps, {rep.extras['bp_not_converged']} not converged); "
        f"moment error {rep.error:.4f}"
    )
    if np.isnan(ratio):
        print("ConIII unavailable: no ratio")
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
