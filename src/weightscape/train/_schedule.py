"""Learning-rate schedules with per-member state on the device."""

from __future__ import annotations

import math

import torch

__all__ = ["ConstantLR", "Geiger2019LR", "PlateauLR", "make_schedule"]


class ConstantLR:
    """``lr_t = lr_0`` per member."""

    _state: tuple[str, ...] = ()

    def __init__(self, base: torch.Tensor):
        self.base = base
        self.current = base.clone()

    def lr(self, step: int) -> torch.Tensor:
        """The learning rates ``[M]`` used by the update at ``step``."""
        return self.current

    def observe(self, step: int, loss: torch.Tensor) -> None:
        """Feed the training loss ``[M]`` evaluated at ``step`` (after the update is proposed)."""

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in ("current", *self._state)}

    def load_state_dict(self, state: dict) -> None:
        for name in ("current", *self._state):
            getattr(self, name).copy_(torch.as_tensor(state[name]))


class Geiger2019LR(ConstantLR):
    """Step decay of the jamming papers ("adam0"), optionally after a hold at the base rate:
    ``lr_t = max(lr_0 · factor^⌊max(t − delay, 0) / every⌋, floor)``
    (defaults: ÷10 every 250k steps, floor 1e-7, no delay — the papers' schedule).

    ``delay`` (steps) postpones the decay clock: the base rate is held for ``delay + every``
    steps, then multiplied by ``factor`` every ``every`` steps. The clamp applies at every step
    (a base rate below ``floor`` is raised to ``floor``).
    """

    def __init__(self, base, every=250_000, factor=0.1, floor=1e-7, delay=0):
        super().__init__(base)
        self.every, self.factor, self.floor = int(every), float(factor), float(floor)
        self.delay = int(delay)
        self._k = -1  # decay count the current rates were computed for (-1: none yet)

    def decays(self, step: int) -> int:
        """Number of decays applied at ``step``: ``⌊max(step − delay, 0) / every⌋``."""
        return max(int(step) - self.delay, 0) // self.every

    def lr(self, step):
        k = self.decays(step)
        if k != self._k:
            self._k = k
            self.current.copy_(torch.clamp(self.base * self.factor**k, min=self.floor))
        return self.current

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self._k = -1


class PlateauLR(ConstantLR):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``min``) per member.

    Every ``every`` steps the mean training loss over those steps is the metric of one scheduler
    "epoch": if it does not improve on the best by more than ``threshold`` (relative or absolute)
    for more than ``patience`` epochs, ``lr ← max(factor · lr, min_lr)`` (skipped when the change
    is ≤ ``eps``), followed by ``cooldown`` epochs without counting.
    """

    _state = ("best", "num_bad", "cooldown_counter", "acc", "count")

    def __init__(
        self,
        base,
        every=1,
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
    ):
        super().__init__(base)
        M = base.shape[0]
        dev = base.device
        self.every, self.factor, self.patience = int(every), float(factor), int(patience)
        self.threshold, self.mode = float(threshold), threshold_mode
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.best = torch.full((M,), math.inf, dtype=base.dtype, device=dev)
        self.num_bad = torch.zeros(M, dtype=torch.int64, device=dev)
        self.cooldown_counter = torch.zeros(M, dtype=torch.int64, device=dev)
        self.acc = torch.zeros(M, dtype=base.dtype, device=dev)
        self.count = torch.zeros((), dtype=torch.int64, device=dev)

    def observe(self, step, loss):
        self.acc.add_(loss)
        self.count.add_(1)
        if (step + 1) % self.every == 0:
            self.step_metric(self.acc / self.every)
            self.acc.zero_()
            self.count.zero_()

    def step_metric(self, metric: torch.Tensor) -> None:
        """One scheduler epoch with metric ``[M]`` (torch's ``scheduler.step(metric)``)."""
        if self.mode == "rel":
            better = metric < self.best * (1 - self.threshold)
        else:
            better = metric < self.best - self.threshold
        self.best.copy_(torch.where(better, metric, self.best))
        num_bad = torch.where(better, 0, self.num_bad + 1)
        in_cool = self.cooldown_counter > 0
        self.cooldown_counter.copy_(torch.where(in_cool, self.cooldown_counter - 1, 0))
        num_bad = torch.where(in_cool, 0, num_bad)
        reduce = num_bad > self.patience
        new = torch.clamp(self.current * self.factor, min=self.min_lr)
        change = reduce & (self.current - new > self.eps)
        self.current.copy_(torch.where(change, new, self.current))
        self.cooldown_counter.copy_(torch.where(reduce, self.cooldown, self.cooldown_counter))
        self.num_bad.copy_(torch.where(reduce, 0, num_bad))


_CLASSES = {"constant": ConstantLR, "geiger2019": Geiger2019LR, "plateau": PlateauLR}


def make_schedule(name: str, base: torch.Tensor, options: dict):
    """A schedule by name over the per-member base learning rates ``[M]``."""
    return _CLASSES[name](base, **options)
