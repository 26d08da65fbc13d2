"""Batched ensembles of fully connected nets: M members as stacked, zero-padded tensors."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from ..errors import ConfigError
from ._init import get_init
from ._spec import MLPSpec
from .functional import activate, activation_derivative, mlp_forward

__all__ = ["Ensemble", "ScaledActivation"]


class ScaledActivation(torch.nn.Module):
    """``act(z) * scale`` as a module (used by :meth:`Ensemble.to_module`)."""

    def __init__(self, spec: MLPSpec, scale: float):
        super().__init__()
        self.spec = spec
        self.scale = scale

    def forward(self, z):
        a = activate(z, self.spec)
        return a if self.scale == 1.0 else a * self.scale


class Ensemble:
    """An ensemble of M fully connected nets trained as one computation.

    Parameters are stacked over members and zero-padded to the largest size of each layer:
    ``W_l`` is ``[M, n_{l+1}^max, n_l^max]`` and ``b_l`` is ``[M, n_{l+1}^max]``, for
    ``l = 0 .. L`` (L = depth; layer L is the read-out). Padding is exact, not approximate: padded
    weights and biases are zero, so padded units output ``act(0) = 0`` (for every activation here),
    receive zero gradient, and stay zero under every optimizer of :mod:`weightscape.train`.
    Members may differ in seed, hidden widths and input dimension; they share depth, output size,
    bias, activation and the fan-in-scale flag.

    Each member draws its initial parameters from its own ``torch.Generator`` seeded with its
    seed, so a member's initialisation (and, with deterministic training, its trajectory) does not
    depend on which ensemble it ran in.

    Attributes:
        specs: the members' architectures (length M).
        seeds: the members' initialisation seeds (length M).
        params: list of tensors ``[W0, b0, ..., WL, bL]`` (biases only when the specs have them).
    """

    def __init__(
        self,
        specs: Sequence[MLPSpec],
        params: Sequence[torch.Tensor],
        seeds: Sequence[int] | None = None,
    ):
        specs = tuple(specs)
        if not specs:
            raise ConfigError("an ensemble needs at least one member")
        shared = {s.shared_fields() for s in specs}
        if len(shared) != 1:
            raise ConfigError(
                "ensemble members must share depth, out_dim, bias, activation, leaky_slope and "
                "fan_in_scale; build one ensemble per architecture family"
            )
        self.specs = specs
        self.seeds = tuple(int(s) for s in seeds) if seeds is not None else tuple(range(len(specs)))
        self.params = list(params)
        ref = specs[0]
        self.depth = ref.depth
        self.bias = ref.bias
        self.activation = ref.activation
        self.M = len(specs)
        n_layers = self.depth + 1
        self.max_sizes = tuple(max(s.sizes[i] for s in specs) for i in range(n_layers + 1))
        expected = 2 * n_layers if self.bias else n_layers
        if len(self.params) != expected:
            raise ConfigError(f"expected {expected} parameter tensors, got {len(self.params)}")
        dev, dt = self.params[0].device, self.params[0].dtype
        sizes = torch.tensor([s.sizes for s in specs], device=dev)  # [M, L+2]
        # unit_masks[l]: [M, n_l^max] True where unit l is real for the member
        self.unit_masks = [
            torch.arange(self.max_sizes[l], device=dev)[None, :] < sizes[:, l : l + 1]
            for l in range(n_layers + 1)
        ]
        # act_scales[l] for hidden layer l+1 (the output of linear map l): [M, 1, 1] or None
        if ref.fan_in_scale:
            self.act_scales = [
                (1.0 / torch.sqrt(sizes[:, l].to(dt)))[:, None, None] for l in range(self.depth)
            ]
        else:
            self.act_scales = [None] * self.depth

    # ------------------------------------------------------------------------------------------
    # construction
    @classmethod
    def init(
        cls,
        specs: MLPSpec | Sequence[MLPSpec],
        seeds: Sequence[int] | int,
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> Ensemble:
        """Initialise an ensemble.

        Args:
            specs: one spec for all members, or one per member.
            seeds: one seed per member (an int k means seeds ``0..k-1``).
            dtype, device: of the parameters (default float64 on the CPU).
        """
        if isinstance(seeds, int):
            seeds = list(range(seeds))
        seeds = [int(s) for s in seeds]
        if isinstance(specs, MLPSpec):
            specs = [specs] * len(seeds)
        specs = list(specs)
        if len(specs) != len(seeds):
            raise ConfigError(f"got {len(specs)} specs but {len(seeds)} seeds; give one per member")
        members = [cls._init_member(s, seed, dtype) for s, seed in zip(specs, seeds, strict=True)]
        return cls.from_member_params(specs, members, seeds=seeds, device=device, dtype=dtype)

    @staticmethod
    def _init_member(spec: MLPSpec, seed: int, dtype) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        fn = get_init(spec.init)
        out = []
        for layer in range(spec.depth + 1):
            w, b = fn(spec, layer, gen, dtype)
            out.append(w.to(dtype))
            if spec.bias:
                out.append(b.to(dtype))
        return out

    @classmethod
    def from_member_params(
        cls,
        specs: Sequence[MLPSpec],
        member_params: Sequence[Sequence[torch.Tensor]],
        *,
        seeds=None,
        dtype=None,
        device=None,
    ) -> Ensemble:
        """Stack per-member (unpadded) parameter lists into a padded ensemble."""
        specs = list(specs)
        ref = specs[0]
        dtype = dtype or member_params[0][0].dtype
        device = device or member_params[0][0].device
        n_layers = ref.depth + 1
        max_sizes = [max(s.sizes[i] for s in specs) for i in range(n_layers + 1)]
        params = []
        for l in range(n_layers):
            W = torch.zeros(len(specs), max_sizes[l + 1], max_sizes[l], dtype=dtype, device=device)
            b = torch.zeros(len(specs), max_sizes[l + 1], dtype=dtype, device=device)
            for m, (s, p) in enumerate(zip(specs, member_params, strict=True)):
                idx = 2 * l if ref.bias else l
                w = p[idx]
                if tuple(w.shape) != (s.sizes[l + 1], s.sizes[l]):
                    raise ConfigError(
                        f"member {m} layer {l}: weight shape {tuple(w.shape)} does not match "
                        f"its spec {(s.sizes[l + 1], s.sizes[l])}"
                    )
                W[m, : w.shape[0], : w.shape[1]] = w
                if ref.bias:
                    b[m, : w.shape[0]] = p[idx + 1]
            params.append(W)
            if ref.bias:
                params.append(b)
        return cls(specs, params, seeds=seeds)

    # ------------------------------------------------------------------------------------------
    # sizes
    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def n_weights(self) -> np.ndarray:
        """N per member (weights, biases excluded), ``[M]``."""
        return np.array([s.n_weights for s in self.specs])

    @property
    def n_params(self) -> np.ndarray:
        return np.array([s.n_params for s in self.specs])

    def param_masks(self) -> list[torch.Tensor]:
        """Boolean masks like :attr:`params`: True on real (unpadded) entries."""
        masks = []
        for l in range(self.depth + 1):
            out_m, in_m = self.unit_masks[l + 1], self.unit_masks[l]
            masks.append(out_m[:, :, None] & in_m[:, None, :])
            if self.bias:
                masks.append(out_m.clone())
        return masks

    # ------------------------------------------------------------------------------------------
    # forward / backward
    def pad_inputs(self, xs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Zero-pad per-member inputs ``[P, d_m]`` to one tensor ``[M, P, d_max]``."""
        if isinstance(xs, torch.Tensor) and xs.dim() == 3:
            return xs
        if len(xs) != self.M:
            raise ConfigError(f"got inputs for {len(xs)} members, expected {self.M}")
        P = xs[0].shape[0]
        out = torch.zeros(self.M, P, self.max_sizes[0], dtype=self.dtype, device=self.device)
        for m, x in enumerate(xs):
            if x.shape != (P, self.specs[m].d_in):
                raise ConfigError(
                    f"member {m}: inputs of shape {tuple(x.shape)}, "
                    f"expected {(P, self.specs[m].d_in)}"
                )
            out[m, :, : x.shape[1]] = x
        return out

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        d = self.max_sizes[0]
        if x.dim() == 2:
            if x.shape[1] != d:
                raise ConfigError(f"inputs have d={x.shape[1]}, the ensemble expects d={d}")
            if any(s.d_in != d for s in self.specs):
                raise ConfigError(
                    "members have different input dimensions: pass per-member inputs [M, P, d_max] "
                    "(see Ensemble.pad_inputs)"
                )
        elif x.dim() != 3 or x.shape[0] != self.M or x.shape[2] != d:
            raise ConfigError(
                f"inputs of shape {tuple(x.shape)}; expected [P, {d}] or [{self.M}, P, {d}]"
            )
        return x

    @staticmethod
    def _linear(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """``a @ w^T + b`` per member. ``a`` is ``[M, P, n]`` or shared ``[P, n]``."""
        if a.dim() == 2:
            # Shared inputs: one GEMM for all members, [P, n] @ [n, M*h] -> [P, M, h].
            M, h, n = w.shape
            z = (a @ w.reshape(M * h, n).T).reshape(a.shape[0], M, h).transpose(0, 1)
            return z + b[:, None, :] if b is not None else z
        if b is not None:
            return torch.baddbmm(b[:, None, :], a, w.transpose(1, 2))
        return torch.bmm(a, w.transpose(1, 2))

    def _layers(self, params):
        params = self.params if params is None else params
        step = 2 if self.bias else 1
        return [
            (params[i], params[i + 1] if self.bias else None) for i in range(0, len(params), step)
        ]

    def forward(
        self, x: torch.Tensor, params: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Outputs of every member.

        Args:
            x: shared inputs ``[P, d]`` or per-member inputs ``[M, P, d_max]`` (zero-padded).
            params: parameters to use instead of :attr:`params` (same shapes; differentiable).

        Returns:
            ``[M, P, out_dim]``.
        """
        return self.forward_cached(self._check_x(x), params)[0]

    __call__ = forward

    def forward_cached(self, x: torch.Tensor, params=None):
        """Forward pass keeping what :meth:`backward` needs: returns ``(out, cache)``."""
        acts = [x]
        a = x
        layers = self._layers(params)
        for l, (w, b) in enumerate(layers):
            z = self._linear(a, w, b)
            if l < self.depth:
                a = activate(z, self.specs[0])
                if self.act_scales[l] is not None:
                    a = a * self.act_scales[l]
                acts.append(a)
            else:
                a = z
        return a, (acts, layers)

    def backward(self, cache, dout: torch.Tensor) -> list[torch.Tensor]:
        """Gradients of ``sum(dout * out)`` w.r.t. the parameters (hand-written backprop).

        Hand-written rather than autograd because the training hot loop runs it every step: it
        skips graph construction and fuses the activation derivative into one multiply. It is
        checked against autograd in the tests.

        Args:
            cache: from :meth:`forward_cached`.
            dout: ``[M, P, out_dim]``.

        Returns:
            Gradients like :attr:`params`.
        """
        acts, layers = cache
        spec = self.specs[0]
        grads: list[torch.Tensor] = []
        g = dout
        for l in range(self.depth, -1, -1):
            w, b = layers[l]
            a = acts[l]
            if a.dim() == 2:  # shared inputs: [M, h, P] @ [P, n]
                gw = torch.matmul(g.transpose(1, 2), a)
            else:
                gw = torch.bmm(g.transpose(1, 2), a)
            if b is not None:
                grads.append(g.sum(1))
            grads.append(gw)
            if l > 0:
                scale = self.act_scales[l - 1]
                ga = torch.bmm(g, w)
                deriv = activation_derivative(acts[l], spec, scale)
                g = ga * deriv if scale is None else ga * (deriv * scale)
        grads.reverse()
        return grads

    # ------------------------------------------------------------------------------------------
    # members
    def member_params(self, m: int, params=None) -> list[torch.Tensor]:
        """Member ``m``'s parameters, unpadded (clones): ``[W0, b0, ...]`` as in
        :func:`weightscape.nets.functional.mlp_forward`."""
        s = self.specs[m]
        out = []
        for l, (w, b) in enumerate(self._layers(params)):
            out.append(w[m, : s.sizes[l + 1], : s.sizes[l]].clone())
            if b is not None:
                out.append(b[m, : s.sizes[l + 1]].clone())
        return out

    def member_forward(self, m: int, x: torch.Tensor, params=None) -> torch.Tensor:
        """Member ``m`` evaluated alone on ``x`` ``[P, d_m]`` -> ``[P, out_dim]``."""
        return mlp_forward(self.member_params(m, params), x, self.specs[m])

    def to_module(self, m: int) -> torch.nn.Sequential:
        """Member ``m`` as a plain ``torch.nn.Sequential`` of ``Linear`` and activation modules."""
        s = self.specs[m]
        params = self.member_params(m)
        mods: list[torch.nn.Module] = []
        step = 2 if s.bias else 1
        for l in range(s.depth + 1):
            w = params[l * step]
            lin = torch.nn.Linear(s.sizes[l], s.sizes[l + 1], bias=s.bias, dtype=w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w)
                if s.bias:
                    lin.bias.copy_(params[l * step + 1])
            mods.append(lin.to(w.device))
            if l < s.depth:
                scale = 1.0 / math.sqrt(s.sizes[l]) if s.fan_in_scale else 1.0
                mods.append(ScaledActivation(s, scale))
        return torch.nn.Sequential(*mods)

    def select(self, members: Sequence[int]) -> Ensemble:
        """A new ensemble of the given members (repadded to their own largest sizes)."""
        members = list(members)
        return Ensemble.from_member_params(
            [self.specs[m] for m in members],
            [self.member_params(m) for m in members],
            seeds=[self.seeds[m] for m in members],
        )

    # ------------------------------------------------------------------------------------------
    # persistence (npz arrays + JSON specs, no pickle)
    def state_arrays(self, prefix: str = "param") -> dict[str, np.ndarray]:
        """Parameters as numpy arrays ``{f"{prefix}_{i}": ...}`` for ``.npz`` files."""
        return {f"{prefix}_{i}": p.detach().cpu().numpy() for i, p in enumerate(self.params)}

    def specs_json(self) -> str:
        payload = []
        for s in self.specs:
            d = asdict(s)
            d.pop("sizes", None)
            d["widths"] = list(d["widths"])
            payload.append(d)
        return json.dumps({"specs": payload, "seeds": list(self.seeds)})

    @classmethod
    def from_arrays(cls, specs_json: str, arrays: dict, prefix: str = "param", device="cpu"):
        """Inverse of :meth:`state_arrays` / :meth:`specs_json`."""
        meta = json.loads(specs_json)
        specs = [MLPSpec(**{**d, "widths": tuple(d["widths"])}) for d in meta["specs"]]
        n = len([k for k in arrays if k.startswith(prefix + "_")])
        params = [torch.as_tensor(arrays[f"{prefix}_{i}"], device=device) for i in range(n)]
        return cls(specs, params, seeds=meta["seeds"])

    def __repr__(self) -> str:
        return (
            f"Ensemble(M={self.M}, depth={self.depth}, max_sizes={self.max_sizes}, "
            f"activation={self.activation!r}, bias={self.bias}, dtype={self.dtype})"
        )
