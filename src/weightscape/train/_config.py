"""The training configuration: one frozen, validated dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import Precision
from ..errors import ConfigError, check_choice, check_positive, check_seed
from .losses import LOSSES, get_loss

__all__ = [
    "OPTIMIZERS",
    "OPTIMIZER_OPTIONS",
    "SCHEDULES",
    "SCHEDULE_OPTIONS",
    "STOP_REASONS",
    "STOP_RULES",
    "TrainConfig",
]

#: Optimizer names and the options each accepts (with defaults).
OPTIMIZER_OPTIONS: dict[str, dict] = {
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8},
    "sgd": {"momentum": 0.0, "nesterov": False},
    "fire": {
        "dt_max_factor": 10.0,
        "n_min": 5,
        "f_inc": 1.1,
        "f_dec": 0.5,
        "alpha_start": 0.1,
        "f_alpha": 0.99,
    },
    "lbfgs": {"history": 10, "c1": 1e-4, "backtrack": 0.5},
}
OPTIMIZERS = tuple(OPTIMIZER_OPTIONS)

#: Learning-rate schedules and their options (with defaults).
SCHEDULE_OPTIONS: dict[str, dict] = {
    "constant": {},
    # the jamming papers' "adam0": lr ÷ 10 every 250k steps down to a floor of 1e-7; ``delay``
    # holds the base rate for that many extra steps before the decay clock starts
    "geiger2019": {"every": 250_000, "factor": 0.1, "floor": 1e-7, "delay": 0},
    # torch.optim.lr_scheduler.ReduceLROnPlateau semantics (mode "min"), evaluated every
    # ``every`` steps on the mean training loss of those steps
    "plateau": {
        "every": 1,
        "factor": 0.1,
        "patience": 10,
        "threshold": 1e-4,
        "threshold_mode": "rel",
        "cooldown": 0,
        "min_lr": 0.0,
        "eps": 1e-8,
    },
}
SCHEDULES = tuple(SCHEDULE_OPTIONS)

STOP_RULES = ("unsat_zero", "grad_norm", "loss")
#: Codes stored per member on the device (index = code); "running" only while training;
#: "hook" = stopped by the ``stop_hook`` passed to :func:`weightscape.train.train`.
STOP_REASONS = ("running", "unsat_zero", "grad_norm", "loss", "nonfinite", "budget", "hook")


def _merge(kind: str, name: str, given, table: dict[str, dict]) -> dict:
    allowed = table[name]
    given = dict(given or {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{kind} {name!r} does not take options {unknown}; allowed: {sorted(allowed)}"
        )
    return {**allowed, **given}


@dataclass(frozen=True)
class TrainConfig:
    """How to train an ensemble.

    Args:
        loss: one of :data:`weightscape.train.LOSSES` (``quadratic_hinge`` is the jamming loss).
        loss_options: e.g. ``{"kappa": 1.0}`` for the hinge losses.
        l2: L2 coefficient λ; the objective is ``loss + (λ/2) Σ θ²`` over all parameters (biases
            included), i.e. torch's ``weight_decay=λ``.
        optimizer: ``adam``, ``sgd`` (plain or momentum), ``fire``, ``lbfgs`` (full batch only).
        lr: learning rate (FIRE: initial time step; L-BFGS: initial trial step, default 1); a
            float for all members or a tuple with one value per member.
        optimizer_options: see :data:`OPTIMIZER_OPTIONS`.
        schedule: ``constant``, ``geiger2019`` (÷10 every 250k steps, floor 1e-7; the interval,
            factor, floor and a delay of the first decay are options), ``plateau``.
        schedule_options: see :data:`SCHEDULE_OPTIONS`.
        max_steps: step budget (parameter updates).
        batch_size: None = full batch; otherwise minibatches drawn from a per-epoch permutation
            seeded by ``seed`` (the same order for every member).
        stop: per-member stop rules, any of ``unsat_zero`` (N_Δ = 0: every gap Δ ≤ 0; binary
            losses), ``grad_norm`` (‖∇‖ < ``grad_tol``; full batch), ``loss`` (loss ≤ ``loss_tol``).
            A member with a non-finite loss or update is always stopped ("nonfinite").
        grad_tol, loss_tol: tolerances of the stop rules.
        check_every: stop rules are evaluated every this many steps (on the device, no sync).
        measure_every: record metrics every k steps (None: only at the log-spaced steps).
        n_log_points: number of (approximately) log-spaced measurement steps in [1, max_steps].
        poll_every: every this many steps the host reads whether any member is still active (the
            only host–device synchronisation of the loop, besides checkpoints).
        seed: seed of the minibatch order.
        precision: dtype/device to train in; None = those of the ensemble.
    """

    loss: str = "quadratic_hinge"
    loss_options: dict = field(default_factory=dict)
    l2: float = 0.0
    optimizer: str = "adam"
    lr: float | tuple[float, ...] = 1e-3
    optimizer_options: dict = field(default_factory=dict)
    schedule: str = "constant"
    schedule_options: dict = field(default_factory=dict)
    max_steps: int = 1000
    batch_size: int | None = None
    stop: tuple[str, ...] = ("unsat_zero",)
    grad_tol: float = 1e-10
    loss_tol: float = 0.0
    check_every: int = 1
    measure_every: int | None = None
    n_log_points: int = 150
    poll_every: int = 100
    seed: int = 0
    precision: Precision | None = None

    def __post_init__(self):
        check_choice("loss", self.loss, LOSSES)
        get_loss(self.loss, **dict(self.loss_options))  # validates the options
        check_positive("l2", self.l2, allow_zero=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        lr = self.lr
        if isinstance(lr, list | tuple):
            if not lr:
                raise ConfigError("lr=() is empty; give a float or one value per member")
            lr = tuple(
                float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in lr
            )
            for v in lr:
                if not (isinstance(v, float) and v > 0) or isinstance(v, bool):
                    # math.inf is allowed (it is how tests inject a diverging member)
                    raise ConfigError(f"lr={v!r} must be a number > 0")
        else:
            check_positive("lr", lr)
            lr = float(lr)
        object.__setattr__(self, "lr", lr)
        object.__setattr__(
            self,
            "optimizer_options",
            _merge("optimizer", self.optimizer, self.optimizer_options, OPTIMIZER_OPTIONS),
        )
        check_choice("schedule", self.schedule, SCHEDULES)
        sched = _merge("schedule", self.schedule, self.schedule_options, SCHEDULE_OPTIONS)
        if self.schedule == "geiger2019":
            check_positive("schedule every", sched["every"], integer=True)
            check_positive("schedule factor", sched["factor"])
            check_positive("schedule floor", sched["floor"], allow_zero=True)
            check_positive("schedule delay", sched["delay"], allow_zero=True, integer=True)
        if self.schedule == "plateau":
            check_positive("schedule every", sched["every"], integer=True)
            check_positive("schedule patience", sched["patience"], allow_zero=True, integer=True)
            check_positive("schedule cooldown", sched["cooldown"], allow_zero=True, integer=True)
            check_choice("schedule threshold_mode", sched["threshold_mode"], ("rel", "abs"))
            if not 0 < sched["factor"] < 1:
                raise ConfigError(f"schedule factor={sched['factor']!r} must be in (0, 1)")
        object.__setattr__(self, "schedule_options", sched)
        check_positive("max_steps", self.max_steps, allow_zero=True, integer=True)
        if self.batch_size is not None:
            check_positive("batch_size", self.batch_size, integer=True)
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        for rule in stop:
            check_choice("stop rule", rule, STOP_RULES)
        object.__setattr__(self, "stop", stop)
        if "unsat_zero" in stop and not LOSSES[self.loss].binary:
            raise ConfigError(
                f"stop rule 'unsat_zero' needs a binary loss (hinge), not loss={self.loss!r}"
            )
        if self.batch_size is not None and ("grad_norm" in stop or self.optimizer == "lbfgs"):
            raise ConfigError(
                "stop rule 'grad_norm' and optimizer 'lbfgs' need full batch (batch_size=None)"
            )
        check_positive("grad_tol", self.grad_tol, allow_zero=True)
        check_positive("loss_tol", self.loss_tol, allow_zero=True)
        check_positive("check_every", self.check_every, integer=True)
        if self.measure_every is not None:
            check_positive("measure_every", self.measure_every, integer=True)
        check_positive("n_log_points", self.n_log_points, allow_zero=True, integer=True)
        check_positive("poll_every", self.poll_every, integer=True)
        check_seed("seed", self.seed)
        if self.precision is not None and not isinstance(self.precision, Precision):
            raise ConfigError(f"precision={self.precision!r} must be a weightscape Precision")

    def make_loss(self):
        return get_loss(self.loss, **dict(self.loss_options))

    def lr_per_member(self, M: int) -> list[float]:
        """The base learning rate of each of ``M`` members."""
        if isinstance(self.lr, tuple):
            if len(self.lr) != M:
                raise ConfigError(f"lr has {len(self.lr)} values but the ensemble has M={M}")
            return list(self.lr)
        return [self.lr] * M

    def to_dict(self) -> dict:
        """JSON-ready dict (``precision`` as its two strings)."""
        out = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            if isinstance(v, Precision):
                v = {"dtype": v.dtype, "device": v.device}
            elif isinstance(v, float) and math.isinf(v):
                v = "inf"
            out[k] = v
        return out

    def measure_steps(self) -> list[int]:
        """Sorted steps at which metrics are recorded: 0, every ``measure_every``, about
        ``n_log_points`` log-spaced steps in [1, max_steps], and ``max_steps``."""
        steps = {0, self.max_steps}
        if self.measure_every:
            steps.update(range(0, self.max_steps + 1, self.measure_every))
        if self.n_log_points and self.max_steps > 0:
            n = self.n_log_points
            for i in range(n):
                steps.add(round(self.max_steps ** (i / max(n - 1, 1))))
        return sorted(s for s in steps if 0 <= s <= self.max_steps)
