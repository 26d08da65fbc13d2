"""Pseudo-likelihood decimation: sparse couplings by pruning the weakest and refitting.

The algorithm of Decelle & Ricci-Tersenghi (PRL 112, 070603, 2014), one of the alternatives the
study's spec lists. Starting from the full pseudo-likelihood fit, each round fixes the weakest
remaining couplings (smallest ``|J_ij|``) to exactly 0 and maximises the pseudo-likelihood over the
others again (warm start). With ``x`` the fraction of the ``N(N-1)/2`` couplings fixed to zero and
``L(x)`` the maximised log-pseudo-likelihood per sample (penalties excluded), the *tilted*
pseudo-likelihood

.. math::

    L_{\\rm tilt}(x) = L(x) - (1 - x)\\,L(0) - x\\,L(1)

is zero at both ends (``L(1)`` is the independent-spin model, ``h = atanh m``, in closed form).
On data from a sparse model it rises while only spurious couplings are removed and falls steeply
once true ones are; the returned model is the one at its maximum, and ``x`` there estimates the
fraction of absent couplings.

Each refit is :class:`PseudoLikelihood`'s own minimiser restricted to the free couplings (same
preconditioning, L-BFGS-B and Newton polishing), so the first round is exactly a
:class:`PseudoLikelihood` fit. The loop stops once the tilted pseudo-likelihood, after a positive
maximum, has fallen to ``stop_below`` times that maximum (0 = back to the straight line between
the ends) or when every coupling is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, check_choice, check_positive
from ._fit import EVALUATE_CHOICES, InverseIsing, _Raw
from ._moments import Moments
from ._pseudo import (
    START_CLIP,
    PseudoLikelihoodConfig,
    _pl_chunks,
    _pl_minimise,
    pseudo_likelihood_objective,
)

__all__ = ["DecimationConfig", "PseudoLikelihoodDecimation"]


@dataclass(frozen=True)
class DecimationConfig:
    """Settings of :class:`PseudoLikelihoodDecimation`.

    Attributes:
        pseudo: settings of every pseudo-likelihood refit (``l1`` must be 0: decimation is the
            sparsity mechanism; a small ``l2`` is allowed). Its ``evaluate`` is not used.
        step: fraction of all ``N(N-1)/2`` couplings fixed to zero per round (at least one).
        stop_below: stop once the tilted pseudo-likelihood, after reaching a positive maximum,
            is at or below ``stop_below`` × that maximum; in ``[0, 1)``. ``None``: run until every
            coupling is gone (the whole curve).
        evaluate: how the report computes the returned model's moments.
    """

    pseudo: PseudoLikelihoodConfig = field(default_factory=PseudoLikelihoodConfig)
    step: float = 0.02
    stop_below: float | None = 0.0
    evaluate: str = "auto"

    def __post_init__(self):
        if not isinstance(self.pseudo, PseudoLikelihoodConfig):
            raise ConfigError(
                f"pseudo={type(self.pseudo).__name__} must be a PseudoLikelihoodConfig"
            )
        if self.pseudo.l1 != 0:
            raise ConfigError(
                f"pseudo.l1={self.pseudo.l1!r} must be 0 with decimation (it prunes couplings "
                "itself); use PseudoLikelihood for an L1 fit"
            )
        check_positive("step", self.step, finite=True)
        if self.step >= 1:
            raise ConfigError(f"step={self.step!r} must be a fraction in (0, 1)")
        if self.stop_below is not None:
            check_positive("stop_below", self.stop_below, allow_zero=True, finite=True)
            if self.stop_below >= 1:
                raise ConfigError(f"stop_below={self.stop_below!r} must lie in [0, 1) or be None")
        check_choice("evaluate", self.evaluate, EVALUATE_CHOICES)


def _log_pl(data, J: torch.Tensor, h: torch.Tensor) -> float:
    """Log-pseudo-likelihood per sample (no penalty) of ``(J, h)``."""
    gen, chunks = data
    val, _, _ = pseudo_likelihood_objective(chunks if chunks is not None else gen(), J, h)
    return -float(val)


def _log_pl_independent(data, m: torch.Tensor) -> float:
    """The same for the independent-spin maximiser ``J = 0``, ``h = atanh m`` (closed form)."""
    h = torch.atanh(m.clamp(-1 + START_CLIP, 1 - START_CLIP))
    n = m.shape[0]
    return _log_pl(data, torch.zeros(n, n, dtype=m.dtype, device=m.device), h)


class PseudoLikelihoodDecimation(InverseIsing):
    """Pseudo-likelihood decimation (see the module docstring).

    The report's ``history`` is the tilted pseudo-likelihood after each round; ``extras`` holds
    the whole trace (``fraction``, ``log_pl``, ``tilted``, per round, round 0 = full fit), the
    chosen ``fraction_decimated`` and ``couplings_kept``, ``log_pl_full`` = ``L(0)`` and
    ``log_pl_independent`` = ``L(1)``. ``iterations`` sums the L-BFGS iterations of all refits;
    ``converged`` says every refit met its stopping criterion.
    """

    name = "pseudo_decimation"
    config_class = DecimationConfig
    needs_samples = True

    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        cfg = self.config
        n = moments.n_spins
        if n < 2:
            raise ConfigError(f"decimation needs at least 2 spins, got N = {n}")
        data = _pl_chunks(cfg.pseudo, moments, samples, weights)
        iu = torch.triu_indices(n, n, 1, device=moments.m.device)
        total = iu.shape[1]
        per_round = max(1, round(cfg.step * total))

        raw = _pl_minimise(cfg.pseudo, moments, samples, weights, data=data)
        l_full = _log_pl(data, raw.model.J, raw.model.h)
        l_ind = _log_pl_independent(data, moments.m)
        active = torch.arange(total, device=moments.m.device)
        ju = raw.model.J[iu[0], iu[1]]
        h = raw.model.h
        fractions, log_pl, tilted = [0.0], [l_full], [0.0]
        best = (0.0, 0, raw.model)  # (tilted, round, model)
        iterations, converged = raw.iterations, raw.converged
        rnd = 0
        while active.numel() > 0:
            rnd += 1
            k = min(per_round, active.numel())
            # weakest first; a stable sort breaks ties by coupling index (deterministic)
            order = torch.sort(ju[active].abs(), stable=True).indices
            active = torch.sort(active[order[k:]]).values
            x = 1.0 - active.numel() / total
            if active.numel() == 0:
                fractions.append(1.0)
                log_pl.append(l_ind)
                tilted.append(0.0)
                break
            # the warm start reads only the free couplings' entries of ju
            raw = _pl_minimise(
                cfg.pseudo, moments, samples, weights, active=active, start=(h, ju), data=data
            )
            iterations += raw.iterations
            converged = converged and raw.converged
            ju, h = raw.model.J[iu[0], iu[1]], raw.model.h
            lx = _log_pl(data, raw.model.J, h)
            t = lx - (1.0 - x) * l_full - x * l_ind
            fractions.append(x)
            log_pl.append(lx)
            tilted.append(t)
            if t > best[0]:
                best = (t, rnd, raw.model)
            if cfg.stop_below is not None and best[0] > 0 and t <= cfg.stop_below * best[0]:
                break
        t_best, r_best, model = best
        kept = int((model.J[iu[0], iu[1]] != 0).sum())
        return _Raw(
            model,
            iterations=iterations,
            converged=converged,
            history=tilted,
            message=f"maximum of the tilted pseudo-likelihood at round {r_best} of {rnd}",
            extras={
                "fraction_decimated": fractions[r_best],
                "couplings_kept": kept,
                "couplings_total": total,
                "rounds": rnd,
                "best_round": r_best,
                "tilted_max": t_best,
                "log_pl_full": l_full,
                "log_pl_independent": l_ind,
                "fraction": fractions,
                "log_pl": log_pl,
                "tilted": tilted,
                "per_round": per_round,
            },
        )
