"""The training protocol of study A as config values: presets ``geiger2019`` and alternatives.

A :class:`Protocol` fixes everything of a run but the sizes (P, depth, width, d) and the seeds:
loss, margin, initialisation, data preparation, optimizer and schedule, precision, step budget,
stop rules (``N_Δ = 0``; optionally the plateau rule that decides jammed members early) and the
measurement schedule. :meth:`Protocol.run_config` turns it into the flat run config of the
``"jamming.train"`` sweep task (the keys of :data:`weightscape.runs.TRAIN_DEFAULTS` plus
``jamming.*``).

Presets (:data:`PROTOCOLS`):

* ``geiger2019`` — the papers' protocol ("adam0"): quadratic hinge, κ = 1, the authors' init
  (unit-norm block-orthonormal rows, read-out row of norm κ, zero biases), float64, full-batch
  Adam (β = (0.9, 0.999), ε = 1e-8) at lr 1e-4 divided by 10 every 250k steps down to 1e-7,
  budget 1M steps (the papers use 0.5M–10M), stop at ``N_Δ = 0`` or the budget; data centred on
  the P points and rescaled to norm √d; measurements every 10k steps and at 150 log-spaced steps.
* ``fire``, ``sgd-momentum``, ``adam-plateau`` — the other optimizers the authors used (FIRE; SGD
  with momentum 0.9; Adam with ReduceLROnPlateau), same everything else.
* ``fast`` — the reduced-scale protocol (a recorded departure): Adam at constant lr 3e-3, budget
  20k steps, the plateau rule on; checked by doubling the budget (see
  :func:`weightscape.jamming.budget_check`).
* ``fast-decay`` — ``fast`` with a compressed adam0 decay, so that runs settle before they are
  judged: lr 3e-3 for 12k steps, then ÷10 every 2k steps (3e-4, 3e-5, 3e-6) down to the floor
  3e-7 reached at 18k, budget 20k; plateau decisions only at the floor, on the last 20 % of the
  run's time (:data:`FAST_DECAY_PLATEAU`). Compared with ``fast`` offline: docs/studies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..errors import ConfigError, check_choice, check_positive
from ..train._config import SCHEDULE_OPTIONS
from ._diagnose import PlateauRule

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "get_protocol",
    "n_weights",
    "width_for_n",
]

_OPTIMIZERS = ("adam", "sgd", "fire", "lbfgs")
_SCHEDULES = ("constant", "geiger2019", "plateau")
#: Each step-decay field of :class:`Protocol` and its ``geiger2019`` train-schedule option (the
#: flat config key is ``jamming.schedule.<option>``).
_DECAY_KEYS = {
    "decay_every": "every",
    "decay_factor": "factor",
    "lr_floor": "floor",
    "decay_delay": "delay",
}
#: Their defaults: the train schedule's (the papers' adam0: ÷10 every 250k steps, floor 1e-7).
_DECAY_DEFAULTS = {k: SCHEDULE_OPTIONS["geiger2019"][opt] for k, opt in _DECAY_KEYS.items()}


@dataclass(frozen=True)
class Protocol:
    """How every run of the study is trained and measured (all sizes and seeds excluded).

    Attributes:
        name: preset name (recorded in the results).
        kappa: margin κ of the gaps ``Δ = κ − y f``.
        activation: ``relu`` (paper) or ``tanh``.
        init: the nets' init scheme (``geiger2019``: the authors').
        bias: biases in every layer (paper: yes).
        center: centre the data on the mean of the P training points.
        normalize: ``"sqrt_d"``: every input rescaled to norm √d (or None).
        optimizer: ``adam``, ``sgd`` or ``fire`` (full batch).
        lr: learning rate (FIRE: initial time step).
        momentum: SGD momentum (None: the optimizer's default).
        schedule: ``constant``, ``geiger2019`` (step decay, below) or ``plateau``
            (ReduceLROnPlateau).
        decay_every: ``geiger2019`` schedule: steps between decays (papers: 250k).
        decay_factor: ``geiger2019`` schedule: the rate is multiplied by this at each decay, in
            (0, 1] (papers: 0.1).
        lr_floor: ``geiger2019`` schedule: the rate never goes below this (papers: 1e-7).
        decay_delay: ``geiger2019`` schedule: extra steps at ``lr`` before the decay clock
            starts (papers: 0). The rate at step t is
            ``max(lr · decay_factor^⌊max(t − decay_delay, 0) / decay_every⌋, lr_floor)``.
        max_steps: step budget.
        plateau: the plateau rule used online to stop jammed members early and to classify runs
            at the budget; None: no early decision (runs at the budget are still classified with
            the default :class:`PlateauRule`).
        measure_every: record metrics every this many steps (plus ``n_log_points`` log-spaced
            steps).
        n_log_points: log-spaced measurement steps.
        poll_every: steps between host polls (stop checks of the plateau rule happen there).
        dtype: ``float64`` (required for exact gap counts; float32 miscounts near-zero gaps).
        device: ``cpu`` or ``cuda``.
    """

    name: str = "geiger2019"
    kappa: float = 1.0
    activation: str = "relu"
    init: str = "geiger2019"
    bias: bool = True
    center: bool = True
    normalize: str | None = "sqrt_d"
    optimizer: str = "adam"
    lr: float = 1e-4
    momentum: float | None = None
    schedule: str = "geiger2019"
    decay_every: int = _DECAY_DEFAULTS["decay_every"]
    decay_factor: float = _DECAY_DEFAULTS["decay_factor"]
    lr_floor: float = _DECAY_DEFAULTS["lr_floor"]
    decay_delay: int = _DECAY_DEFAULTS["decay_delay"]
    max_steps: int = 1_000_000
    plateau: PlateauRule | None = None
    measure_every: int | None = 10_000
    n_log_points: int = 150
    poll_every: int = 100
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self):
        check_positive("kappa", self.kappa)
        check_choice("activation", self.activation, ("relu", "tanh"))
        check_choice("optimizer", self.optimizer, _OPTIMIZERS)
        check_choice("schedule", self.schedule, _SCHEDULES)
        check_choice("normalize", self.normalize, (None, "sqrt_d"))
        check_positive("lr", self.lr)
        check_positive("max_steps", self.max_steps, integer=True)
        check_positive("decay_every", self.decay_every, integer=True)
        check_positive("decay_factor", self.decay_factor)
        if self.decay_factor > 1:
            raise ConfigError(f"decay_factor={self.decay_factor!r} must be in (0, 1]")
        check_positive("lr_floor", self.lr_floor, allow_zero=True)
        check_positive("decay_delay", self.decay_delay, allow_zero=True, integer=True)
        if self.schedule != "geiger2019":
            for key, default in _DECAY_DEFAULTS.items():
                if getattr(self, key) != default:
                    raise ConfigError(
                        f"{key}={getattr(self, key)!r} is only for schedule 'geiger2019' "
                        f"(got schedule {self.schedule!r})"
                    )
        if self.momentum is not None:
            if self.optimizer != "sgd":
                raise ConfigError(f"momentum={self.momentum!r} is only for optimizer 'sgd'")
            check_positive("momentum", self.momentum, allow_zero=True)
        if self.plateau is not None and not isinstance(self.plateau, PlateauRule):
            raise ConfigError(f"plateau={self.plateau!r} must be a PlateauRule or None")
        if self.measure_every is not None:
            check_positive("measure_every", self.measure_every, integer=True)
        check_positive("n_log_points", self.n_log_points, allow_zero=True, integer=True)
        check_positive("poll_every", self.poll_every, integer=True)
        check_choice("dtype", self.dtype, ("float64", "float32"))

    @property
    def rule(self) -> PlateauRule:
        """The plateau rule that classifies runs at the budget (the default one when off)."""
        return self.plateau if self.plateau is not None else PlateauRule()

    def with_budget(self, max_steps: int, *, scale_schedule: bool = False) -> Protocol:
        """The same protocol with another step budget (for the budget-doubling check).

        With ``scale_schedule`` every step count of the schedule and of the plateau rule
        (``decay_every``, ``decay_delay``, ``plateau.min_step``) is scaled by
        ``max_steps / self.max_steps`` (rounded), so a decaying schedule keeps its shape;
        otherwise only the budget changes (a step decay then spends the extra steps at the
        rate it has reached).
        """
        check_positive("max_steps", max_steps, integer=True)
        if not scale_schedule:
            return replace(self, max_steps=int(max_steps))
        f = max_steps / self.max_steps
        plateau = self.plateau
        if plateau is not None:
            plateau = replace(plateau, min_step=round(plateau.min_step * f))
        changes = {"max_steps": int(max_steps), "plateau": plateau}
        if self.schedule == "geiger2019":
            changes["decay_every"] = max(1, round(self.decay_every * f))
            changes["decay_delay"] = round(self.decay_delay * f)
        return replace(self, **changes)

    def lr_at(self, step: int) -> float:
        """The learning rate of the update at ``step`` (``geiger2019`` and ``constant``)."""
        if self.schedule == "constant":
            return float(self.lr)
        if self.schedule != "geiger2019":
            raise ConfigError(
                f"lr_at needs schedule 'constant' or 'geiger2019', not {self.schedule!r}"
            )
        import torch

        from ..train._schedule import Geiger2019LR

        opts = {opt: getattr(self, k) for k, opt in _DECAY_KEYS.items()}
        base = torch.tensor([float(self.lr)], dtype=torch.float64)
        return float(Geiger2019LR(base, **opts).lr(int(step))[0])

    def to_dict(self) -> dict:
        """JSON-ready dict (the plateau rule as a dict)."""
        return asdict(self)

    def run_config(
        self,
        *,
        depth: int,
        width: int,
        seed: int,
        P: int,
        d: int | None = None,
        data: str = "random",
        data_seed: int | None = None,
        data_options: dict | None = None,
    ) -> dict:
        """The flat config of one run of the ``"jamming.train"`` task.

        Args:
            depth: hidden layers L (0 = linear classifier; then ``width`` is ignored and the
                net has no bias).
            width: hidden width h.
            seed: initialisation seed of the net.
            P: training points.
            d: input dimension (random data; default ``d = h``, or ``d = width`` at depth 0).
            data: dataset name (``random``, ``mnist``, ``fashion-mnist``, ``mnist-sample``).
            data_seed: seed of the data draw (default: ``seed``).
            data_options: extra :func:`weightscape.data.load` options (e.g. ``preset``).
        """
        from ..runs import TRAIN_DEFAULTS

        check_positive("depth", depth, allow_zero=True, integer=True)
        check_positive("width", width, integer=True)
        check_positive("P", P, integer=True)
        cfg = dict(TRAIN_DEFAULTS)
        opts = dict(data_options or {})
        cfg["seed"] = int(seed)
        cfg["data.name"] = data
        cfg["data.seed"] = int(seed if data_seed is None else data_seed)
        if data == "random":
            cfg["data.P"] = int(P)
            cfg["data.d"] = int(width if d is None else d)
            cfg["data.labels"] = opts.pop("labels", "balanced")
        else:
            cfg["data.train_size"] = int(P)
        if self.center:
            cfg["data.center"] = True
        if self.normalize is not None:
            cfg["data.normalize"] = self.normalize
        for k, v in opts.items():
            cfg[f"data.{k}"] = v
        cfg.update(
            {
                "net.depth": int(depth),
                "net.width": int(width) if depth > 0 else 1,
                "net.bias": bool(self.bias) if depth > 0 else False,
                "net.activation": self.activation,
                "net.init": self.init,
                "net.output_norm": float(self.kappa),
                "train.loss": "quadratic_hinge",
                "train.kappa": float(self.kappa),
                "train.optimizer": self.optimizer,
                "train.lr": float(self.lr),
                "train.momentum": self.momentum,
                "train.schedule": self.schedule,
                "train.max_steps": int(self.max_steps),
                "train.stop": ["unsat_zero"],
                "train.measure_every": self.measure_every,
                "train.n_log_points": int(self.n_log_points),
                "train.poll_every": int(self.poll_every),
                "precision.dtype": self.dtype,
                "precision.device": self.device,
            }
        )
        cfg.update(_plateau_keys(self.plateau))
        cfg.update(_schedule_keys(self))
        return cfg


def _schedule_keys(protocol: Protocol | None) -> dict:
    """Flat ``jamming.schedule.*`` keys of the step decay (the papers' values when None)."""
    vals = _DECAY_DEFAULTS if protocol is None else {k: getattr(protocol, k) for k in _DECAY_KEYS}
    return {f"jamming.schedule.{opt}": vals[k] for k, opt in _DECAY_KEYS.items()}


def schedule_options_from_config(cfg) -> dict:
    """The train-schedule options of a flat ``jamming.train`` config (``{}`` unless the
    schedule is ``geiger2019``; missing keys take the papers' values)."""
    if cfg.get("train.schedule") != "geiger2019":
        return {}
    defaults = _schedule_keys(None)
    return {k.rsplit(".", 1)[1]: cfg.get(k, v) for k, v in defaults.items()}


def _plateau_keys(rule: PlateauRule | None) -> dict:
    on = rule is not None
    rule = PlateauRule() if rule is None else rule
    return {
        "jamming.plateau": on,
        **{f"jamming.plateau.{k}": v for k, v in asdict(rule).items()},
    }


def plateau_from_config(cfg) -> PlateauRule | None:
    """The plateau rule of a flat ``jamming.train`` config (None when off)."""
    if not cfg.get("jamming.plateau", False):
        return None
    keys = PlateauRule.__dataclass_fields__
    return PlateauRule(**{k: cfg[f"jamming.plateau.{k}"] for k in keys})


#: The reduced-scale plateau rule: decide after 2k steps once, over the last half of the run's
#: time, N_Δ fell by at most max(2 points, 3 %) and the loss by at most 3 % (relative).
FAST_PLATEAU = PlateauRule(
    window_factor=2.0, ndelta_rtol=0.03, ndelta_atol=2.0, loss_rtol=0.03, min_points=5,
    min_step=2000,
)  # fmt: skip

#: The plateau rule of ``fast-decay``: decisions only once the rate has reached its floor
#: (18k steps), on the last 20 % of the run's time (``window_factor`` 1.25: at 20k the window
#: is [16k, 20k], where the rate is ≤ 3e-6 and the pilot runs' N_Δ moved by ≤ 1 point and their
#: loss by < 1e-4 relative unless they were still converging onto a zero of the loss); same
#: tolerances as ``fast``.
FAST_DECAY_PLATEAU = PlateauRule(
    window_factor=1.25, ndelta_rtol=0.03, ndelta_atol=2.0, loss_rtol=0.03, min_points=5,
    min_step=18_000,
)  # fmt: skip

PROTOCOLS: dict[str, Protocol] = {
    "geiger2019": Protocol(),
    "fire": Protocol(name="fire", optimizer="fire", lr=1e-2, schedule="constant"),
    "sgd-momentum": Protocol(
        name="sgd-momentum", optimizer="sgd", lr=1e-2, momentum=0.9, schedule="constant"
    ),
    "adam-plateau": Protocol(name="adam-plateau", schedule="plateau"),
    "fast": Protocol(
        name="fast",
        lr=3e-3,
        schedule="constant",
        max_steps=20_000,
        plateau=FAST_PLATEAU,
        measure_every=500,
        n_log_points=150,
    ),
    "fast-decay": Protocol(
        name="fast-decay",
        lr=3e-3,
        schedule="geiger2019",
        decay_every=2_000,
        decay_factor=0.1,
        lr_floor=3e-7,
        decay_delay=10_000,
        max_steps=20_000,
        plateau=FAST_DECAY_PLATEAU,
        measure_every=500,
        n_log_points=150,
    ),
}


def get_protocol(name: str = "geiger2019", **overrides) -> Protocol:
    """A preset of :data:`PROTOCOLS`, with fields overridden (e.g. ``max_steps=40_000``)."""
    check_choice("protocol", name, list(PROTOCOLS))
    base = PROTOCOLS[name]
    unknown = sorted(set(overrides) - set(Protocol.__dataclass_fields__))
    if unknown:
        raise ConfigError(
            f"protocol options {unknown} are not allowed; choose from "
            f"{sorted(Protocol.__dataclass_fields__)}"
        )
    return replace(base, **overrides) if overrides else base


# ------------------------------------------------------------------------------------------------
# sizes


def n_weights(depth: int, width: int, d: int | None = None, out_dim: int = 1) -> int:
    """N, the number of weights (biases excluded), of a net with ``depth`` hidden layers.

    .. math:: N = d h + (L - 1) h^2 + h \\cdot \\text{out}, \\qquad d = h \\text{ by default}

    At depth 0 (a linear classifier) ``N = d`` (``width`` is then the input dimension).

    >>> n_weights(3, 51), n_weights(2, 62), n_weights(5, 40)
    (7854, 7750, 8040)
    """
    check_positive("depth", depth, allow_zero=True, integer=True)
    check_positive("width", width, integer=True)
    d = width if d is None else d
    if depth == 0:
        return d * out_dim
    return d * width + (depth - 1) * width * width + width * out_dim


def width_for_n(depth: int, n: float, d: int | None = None) -> float:
    """The (real) width h with ``n_weights(depth, h, d) = n`` (``d = h`` when None)."""
    check_positive("n", n)
    if depth == 0:
        return float(n)
    if d is None:  # L h² + h = n
        a, b = depth, 1.0
    else:  # (L-1) h² + (d + 1) h = n
        a, b = depth - 1, d + 1.0
    if a == 0:
        return n / b
    return (-b + math.sqrt(b * b + 4 * a * n)) / (2 * a)
