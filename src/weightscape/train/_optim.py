"""Batched optimizers: one update for M members with per-member hyper-parameters.

Every optimizer works on a list of stacked tensors ``[M, ...]`` (the ensemble's parameters) and
per-member learning rates ``lr`` ``[M]`` on the device. ``propose(params, grads, loss, lr)``
returns the would-be new parameters without touching ``params``; the training loop writes them
back only for active members whose proposal is finite (``torch.where``), so a frozen member's
parameters stay bitwise constant and a diverging member cannot contaminate the others (every
operation here is elementwise or reduces within one member).

Hand-written rather than ``torch.optim`` because torch's optimizers take one scalar learning rate
per parameter group and have no per-member masks; the update formulas follow torch's Adam/SGD
operation by operation (the tests compare trajectories step by step).
"""

from __future__ import annotations

import math

import torch

__all__ = ["FIRE", "LBFGS", "SGD", "Adam", "BatchedOptimizer", "make_optimizer", "member_dot"]


def _b(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-member vector ``[M]`` against ``t`` ``[M, ...]``."""
    return v.reshape(v.shape[0], *([1] * (t.dim() - 1)))


def member_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Per-member inner product ``Σ_tensors Σ_entries a·b`` -> ``[M]``."""
    out = None
    for x, y in zip(a, b, strict=True):
        d = (x * y).flatten(1).sum(1)
        out = d if out is None else out + d
    return out


class BatchedOptimizer:
    """Base class. Subclasses fill :meth:`propose`; state tensors are listed in ``_state``."""

    needs_loss = False

    def __init__(self, params: list[torch.Tensor], **options):
        self.options = options
        self.t = 0  # number of proposals made (the same for every active member)

    def propose(self, params, grads, loss, lr) -> list[torch.Tensor]:
        raise NotImplementedError

    def finalize(self, params, active, loss) -> None:
        """Hook run once when training ends (L-BFGS restores its last accepted point)."""

    # checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor | int]:
        out: dict = {"t": self.t}
        for name in self._state:
            val = getattr(self, name)
            if isinstance(val, list):
                for i, v in enumerate(val):
                    out[f"{name}.{i}"] = v
            else:
                out[name] = val
        return out

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        for name in self._state:
            val = getattr(self, name)
            if isinstance(val, list):
                for i, v in enumerate(val):
                    v.copy_(torch.as_tensor(state[f"{name}.{i}"]))
            else:
                val.copy_(torch.as_tensor(state[name]))


class Adam(BatchedOptimizer):
    """Adam (Kingma & Ba) with torch's operation order.

    .. math::
        m ← β_1 m + (1-β_1) g,\\quad v ← β_2 v + (1-β_2) g^2,\\quad
        θ ← θ - \\frac{η}{1-β_1^t}\\, \\frac{m}{\\sqrt{v}/\\sqrt{1-β_2^t} + ε}
    """

    _state = ("m", "v")

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, betas=betas, eps=eps)
        self.b1, self.b2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def propose(self, params, grads, loss, lr):
        self.t += 1
        bc1 = 1 - self.b1**self.t
        bc2_sqrt = math.sqrt(1 - self.b2**self.t)
        torch._foreach_lerp_(self.m, grads, 1 - self.b1)
        torch._foreach_mul_(self.v, self.b2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - self.b2)
        step = lr / bc1  # [M]
        out = []
        for p, m, v in zip(params, self.m, self.v, strict=True):
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            out.append(p - _b(step, p) * (m / denom))
        return out


class SGD(BatchedOptimizer):
    """SGD, optionally with (Nesterov) momentum, as ``torch.optim.SGD`` (dampening 0).

    .. math:: b ← μ b + g \\;(b_1 = g_1),\\quad θ ← θ - η\\,(g + μ b \\text{ if Nesterov else } b)
    """

    _state = ("buf",)

    def __init__(self, params, momentum=0.0, nesterov=False):
        super().__init__(params, momentum=momentum, nesterov=nesterov)
        self.mu = float(momentum)
        self.nesterov = bool(nesterov)
        self.buf = [torch.zeros_like(p) for p in params]

    def propose(self, params, grads, loss, lr):
        self.t += 1
        if self.mu == 0:
            d = grads
        else:
            if self.t == 1:
                torch._foreach_copy_(self.buf, grads)
            else:
                torch._foreach_mul_(self.buf, self.mu)
                torch._foreach_add_(self.buf, grads)
            d = torch._foreach_add(grads, self.buf, alpha=self.mu) if self.nesterov else self.buf
        return [p - _b(lr, p) * g for p, g in zip(params, d, strict=True)]


class FIRE(BatchedOptimizer):
    """FIRE (Bitzek et al., PRL 97, 170201, 2006), per member, unit masses.

    With force ``F = -∇L`` and power ``P = F·v``: if ``P > 0`` mix ``v ← (1-α) v + α |v| F̂`` and,
    after ``n_min`` such steps in a row, grow ``dt ← min(f_inc dt, dt_max)``, ``α ← f_α α``;
    otherwise ``v ← 0``, ``dt ← f_dec dt``, ``α ← α_start``. Then a semi-implicit Euler step
    ``v ← v + dt F``, ``θ ← θ + dt v``. The learning rate is the initial ``dt``;
    ``dt_max = dt_max_factor · dt``.
    """

    _state = ("vel", "dt", "alpha", "n_pos")

    def __init__(
        self,
        params,
        dt_max_factor=10.0,
        n_min=5,
        f_inc=1.1,
        f_dec=0.5,
        alpha_start=0.1,
        f_alpha=0.99,
    ):
        super().__init__(params)
        M = params[0].shape[0]
        dev, dt = params[0].device, params[0].dtype
        self.vel = [torch.zeros_like(p) for p in params]
        self.dt = torch.full((M,), math.nan, dtype=dt, device=dev)
        self.alpha = torch.full((M,), float(alpha_start), dtype=dt, device=dev)
        self.n_pos = torch.zeros(M, dtype=torch.int64, device=dev)
        self.dt_max_factor, self.n_min = float(dt_max_factor), int(n_min)
        self.f_inc, self.f_dec = float(f_inc), float(f_dec)
        self.alpha_start, self.f_alpha = float(alpha_start), float(f_alpha)

    def propose(self, params, grads, loss, lr):
        self.t += 1
        if self.t == 1:
            self.dt.copy_(lr)
        dt_max = self.dt_max_factor * lr
        force = [-g for g in grads]
        power = member_dot(force, self.vel)
        vnorm = member_dot(self.vel, self.vel).sqrt()
        fnorm = member_dot(force, force).sqrt()
        pos = power > 0
        a = torch.where(pos, self.alpha, 0.0)
        coef = torch.where(fnorm > 0, a * vnorm / fnorm, 0.0)
        keep = torch.where(pos, 1 - a, 0.0)  # v <- 0 when the power is not positive
        grow = pos & (self.n_pos >= self.n_min)
        self.dt.copy_(
            torch.where(
                pos,
                torch.where(grow, torch.minimum(self.dt * self.f_inc, dt_max), self.dt),
                self.dt * self.f_dec,
            )
        )
        self.alpha.copy_(
            torch.where(
                pos, torch.where(grow, self.alpha * self.f_alpha, self.alpha), self.alpha_start
            )
        )
        self.n_pos.copy_(torch.where(pos, self.n_pos + 1, 0))
        out = []
        for i, (p, f) in enumerate(zip(params, force, strict=True)):
            v = _b(keep, p) * self.vel[i] + _b(coef, p) * f
            v = v + _b(self.dt, p) * f
            self.vel[i].copy_(v)
            out.append(p + _b(self.dt, p) * v)
        return out


class LBFGS(BatchedOptimizer):
    """Limited-memory BFGS with a backtracking (Armijo) line search, one function evaluation per
    step, per member.

    Each step evaluates the loss and gradient at the current trial point ``θ_acc + t d``. If it
    satisfies Armijo's condition ``L ≤ L_acc + c_1 t ∇L_acc·d`` it is accepted: the pair
    ``(s, y)`` enters the history (when ``s·y > 0``), a new direction comes from the two-loop
    recursion and ``t`` resets to the learning rate; otherwise ``t ← backtrack · t``. The first
    trial step is ``lr · min(1, 1/‖∇L‖)``. Hand-written because ``torch.optim.LBFGS`` runs its
    own closure loop on one scalar loss and cannot advance M members with separate line searches.
    """

    needs_loss = True
    _state = ("x_acc", "g_acc", "f_acc", "d", "step_t", "S", "Y", "rho", "valid", "gd")

    def __init__(self, params, history=10, c1=1e-4, backtrack=0.5):
        super().__init__(params)
        M = params[0].shape[0]
        dev, dt = params[0].device, params[0].dtype
        self.m = int(history)
        self.c1, self.backtrack = float(c1), float(backtrack)
        self.x_acc = [torch.zeros_like(p) for p in params]
        self.g_acc = [torch.zeros_like(p) for p in params]
        self.d = [torch.zeros_like(p) for p in params]
        self.f_acc = torch.full((M,), math.inf, dtype=dt, device=dev)
        self.step_t = torch.zeros(M, dtype=dt, device=dev)
        self.gd = torch.zeros(M, dtype=dt, device=dev)
        self.S = [torch.zeros(self.m, *p.shape, dtype=dt, device=dev) for p in params]
        self.Y = [torch.zeros(self.m, *p.shape, dtype=dt, device=dev) for p in params]
        self.rho = torch.zeros(self.m, M, dtype=dt, device=dev)
        self.valid = torch.zeros(self.m, M, dtype=torch.bool, device=dev)

    def _two_loop(self, g):
        """``-H g`` from the history (newest pair at index 0)."""
        q = [x.clone() for x in g]
        alphas = []
        for i in range(self.m):
            a = torch.where(self.valid[i], self.rho[i] * member_dot([s[i] for s in self.S], q), 0.0)
            alphas.append(a)
            for qq, y in zip(q, self.Y, strict=True):
                qq.sub_(_b(a, qq) * y[i])
        y0 = [y[0] for y in self.Y]
        yy = member_dot(y0, y0)
        gamma = torch.where(self.valid[0], 1.0 / (self.rho[0] * yy).clamp_min(1e-300), 1.0)
        r = [_b(gamma, qq) * qq for qq in q]
        for i in range(self.m - 1, -1, -1):
            beta = self.rho[i] * member_dot([y[i] for y in self.Y], r)
            c = torch.where(self.valid[i], alphas[i] - beta, 0.0)
            for rr, s in zip(r, self.S, strict=True):
                rr.add_(_b(c, rr) * s[i])
        return [-rr for rr in r]

    def propose(self, params, grads, loss, lr):
        self.t += 1
        first = self.t == 1
        armijo = loss <= self.f_acc + self.c1 * self.step_t * self.gd
        # Near a minimum the decrease Armijo asks for falls below the rounding of the loss; a
        # trial whose loss equals the accepted one to rounding and whose gradient is smaller is
        # accepted too (otherwise the line search stalls at ‖∇L‖ ~ sqrt(ε L) ).
        gn2 = member_dot(grads, grads)
        flat = (loss - self.f_acc).abs() <= 4 * torch.finfo(loss.dtype).eps * self.f_acc.abs()
        armijo = armijo | (flat & (gn2 < member_dot(self.g_acc, self.g_acc)))
        accept = torch.ones_like(armijo) if first else armijo & torch.isfinite(loss)
        if not first:
            # history update for accepted members
            s_new = [p - x for p, x in zip(params, self.x_acc, strict=True)]
            y_new = [g - ga for g, ga in zip(grads, self.g_acc, strict=True)]
            sy = member_dot(s_new, y_new)
            push = accept & (sy > 1e-300)
            for S, Y, s, y in zip(self.S, self.Y, s_new, y_new, strict=True):
                pb = _b(push, s)
                S.copy_(torch.where(pb, torch.cat([s[None], S[:-1]]), S))
                Y.copy_(torch.where(pb, torch.cat([y[None], Y[:-1]]), Y))
            rho_new = 1.0 / torch.where(push, sy, 1.0)
            self.rho.copy_(torch.where(push, torch.cat([rho_new[None], self.rho[:-1]]), self.rho))
            self.valid.copy_(
                torch.where(push, torch.cat([push[None], self.valid[:-1]]), self.valid)
            )
        for xa, ga, p, g in zip(self.x_acc, self.g_acc, params, grads, strict=True):
            ab = _b(accept, p)
            xa.copy_(torch.where(ab, p, xa))
            ga.copy_(torch.where(ab, g, ga))
        self.f_acc.copy_(torch.where(accept, loss, self.f_acc))
        d_new = self._two_loop(self.g_acc)
        gd_new = member_dot(self.g_acc, d_new)
        # not a descent direction (or no history): steepest descent
        bad = ~(gd_new < 0)
        gnorm = member_dot(self.g_acc, self.g_acc).sqrt()
        for dd, dn, ga in zip(self.d, d_new, self.g_acc, strict=True):
            dd.copy_(torch.where(_b(accept, dd), torch.where(_b(bad, dd), -ga, dn), dd))
        self.gd.copy_(torch.where(accept, torch.where(bad, -gnorm * gnorm, gd_new), self.gd))
        no_hist = ~self.valid[0]
        t0 = torch.where(no_hist, lr * torch.clamp(1.0 / gnorm, max=1.0), lr)
        self.step_t.copy_(torch.where(accept, t0, self.step_t * self.backtrack))
        return [xa + _b(self.step_t, xa) * dd for xa, dd in zip(self.x_acc, self.d, strict=True)]

    def finalize(self, params, active, loss):
        """Put back the last accepted point where the last trial is worse (``loss`` ``[M]`` is
        the loss at the current trial point).

        Only for members still running at the budget: a stopped member keeps the point at which
        its stop rule fired.
        """
        if self.t == 0:
            return
        back = active & ~(loss <= self.f_acc)
        for p, xa in zip(params, self.x_acc, strict=True):
            p.copy_(torch.where(_b(back, p), xa, p))


_CLASSES = {"adam": Adam, "sgd": SGD, "fire": FIRE, "lbfgs": LBFGS}


def make_optimizer(name: str, params: list[torch.Tensor], options: dict) -> BatchedOptimizer:
    """Build a batched optimizer by name (options already validated by :class:`TrainConfig`)."""
    return _CLASSES[name](params, **options)
