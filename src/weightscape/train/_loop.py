"""The batched training loop: M members, per-member stop rules, on-device measurements."""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ._config import STOP_REASONS, TrainConfig
from ._optim import BatchedOptimizer, make_optimizer
from ._schedule import make_schedule
from .losses import CrossEntropy, Loss, MeanSquaredError, gaps

__all__ = ["TrainResult", "Trainable", "train"]

_CODE = {name: i for i, name in enumerate(STOP_REASONS)}


@runtime_checkable
class Trainable(Protocol):
    """What :func:`train` needs from a model of M members.

    Attributes:
        params: list of stacked tensors ``[M, ...]``; updated in place by :func:`train`.

    ``forward_cached(x)`` returns ``(out [M, P, out_dim], cache)`` and ``backward(cache, dout)``
    the gradients of ``Σ dout · out`` w.r.t. ``params`` (same shapes). Inputs ``x`` are shared
    ``[P, ...]`` (2-d) or per member ``[M, P, ...]`` (3-d); minibatches index the P axis.
    :class:`weightscape.nets.Ensemble` is one; a stochastic model (e.g. an LR-net) can be another.
    """

    params: list[torch.Tensor]

    def forward_cached(self, x: torch.Tensor): ...

    def backward(self, cache, dout: torch.Tensor) -> list[torch.Tensor]: ...


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (the object passed in; its parameters were updated in place).
        summary: one row per member: ``member, loss, objective, n_unsat, n_errors, grad_norm,
            steps, stop_reason, lr, n_train`` (+ ``test_loss, test_errors`` with test data).
            ``n_unsat`` = N_Δ = #{Δ > 0} and ``n_errors`` = #{y f ≤ 0} for binary losses
            (``n_errors`` = #{argmax f ≠ y} for class labels; NaN where undefined).
        metrics: long format ``member, step, name, value`` at the measurement steps while the
            member was active (its stop step included).
        gaps: ``{"train": [M, P]}`` (and ``"test"``) final gaps Δ = κ − y f (binary losses);
            with a ``sample_mask`` the masked-out entries are NaN.
        steps: loop steps done (the largest number of updates any member received).
        config: the configuration.
    """

    model: Trainable
    summary: pd.DataFrame
    metrics: pd.DataFrame
    gaps: dict[str, np.ndarray]
    steps: int
    config: TrainConfig


# ---------------------------------------------------------------------------------------------
# data handling
class _Data:
    """Inputs, labels and weights on the device, with P-axis indexing for minibatches."""

    def __init__(self, x, y, weights, M, dtype, device, loss: Loss, name="x"):
        self.x = _as_tensor(x, dtype, device)
        if self.x.dim() < 2:
            raise ConfigError(
                f"{name} has shape {tuple(self.x.shape)}; expected [P, d] or [M, P, d]"
            )
        self.x_member = self.x.dim() == 3
        if self.x_member and self.x.shape[0] != M:
            raise ConfigError(f"{name} has {self.x.shape[0]} member rows, the model has M={M}")
        self.P = self.x.shape[-2]
        label_dtype = torch.int64 if _int_labels(y) else dtype
        if isinstance(loss, CrossEntropy):
            label_dtype = torch.int64
        self.y = _as_tensor(y, label_dtype, device)
        if self.y.shape[0] == M and self.y.dim() >= 2 and self.y.shape[1] == self.P:
            self.y_member = self.y.dim() == 3 or not (
                isinstance(loss, MeanSquaredError) and self.y.shape[0] == self.P
            )
        else:
            self.y_member = False
        if (self.y.shape[1] if self.y_member else self.y.shape[0]) != self.P:
            raise ConfigError(
                f"labels of shape {tuple(self.y.shape)} do not match P={self.P} inputs"
            )
        if weights is None:
            self.w = None
            self.n = torch.full((M,), float(self.P), dtype=dtype, device=device)
        else:
            w = _as_tensor(weights, dtype, device)
            if tuple(w.shape) != (M, self.P):
                raise ConfigError(
                    f"sample_mask has shape {tuple(w.shape)}; expected [M, P] = {(M, self.P)}"
                )
            if bool((w < 0).any()):
                raise ConfigError("sample_mask has negative entries; use 0/1 or weights >= 0")
            self.w = w
            self.n = w.sum(1)

    def select(self, keep: torch.Tensor, d: int) -> _Data:
        """The data of members ``keep`` (per-member inputs cut to input size ``d``)."""
        new = copy.copy(self)
        if self.x_member:
            new.x = self.x[keep][..., :d].contiguous()
        if self.y_member:
            new.y = self.y[keep]
        if self.w is not None:
            new.w = self.w[keep]
        new.n = self.n[keep]
        return new

    def batch(self, idx):
        if idx is None:
            return self.x, self.y, self.w
        x = self.x[:, idx] if self.x_member else self.x[idx]
        y = self.y[:, idx] if self.y_member else self.y[idx]
        w = None if self.w is None else self.w[:, idx]
        return x, y, w


def _int_labels(y) -> bool:
    if isinstance(y, torch.Tensor):
        return not y.is_floating_point()
    return np.issubdtype(np.asarray(y).dtype, np.integer)


def _as_tensor(a, dtype, device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class _Sampler:
    """Minibatch indices from a per-epoch permutation (torch.Generator seeded by ``seed``)."""

    def __init__(self, P: int, batch_size: int | None, seed: int, device):
        self.P, self.B, self.device = P, batch_size, device
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.arange(P)
        self.pos = P  # forces a fresh permutation on first use

    def next(self):
        if self.B is None or self.B >= self.P:
            return None
        if self.pos >= self.P:
            self.perm = torch.randperm(self.P, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.B]
        self.pos += self.B
        return idx.to(self.device)

    def state(self) -> dict:
        return {"gen": self.gen.get_state().numpy(), "perm": self.perm.numpy(), "pos": self.pos}

    def load(self, state: dict) -> None:
        self.gen.set_state(torch.as_tensor(state["gen"], dtype=torch.uint8))
        self.perm = torch.as_tensor(state["perm"], dtype=torch.int64)
        self.pos = int(state["pos"])


# ---------------------------------------------------------------------------------------------
# per-member statistics
def _stats(loss: Loss, f, y, w):
    """(n_unsat [M], n_errors [M]) of outputs ``f`` ``[M, P, out]``; NaN where undefined."""
    M = f.shape[0]
    nan = torch.full((M,), math.nan, dtype=f.dtype, device=f.device)
    if loss.binary:
        margin = y * f.squeeze(-1)
        unsat = (loss.kappa - margin) > 0
        err = margin <= 0
    elif not y.is_floating_point():
        unsat = None
        err = f.argmax(-1) != y
    else:
        return nan, nan
    if w is None:
        cnt = lambda b: b.sum(-1).to(f.dtype)  # noqa: E731
    else:
        cnt = lambda b: (b * w).sum(-1)  # noqa: E731
    return (cnt(unsat) if unsat is not None else nan), cnt(err)


def _sq_norm(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    out = None
    for t in ts:
        s = (t * t).flatten(1).sum(1)
        out = s if out is None else out + s
    return out


class _Evaluator:
    """Loss value and gradient of the objective (generic path: the model's forward/backward)."""

    def __init__(self, model, loss: Loss, l2: float):
        self.model, self.loss, self.l2 = model, loss, l2

    def value_grad(self, x, y, w):
        """``(data loss [M], objective [M], grads, outputs)``."""
        out, cache = self.model.forward_cached(x)
        value, dout = self.loss.value_and_dout(out, y, w)
        grads = self.model.backward(cache, dout)
        obj = value
        if self.l2:
            params = self.model.params
            obj = value + 0.5 * self.l2 * _sq_norm(params)
            torch._foreach_add_(grads, params, alpha=self.l2)
        return value, obj, grads, out

    def value(self, x, y, w):
        """``(data loss [M], outputs)`` without gradients."""
        with torch.no_grad():
            out, _ = self.model.forward_cached(x)
            return self.loss(out, y, w), out


def _make_evaluator(model, loss, l2, data: _Data):
    from ._fused import fused_evaluator

    ev = fused_evaluator(model, loss, l2, data)
    return ev if ev is not None else _Evaluator(model, loss, l2)


# ---------------------------------------------------------------------------------------------
def train(
    model: Trainable,
    x,
    y,
    config: TrainConfig,
    *,
    sample_mask=None,
    x_test=None,
    y_test=None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | Path | None = None,
    progress: bool | None = None,
    callback: Callable[[int], None] | None = None,
    stop_hook: Callable[[int, dict], object] | None = None,
    compact_every: int | None = None,
) -> TrainResult:
    """Train the M members of ``model`` at once, each with its own stop rule.

    Each step evaluates the loss at the current parameters θ_t of every member, applies the stop
    rules (every ``check_every`` steps; a member that stops keeps θ_t, so a member stopped by
    ``unsat_zero`` has loss exactly 0), records metrics at the measurement steps into buffers on
    the device, and updates the active members. A member whose loss or proposed update is not
    finite is frozen at its last finite parameters with ``stop_reason="nonfinite"``. Frozen
    members' parameters stay bitwise constant; the others are unaffected.

    Args:
        model: an :class:`~weightscape.nets.Ensemble` or any :class:`Trainable`.
        x: inputs ``[P, d]`` shared by all members or ``[M, P, d_max]`` per member.
        y: labels: ±1 ``[P]``/``[M, P]`` (binary losses), int64 classes, or float targets.
        config: the :class:`TrainConfig`.
        sample_mask: ``[M, P]`` 0/1 (or ≥ 0) weights: member m trains on the points where its
            row is non-zero (the loss is the weighted mean). Use it for per-member P.
        x_test, y_test: optional test data (shared or per member), evaluated at the measurement
            steps and at the end.
        checkpoint_path: write ``.npz`` + ``.json`` checkpoints here every ``checkpoint_every``
            steps (atomic writes).
        resume_from: a checkpoint written by a run with the same config and model structure.
        progress: rich progress bar with ETA; None = only when stderr is a terminal.
        callback: called as ``callback(step)`` at every poll step (after any checkpoint).
        stop_hook: a custom per-member stop rule, called as ``stop_hook(step, history)`` at
            poll steps when new measurements were recorded since its last call. ``history``
            holds numpy arrays: ``"step"`` ``[T]`` (the measurement steps so far), ``"active"``
            ``[T, M]`` (member active at that measurement) and one ``[T, M]`` array per metric
            name (``"loss"``, ``"n_unsat"``, ...). It returns a bool array ``[M]``: the active
            members it marks stop at the next step's stop check (on the parameters they have
            then, so their final state is the one evaluated) with ``stop_reason="hook"``.
        compact_every: drop stopped members from the computation: at a poll step at least
            this many steps after the last compaction, when some member has stopped, the loop
            continues on a smaller ensemble of the active members (``model.select``, repadded
            to their largest sizes; optimizer state, learning rates and data sliced alike), so
            stopped members cost nothing (a last active member keeps one stopped member
            alongside: a batch of one runs another GEMM path, whose rounding differs). Each
            member's trajectory is that of the uncompacted loop (member-wise arithmetic; the
            tests compare them). The final parameters are
            written back into ``model``. Needs an :class:`~weightscape.nets.Ensemble`, the
            ``adam`` or ``sgd`` optimizer, a schedule whose rate is a function of the step
            (``constant``, ``geiger2019``; not ``plateau``, whose per-member state keeps
            taking stopped members' losses) and no checkpoints (otherwise a ``ConfigError``);
            None (default): never compact.

    Returns:
        A :class:`TrainResult`.
    """
    from ._checkpoint import load_checkpoint, save_checkpoint

    cfg = config
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    params = model.params
    M = params[0].shape[0]
    if cfg.precision is not None:
        dtype, device = cfg.precision.torch_dtype, cfg.precision.torch_device
        for i, p in enumerate(params):
            params[i] = p.to(dtype=dtype, device=device)
    dtype, device = params[0].dtype, params[0].device
    loss_fn = cfg.make_loss()
    data = _Data(x, y, sample_mask, M, dtype, device, loss_fn)
    test = None
    if x_test is not None:
        if y_test is None:
            raise ConfigError("x_test given without y_test")
        test = _Data(x_test, y_test, None, M, dtype, device, loss_fn, name="x_test")
    if hasattr(model, "forward") and hasattr(model, "unit_masks"):
        model.forward(data.x[..., :1, :])  # validates the input shape against the ensemble
    if checkpoint_every is not None and checkpoint_path is None:
        raise ConfigError("checkpoint_every needs a checkpoint_path")
    if checkpoint_path is not None and checkpoint_every is None:
        checkpoint_every = max(cfg.poll_every, 1000)

    if compact_every is not None:
        _check_compactable(model, cfg, compact_every, checkpoint_path, resume_from)
    evaluator = _make_evaluator(model, loss_fn, cfg.l2, data)
    opt: BatchedOptimizer = make_optimizer(cfg.optimizer, params, cfg.optimizer_options)
    base_lr = torch.tensor(cfg.lr_per_member(M), dtype=dtype, device=device)
    sched = make_schedule(cfg.schedule, base_lr, cfg.schedule_options)
    # compaction: the computation runs on `cur` (members `ids` of `model`); the bookkeeping
    # below (active, reason, steps_run, hook_stop) is per computed member, flushed into the
    # full-size arrays at each compaction and at the end
    root = (model, evaluator, data, test, sched)
    cur, ids, last_compact = model, None, 0
    sampler = _Sampler(data.P, cfg.batch_size, cfg.seed, device)
    full_batch = cfg.batch_size is None or cfg.batch_size >= data.P

    names = ["loss", "objective", "n_unsat", "n_errors", "grad_norm", "lr"]
    if test is not None:
        names += ["test_loss", "test_errors"]
    mstep = cfg.measure_steps()
    mbuf = torch.full((len(mstep), len(names), M), math.nan, dtype=dtype, device=device)
    mact = torch.zeros(len(mstep), M, dtype=torch.bool, device=device)
    mi = 0

    active = torch.ones(M, dtype=torch.bool, device=device)
    reason = torch.zeros(M, dtype=torch.int64, device=device)
    steps_run = torch.full((M,), cfg.max_steps, dtype=torch.int64, device=device)
    step = 0
    if resume_from is not None:
        st = load_checkpoint(resume_from, cfg, M)
        for p, a in zip(params, st["params"], strict=True):
            p.copy_(torch.as_tensor(a))
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        sampler.load(st["sampler"])
        for t, a in ((mbuf, st["mbuf"]), (mact, st["mact"]), (active, st["active"])):
            t.copy_(torch.as_tensor(a))
        reason.copy_(torch.as_tensor(st["reason"]))
        steps_run.copy_(torch.as_tensor(st["steps_run"]))
        step, mi = int(st["step"]), int(st["mi"])

    stop_unsat = "unsat_zero" in cfg.stop
    stop_grad = "grad_norm" in cfg.stop
    stop_loss = "loss" in cfg.stop
    hook_stop = torch.zeros(M, dtype=torch.bool, device=device)  # marked by stop_hook
    hook_mi = -1  # measurements seen by the last stop_hook call (-1: none yet)
    bar = _Progress(cfg.max_steps, progress, start=step)
    try:
        while True:
            idx = sampler.next()
            xb, yb, wb = data.batch(idx)
            value, obj, grads, out = evaluator.value_grad(xb, yb, wb)
            measure = mi < len(mstep) and mstep[mi] == step
            check = step % cfg.check_every == 0 or step == cfg.max_steps
            if measure or check:
                if full_batch:
                    full_value, full_out = value, out
                else:
                    full_value, full_out = evaluator.value(data.x, data.y, data.w)
                n_unsat, n_err = _stats(loss_fn, full_out, data.y, data.w)
                gnorm = _sq_norm(grads).sqrt() if (measure or stop_grad) else None
            finite = torch.isfinite(obj)
            stop = torch.where(finite, 0, _CODE["nonfinite"])
            if check:
                if stop_loss:
                    stop = torch.where(
                        (stop == 0) & (full_value <= cfg.loss_tol), _CODE["loss"], stop
                    )
                if stop_grad:
                    stop = torch.where(
                        (stop == 0) & (gnorm < cfg.grad_tol), _CODE["grad_norm"], stop
                    )
                if stop_unsat:
                    stop = torch.where((stop == 0) & (n_unsat == 0), _CODE["unsat_zero"], stop)
            if stop_hook is not None:
                stop = torch.where((stop == 0) & hook_stop, _CODE["hook"], stop)
            lr = sched.lr(step)
            if measure:
                row = [full_value, obj, n_unsat, n_err, gnorm, lr]
                if test is not None:
                    tv, tout = evaluator.value(test.x, test.y, None)
                    row += [tv, _stats(loss_fn, tout, test.y, None)[1]]
                if ids is None:
                    mbuf[mi].copy_(torch.stack(row))
                    mact[mi].copy_(active)
                else:
                    mbuf[mi][:, ids] = torch.stack(row)
                    mact[mi][ids] = active
                mi += 1
            newly = active & (stop > 0)
            reason.copy_(torch.where(newly, stop, reason))
            steps_run.copy_(torch.where(newly, step, steps_run))
            active &= ~newly
            if step >= cfg.max_steps:
                break
            proposal = opt.propose(params, grads, obj, lr)
            ok = active & _finite_members(proposal)
            bad = active & ~ok
            reason.copy_(torch.where(bad, _CODE["nonfinite"], reason))
            steps_run.copy_(torch.where(bad, step, steps_run))
            active &= ok
            for p, q in zip(params, proposal, strict=True):
                torch.where(_bcast(active, p), q, p, out=p)
            sched.observe(step, obj)
            step += 1
            if step % cfg.poll_every == 0 or (
                checkpoint_every is not None and step % checkpoint_every == 0
            ):
                if checkpoint_every is not None and step % checkpoint_every == 0:
                    save_checkpoint(
                        checkpoint_path,
                        cfg,
                        step=step,
                        mi=mi,
                        params=params,
                        opt=opt.state_dict(),
                        sched=sched.state_dict(),
                        sampler=sampler.state(),
                        mbuf=mbuf,
                        mact=mact,
                        active=active,
                        reason=reason,
                        steps_run=steps_run,
                    )
                bar.update(step)
                if callback is not None:
                    callback(step)
                if stop_hook is not None and mi > hook_mi:
                    hook_mi = mi
                    marked = _call_hook(stop_hook, step, mbuf[:mi], mact[:mi], mstep[:mi], names)
                    marked = torch.as_tensor(marked, dtype=torch.bool, device=device)
                    hook_stop |= (marked if ids is None else marked[ids]) & active
                if not bool(active.any()):
                    break
                keep = None
                if compact_every is not None and step - last_compact >= compact_every:
                    keep = torch.nonzero(active).flatten()
                    if keep.numel() == 1:
                        # a batch of one runs another GEMM path whose rounding differs from the
                        # batched one: a stopped member stays alongside (frozen, bitwise)
                        extra = torch.nonzero(~active).flatten()[:1]
                        keep = torch.sort(torch.cat([keep, extra])).values
                    if keep.numel() == active.numel():
                        keep = None
                if keep is not None:
                    last_compact = step
                    if ids is None:
                        reason_all, steps_all = reason.clone(), steps_run.clone()
                        ids = torch.arange(M, device=device)
                    reason_all[ids], steps_all[ids] = reason, steps_run
                    _write_back(model, cur, ids)
                    cur = cur.select(keep.tolist())
                    ids = ids[keep]
                    data = data.select(keep, cur.max_sizes[0])
                    test = None if test is None else test.select(keep, cur.max_sizes[0])
                    evaluator = _make_evaluator(cur, loss_fn, cfg.l2, data)
                    params = cur.params
                    state = opt.state_dict()
                    opt = make_optimizer(cfg.optimizer, params, cfg.optimizer_options)
                    opt.load_state_dict(_select_state(state, keep, params))
                    sched = make_schedule(cfg.schedule, base_lr[ids], cfg.schedule_options)
                    active, reason = active[keep], reason[keep]
                    steps_run, hook_stop = steps_run[keep], hook_stop[keep]
    finally:
        bar.close()

    running = active.clone()
    reason.copy_(torch.where(running, _CODE["budget"], reason))
    if ids is not None:  # back to every member: flush the bookkeeping and the parameters
        # (no opt.finalize here or below: the compactable optimizers have none to run)
        reason_all[ids], steps_all[ids] = reason, steps_run
        running_all = torch.zeros(M, dtype=torch.bool, device=device)
        running_all[ids] = running
        _write_back(model, cur, ids)
        reason, steps_run, running = reason_all, steps_all, running_all
        model, evaluator, data, test, sched = root
        params = model.params
    final_lr = sched.lr(step).clone()
    # The final state of every member. The loop's last evaluation was at the current
    # parameters (it ends either at the budget, before any update, or at a poll where no member
    # was updated in the last step), so in full batch it is reused; otherwise (or after a
    # compaction) evaluate again.
    if not full_batch or ids is not None:
        value, obj, grads, out = evaluator.value_grad(data.x, data.y, data.w)
    if ids is None:
        opt.finalize(params, running, obj)
    if opt.needs_loss:
        value, obj, grads, out = evaluator.value_grad(data.x, data.y, data.w)
    n_unsat, n_err = _stats(loss_fn, out, data.y, data.w)
    gnorm = _sq_norm(grads).sqrt()
    summary = {
        "member": np.arange(M),
        "loss": value,
        "objective": obj,
        "n_unsat": n_unsat,
        "n_errors": n_err,
        "grad_norm": gnorm,
        "steps": steps_run,
        "lr": final_lr,
        "n_train": data.n,
    }
    gap_arrays = {}
    if loss_fn.binary:
        gap_arrays["train"] = _gaps(loss_fn, out, data.y, data.w)
    if test is not None:
        tv, tout = evaluator.value(test.x, test.y, None)
        summary["test_loss"] = tv
        summary["test_errors"] = _stats(loss_fn, tout, test.y, None)[1]
        if loss_fn.binary:
            gap_arrays["test"] = _gaps(loss_fn, tout, test.y, None)
    summary = {
        k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v)
        for k, v in summary.items()
    }
    summary["stop_reason"] = np.array([STOP_REASONS[c] for c in reason.cpu().tolist()])
    for k in ("n_unsat", "n_errors", "test_errors"):
        if k in summary and np.all(np.isfinite(summary[k])):
            summary[k] = summary[k].astype(np.int64)
    return TrainResult(
        model=model,
        summary=pd.DataFrame(summary),
        metrics=_metrics_frame(mbuf[:mi], mact[:mi], mstep[:mi], names),
        gaps=gap_arrays,
        steps=step,
        config=cfg,
    )


# optimizers whose state slices member-wise and whose ``finalize`` is the base no-op (the
# compacted loop never calls it; tests/train/test_compact.py checks both)
_COMPACTABLE_OPTIMIZERS = ("adam", "sgd")
# schedules whose rate is a function of the global step and the member's base rate only (no
# per-member state, ``observe`` the base no-op): rebuilt over the kept members' base rates at a
# compaction they give the kept members the same rates (tests/train/test_compact.py checks both)
_COMPACTABLE_SCHEDULES = ("constant", "geiger2019")
#: why a schedule is not compactable
_SCHEDULE_REFUSALS = {
    "plateau": "its per-member state (best loss, bad epochs, cooldown, loss sums) is fed every "
    "member's loss at every step, stopped members' included, so the final lr it reports for a "
    "stopped member depends on steps a compacted run does not compute",
}


def _compactable(cfg: TrainConfig) -> bool:
    """Whether ``train(..., compact_every=...)`` accepts the optimizer and schedule of ``cfg``."""
    return cfg.optimizer in _COMPACTABLE_OPTIMIZERS and cfg.schedule in _COMPACTABLE_SCHEDULES


def _check_compactable(model, cfg, compact_every, checkpoint_path, resume_from) -> None:
    if not (isinstance(compact_every, int) and compact_every >= 1):
        raise ConfigError(f"compact_every={compact_every!r} must be an integer >= 1 or None")
    if not hasattr(model, "select") or not hasattr(model, "max_sizes"):
        raise ConfigError("compact_every needs an Ensemble model (with select)")
    if cfg.optimizer not in _COMPACTABLE_OPTIMIZERS:
        raise ConfigError(
            f"compact_every works with optimizer {'/'.join(_COMPACTABLE_OPTIMIZERS)}, got "
            f"{cfg.optimizer!r}"
        )
    if cfg.schedule not in _COMPACTABLE_SCHEDULES:
        why = _SCHEDULE_REFUSALS.get(cfg.schedule, "its rate is not a function of the step")
        raise ConfigError(
            f"compact_every works with schedule {'/'.join(_COMPACTABLE_SCHEDULES)} (a rate that "
            f"is a function of the step), not {cfg.schedule!r}: {why}"
        )
    if checkpoint_path is not None or resume_from is not None:
        raise ConfigError("compact_every cannot be combined with checkpoints")


def _write_back(model, cur, ids) -> None:
    """Copy the parameters of ``cur`` (members ``ids`` of ``model``, maybe repadded smaller)
    into ``model``'s stacked parameters."""
    if cur is model:
        return
    for p, q in zip(model.params, cur.params, strict=True):
        p[(ids, *(slice(0, s) for s in q.shape[1:]))] = q


def _select_state(state: dict, keep: torch.Tensor, params) -> dict:
    """Optimizer state of the kept members, cut to the (repadded) parameter shapes."""
    out = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            i = int(k.rsplit(".", 1)[1])
            v = v[(keep, *(slice(0, s) for s in params[i].shape[1:]))]
        out[k] = v
    return out


def _call_hook(hook, step, mbuf, mact, steps, names) -> np.ndarray:
    """Run ``hook(step, history)`` and check that it returns ``[M]`` booleans."""
    buf = mbuf.cpu().numpy()  # [T, names, M]
    M = buf.shape[2]
    history = {"step": np.asarray(steps, dtype=np.int64), "active": mact.cpu().numpy()}
    for i, name in enumerate(names):
        history[name] = buf[:, i, :]
    out = np.asarray(hook(int(step), history))
    if out.shape != (M,):
        raise ConfigError(f"stop_hook returned shape {out.shape}; expected [M] = ({M},) booleans")
    return out.astype(bool)


def _bcast(v, t):
    return v.reshape(v.shape[0], *([1] * (t.dim() - 1)))


def _finite_members(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per member: all entries finite (a sum of finite float64 values stays finite)."""
    s = None
    for t in ts:
        r = t.flatten(1).sum(1)
        s = r if s is None else s + r
    return torch.isfinite(s)


def _gaps(loss, out, y, w) -> np.ndarray:
    g = gaps(out.detach(), y, loss.kappa)
    if w is not None:
        g = torch.where(w > 0, g, math.nan)
    return g.cpu().numpy()


def _metrics_frame(mbuf, mact, steps, names) -> pd.DataFrame:
    buf = mbuf.cpu().numpy()  # [rows, names, M]
    act = mact.cpu().numpy()  # [rows, M]
    n_names = buf.shape[1]
    r, m = np.nonzero(act)
    if r.size == 0:
        return pd.DataFrame({"member": [], "step": [], "name": [], "value": []})
    step = np.asarray(steps, dtype=np.int64)[r]
    vals = buf[r, :, m]  # [k, names]
    return pd.DataFrame(
        {
            "member": np.repeat(m, n_names),
            "step": np.repeat(step, n_names),
            "name": np.tile(np.array(names), r.size),
            "value": vals.reshape(-1),
        }
    )


class _Progress:
    """rich progress bar with ETA on an interactive stderr; silent otherwise."""

    def __init__(self, total: int, enabled: bool | None, start: int = 0):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled and total > 0:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start)

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
