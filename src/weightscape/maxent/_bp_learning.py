"""Boltzmann learning with BP model averages (the paper's default inverse method).

Each iteration solves BP (:func:`~weightscape.maxent.bp_solve`, warm-started from the previous
messages) for the current ``(J, h)``, and takes one gradient step on the likelihood with the Bethe
moments in place of the true model moments:

.. math::

    J \\leftarrow J - \\eta_J\\big[(C^{\\rm BP} - \\hat C) + \\lambda J\\big],\\qquad
    h \\leftarrow h - \\eta_h\\,(m^{\\rm BP} - \\hat m),

keeping the iterate with the smallest error
:math:`\\sqrt{\\overline{\\Delta m^2} + \\overline{\\Delta C^2}_{i\\ne j}}` (BP moments vs data)
among the iterates whose BP converged to an *attracting* fixed point (moments of an unconverged
BP are not Bethe moments of the model); only when BP converged at no iterate is the best of all
iterates kept, and the report says so (``converged`` False, ``extras["best_bp_converged"]``).

Why "attracting": a warm start begins within the tolerance of the previous fixed point, so the
residual test passes in a few sweeps even after that fixed point has lost its stability (the
largest eigenvalue of the BP map's Jacobian has crossed 1: a continuous transition of the model
to an ordered state, which no damping cures since damping maps an eigenvalue ``λ`` to
``d + (1 − d)λ``). The moments of such a fixed point describe no state of the model (Metropolis
on it finds the ordered state). With ``check_stability`` the spectral radius of the damped BP
map's Jacobian (:func:`bp_jacobian_radius`, power iteration) is computed at every converged
iterate that would improve the best error, and only iterates with radius < 1 are kept.
Defaults are the paper's: ``η_J = 0.01``, ``η_h = 0.3``, ``λ = 1e-4``, 100 iterations, BP
tolerance 1e-4 and at most 1000 sweeps. :meth:`BoltzmannBPConfig.authors` instead runs the
learning as the authors' published script does (start ``h = 0``, every step's BP restarted
undamped from random messages, no convergence rule, the best of steps 51–100): what
``weightscape reproduce maxent`` uses since 5 December 2026. The two differ where it matters:
started at ``h = atanh m̂``, weights frozen in the data (``|m̂| = 1``) are pinned by their fields;
started at ``h = 0`` the couplings carry their magnetisation, and the early-stopped model can have
ordered Bethe states (docs/studies/maxent.md).

The fixed point matches the data with *Bethe* moments, so the couplings carry the Bethe
approximation's error: exact on trees; on a dense graph with couplings of scale β the Bethe pair
moment misses the paths ``i-k-j`` through other spins, an ``O(β²)`` effect per pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, check_choice, check_positive
from ._bp import BP_DEFAULT_DAMPING, BPConfig, bp_solve, cavity_fields
from ._fit import EVALUATE_CHOICES, InverseIsing, _Raw, moment_error
from ._model import IsingModel
from ._moments import Moments

__all__ = ["BoltzmannBP", "BoltzmannBPConfig", "best_iterate", "bp_jacobian_radius"]

# The paper's learning settings.
PAPER_ETA_J = 0.01
PAPER_ETA_H = 0.3
PAPER_L2 = 1e-4
PAPER_ITERATIONS = 100
PAPER_BP_TOL = 1e-4
PAPER_BP_SWEEPS = 1000
INITS = ("independent", "zeros", "authors")
# Messages each BP of the learning starts from when it is not warm-started (and at step 0).
START_MESSAGES = ("zeros", "random")
# The authors' learning script: BP starts every step from messages drawn from N(0, 0.01²).
AUTHORS_MESSAGE_STD = 0.01
# |m_i| is clipped to 1 - this for the independent-spin starting fields atanh(m_i).
START_CLIP = 1e-6
# Power-iteration steps of the stability check (the leading eigenvalue of the BP Jacobian of these
# models is well separated: the gap between the top eigenvalues of the data's connected
# correlations sets it).
STABILITY_ITERS = 200


@dataclass(frozen=True)
class BoltzmannBPConfig:
    """Settings of :class:`BoltzmannBP`.

    Attributes:
        eta_J, eta_h: learning rates of couplings and fields.
        l2: weight decay ``λ`` on ``J``.
        n_iter: gradient steps.
        bp: BP settings used at every step.
        init: ``"independent"`` (``J = 0``, ``h = atanh m̂``), ``"zeros"`` (``J = 0``,
            ``h = 0``) or ``"authors"`` (``h = 0``, ``J_ij = g_ij g_ji / N²`` with ``g`` standard
            normal, zero diagonal: the authors' learning script's start, drawn from ``seed``).
        warm_start: start each BP from the previous messages.
        start_messages: what a BP that is not warm-started starts from (every step without
            ``warm_start``, the first step with it): ``"zeros"`` or ``"random"`` (independent
            normal messages of standard deviation ``message_std``, zero diagonal, from ``seed``).
        message_std: standard deviation of random starting messages (the authors': 0.01).
        seed: seed of the ``"authors"`` start and of random starting messages.
        tol: stop early when the error falls below ``tol`` (0 = run all ``n_iter`` steps).
        evaluate: ``"bp"`` reports the learner's own BP error of the best iterate; ``"exact"``
            or ``"auto"`` re-evaluate the returned model.
        check_stability: count an iterate's BP as converged only if its fixed point attracts
            the damped BP iteration (spectral radius of the Jacobian < 1).
        keep_from: the kept iterate is the best among iterates ``keep_from … n_iter`` (0: any).
            The authors' published learning script keeps the best of the iterates after step
            50 of 100 (``keep_from=51``).
        require_converged: keep only iterates whose BP converged (and, with
            ``check_stability``, to an attracting fixed point); False chooses among all
            iterates by error alone, as the authors' script does.
    """

    eta_J: float = PAPER_ETA_J
    eta_h: float = PAPER_ETA_H
    l2: float = PAPER_L2
    n_iter: int = PAPER_ITERATIONS
    bp: BPConfig = field(
        default_factory=lambda: BPConfig(
            damping=BP_DEFAULT_DAMPING, tol=PAPER_BP_TOL, max_iter=PAPER_BP_SWEEPS
        )
    )
    init: str = "independent"
    warm_start: bool = True
    tol: float = 0.0
    evaluate: str = "bp"
    check_stability: bool = True
    keep_from: int = 0
    require_converged: bool = True
    start_messages: str = "zeros"
    message_std: float = AUTHORS_MESSAGE_STD
    seed: int = 0

    @classmethod
    def authors(cls, seed: int = 0) -> BoltzmannBPConfig:
        """The authors' published learning script (``task/Bethe/bethe_reconstruct.py`` and its
        ``Bethe`` class, read for facts), as far as it is a choice of settings.

        The paper's rates and weight decay, 100 steps, start ``h = 0`` and tiny random ``J``
        (``init="authors"``); every step's BP starts afresh from random messages
        (N(0, 0.01²)), undamped, converged when the *mean* message change is below 1e-4, at
        most 1000 sweeps, its moments used whether it converged or not; the kept iterate is the
        best by BP moment error among steps 51–100, with no convergence or stability test.
        One difference is left: the script's kept iterate is among steps 51–99 (its last
        step's model is never evaluated) or its untrained start if none beats it; here it is
        among 51–100.
        """
        return cls(
            init="authors",
            warm_start=False,
            start_messages="random",
            require_converged=False,
            check_stability=False,
            keep_from=51,
            bp=BPConfig(
                damping=0.0, tol=PAPER_BP_TOL, max_iter=PAPER_BP_SWEEPS, criterion="mean_change"
            ),
            seed=seed,
        )

    def __post_init__(self):
        check_positive("eta_J", self.eta_J, finite=True)
        check_positive("eta_h", self.eta_h, finite=True)
        check_positive("l2", self.l2, allow_zero=True, finite=True)
        check_positive("n_iter", self.n_iter, integer=True)
        check_positive("tol", self.tol, allow_zero=True, finite=True)
        check_choice("init", self.init, INITS)
        check_choice("start_messages", self.start_messages, START_MESSAGES)
        check_positive("message_std", self.message_std, allow_zero=True, finite=True)
        if self.message_std >= 1.0:
            raise ConfigError(
                f"message_std={self.message_std!r} must be below 1 (messages are magnetisations"
                " in [-1, 1])"
            )
        check_positive("seed", self.seed, integer=True, allow_zero=True)
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)
        check_positive("keep_from", self.keep_from, integer=True, allow_zero=True)
        if self.keep_from > self.n_iter:
            raise ConfigError(
                f"keep_from={self.keep_from} must be at most n_iter={self.n_iter} (the kept "
                "iterate is chosen among iterates keep_from … n_iter)"
            )
        if not isinstance(self.bp, BPConfig):
            raise ConfigError(f"bp={self.bp!r} must be a BPConfig")


class _JacobianOperator:
    """``V ↦ d·V + (1 − d)·∂F/∂M · V`` at ``messages`` (analytic; :func:`bp_jacobian_radius`)."""

    def __init__(self, model: IsingModel, messages, damping: float):
        tJ = torch.tanh(model.J)
        self.messages = M = torch.as_tensor(messages, dtype=model.dtype, device=model.device)
        U = cavity_fields(tJ, M)
        H = model.h + U.sum(0)
        F = torch.tanh(H[:, None] - U.T)
        x = (tJ * M).clamp(-1.0, 1.0)
        self.g = (tJ / (1.0 - x * x).clamp_min(1e-300)).fill_diagonal_(0.0)
        self.sech2 = (1.0 - F * F).fill_diagonal_(0.0)
        self.d = float(damping)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        dU = self.g * v  # dU[k, i] = du_{k→i}
        return self.d * v + (1.0 - self.d) * self.sech2 * (dU.sum(0)[:, None] - dU.T)


def bp_jacobian_radius(
    model: IsingModel,
    messages: torch.Tensor,
    damping: float = BP_DEFAULT_DAMPING,
    n_iter: int = STABILITY_ITERS,
    seed: int = 0,
) -> float:
    """Spectral radius of the Jacobian of the damped BP map ``M ↦ d·M + (1 − d)·F(M)`` at
    ``messages``, by power iteration with the analytic Jacobian-vector product.

    With ``u_{k→i} = atanh(t_ki M_ki)``, ``H_i = h_i + Σ_k u_{k→i}`` and
    ``F(M)_ij = tanh(H_i − u_{j→i})``:
    ``dF_ij = (1 − F_ij²)(Σ_k du_{k→i} − du_{j→i})``, ``du_{k→i} = t_ki dM_ki / (1 − t_ki² M_ki²)``.
    A fixed point attracts the iteration iff the radius is < 1.

    Args:
        model: ``J`` ``[N, N]``, ``h`` ``[N]``; messages: ``[N, N]`` (``M[i, j] = m_{i→j}``).
        damping: ``d`` of the iteration; n_iter: power-iteration steps; seed: start vector.

    Returns:
        The estimate ``‖A v‖ / ‖v‖`` after ``n_iter`` steps (dimensionless).
    """
    apply = _JacobianOperator(model, messages, damping)
    M = apply.messages
    gen = torch.Generator(device=model.device).manual_seed(seed)
    v = torch.randn(M.shape, dtype=model.dtype, device=model.device, generator=gen)
    v.fill_diagonal_(0.0)
    v = v / v.norm()
    # the norm stays on the device (one host read at the end, not one per step); a zero norm
    # makes v = 0, so every later norm is 0 and the result 0, as an early return would give
    radius = torch.zeros((), dtype=v.dtype, device=v.device)
    for _ in range(n_iter):
        w = apply(v)
        radius = w.norm()
        v = torch.where(radius > 0, w / radius, 0.0)
    return float(radius)


def best_iterate(errors, converged) -> tuple[int, bool]:
    """Index of the kept iterate: the smallest error among iterates whose BP converged.

    Args:
        errors: moment error of each iterate ``[T]``; converged: BP converged at it ``[T]``.

    Returns:
        ``(index, from_converged)``: the first index of the smallest error among converged
        iterates and True; when none converged, the first index of the smallest error overall
        and False.
    """
    errors, converged = list(errors), [bool(c) for c in converged]
    if len(errors) != len(converged) or not errors:
        raise ConfigError("errors and converged must be non-empty and of equal length")
    pool = [k for k, c in enumerate(converged) if c] or list(range(len(errors)))
    best = min(pool, key=lambda k: (errors[k], k))
    return best, converged[best]


class BoltzmannBP(InverseIsing):
    """Gradient-ascent Boltzmann learning with Bethe (BP) moments; keeps the best iterate."""

    name = "boltzmann_bp"
    config_class = BoltzmannBPConfig

    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        cfg = self.config
        n = moments.n_spins
        m_d, C_d = moments.m, moments.C
        J = torch.zeros(n, n, dtype=m_d.dtype, device=m_d.device)
        # CPU generator: the same draws on every device
        gen = torch.Generator().manual_seed(int(cfg.seed))
        if cfg.init == "independent":
            h = torch.atanh(m_d.clamp(-1 + START_CLIP, 1 - START_CLIP))
        else:
            h = torch.zeros_like(m_d)
        if cfg.init == "authors":
            g = torch.randn(n, n, generator=gen, dtype=torch.float64) / n
            J = (g * g.T).fill_diagonal_(0.0).to(dtype=m_d.dtype, device=m_d.device)

        def start():
            if cfg.start_messages == "zeros":
                return None
            M = torch.randn(n, n, generator=gen, dtype=torch.float64) * cfg.message_std
            return M.clamp_(-1.0, 1.0).fill_diagonal_(0.0).to(dtype=m_d.dtype, device=m_d.device)

        messages = None
        history: list[float] = []
        conv: list[bool] = []
        # best iterate among converged BP (key "conv") and among all (key "any"): (error triple,
        # (J, h), iteration); J and h are rebound at each step, never mutated, so no copies
        best: dict[str, tuple] = {}
        bp_failures = 0
        unstable = 0  # converged iterates rejected by the stability check
        bp_sweeps = 0
        reached = False
        for it in range(cfg.n_iter + 1):  # n_iter steps; the last pass only evaluates
            model = IsingModel(J, h)
            warm = cfg.warm_start and messages is not None
            messages, res, _ = bp_solve(model, cfg.bp, messages if warm else start())
            bp_failures += not res.converged
            bp_sweeps += res.iterations
            err = moment_error(res.m, res.C, moments)
            history.append(err[0])
            ok = bool(res.converged)
            eligible = it >= cfg.keep_from
            if (
                ok
                and eligible
                and cfg.require_converged
                and cfg.check_stability
                and err[0] < best.get("conv", ((math.inf,),))[0][0]
            ):
                radius = bp_jacobian_radius(model, messages, cfg.bp.damping)
                ok = radius < 1.0
                unstable += not ok
            conv.append(ok)
            for key in (("conv", "any") if ok else ("any",)) if eligible else ():
                if key not in best or err[0] < best[key][0][0]:
                    best[key] = (err, (J, h), it)
            if cfg.tol > 0 and err[0] < cfg.tol and ok and eligible:
                reached = True
                break
            if it == cfg.n_iter:
                break
            dC = res.C - C_d
            dC.fill_diagonal_(0.0)
            J = J - cfg.eta_J * (dC + cfg.l2 * J)
            h = h - cfg.eta_h * (res.m - m_d)
        # the rule of best_iterate, kept incrementally; without require_converged the best of
        # all eligible iterates, whether its BP converged or not
        pool = "conv" if cfg.require_converged and "conv" in best else "any"
        err, (J, h), best_iter = best[pool]
        best_bp_conv = conv[best_iter]
        model = IsingModel(J.clone(), h.clone())
        return _Raw(
            model,
            iterations=len(history) - 1,
            converged=reached if cfg.tol > 0 else best_bp_conv,
            history=history,
            message=f"best iterate {best_iter} of {len(history) - 1}",
            extras={
                "best_iteration": best_iter,
                "best_bp_converged": best_bp_conv,
                "bp_not_converged": bp_failures,
                "bp_unstable": unstable,
                "bp_sweeps": bp_sweeps,
                "bp_converged_history": conv,
            },
            errors=(*err, "bp") if cfg.evaluate == "bp" else None,
        )
