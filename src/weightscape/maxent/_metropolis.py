"""Batched single-spin-flip Monte Carlo: many independent chains advanced in parallel.

One *sweep* visits every spin once in the order ``0, 1, …, N-1`` and proposes to flip it in every
chain; a flip of spin ``i`` changes the energy by ``ΔE = 2 σ_i F_i`` with the local field
``F_i = h_i + Σ_j J_ij σ_j``, and is accepted with probability

* ``min(1, exp(-ΔE))`` (``rule="metropolis"``, the paper's choice), or
* ``1 / (1 + exp(ΔE))`` (``rule="heat_bath"``, i.e. Glauber/Gibbs).

Each single-spin update leaves the Boltzmann distribution invariant, so the sweep does too.
A caveat of sequential Metropolis at very weak couplings: when ``|F_i| ≈ 0`` nearly every proposal
is accepted and a spin flips back and forth almost deterministically from sweep to sweep, so
successive samples of one chain are strongly (anti-)correlated; the heat-bath rule has no such
problem. Estimates that need independent samples should use many chains (their starting points are
independent uniform draws) or batch means over chains.

Schedule: ``burn_in`` sweeps, then ``n_samples`` records, one every ``thin`` sweeps (the first after
``thin`` more sweeps). The paper used 10^4 relaxation sweeps and samples every 10 sweeps.

Implementation (why hand-written: no library offers batched dense-coupling Metropolis in torch):
local fields ``F`` ``[N, B]`` are kept for all chains; spins are updated in blocks of ``block_size``
consecutive sites. Inside a block each site's field is kept current for the flips made so far in
the block (by a rank-1 update per site on torch tensors, or, on the CPU, read as ``F_{a+t} +
J[a+t, a:a+t] Δσ_{a:a+t}``, one matrix-vector product), and after the block all fields are
refreshed by one matrix product ``F += J[:, block] Δσ_block`` (BLAS-3), so a sweep costs
``O(B N²)`` flops in large GEMMs. Energies and fields are float64.

The site loop is Python-level (one iteration per site), so its cost per operation matters: on
the CPU the loop runs on NumPy views of the same tensors (NumPy's per-call overhead is several
times below torch's for vectors of a few hundred chains: sweeps 2.0× faster than the torch loop
at N = 675 with 100 chains, 1.4× at N = 300 with 1000 chains, ``benchmarks/metropolis_sweep.py``),
on other devices on the torch tensors. The random numbers come from the torch generator either
way, so the seed, the saved generator state and the accept/reject decisions are the same on both
paths (the fields may differ in the last bits, from a different summation order).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import Precision, resolve_precision
from ..errors import ConfigError, DatasetError, check_choice, check_positive, check_seed
from ._model import IsingModel

__all__ = [
    "MetropolisConfig",
    "MetropolisState",
    "MetropolisTrace",
    "metropolis_sample",
    "random_site_walk",
]

RULES = ("metropolis", "heat_bath")
# Sites updated between two dense field refreshes (a GEMM of [N, k] × [k, B]).
DEFAULT_BLOCK = 64


@dataclass(frozen=True)
class MetropolisConfig:
    """Settings of :func:`metropolis_sample`.

    Attributes:
        n_chains: ``B`` independent chains run in parallel.
        n_samples: records per chain; the output has ``n_chains × n_samples`` rows.
        burn_in: sweeps before the first record starts counting (relaxation).
        thin: sweeps between records (≥ 1).
        rule: ``"metropolis"`` or ``"heat_bath"``.
        block_size: sites per dense field refresh (speed only; results are identical).
        seed: seed of the chains' random numbers (initial states and acceptances).
        precision: dtype/device of the fields and energies (float64 CPU by default).
    """

    n_chains: int = 100
    n_samples: int = 100
    burn_in: int = 10_000
    thin: int = 10
    rule: str = "metropolis"
    block_size: int = DEFAULT_BLOCK
    seed: int = 0
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        check_positive("n_chains", self.n_chains, integer=True)
        check_positive("n_samples", self.n_samples, integer=True, allow_zero=True)
        check_positive("burn_in", self.burn_in, integer=True, allow_zero=True)
        check_positive("thin", self.thin, integer=True)
        check_positive("block_size", self.block_size, integer=True)
        check_choice("rule", self.rule, RULES)
        check_seed("seed", self.seed)


@dataclass(frozen=True, eq=False)
class MetropolisState:
    """Chains' current configurations ``sigma`` ``[B, N]`` (int8 ±1) and the generator state."""

    sigma: torch.Tensor
    rng_state: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class MetropolisTrace:
    """Diagnostics.

    Attributes:
        acceptance: mean acceptance rate of every sweep ``[sweeps]``.
        energies: float64 energies of the records ``[n_samples, n_chains]``.
        sweeps: total sweeps done.
    """

    acceptance: torch.Tensor
    energies: torch.Tensor
    sweeps: int


def _thresholds(u: torch.Tensor, rule: str) -> torch.Tensor:
    """Accept a flip iff ``σ_i F_i < thr``: ``thr = -½ log u`` (Metropolis), ``½ log(1/u - 1)``."""
    if rule == "metropolis":
        return -0.5 * torch.log(u)
    return 0.5 * (torch.log1p(-u) - torch.log(u))


def _chain_spins(spins, B: int | None, n: int, what: str) -> torch.Tensor:
    """``spins`` as a tensor, checked: shape ``[B, N]`` (any ``B`` when ``None``) and entries
    ±1 (one-line errors)."""
    s0 = torch.as_tensor(spins)
    if s0.ndim != 2 or s0.shape[1] != n or (B is not None and s0.shape[0] != B):
        want = f"[{'B' if B is None else B}, {n}]"
        raise DatasetError(f"{what} has shape {tuple(s0.shape)}; expected [n_chains, N] = {want}")
    if not bool(((s0 == 1) | (s0 == -1)).all()):
        raise DatasetError(f"{what} must contain only -1 and +1")
    return s0


def _chain_fields(fields, B: int, n: int, dtype, device) -> torch.Tensor:
    """Per-chain fields ``[B, N]`` on ``dtype``/``device``, checked: shape and finiteness."""
    hb = torch.as_tensor(fields)
    if hb.shape != (B, n):
        want = f"[n_chains, N] = [{B}, {n}]"
        raise DatasetError(f"fields has shape {tuple(hb.shape)}; expected {want}")
    hb = hb.to(dtype=dtype, device=device)
    if not bool(torch.isfinite(hb).all()):
        raise DatasetError("fields must be finite")
    return hb


# The site loop on the CPU: "numpy" (the default), or "torch" (the loop other devices run; set
# only by benchmarks/metropolis_sweep.py to time both on one machine).
_CPU_LOOP = "numpy"


@functools.cache
def _blas_controller():
    """One threadpoolctl controller per process (building one inspects the loaded libraries,
    ≈ 1 ms; entering its ``limit`` costs ≈ 10 µs)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _Loop:
    """One sweep over the blocks of sites: ``sweep(blocks, thr)`` visits every site once in order
    with acceptance thresholds ``thr`` ``[N, B]`` (accept a flip iff ``σ_i F_i < thr_i``),
    updating ``F``, ``sig`` ``[N, B]`` in place, and returns the number of accepted flips;
    ``counts`` reads those numbers at the end. ``J_blocks[k]`` ``[b-a, b-a]``, ``J_cols[k]``
    ``[N, b-a]``."""

    def __init__(self, F, sig, J_blocks, J_cols):
        self.F, self.sig, self.J_blocks, self.J_cols = F, sig, J_blocks, J_cols


class _NumpyLoop(_Loop):
    """The CPU's loop, on NumPy views: site ``a + t`` reads its field as ``F_{a+t} +
    J[a+t, a:a+t] Δσ_{a:a+t}`` (one matrix-vector product over the block's flips so far), the
    fewest NumPy calls per site."""

    def sweep(self, blocks, thr):
        # NumPy's BLAS on one thread for the sweep (restored after): its calls here are small
        # (a [t] x [t, B] product per site) or sequential between sites, and OpenBLAS on two
        # threads made a sweep 2-3x slower with the other core busy (4 December 2026, N = 300
        # and 675, 64 and 384 chains); parallelism belongs to whole runs (sweep workers)
        F, sig = self.F, self.sig
        accepted = 0
        with _blas_controller().limit(limits=1, user_api="blas"):
            for (a, b), Jbb, Jcol in zip(blocks, self.J_blocks, self.J_cols, strict=True):
                D = np.zeros_like(sig[a:b])  # the block's flips so far, Δσ [b-a, B]
                for t in range(b - a):
                    i = a + t
                    s_i = sig[i]
                    g = F[i] + Jbb[t, :t] @ D[:t] if t else F[i]
                    delta = np.where((s_i * g) < thr[i], -2.0 * s_i, 0.0)
                    sig[i] += delta
                    D[t] = delta
                F += Jcol @ D
                accepted += int(np.count_nonzero(D))
        return accepted

    @staticmethod
    def counts(acc) -> list[int]:
        return list(acc)


class _TorchLoop(_Loop):
    """The loop on torch tensors (other devices; the CPU's before 4 December 2026): the block's
    own fields are kept current by a rank-1 update per site; the accepted flips are counted on
    the device and read once at the end (a read per block would stall a GPU)."""

    def sweep(self, blocks, thr):
        F, sig = self.F, self.sig
        accepted = torch.zeros((), dtype=torch.int64, device=F.device)
        for (a, b), Jbb, Jcol in zip(blocks, self.J_blocks, self.J_cols, strict=True):
            G = F[a:b].clone()  # block fields, kept current inside the block
            old = sig[a:b].clone()
            for t in range(b - a):
                i = a + t
                s_i = sig[i]
                delta = torch.where((s_i * G[t]) < thr[i], -2.0 * s_i, 0.0)
                sig[i] += delta
                G.addr_(Jbb[:, t], delta)
            D = sig[a:b] - old
            F.addmm_(Jcol, D)
            accepted += (D != 0).sum()
        return accepted

    @staticmethod
    def counts(acc) -> list[int]:
        return torch.stack(acc).cpu().tolist() if acc else []


def metropolis_sample(
    model: IsingModel,
    config: MetropolisConfig = MetropolisConfig(),
    state: MetropolisState | None = None,
    *,
    fields=None,
) -> tuple[np.ndarray, MetropolisState, MetropolisTrace]:
    """Sample ``model`` with ``B`` parallel single-spin-flip chains.

    Args:
        model: the Ising model (``J`` ``[N, N]``, ``h`` ``[N]``).
        config: chains, schedule, rule, seed, precision.
        state: continue from these chains (``state.sigma`` ``[B, N]`` must match ``n_chains``);
            the burn-in is still applied. ``None`` draws uniform random starts.
        fields: per-chain fields ``[B, N]`` in place of ``model.h`` (chain ``c`` samples the
            model with ``J`` and fields ``fields[c]``; e.g. each chain tilted towards its own
            reference). ``None``: every chain uses ``model.h``.

    Returns:
        ``(samples, state, trace)``: ``samples`` is int8 ±1 ``[n_samples · n_chains, N]`` with
        row ``r · n_chains + c`` the ``r``-th record of chain ``c`` (reshape to
        ``[n_samples, n_chains, N]`` for per-chain statistics); the final state; the trace.
    """
    prec = config.precision
    dtype, device = prec.torch_dtype, prec.torch_device
    J = model.J.to(dtype=dtype, device=device)
    h = model.h.to(dtype=dtype, device=device)
    n, B = model.n_spins, config.n_chains
    if fields is None:
        hb = h[:, None]  # [N, 1], broadcast over chains
    else:
        hb = _chain_fields(fields, B, n, dtype, device).T.contiguous()
    gen = torch.Generator(device=device)
    gen.manual_seed(config.seed)
    if state is None:
        sig = (2 * torch.randint(0, 2, (n, B), generator=gen, device=device) - 1).to(dtype)
    else:
        s0 = _chain_spins(state.sigma, B, n, "state.sigma")
        # always a copy: the sweeps update sig in place, and for one chain (or a float64 array
        # whose transpose is already contiguous) .to().contiguous() would return the caller's
        # own memory
        sig = s0.T.to(dtype=dtype, device=device, copy=True).contiguous()
        if state.rng_state is not None:
            try:
                gen.set_state(torch.as_tensor(state.rng_state, dtype=torch.uint8).cpu())
            except RuntimeError:  # e.g. a CUDA generator's state (16 bytes) on the CPU
                raise ConfigError(
                    f"state.rng_state ({torch.as_tensor(state.rng_state).numel()} bytes) is not "
                    f"a state of a {device.type} generator: it was saved on another device",
                    "continue with MetropolisState(state.sigma) (no rng_state) and a "
                    "config.seed the earlier run did not use",
                ) from None
    F = J @ sig + hb  # [N, B]; J has a zero diagonal, so F_i excludes σ_i itself
    k = config.block_size
    blocks = [(a, min(a + k, n)) for a in range(0, n, k)]
    J_blocks = [J[a:b, a:b].contiguous() for a, b in blocks]
    J_cols = [J[:, a:b].contiguous() for a, b in blocks]
    # the site loop's arrays: NumPy views of the same memory on the CPU (in-place updates
    # change the tensors), the tensors themselves elsewhere
    on_cpu = device.type == "cpu" and _CPU_LOOP == "numpy"
    if on_cpu:
        loop = _NumpyLoop(F.numpy(), sig.numpy(), [b.numpy() for b in J_blocks],
                          [c.numpy() for c in J_cols])  # fmt: skip
    else:
        loop = _TorchLoop(F, sig, J_blocks, J_cols)

    acc_counts = []  # accepted flips per sweep (see _Loop.counts)
    records = torch.empty(config.n_samples, B, n, dtype=torch.int8, device=device)
    energies = torch.empty(config.n_samples, B, dtype=torch.float64, device=device)

    def sweep():
        thr = _thresholds(torch.rand(n, B, generator=gen, device=device, dtype=dtype), config.rule)
        acc_counts.append(loop.sweep(blocks, thr.numpy() if on_cpu else thr))

    total = 0
    for _ in range(config.burn_in):
        sweep()
        total += 1
    for r in range(config.n_samples):
        for _ in range(config.thin):
            sweep()
            total += 1
        s_rec = sig.T
        records[r] = s_rec.to(torch.int8)
        field_term = s_rec @ h if fields is None else (s_rec * hb.T).sum(1)
        energies[r] = -(0.5 * ((s_rec @ J) * s_rec).sum(1) + field_term).to(torch.float64)

    counts = loop.counts(acc_counts)
    acc_rates = [c / (n * B) for c in counts]
    samples = records.reshape(config.n_samples * B, n).cpu().numpy()
    new_state = MetropolisState(sig.T.to(torch.int8).cpu(), gen.get_state())
    trace = MetropolisTrace(
        acceptance=torch.tensor(acc_rates, dtype=torch.float64),
        energies=energies.cpu(),
        sweeps=total,
    )
    return samples, new_state, trace


def random_site_walk(
    model: IsingModel,
    start,
    *,
    n_records: int,
    steps_per_record: int,
    rule: str = "metropolis",
    seed: int = 0,
    precision: Precision | None = None,
    fields=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Single-spin-flip chains that update one uniformly random site per step (the textbook
    random-site dynamics, as the paper's walks), recorded every ``steps_per_record`` steps.

    :func:`metropolis_sample` sweeps the sites in a fixed order, which is faster per update but
    has no time resolution below a sweep; here every chain draws its own site at every step, and
    its local fields ``F = σ J + h`` are kept current by one row update per step (``O(B·N)``).

    Args:
        model: the Ising model (``J`` ``[N, N]``, ``h`` ``[N]``).
        start: ``[B, N]`` ±1 starting configurations (one chain per row).
        n_records: records after the start.
        steps_per_record: single-site updates per chain between two records.
        rule: ``"metropolis"`` or ``"heat_bath"`` acceptance.
        seed: seed of the sites and acceptances.
        precision: dtype/device (float64 CPU by default).
        fields: per-chain fields ``[B, N]`` in place of ``model.h``.

    Returns:
        ``(records, acceptance)``: int8 ``[n_records, B, N]`` and the accepted fraction of the
        steps of each record interval ``[n_records]``.
    """
    check_choice("rule", rule, RULES)
    check_positive("n_records", n_records, integer=True)
    check_positive("steps_per_record", steps_per_record, integer=True)
    prec = Precision() if precision is None else precision
    dtype, device = prec.torch_dtype, prec.torch_device
    J = model.J.to(dtype=dtype, device=device)
    n = model.n_spins
    sig = _chain_spins(np.asarray(start), None, n, "start").to(dtype=dtype, device=device).clone()
    B = sig.shape[0]
    if fields is None:
        hb = model.h.to(dtype=dtype, device=device)[None, :]
    else:
        hb = _chain_fields(fields, B, n, dtype, device)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    F = sig @ J + hb  # [B, N]; J has a zero diagonal, so F_i excludes σ_i itself
    rows = torch.arange(B, device=device)
    records = torch.empty(n_records, B, n, dtype=torch.int8, device=device)
    accepted = torch.zeros(n_records, dtype=torch.int64, device=device)
    for r in range(n_records):
        sites = torch.randint(0, n, (steps_per_record, B), generator=gen, device=device)
        u = torch.rand(steps_per_record, B, generator=gen, device=device, dtype=dtype)
        thr = _thresholds(u, rule)
        for t in range(steps_per_record):
            i = sites[t]
            s_i = sig[rows, i]
            delta = torch.where(s_i * F[rows, i] < thr[t], -2.0 * s_i, 0.0)
            sig[rows, i] += delta
            F.add_(J[i] * delta[:, None])
            accepted[r] += (delta != 0).sum()
        records[r] = sig.to(torch.int8)
    acc = accepted.cpu().numpy() / (steps_per_record * B)
    return records.cpu().numpy(), acc
