"""Batched training of ensembles: losses, optimizers with per-member hyper-parameters, schedules,
the training loop with per-member stop rules, on-device measurements and checkpoints."""

from ._config import (
    OPTIMIZER_OPTIONS,
    OPTIMIZERS,
    SCHEDULE_OPTIONS,
    SCHEDULES,
    STOP_REASONS,
    STOP_RULES,
    TrainConfig,
)
from ._loop import Trainable, TrainResult, train
from ._optim import FIRE, LBFGS, SGD, Adam, BatchedOptimizer, make_optimizer, member_dot
from ._schedule import ConstantLR, Geiger2019LR, PlateauLR, make_schedule
from .losses import (
    LOSSES,
    CrossEntropy,
    LinearHinge,
    Loss,
    MeanSquaredError,
    QuadraticHinge,
    gaps,
    get_loss,
)

__all__ = [
    # optimizers
    "FIRE",
    "LBFGS",
    # losses
    "LOSSES",
    # configuration
    "OPTIMIZERS",
    "OPTIMIZER_OPTIONS",
    "SCHEDULES",
    "SCHEDULE_OPTIONS",
    "SGD",
    "STOP_REASONS",
    "STOP_RULES",
    "Adam",
    "BatchedOptimizer",
    # schedules
    "ConstantLR",
    "CrossEntropy",
    "Geiger2019LR",
    "LinearHinge",
    "Loss",
    "MeanSquaredError",
    "PlateauLR",
    "QuadraticHinge",
    "TrainConfig",
    # the loop
    "TrainResult",
    "Trainable",
    "gaps",
    "get_loss",
    "make_optimizer",
    "make_schedule",
    "member_dot",
    "train",
]
