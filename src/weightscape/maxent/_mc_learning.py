"""Boltzmann learning with Monte Carlo model averages (persistent chains, averaged iterates).

The maximum-likelihood equations of the pairwise model are ``m^model = m̂`` and
``C^model = Ĉ``; the likelihood's gradient is the moment mismatch (see
:mod:`~weightscape.maxent._exact_learning`). Here the model moments at each step are estimated
by ``B`` persistent Markov chains (:func:`~weightscape.maxent.metropolis_sample`, resumed from
the previous step's configurations — "persistent contrastive divergence", Tieleman 2008, or
stochastic maximum likelihood, Younes 1989), and one gradient step is taken:

.. math::

    J \\leftarrow J + \\eta_J\\big[(\\hat C - C^{\\rm MC}) - \\lambda J\\big],\\qquad
    h \\leftarrow h + \\eta_h\\,(\\hat m - m^{\\rm MC}).

With ``centred`` (default) the steps are taken in the centred parameters of Montavon & Müller
(2012), the energy written as ``Σ_{i<j} J_ij (σ_i − m̂_i)(σ_j − m̂_j) + Σ_i b_i (σ_i − m̂_i)``,
i.e. ``h = b − J m̂``: the coupling step uses ``⟨(σ_i − m̂_i)(σ_j − m̂_j)⟩`` in place of
``⟨σ_i σ_j⟩``, and ``b`` takes the field step. The fixed point is the same, but a uniform change
of many couplings no longer shifts every field by ``Σ_j J_ij m̂_j`` at once; with strongly
magnetised spins (a layer whose weights are mostly of one sign) plain steps need a learning rate
``∝ 1/N`` for that collective direction, centred ones do not.

Unlike BP learning (:class:`~weightscape.maxent.BoltzmannBP`) the moments are those of the model
itself, not of its Bethe approximation, so the fixed point is the true maximum-entropy model
(up to Monte Carlo noise) on any graph, including dense ones where Bethe moments are off or BP
stops converging. The price is noise: each step's moments carry a relative error
``≈ 1/√B``; the returned model is the average of the iterates of the last
``average_from``-fraction of the steps (Polyak–Ruppert averaging: for a constant step on a convex
objective the average converges where the last iterate keeps fluctuating).

With ``symmetry`` (a net's architecture) both the data and the Monte Carlo moments are averaged
over hidden-unit relabellings (:class:`~weightscape.maxent.OrbitAverage`) before each step; the
model then stays invariant under the group (its start and every step are), and the average over
the orbit cuts the Monte Carlo noise by the orbit sizes (15 pairs of hidden units per orbit for a
width-15 layer, ~15² for a layer between two hidden layers).

Why hand-written: no peer library does persistent-chain Boltzmann learning of a dense Ising
model in torch (ConIII's ``MCH`` reweights a fixed sample between refreshes, a different scheme).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import Precision
from ..errors import ConfigError, NumericalError, check_choice, check_positive, check_seed
from ._exact import exact_moments
from ._fit import AUTO_EXACT_MAX_SPINS, InverseIsing, _Raw, moment_error
from ._metropolis import RULES, MetropolisConfig, MetropolisState, metropolis_sample
from ._model import IsingModel
from ._moments import Moments, sample_moments
from ._relabel import OrbitAverage

__all__ = ["MonteCarloBoltzmann", "MonteCarloBoltzmannConfig"]

INITS = ("independent", "zeros")
#: ``evaluate`` of this learner: ``"metropolis"`` (a fresh Monte Carlo run of the returned
#: model, ``eval_records`` per chain), ``"exact"``, ``"auto"`` (exact if N ≤ 16, else
#: Metropolis) or ``"none"``.
EVALUATE_CHOICES = ("auto", "metropolis", "exact", "none")
# |m_i| is clipped to 1 - this for the independent-spin starting fields atanh(m_i).
START_CLIP = 1e-6


@dataclass(frozen=True)
class MonteCarloBoltzmannConfig:
    """Settings of :class:`MonteCarloBoltzmann`.

    Attributes:
        n_chains: ``B`` persistent chains (per-step noise of a moment ≈ 1/√B).
        n_iter: gradient steps.
        sweeps_per_iter: Monte Carlo sweeps of every chain between two steps; the step uses the
            moments averaged over the configurations after each of these sweeps.
        burn_in: sweeps of the chains at the starting model before the first step.
        eta_J, eta_h: learning rates of couplings and fields (dimensionless: a step changes
            ``J_ij`` by ``eta_J`` times a moment mismatch). The default 0.03 is stable on the
            layer models of the study (0.1 oscillates on the RB layer, whose weights are the
            most correlated); on small, weakly coupled models 0.3 converges faster.
        l2: weight decay ``λ`` on ``J`` (0 = maximum likelihood; the paper's BP learning uses
            1e-4).
        average_from: the returned model is the mean of the iterates after this fraction of the
            steps (0: all; 1 is not allowed: at least the last iterate is averaged).
        init: ``"independent"`` (``J = 0``, ``h = atanh m̂``) or ``"zeros"``.
        centred: take the steps in the centred parameters (see the module docstring); False:
            plain steps on ``(J, h)``.
        rule: ``"heat_bath"`` (default: no flip-flop of weakly-fielded spins, see
            :mod:`~weightscape.maxent._metropolis`) or ``"metropolis"``.
        symmetry: architecture string (e.g. ``"20-15-15-10"``) to fit hidden-unit-symmetrised
            moments with orbit-averaged Monte Carlo moments, or ``None``.
        symmetry_start: index in the net of the first spin of the data (a layer boundary).
        eval_records: records per chain of the final Monte Carlo evaluation (``"metropolis"``),
            one every ``eval_thin`` sweeps after ``burn_in`` sweeps from the persistent chains.
        eval_thin: sweeps between evaluation records.
        seed: seed of the chains.
        evaluate: how the report's moment error is computed (:data:`EVALUATE_CHOICES`).
        precision: dtype/device of the chains' fields (float64 CPU by default); the learning
            itself runs in the data moments' dtype and device.
    """

    n_chains: int = 1000
    n_iter: int = 1000
    sweeps_per_iter: int = 1
    burn_in: int = 100
    eta_J: float = 0.03
    eta_h: float = 0.03
    l2: float = 0.0
    average_from: float = 0.5
    init: str = "independent"
    centred: bool = True
    rule: str = "heat_bath"
    symmetry: str | None = None
    symmetry_start: int = 0
    eval_records: int = 100
    eval_thin: int = 5
    seed: int = 0
    evaluate: str = "auto"
    precision: Precision = field(default_factory=Precision)

    def __post_init__(self):
        check_positive("n_chains", self.n_chains, integer=True)
        check_positive("n_iter", self.n_iter, integer=True)
        check_positive("sweeps_per_iter", self.sweeps_per_iter, integer=True)
        check_positive("burn_in", self.burn_in, integer=True, allow_zero=True)
        check_positive("eta_J", self.eta_J, finite=True)
        check_positive("eta_h", self.eta_h, finite=True)
        check_positive("l2", self.l2, allow_zero=True, finite=True)
        check_positive("eval_records", self.eval_records, integer=True)
        check_positive("eval_thin", self.eval_thin, integer=True)
        check_choice("init", self.init, INITS)
        check_choice("rule", self.rule, RULES)
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)
        a = self.average_from
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0.0 <= a < 1.0:
            raise ConfigError(f"average_from={a!r} must be a fraction in [0, 1)")
        check_seed("seed", self.seed)
        if self.symmetry is not None and not isinstance(self.symmetry, str):
            raise ConfigError(
                f"symmetry={self.symmetry!r} must be an architecture string such as "
                "'20-15-15-10', or None"
            )
        if not isinstance(self.precision, Precision):
            raise ConfigError(f"precision={self.precision!r} must be a weightscape.Precision")


class MonteCarloBoltzmann(InverseIsing):
    """Boltzmann learning with persistent Monte Carlo chains; returns the averaged iterate.

    The report's ``history`` is the per-step moment error of the chains' moments against the
    data (noisy: it levels off at the Monte Carlo noise floor, ≈ 1/√B per entry, or less with
    ``symmetry``); ``extras`` has the acceptance rate, the number of averaged iterates, the
    mean error of each quarter of the steps (``error_quarters``: the last two equal once the
    learning has levelled off; a rise means the rate is too large) and the evaluation's
    sample count. ``converged`` only says that all steps ran: the learning has no stopping
    rule of its own.
    """

    name = "boltzmann_mc"
    config_class = MonteCarloBoltzmannConfig

    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        cfg = self.config
        n = moments.n_spins
        dtype, device = moments.m.dtype, moments.m.device
        project = (
            OrbitAverage(cfg.symmetry, n, start=cfg.symmetry_start)
            if cfg.symmetry is not None
            else None
        )
        m_d, C_d = moments.m, moments.C
        if project is not None:
            m_d, C_d = project(m_d, C_d)
        target = Moments(m_d, C_d, moments.n_samples)
        J = torch.zeros(n, n, dtype=dtype, device=device)
        if cfg.init == "independent":
            h = torch.atanh(m_d.clamp(-1 + START_CLIP, 1 - START_CLIP))
        else:
            h = torch.zeros_like(m_d)

        def chain_moments(x) -> tuple[torch.Tensor, torch.Tensor]:
            mom = sample_moments(x).to(dtype=dtype, device=device)
            return project(mom.m, mom.C) if project is not None else (mom.m, mom.C)

        def run(model, n_samples, burn, thin, state, seed):
            mc = MetropolisConfig(
                n_chains=cfg.n_chains,
                n_samples=n_samples,
                burn_in=burn,
                thin=thin,
                rule=cfg.rule,
                seed=seed,
                precision=cfg.precision,
            )
            return metropolis_sample(model, mc, state)

        state: MetropolisState | None = None
        if cfg.burn_in > 0:
            _, state, _ = run(IsingModel(J, h), 0, cfg.burn_in, 1, None, cfg.seed)
        first_avg = min(int(cfg.average_from * cfg.n_iter), cfg.n_iter - 1)
        J_sum, h_sum, n_avg = torch.zeros_like(J), torch.zeros_like(h), 0
        history: list[float] = []
        acceptance: list[float] = []
        for it in range(cfg.n_iter):
            x, state, trace = run(IsingModel(J, h), cfg.sweeps_per_iter, 0, 1, state, cfg.seed)
            acceptance.append(float(trace.acceptance.mean()))
            m_mc, C_mc = chain_moments(x)
            history.append(moment_error(m_mc, C_mc, target)[0])
            dC = C_d - C_mc
            dm = m_d - m_mc
            if cfg.centred:
                # gradient in the centred parameters (J, b = h + J m̂): the pair statistic is
                # ⟨(σ_i − m̂_i)(σ_j − m̂_j)⟩, which adds −m̂_i Δm_j − Δm_i m̂_j to ΔC
                dC = dC - torch.outer(m_d, dm) - torch.outer(dm, m_d)
                b = h + J @ m_d
            dC.fill_diagonal_(0.0)
            J = J + cfg.eta_J * (dC - cfg.l2 * J)
            h = (b + cfg.eta_h * dm) - J @ m_d if cfg.centred else h + cfg.eta_h * dm
            if not bool(torch.isfinite(J).all() and torch.isfinite(h).all()):
                raise NumericalError(
                    f"Monte Carlo learning diverged at step {it} (non-finite J or h); lower "
                    f"eta_J={cfg.eta_J} / eta_h={cfg.eta_h}"
                )
            if it >= first_avg:
                J_sum += J
                h_sum += h
                n_avg += 1
        J_avg, h_avg = J_sum / n_avg, h_sum / n_avg
        J_avg = 0.5 * (J_avg + J_avg.T)
        J_avg.fill_diagonal_(0.0)
        model = IsingModel(J_avg, h_avg)
        extras = {
            "averaged_iterates": n_avg,
            # mean per-step error of each quarter of the steps: a learning that has levelled
            # off at the Monte Carlo noise floor has equal last two quarters
            "error_quarters": [float(c.mean()) for c in np.array_split(np.asarray(history), 4)]
            if len(history) >= 4
            else [],
            "acceptance": sum(acceptance) / len(acceptance),
            "orbit_averaged": project is not None,
        }
        how = cfg.evaluate
        if how == "auto":
            how = "exact" if n <= AUTO_EXACT_MAX_SPINS else "metropolis"
        errors = None
        t_eval = time.perf_counter()
        if how == "exact":
            ex = exact_moments(model)
            errors = (*moment_error(ex.m, ex.C, target), "exact")
        elif how == "metropolis":
            x, _, _ = run(model, cfg.eval_records, cfg.burn_in, cfg.eval_thin, state, cfg.seed + 1)
            m_mc, C_mc = chain_moments(x)
            errors = (*moment_error(m_mc, C_mc, target), "metropolis")
            extras["evaluation_samples"] = int(x.shape[0])
        else:
            errors = (float("nan"),) * 3 + ("none",)
        t_eval = time.perf_counter() - t_eval
        return _Raw(
            model,
            iterations=cfg.n_iter,
            converged=True,
            history=history,
            message=f"mean of the last {n_avg} of {cfg.n_iter} iterates",
            extras=extras,
            errors=errors,
            evaluation_seconds=t_eval,
        )
