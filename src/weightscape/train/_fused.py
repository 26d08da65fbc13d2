"""A fused training step for :class:`~weightscape.nets.Ensemble` (the hot loop of the jamming runs).

Same mathematics as ``Ensemble.forward_cached`` + ``Loss.value_and_dout`` + ``Ensemble.backward``
(the tests compare it with autograd and finite differences), arranged to touch memory as little
as possible, because at the jamming sizes (P ~ 10³–10⁴, widths ~ 30) every elementwise pass over
the ``[M, h, P]`` activations costs a sizeable fraction of a layer's GEMM:

* **Feature-major layout** ``[M, n, P]`` (P contiguous): every layer is one batched GEMM
  ``Z = W A`` and the weight gradient ``G Aᵀ`` reduces over the long P axis.
* **Bias folded into the weights**: each layer's parameters live in one buffer
  ``W̃ = [W | b]`` ``[M, n_out, n_in + 1]`` and every activation buffer carries a constant row
  of ones, so the forward GEMM adds the bias and the gradient GEMM ``G Ãᵀ`` yields ∂b as its
  last column — no separate bias pass. The ensemble's ``params`` become views into these buffers
  (so the optimizer's in-place writes update them).
* **Shared inputs ``[P, d]``**: the first layer of all members is one GEMM
  ``[M·h, d+1] @ [d+1, P]``, and so is its weight gradient ``[M·h, P] @ [P, d+1]``.
* **In place**: pre-activations are written by the GEMM straight into preallocated activation
  buffers and rectified in place; the ReLU backward is one fused ``threshold_backward`` pass.

Padded units stay exactly zero as in :class:`~weightscape.nets.Ensemble` (their rows of ``W̃``
are zero, so their activation is ``act(0) = 0`` and their gradient rows vanish).
"""

from __future__ import annotations

import torch

from ..nets.functional import activate, activation_derivative

__all__ = ["FusedEnsembleStep", "fused_evaluator"]


def fused_evaluator(model, loss, l2, data):
    """A :class:`FusedEnsembleStep` for an Ensemble it supports, else None (generic path)."""
    if not (hasattr(model, "unit_masks") and hasattr(model, "specs")):
        return None
    spec = model.specs[0]
    if spec.fan_in_scale:
        return None
    return FusedEnsembleStep(model, loss, l2)


class FusedEnsembleStep:
    """Loss, outputs and gradients of every member in one fused pass (see module docstring).

    Args:
        ensemble: the :class:`~weightscape.nets.Ensemble`; its ``params`` are re-pointed to views
            of the fused ``[W | b]`` buffers (values unchanged).
        loss: a :class:`~weightscape.train.Loss`.
        l2: L2 coefficient λ (objective ``loss + λ/2 Σ θ²``).
    """

    def __init__(self, ensemble, loss, l2: float):
        self.model, self.loss, self.l2 = ensemble, loss, float(l2)
        self.spec = ensemble.specs[0]
        self.bias = ensemble.bias
        self.depth = ensemble.depth
        M = ensemble.M
        sizes = ensemble.max_sizes
        dev, dt = ensemble.device, ensemble.dtype
        self.W: list[torch.Tensor] = []  # [M, n_{l+1}, n_l (+1)]
        params = ensemble.params
        step = 2 if self.bias else 1
        for l in range(self.depth + 1):
            w = params[step * l]
            if self.bias:
                buf = torch.empty(M, sizes[l + 1], sizes[l] + 1, dtype=dt, device=dev)
                buf[..., :-1] = w
                buf[..., -1] = params[step * l + 1]
                params[step * l] = buf[..., :-1]
                params[step * l + 1] = buf[..., -1]
            else:
                buf = w.contiguous()
                params[l] = buf
            self.W.append(buf)
        self.gW = [torch.empty_like(w) for w in self.W]
        self._bufs: dict = {}

    # views of the gradient buffers in the order of ``params``
    def _grad_list(self) -> list[torch.Tensor]:
        out = []
        for g in self.gW:
            if self.bias:
                out += [g[..., :-1], g[..., -1]]
            else:
                out.append(g)
        return out

    def _buffers(self, P: int):
        """Activation buffers ``[M, n_l (+1), P]`` for layers 1..L (ones row set once) and one
        pre-activation scratch buffer ``[M, n_max, P]``."""
        if P not in self._bufs:
            M, sizes = self.model.M, self.model.max_sizes
            e = 1 if self.bias else 0
            kw = dict(dtype=self.model.dtype, device=self.model.device)
            acts = []
            for l in range(1, self.depth + 1):
                a = torch.empty(M, sizes[l] + e, P, **kw)
                if self.bias:
                    a[:, -1, :] = 1.0
                acts.append(a)
            hmax = max(sizes[1 : self.depth + 1], default=1)
            self._bufs[P] = (acts, torch.empty(M * hmax * P, **kw))
        return self._bufs[P]

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs with a ones column: ``[P, d+1]`` or ``[M, P, d+1]``."""
        if not self.bias:
            return x
        ones = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
        return torch.cat([x, ones], -1)

    def forward(self, x: torch.Tensor):
        """Outputs ``[M, P, out]`` and what :meth:`backward` needs."""
        M = self.model.M
        xa = self._input(x)
        shared = x.dim() == 2
        P = x.shape[-2]
        acts, scratch = self._buffers(P)
        e = 1 if self.bias else 0
        for l in range(self.depth + 1):
            W = self.W[l]
            h = W.shape[1]
            last = l == self.depth
            z = (
                torch.empty(M, h, P, dtype=W.dtype, device=W.device)
                if last
                else (scratch[: M * h * P].view(M, h, P))
            )
            if l == 0 and shared:  # one GEMM for all members
                torch.mm(W.reshape(M * h, -1), xa.T, out=z.view(M * h, P))
            elif l == 0:
                torch.bmm(W, xa.transpose(1, 2), out=z)
            else:
                torch.bmm(W, acts[l - 1], out=z)
            if last:
                return z.transpose(1, 2), (xa, acts)
            dst = acts[l][:, : acts[l].shape[1] - e]
            if self.spec.activation == "relu":
                torch.clamp_min(z, 0.0, out=dst)  # = relu, written into the buffer
            else:
                dst.copy_(activate(z, self.spec))
        raise AssertionError("unreachable")

    def value_grad(self, x, y, w):
        """``(data loss [M], objective [M], grads like params, outputs [M, P, out])``."""
        f, (xa, acts) = self.forward(x)
        value, dout = self.loss.value_and_dout(f, y, w)
        grads = self.backward(xa, acts, dout.transpose(1, 2))
        obj = value
        if self.l2:
            params = self.model.params
            obj = value + 0.5 * self.l2 * sum((p * p).flatten(1).sum(1) for p in params)
            torch._foreach_add_(grads, params, alpha=self.l2)
        return value, obj, grads, f

    def value(self, x, y, w):
        f, _ = self.forward(x)
        return self.loss(f, y, w), f

    def backward(self, xa, acts, g):
        """Gradients for output gradient ``g`` ``[M, out, P]`` (feature-major)."""
        M = self.model.M
        e = 1 if self.bias else 0
        relu = self.spec.activation == "relu"
        for l in range(self.depth, -1, -1):
            W = self.W[l]
            if l == 0:
                if xa.dim() == 2:  # shared inputs: one GEMM for all members
                    h = W.shape[1]
                    # written as (xᵀ Gᵀ)ᵀ: the GEMM with the long P axis as the inner
                    # dimension and M·h columns runs ~2x faster than G x on CPU BLAS
                    gw = self.gW[0].view(M * h, -1).T
                    torch.mm(xa.T, g.reshape(M * h, -1).T, out=gw)
                else:
                    torch.bmm(g, xa, out=self.gW[0])
                break
            a = acts[l - 1]
            torch.bmm(g, a.transpose(1, 2), out=self.gW[l])
            # back through layer l's weights (the ones row gets no gradient) and the activation
            ga = torch.bmm(W[..., : W.shape[2] - e].transpose(1, 2), g)
            real = a[:, : a.shape[1] - e]
            if relu:
                g = torch.ops.aten.threshold_backward.grad_input(ga, real, 0.0, grad_input=ga)
            else:
                g = ga.mul_(activation_derivative(real, self.spec))
        return self._grad_list()
