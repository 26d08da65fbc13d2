"""Common machinery of the inverse-Ising methods: the fit report and the ``fit()`` front door.

Every method is one class with one ``fit(data, weights=None) -> FitResult``; ``data`` is either
±1 samples ``[S, N]`` (numpy/torch int8 or :class:`PackedSpins`) or a :class:`Moments`. A method
that needs samples (pseudo-likelihood) refuses moments. ``FitResult`` unpacks as
``model, report = method.fit(samples)``.

The moment error used throughout (the paper's) is

.. math::

    \\varepsilon = \\sqrt{\\overline{\\Delta m^2} + \\overline{\\Delta C^2}_{i \\ne j}},\\qquad
    \\Delta m = m^{\\rm model} - m^{\\rm data},\\ \\Delta C = C^{\\rm model} - C^{\\rm data},

where ``C`` are pair moments ``⟨σ_iσ_j⟩``. The report evaluates it for the fitted model by exact
enumeration when ``N ≤ 16`` and by BP otherwise (``evaluate="auto"``), and records which.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from ..errors import ConfigError, check_choice
from ._bp import BPConfig, bp_solve
from ._exact import _check_n, exact_moments
from ._model import IsingModel
from ._moments import Moments, sample_moments

__all__ = [
    "EVALUATE_CHOICES",
    "FitReport",
    "FitResult",
    "InverseIsing",
    "model_moments",
    "moment_error",
]

EVALUATE_CHOICES = ("auto", "exact", "bp", "none")
# "auto" enumerates up to this many spins (2^16 states: milliseconds), else uses BP.
AUTO_EXACT_MAX_SPINS = 16


def moment_error(model_m, model_C, data: Moments) -> tuple[float, float, float]:
    """``(ε, rms Δm, rms ΔC_{i≠j})`` between model moments and ``data`` (see module docstring)."""
    dm = (model_m - data.m).pow(2).mean()
    n = data.n_spins
    off = ~torch.eye(n, dtype=torch.bool, device=data.m.device)
    dC = (model_C - data.C)[off].pow(2).mean() if n > 1 else torch.zeros((), dtype=dm.dtype)
    return math.sqrt(float(dm + dC)), math.sqrt(float(dm)), math.sqrt(float(dC))


def model_moments(
    model: IsingModel, how: str = "auto", bp: BPConfig = BPConfig()
) -> tuple[Moments | None, str, dict]:
    """Model moments by ``"exact"`` enumeration, ``"bp"``, or ``"auto"`` (exact if N ≤ 16).

    Returns ``(moments or None, method used, info)``; ``info`` has BP's convergence when used.
    """
    check_choice("evaluate", how, EVALUATE_CHOICES)
    if how == "none":
        return None, "none", {}
    if how == "exact" or (how == "auto" and model.n_spins <= AUTO_EXACT_MAX_SPINS):
        return exact_moments(model), "exact", {}
    _, res, _ = bp_solve(model, bp)
    return (
        Moments(res.m, res.C),
        "bp",
        {"bp_converged": res.converged, "bp_iterations": res.iterations},
    )


@dataclass
class FitReport:
    """What a fit did and how well the fitted model reproduces the data moments.

    Attributes:
        method: the method's name.
        iterations: optimiser/learning iterations.
        seconds: wall time of the fit itself (moment evaluation for the report excluded).
        converged: the method's own stopping criterion was met.
        error, error_m, error_C: moment errors of the returned model (see module docstring), as
            evaluated by ``evaluated_by`` (``nan`` when ``"none"``).
        evaluated_by: ``"exact"``, ``"bp"`` or ``"none"``.
        history: per-iteration diagnostic (objective or moment error; method-specific).
        message: optimiser's message.
        extras: method-specific numbers (e.g. best iteration, clamped entries).
    """

    method: str
    iterations: int
    seconds: float
    converged: bool
    error: float = math.nan
    error_m: float = math.nan
    error_C: float = math.nan
    evaluated_by: str = "none"
    history: list[float] = field(default_factory=list)
    message: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "converged": self.converged,
            "error": self.error,
            "error_m": self.error_m,
            "error_C": self.error_C,
            "evaluated_by": self.evaluated_by,
            "history": list(self.history),
            "message": self.message,
            "extras": dict(self.extras),
        }


class FitResult(NamedTuple):
    """``(model, report)`` returned by every ``fit()``."""

    model: IsingModel
    report: FitReport


@dataclass
class _Raw:
    """What a method's ``_fit`` hands back to :meth:`InverseIsing.fit`."""

    model: IsingModel
    iterations: int
    converged: bool
    history: list[float] = field(default_factory=list)
    message: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    # Set when the method computed the final model's moments itself (then no re-evaluation).
    errors: tuple[float, float, float, str] | None = None
    # Wall time ``_fit`` spent on those moments for the report alone (not part of the learning):
    # subtracted from the report's ``seconds``.
    evaluation_seconds: float = 0.0


class InverseIsing(abc.ABC):
    """Base class: one subclass per inverse method, filling :meth:`_fit`.

    Subclasses set ``name``, ``config_class`` and ``needs_samples``; their config has an
    ``evaluate`` field (one of ``"auto"``, ``"exact"``, ``"bp"``, ``"none"``).
    """

    name: str = "base"
    config_class: type = object
    needs_samples: bool = False

    def __init__(self, config=None):
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config

    def fit(self, data, weights=None) -> FitResult:
        """Fit ``(J, h)`` to ``data``.

        Args:
            data: ±1 samples ``[S, N]`` (numpy/torch, or :class:`PackedSpins`) or :class:`Moments`.
            weights: optional per-sample weights ``[S]`` (samples only).

        Returns:
            :class:`FitResult` ``(model, report)``.
        """
        if isinstance(data, Moments):
            if weights is not None:
                raise ConfigError("weights apply to samples only; data is a Moments object")
            if self.needs_samples:
                raise ConfigError(
                    f"{type(self).__name__} needs samples [S, N], not Moments; "
                    "use a moment-based method (BP, exact, mean-field, TAP)"
                )
            moments, samples = data, None
        else:
            samples = data
            moments = sample_moments(samples, weights)
        if getattr(self.config, "evaluate", None) == "exact":
            _check_n(moments.n_spins)  # before the fit, not after it (its result would be lost)
        t0 = time.perf_counter()
        raw = self._fit(moments, samples, weights)
        seconds = time.perf_counter() - t0 - raw.evaluation_seconds
        if raw.errors is not None:
            err, em, eC, how = raw.errors
        else:
            mm, how, info = model_moments(raw.model, self.config.evaluate)
            raw.extras.update(info)
            err, em, eC = (
                (math.nan,) * 3 if mm is None else moment_error(mm.m, mm.C, moments.to(mm.m.dtype))
            )
        report = FitReport(
            method=self.name,
            iterations=raw.iterations,
            seconds=seconds,
            converged=raw.converged,
            error=err,
            error_m=em,
            error_C=eC,
            evaluated_by=how,
            history=raw.history,
            message=raw.message,
            extras=raw.extras,
        )
        return FitResult(raw.model, report)

    @abc.abstractmethod
    def _fit(self, moments: Moments, samples, weights) -> _Raw:
        """Fit from the data ``moments`` (always given) and ``samples`` (``None`` if not given)."""
