"""Newton polishing of a smooth convex objective, for small parameter counts.

L-BFGS stops when the objective no longer decreases measurably in floating point, which can leave
ill-conditioned directions unresolved (parameter errors ~1e-5 where the gradient is still ~1e-9).
A few Newton steps with the exact Hessian (``torch.autograd.functional.hessian``, plain autograd:
no vmap compilation on first use) drive the gradient — here a moment mismatch — to round-off.
Steps are accepted when they reduce the largest gradient entry, which stays meaningful below the
objective's floating-point resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["NEWTON_MAX_PARAMS", "newton_polish"]

# Dense Hessians are formed only up to this many parameters (300² float64 = 0.7 MB).
NEWTON_MAX_PARAMS = 300
# Stop when the largest gradient entry is below this (round-off level for O(1) moments).
NEWTON_GTOL = 1e-14
# Step halvings tried before giving up on a Newton direction.
NEWTON_MAX_HALVINGS = 30


def newton_polish(
    fun: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, max_steps: int
) -> tuple[torch.Tensor, int, float]:
    """Run up to ``max_steps`` damped Newton steps on ``fun`` from ``theta`` ``[P]``.

    Returns:
        ``(theta, steps taken, final max |grad|)``.
    """

    def grad_fn(th):
        th = th.detach().requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(fun(th), th)[0].detach()

    def hess_fn(th):
        with torch.enable_grad():
            return torch.autograd.functional.hessian(fun, th.detach())

    g = grad_fn(theta)
    gmax = float(g.abs().max())
    steps = 0
    for _ in range(max_steps):
        if gmax < NEWTON_GTOL:
            break
        H = hess_fn(theta)
        H = 0.5 * (H + H.T)
        try:
            delta = torch.linalg.solve(H, g)
        except RuntimeError:
            break
        t = 1.0
        for _ in range(NEWTON_MAX_HALVINGS):
            cand = theta - t * delta
            g_new = grad_fn(cand)
            g_new_max = float(g_new.abs().max())
            if g_new_max < gmax:
                break
            t *= 0.5
        else:
            break
        theta, g, gmax = cand, g_new, g_new_max
        steps += 1
    return theta, steps, gmax
