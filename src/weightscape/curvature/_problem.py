"""Shared plumbing of the curvature routines: members, flat parameters, loss output derivatives.

A *problem* is one net (its unpadded parameters and :class:`~weightscape.nets.MLPSpec`), its
inputs ``x`` ``[P, d]``, its labels ``y`` and a per-sample loss. Everything in
:mod:`weightscape.curvature` works on problems; :func:`resolve_members` turns either an
:class:`~weightscape.nets.Ensemble` (many members) or a ``(params, spec)`` pair (one net) into them.

The flat parameter vector θ ``[N]`` (N = ``spec.n_params``, biases included) is the concatenation
of ``[W0, b0, W1, b1, ...]``, each flattened row-major (``W_l`` is ``[n_{l+1}, n_l]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..nets import Ensemble, MLPSpec, mlp_forward
from ..train.losses import Loss, get_loss

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Problem",
    "flatten_params",
    "output_derivatives",
    "param_shapes",
    "resolve_loss",
    "resolve_members",
    "unflatten_params",
]

#: Default working-memory budget of the chunked routines, in bytes (1 GiB). The returned dense
#: N × N matrices are not counted in it.
DEFAULT_MEMORY_BUDGET = 2**30


def param_shapes(spec: MLPSpec) -> list[tuple[int, ...]]:
    """Shapes of ``[W0, b0, W1, b1, ...]`` (biases only when ``spec.bias``)."""
    out: list[tuple[int, ...]] = []
    s = spec.sizes
    for l in range(spec.depth + 1):
        out.append((s[l + 1], s[l]))
        if spec.bias:
            out.append((s[l + 1],))
    return out


def flatten_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate ``[W0, b0, ...]`` into θ ``[N]``."""
    return torch.cat([p.reshape(-1) for p in params])


def unflatten_params(theta: torch.Tensor, spec: MLPSpec) -> list[torch.Tensor]:
    """Inverse of :func:`flatten_params` (views into ``theta``)."""
    out, i = [], 0
    for shape in param_shapes(spec):
        n = 1
        for k in shape:
            n *= k
        out.append(theta[i : i + n].reshape(shape))
        i += n
    return out


def resolve_loss(loss: str | Loss, kappa: float | None = None) -> Loss:
    """A :class:`~weightscape.train.losses.Loss` from a name (``kappa``: hinge margin) or itself."""
    if isinstance(loss, Loss):
        return loss
    if not isinstance(loss, str):
        raise ConfigError(f"loss={loss!r} must be a loss name or a weightscape Loss instance")
    opts = (
        {} if kappa is None or loss not in ("quadratic_hinge", "linear_hinge") else {"kappa": kappa}
    )
    return get_loss(loss, **opts)


@dataclass(frozen=True)
class Problem:
    """One net, its data and its loss.

    Attributes:
        params: unpadded ``[W0, b0, ...]`` (detached).
        spec: the architecture.
        x: inputs ``[P, d]``.
        y: labels ``[P]`` (or regression targets ``[P, out]``); None where no loss is needed.
        member: index in the ensemble it came from (None for a bare ``(params, spec)``).
    """

    params: list[torch.Tensor]
    spec: MLPSpec
    x: torch.Tensor
    y: torch.Tensor | None
    member: int | None = None

    @property
    def theta(self) -> torch.Tensor:
        return flatten_params(self.params)

    @property
    def n_params(self) -> int:
        return self.spec.n_params

    @property
    def P(self) -> int:
        return int(self.x.shape[0])

    def forward(self, theta: torch.Tensor | None = None, x: torch.Tensor | None = None):
        """Outputs ``[P, out]`` at θ (default: the problem's parameters)."""
        params = self.params if theta is None else unflatten_params(theta, self.spec)
        return mlp_forward(params, self.x if x is None else x, self.spec)


def _check_member_data(spec: MLPSpec, x: torch.Tensor, y, m) -> None:
    where = "" if m is None else f" of member {m}"
    if x.dim() != 2 or x.shape[1] != spec.d_in:
        raise ConfigError(
            f"inputs{where} have shape {tuple(x.shape)}; expected [P, {spec.d_in}] (the net's d_in)"
        )
    if y is not None and y.shape[0] != x.shape[0]:
        raise ConfigError(f"labels{where} have {y.shape[0]} entries for {x.shape[0]} inputs")


def _on(y: torch.Tensor | None, ref: torch.Tensor) -> torch.Tensor | None:
    """Labels on the parameters' device (their dtype kept: class labels are integers)."""
    return None if y is None else torch.as_tensor(y, device=ref.device)


def resolve_members(
    model, x: torch.Tensor, y: torch.Tensor | None = None, members: Sequence[int] | None = None
) -> tuple[list[Problem], bool]:
    """Split ``model`` into per-net problems.

    Args:
        model: an :class:`~weightscape.nets.Ensemble`, or a pair ``(params, spec)`` of one net's
            unpadded parameters and its :class:`~weightscape.nets.MLPSpec`.
        x: inputs ``[P, d]`` shared by all members, or ``[M, P, d_max]`` zero-padded per member.
        y: labels ``[P]`` / ``[M, P]`` (or targets with a trailing output axis), or None.
        members: member indices to keep (default all); only for ensembles.

    Returns:
        ``(problems, single)``; ``single`` is True for a ``(params, spec)`` model.
    """
    if isinstance(model, Ensemble):
        idx = list(range(model.M)) if members is None else [int(m) for m in members]
        for m in idx:
            if not 0 <= m < model.M:
                raise ConfigError(f"member={m} is out of range; the ensemble has {model.M} members")
        out = []
        for m in idx:
            spec = model.specs[m]
            xm = x[m] if x.dim() == 3 else x
            xm = xm[:, : spec.d_in] if x.dim() == 3 else xm
            ym = None
            if y is not None:
                per_member = y.dim() >= 2 and y.shape[0] == model.M and y.shape[1] == xm.shape[0]
                ym = y[m] if per_member else y
            _check_member_data(spec, xm, ym, m)
            params = [p.detach() for p in model.member_params(m)]
            out.append(Problem(params, spec, xm.to(params[0]), _on(ym, params[0]), m))
        return out, False
    if isinstance(model, tuple | list) and len(model) == 2 and isinstance(model[1], MLPSpec):
        if members is not None:
            raise ConfigError("members= applies to an Ensemble, not to a (params, spec) pair")
        params, spec = model
        params = [p.detach() for p in params]
        shapes = param_shapes(spec)
        got = [tuple(p.shape) for p in params]
        if got != shapes:
            raise ConfigError(f"parameter shapes {got} do not match the spec's {shapes}")
        _check_member_data(spec, x, y, None)
        return [Problem(params, spec, x.to(params[0]), _on(y, params[0]), None)], True
    raise ConfigError(
        f"model of type {type(model).__name__} is not supported; pass an Ensemble or a "
        "(params, spec) pair"
    )


def output_derivatives(loss: Loss, f: torch.Tensor, y: torch.Tensor):
    """Per-sample first and second derivatives of the loss with respect to the outputs.

    Computed by autograd from the loss's reference ``per_sample`` expression, so every
    :class:`~weightscape.train.losses.Loss` works. ``ℓ_μ`` depends on ``f_μ`` only, so one
    backward pass of ``Σ_μ ℓ_μ`` gives every ``g_μ`` and ``out`` more give every ``Λ_μ`` (plain
    autograd rather than ``torch.func.vmap(hessian)``, whose first call costs seconds). The hinge
    kink follows autograd's convention ``relu'(0) = 0`` (a gap Δ = 0 counts as satisfied).

    Args:
        f: outputs ``[P, out]``.
        y: labels ``[P]`` or targets ``[P, out]``.

    Returns:
        ``(g, lam)``: ``g = ∂ℓ_μ/∂f_μ`` ``[P, out]`` and ``lam = ∂²ℓ_μ/∂f_μ²`` ``[P, out, out]``.
    """
    with torch.enable_grad():
        fr = f.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(loss.per_sample(fr, y).sum(), fr, create_graph=True)
        rows = []
        for k in range(f.shape[1]):
            if g.requires_grad:
                (r,) = torch.autograd.grad(
                    g[:, k].sum(), fr, retain_graph=True, materialize_grads=True
                )
            else:  # a loss linear in f (linear hinge): no curvature
                r = torch.zeros_like(fr)
            rows.append(r)
    return g.detach(), torch.stack(rows, 1).detach()
