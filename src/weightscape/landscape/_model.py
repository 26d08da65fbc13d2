"""The spherical H-spin glass (Choromanska et al. 2015), batched over points and disorder samples.

.. math::
    L(w) = \\Lambda^{-(H-1)/2} \\sum_{i_1 \\dots i_H} X_{i_1 \\dots i_H} w_{i_1} \\cdots w_{i_H},
    \\qquad \\sum_i w_i^2 = \\Lambda,

with ``X`` i.i.d. N(0, 1) over *ordered* tuples, so that
``Cov(L(w), L(w')) = Lambda (w.w'/Lambda)^H``. Energy per weight ``u = L / Lambda``.

Two storages of the disorder, one interface (:class:`SpinGlassBase`):

* :class:`DenseSpinGlass` keeps the tensor ``X [D, lam, ..., lam]`` (``lam^H`` numbers per sample)
  and contracts it directly. Reference path, small cases only.
* :class:`SpinGlass` keeps the ``C(lam + H - 1, H)`` monomial coefficients
  ``c_alpha = sum_{tuples -> alpha} X_tuple`` (each N(0, H!/prod alpha_k!), independent), i.e.
  ``L = lam^{-(H-1)/2} sum_alpha c_alpha w^alpha``. It evaluates through a flattening of the
  symmetric form, ``F(w) = phi_a(w)^T M phi_b(w)`` with ``phi_d`` the vector of degree-``d``
  monomials, ``a + b = H`` and ``M_{AB} = c_{A+B} / n_split(A+B)``: one matrix product per step,
  ``C(lam+a-1, a) C(lam+b-1, b)`` numbers instead of ``lam^H`` (``a = b = 2`` at H = 4 is 7x fewer
  flops than the dense contraction). ``split="monomial"`` (``a = H, b = 0``) stores only the
  coefficients, for the largest ``lam^H``.

Shapes: disorder samples ``D``, points per sample ``B``; points ``w [D, B, lam]``, energies
``[D, B]``, gradients ``[D, B, lam]``, Hessians ``[D, B, lam, lam]``. dtype/device follow the
coefficients (float64 by default).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Precision
from ..errors import ConfigError, check_choice, check_positive
from ._monomials import (
    derivative_table,
    multinomial_counts,
    multisets,
    n_monomials,
    product_ranks,
    rank_multisets,
    second_derivative_table,
)
from ._sphere import riemannian_gradient, riemannian_hessian, tangent_hessian

__all__ = ["DenseSpinGlass", "ParameterBudget", "SpinGlass", "SpinGlassBase", "lam_for_budget"]


# --------------------------------------------------------------------------------------------
# parameter budget
# --------------------------------------------------------------------------------------------
_BUDGET_RULES = ("N/H", "N")


@dataclass(frozen=True)
class ParameterBudget:
    """How a parameter budget ``N`` maps to the number of spins ``Lambda`` at depth ``H``.

    Attributes:
        rule: ``"N/H"`` (default reading of the spec: ``Lambda = round(N / H)``, the weights per
            layer at fixed total) or ``"N"`` (``Lambda = N`` for every H).
        rounding: ``"round"`` (half to even, Python's ``round``), ``"floor"`` or ``"ceil"``.
        min_lam: smallest allowed ``Lambda`` (2: a circle).
    """

    rule: str = "N/H"
    rounding: str = "round"
    min_lam: int = 2

    def __post_init__(self):
        check_choice("rule", self.rule, _BUDGET_RULES)
        check_choice("rounding", self.rounding, ("round", "floor", "ceil"))
        check_positive("min_lam", self.min_lam, integer=True)

    def lam(self, n_params: int, H: int) -> int:
        """``Lambda(N, H)``; raises :class:`ConfigError` below ``min_lam``."""
        check_positive("N", n_params, integer=True)
        check_positive("H", H, integer=True)
        x = n_params / H if self.rule == "N/H" else float(n_params)
        lam = {"round": round, "floor": math.floor, "ceil": math.ceil}[self.rounding](x)
        if lam < self.min_lam:
            raise ConfigError(
                f"N={n_params}, H={H} gives Lambda={lam} < min_lam={self.min_lam}; use a larger N"
            )
        return int(lam)


def lam_for_budget(n_params: int, H: int, budget: ParameterBudget | None = None) -> int:
    """``Lambda(N, H)`` under ``budget`` (default ``Lambda = round(N / H)``)."""
    return (budget or ParameterBudget()).lam(n_params, H)


# --------------------------------------------------------------------------------------------
# shared interface
# --------------------------------------------------------------------------------------------
def _check_lam_h(lam: int, H: int) -> None:
    check_positive("lam", lam, integer=True)
    check_positive("H", H, integer=True)
    if lam < 2:
        raise ConfigError(f"lam={lam} must be >= 2 (the sphere needs two coordinates)")
    if H < 2:
        raise ConfigError(f"H={H} must be >= 2 (H = 1 is a linear function)")


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


class SpinGlassBase:
    """Energy, gradient and Hessian on the sphere; a subclass fills :meth:`_euclidean`.

    Attributes:
        lam: number of spins ``Lambda``.
        H: degree (depth).
        n_disorder: number of disorder samples ``D``.
    """

    lam: int
    H: int
    n_disorder: int

    @property
    def scale(self) -> float:
        """``Lambda^{-(H-1)/2}``."""
        return self.lam ** (-(self.H - 1) / 2)

    @property
    def dtype(self) -> torch.dtype:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def _euclidean(self, w: torch.Tensor, order: int):
        """Return ``(L, grad or None, hess or None)`` for ``w [D, B, lam]`` up to ``order``."""
        raise NotImplementedError

    def select(self, index: int | slice | list[int]) -> SpinGlassBase:
        """The model restricted to some disorder samples (shares storage where possible)."""
        raise NotImplementedError

    def _prepare(self, w: torch.Tensor) -> tuple[torch.Tensor, bool]:
        w = torch.as_tensor(w, dtype=self.dtype, device=self.device)
        squeeze = w.ndim == 2
        if squeeze:
            if self.n_disorder != 1:
                raise ConfigError(
                    f"points of shape {tuple(w.shape)} need a disorder axis: "
                    f"use [D={self.n_disorder}, B, lam]"
                )
            w = w[None]
        if w.ndim != 3 or w.shape[0] != self.n_disorder or w.shape[-1] != self.lam:
            raise ConfigError(
                f"points must have shape [D={self.n_disorder}, B, lam={self.lam}], "
                f"got {tuple(w.shape)}"
            )
        return w, squeeze

    def evaluate(self, w: torch.Tensor, order: int = 1):
        """Euclidean ``(L [D, B], grad [D, B, lam] | None, hess [D, B, lam, lam] | None)``.

        ``w`` may be ``[B, lam]`` when ``D = 1`` (outputs then drop the disorder axis).
        """
        w, squeeze = self._prepare(w)
        out = self._euclidean(w, order)
        return tuple(None if x is None else (x[0] if squeeze else x) for x in out)

    def energy(self, w: torch.Tensor) -> torch.Tensor:
        """``L(w)``, ``[D, B]`` (not per weight; divide by ``lam`` for ``u``)."""
        return self.evaluate(w, 0)[0]

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        """Euclidean gradient ``dL/dw``, ``[D, B, lam]``."""
        return self.evaluate(w, 1)[1]

    def hessian(self, w: torch.Tensor) -> torch.Tensor:
        """Euclidean Hessian ``d^2 L / dw dw``, ``[D, B, lam, lam]``."""
        return self.evaluate(w, 2)[2]

    def riemannian_gradient(self, w: torch.Tensor) -> torch.Tensor:
        """Tangent gradient on the sphere, ``[D, B, lam]``."""
        _, g, _ = self.evaluate(w, 1)
        return riemannian_gradient(torch.as_tensor(w, dtype=g.dtype, device=g.device), g)

    def riemannian_hessian(self, w: torch.Tensor) -> torch.Tensor:
        """``P (hess - mu I) P``, ``[D, B, lam, lam]`` (zero mode along ``w``)."""
        _, g, h = self.evaluate(w, 2)
        return riemannian_hessian(torch.as_tensor(w, dtype=g.dtype, device=g.device), g, h)

    def tangent_hessian(self, w: torch.Tensor) -> torch.Tensor:
        """Riemannian Hessian in an orthonormal tangent basis, ``[D, B, lam - 1, lam - 1]``."""
        _, g, h = self.evaluate(w, 2)
        return tangent_hessian(torch.as_tensor(w, dtype=g.dtype, device=g.device), g, h)


# --------------------------------------------------------------------------------------------
# dense tensor path
# --------------------------------------------------------------------------------------------
class DenseSpinGlass(SpinGlassBase):
    """The model with the full ordered-tuple tensor ``X [D, lam, ..., lam]`` (reference path).

    Args:
        tensor: ``[D, lam, ..., lam]`` (H trailing axes of equal size), float64 recommended.
    """

    def __init__(self, tensor: torch.Tensor):
        tensor = torch.as_tensor(tensor)
        if tensor.ndim < 3 or len(set(tensor.shape[1:])) != 1:
            raise ConfigError(
                "tensor must have shape [D, lam, ..., lam] with H >= 2 equal axes, "
                f"got {tuple(tensor.shape)}"
            )
        self.tensor = tensor
        self.n_disorder = tensor.shape[0]
        self.lam = tensor.shape[1]
        self.H = tensor.ndim - 1
        _check_lam_h(self.lam, self.H)
        # L only sees the symmetric part; symmetrising by averaging over axis permutations.
        perms = list(itertools.permutations(range(1, self.H + 1)))
        sym = sum(tensor.permute(0, *p) for p in perms) / len(perms)
        self._sym = sym.reshape(self.n_disorder, -1)

    @classmethod
    def sample(
        cls,
        lam: int,
        H: int,
        n_disorder: int = 1,
        *,
        seed: int | torch.Generator | None = 0,
        precision: Precision | None = None,
    ) -> DenseSpinGlass:
        """Draw ``X`` i.i.d. N(0, 1) over ordered tuples (``lam^H`` numbers per sample)."""
        _check_lam_h(lam, H)
        check_positive("n_disorder", n_disorder, integer=True)
        p = precision or Precision()
        x = torch.randn(n_disorder, *([lam] * H), generator=_generator(seed), dtype=p.torch_dtype)
        return cls(x.to(p.torch_device))

    @property
    def dtype(self) -> torch.dtype:
        return self.tensor.dtype

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def _contract(self, w: torch.Tensor, times: int) -> torch.Tensor:
        """``S[.., w, ..., w]``, the last ``times`` axes contracted: ``[D, B, lam^(H-times)]``."""
        D, B, lam = w.shape
        if times == 0:
            return self._sym[:, None, :].expand(D, B, self._sym.shape[-1])
        t = (self._sym.reshape(D, -1, lam) @ w.transpose(-1, -2)).transpose(-1, -2)
        for _ in range(times - 1):
            t = (t.reshape(D, B, -1, lam) * w[:, :, None, :]).sum(-1)
        return t

    def _euclidean(self, w, order):
        H, s = self.H, self.scale
        energy = s * self._contract(w, H)[..., 0]
        grad = s * H * self._contract(w, H - 1) if order >= 1 else None
        hess = None
        if order >= 2:
            D, B, lam = w.shape
            hess = s * H * (H - 1) * self._contract(w, H - 2).reshape(D, B, lam, lam)
        return energy, grad, hess

    def select(self, index) -> DenseSpinGlass:
        idx = [index] if isinstance(index, int) else index
        return DenseSpinGlass(self.tensor[idx])

    def to_spin_glass(self, split: str | int = "auto") -> SpinGlass:
        """The same disorder as monomial coefficients (:meth:`SpinGlass.from_tensor`)."""
        return SpinGlass.from_tensor(self.tensor, split=split)


# --------------------------------------------------------------------------------------------
# monomial-coefficient path
# --------------------------------------------------------------------------------------------
class SpinGlass(SpinGlassBase):
    """The model stored as monomial coefficients ``c [D, C(lam+H-1, H)]`` (tensor-free path).

    Args:
        coefficients: ``[D, P]``, ordered as :func:`multisets` ``(lam, H)`` (lexicographic sorted
            index tuples).
        lam: number of spins.
        H: degree.
        split: how the flattening ``phi_a^T M phi_b`` splits the degree: ``"auto"`` (balanced
            ``a = ceil(H/2)`` when ``M`` fits in ``max_flat_bytes``, else ``"monomial"``),
            ``"balanced"``, ``"monomial"`` (``a = H``, only the coefficients are kept) or an int
            ``a`` in ``[ceil(H/2), H]``.
        max_flat_bytes: memory cap for ``M`` under ``"auto"`` (default 2 GiB).
        chunk_bytes: memory cap for the per-chunk intermediates of the Hessian (default 256 MiB).
        max_table_entries: Hessians come from the second-derivative table of the degree-H
            monomials (fast, ``~ H^2 P`` entries) when ``H^2 P`` is below this, else from the
            flattening (``O(P_a P_b lam)`` per point).
    """

    def __init__(
        self,
        coefficients: torch.Tensor,
        lam: int,
        H: int,
        *,
        split: str | int = "auto",
        max_flat_bytes: float = 2 * 2**30,
        chunk_bytes: float = 2**28,
        max_table_entries: float = 5e7,
    ):
        _check_lam_h(lam, H)
        c = torch.as_tensor(coefficients)
        if c.ndim == 1:
            c = c[None]
        if c.ndim != 2 or c.shape[1] != n_monomials(lam, H):
            raise ConfigError(
                f"coefficients must have shape [D, C(lam+H-1, H) = {n_monomials(lam, H)}], "
                f"got {tuple(c.shape)}"
            )
        self.coefficients = c
        self.lam, self.H, self.n_disorder = lam, H, c.shape[0]
        self.chunk_bytes = chunk_bytes
        self.max_table_entries = max_table_entries
        self._tables: dict = {}
        self.a = self._resolve_split(split, max_flat_bytes)
        self.b = H - self.a
        self._build_flattening()

    def _resolve_split(self, split, max_flat_bytes) -> int:
        lam, H = self.lam, self.H
        balanced = (H + 1) // 2
        if isinstance(split, bool) or not isinstance(split, str | int):
            raise ConfigError(f"split={split!r} must be 'auto', 'balanced', 'monomial' or an int")
        if isinstance(split, int):
            if not balanced <= split <= H:
                raise ConfigError(f"split={split} must lie in [ceil(H/2), H] = [{balanced}, {H}]")
            return split
        check_choice("split", split, ("auto", "balanced", "monomial"))
        if split == "monomial":
            return H
        if split == "balanced":
            return balanced
        nbytes = self.n_disorder * n_monomials(lam, balanced) * n_monomials(lam, H - balanced) * 8
        return balanced if nbytes <= max_flat_bytes else H

    def _build_flattening(self):
        lam, a, b = self.lam, self.a, self.b
        c = self.coefficients
        if b == 0:
            self._flat = c[:, :, None]
            return
        targets = product_ranks(lam, a, b)
        n_split = np.bincount(targets.ravel(), minlength=c.shape[1])
        tgt = torch.as_tensor(targets, device=c.device)
        weight = torch.as_tensor(1.0 / n_split, dtype=c.dtype, device=c.device)[tgt]
        self._flat = c[:, tgt] * weight  # [D, P_a, P_b]

    # ---------------------------------------------------------------- constructors
    @classmethod
    def sample(
        cls,
        lam: int,
        H: int,
        n_disorder: int = 1,
        *,
        seed: int | torch.Generator | None = 0,
        precision: Precision | None = None,
        split: str | int = "auto",
    ) -> SpinGlass:
        """Draw independent ``c_alpha ~ N(0, H!/prod_k alpha_k!)`` (the ordered-tuple model's law).

        Args:
            lam, H: size and degree.
            n_disorder: number of independent samples ``D``.
            seed: int seed or a CPU ``torch.Generator`` (numbers are drawn on the CPU).
            precision: dtype/device (default float64, CPU).
            split: see :class:`SpinGlass`.
        """
        _check_lam_h(lam, H)
        check_positive("n_disorder", n_disorder, integer=True)
        p = precision or Precision()
        var = multinomial_counts(multisets(lam, H)).astype(np.float64)
        z = torch.randn(n_disorder, len(var), generator=_generator(seed), dtype=p.torch_dtype)
        c = z * torch.as_tensor(np.sqrt(var), dtype=p.torch_dtype)
        return cls(c.to(p.torch_device), lam, H, split=split)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, *, split: str | int = "auto") -> SpinGlass:
        """Sum an ordered-tuple tensor ``X [D, lam, ..., lam]`` into monomial coefficients."""
        tensor = torch.as_tensor(tensor)
        if tensor.ndim < 3 or len(set(tensor.shape[1:])) != 1:
            raise ConfigError(
                "tensor must have shape [D, lam, ..., lam] with H >= 2 equal axes, "
                f"got {tuple(tensor.shape)}"
            )
        D, lam, H = tensor.shape[0], tensor.shape[1], tensor.ndim - 1
        tuples = np.indices([lam] * H).reshape(H, -1).T
        ranks = torch.as_tensor(rank_multisets(tuples, lam), device=tensor.device)
        c = torch.zeros(D, n_monomials(lam, H), dtype=tensor.dtype, device=tensor.device)
        c.index_add_(1, ranks, tensor.reshape(D, -1))
        return cls(c, lam, H, split=split)

    @property
    def dtype(self) -> torch.dtype:
        return self.coefficients.dtype

    @property
    def device(self) -> torch.device:
        return self.coefficients.device

    def select(self, index) -> SpinGlass:
        idx = [index] if isinstance(index, int) else index
        new = object.__new__(SpinGlass)
        new.__dict__.update(self.__dict__)
        # Index tables are shared; per-disorder products (c_coef) are not.
        new._tables = {
            k: {n: v for n, v in t.items() if n != "c_coef"} for k, t in self._tables.items()
        }
        new.coefficients = self.coefficients[idx]
        new._flat = self._flat[idx]
        new.n_disorder = new.coefficients.shape[0]
        return new

    @property
    def flattening(self) -> torch.Tensor:
        """``M [D, P_a, P_b]`` with ``F(w) = phi_a(w)^T M phi_b(w)``."""
        return self._flat

    # ---------------------------------------------------------------- evaluation
    def _table(self, kind: str, degree: int) -> dict[str, torch.Tensor]:
        """Index tables as tensors on the model's device (cached per kind and degree)."""
        key = (kind, degree)
        if key not in self._tables:
            dev, dt = self.device, self.dtype
            if kind == "rows":
                out = {"rows": torch.tensor(multisets(self.lam, degree), device=dev)}
            else:
                t = (derivative_table if kind == "d1" else second_derivative_table)(
                    self.lam, degree
                )
                out = {
                    "source": torch.tensor(t.source, device=dev),
                    "target": torch.tensor(t.target, device=dev),
                    "coef": torch.tensor(t.coef, dtype=dt, device=dev),
                    "var": torch.tensor(t.var, device=dev),
                }
                if kind == "d2":
                    out["flat"] = torch.tensor(t.var * self.lam + t.var2, device=dev)
                else:
                    out["flat"] = torch.tensor(t.source * self.lam + t.var, device=dev)
            self._tables[key] = out
        return self._tables[key]

    def _phi(self, w: torch.Tensor, degree: int) -> torch.Tensor:
        """All monomials of ``degree`` at ``w [D, B, lam]``, ``[D, B, P_degree]``."""
        if degree == 0:
            return torch.ones(*w.shape[:-1], 1, dtype=w.dtype, device=w.device)
        rows = self._table("rows", degree)["rows"]
        # index_select on the last axis is several times faster than advanced indexing here.
        return (
            torch.index_select(w, -1, rows.reshape(-1)).reshape(*w.shape[:-1], *rows.shape).prod(-1)
        )

    def _jt(self, y: torch.Tensor, w: torch.Tensor, degree: int, phi_lower: torch.Tensor):
        """``J_degree^T y``: ``sum_A y_A d phi_A / d w``, ``[D, B, lam]``."""
        out = torch.zeros_like(w)
        if degree == 0:
            return out
        t = self._table("d1", degree)
        contrib = (
            torch.index_select(y, -1, t["source"])
            * t["coef"]
            * torch.index_select(phi_lower, -1, t["target"])
        )
        return out.index_add_(-1, t["var"], contrib)

    def _jacobian(self, w: torch.Tensor, degree: int, phi_lower: torch.Tensor) -> torch.Tensor:
        """Dense ``d phi_A / d w_k``, ``[D, B, P_degree, lam]``."""
        P = n_monomials(self.lam, degree)
        jac = torch.zeros(*w.shape[:-1], P * self.lam, dtype=w.dtype, device=w.device)
        if degree == 0:
            return jac.reshape(*w.shape[:-1], P, self.lam)
        t = self._table("d1", degree)
        jac.index_add_(-1, t["flat"], t["coef"] * phi_lower[..., t["target"]])
        return jac.reshape(*w.shape[:-1], P, self.lam)

    def _second(self, y, w, degree, phi_lower2) -> torch.Tensor:
        """``sum_A y_A d^2 phi_A / dw dw``, ``[D, B, lam, lam]``."""
        lam = self.lam
        out = torch.zeros(*w.shape[:-1], lam * lam, dtype=w.dtype, device=w.device)
        if degree >= 2:
            t = self._table("d2", degree)
            contrib = y[..., t["source"]] * t["coef"] * phi_lower2[..., t["target"]]
            out.index_add_(-1, t["flat"], contrib)
        return out.reshape(*w.shape[:-1], lam, lam)

    def _euclidean(self, w, order):
        energy, grad = self._euclid_low(w, min(order, 1))
        if order < 2:
            return energy, grad, None
        D, B, lam = w.shape
        use_table = self.H**2 * self.coefficients.shape[1] <= self.max_table_entries
        if use_table:
            t = self._table("d2", self.H)
            per_point = D * 8 * 3 * len(t["source"]) + D * 8 * lam * lam
            fn = self._hess_table
        else:
            per_point = (
                D * 8 * lam * (n_monomials(lam, self.a) + n_monomials(lam, self.b) + 2 * lam)
            )
            per_point += D * 8 * n_monomials(lam, self.a) * lam  # M @ J_b
            fn = self._hess_flat
        step = max(1, int(self.chunk_bytes // per_point))
        hess = torch.cat([fn(w[:, s : s + step]) for s in range(0, B, step)], dim=1)
        return energy, grad, hess

    def _hess_table(self, w):
        """``s sum_alpha c_alpha d^2 w^alpha`` from the second-derivative table of degree H."""
        lam = self.lam
        t = self._table("d2", self.H)
        if "c_coef" not in t:
            t["c_coef"] = self.coefficients[:, t["source"]] * t["coef"]  # [D, T]
        phi = self._phi(w, self.H - 2)
        contrib = t["c_coef"][:, None, :] * phi[..., t["target"]]
        out = torch.zeros(*w.shape[:-1], lam * lam, dtype=w.dtype, device=w.device)
        out.index_add_(-1, t["flat"], contrib)
        return self.scale * out.reshape(*w.shape[:-1], lam, lam)

    def _euclid_low(self, w, order):
        a, b, M, s = self.a, self.b, self._flat, self.scale
        phi_a = self._phi(w, a)
        z = phi_a @ M  # [D, B, P_b]
        phi_b = phi_a if a == b else self._phi(w, b)
        energy = s * (z * phi_b).sum(-1)
        if order == 0:
            return energy, None
        # a == b: M is symmetric, so y = M phi_b = z.
        y = z if a == b else phi_b @ M.transpose(-1, -2)
        grad = self._jt(y, w, a, self._phi(w, a - 1))
        grad = 2 * grad if a == b else grad + self._jt(z, w, b, self._phi(w, b - 1) if b else None)
        return energy, s * grad

    def _hess_flat(self, w):
        """Hessian through the flattening (for models too large for the degree-H table)."""
        a, b, M, s = self.a, self.b, self._flat, self.scale
        phi_a, phi_a1 = self._phi(w, a), self._phi(w, a - 1)
        phi_b = phi_a if a == b else self._phi(w, b)
        phi_b1 = phi_a1 if a == b else (self._phi(w, b - 1) if b else None)
        z = phi_a @ M
        y = z if a == b else phi_b @ M.transpose(-1, -2)
        j_a = self._jacobian(w, a, phi_a1)
        j_b = j_a if a == b else self._jacobian(w, b, phi_b1)
        cross = j_a.transpose(-1, -2) @ (M[:, None] @ j_b)  # [D, B, lam, lam]
        hess = cross + cross.transpose(-1, -2)
        if a >= 2:
            second_a = self._second(y, w, a, self._phi(w, a - 2))
            hess = hess + (2 * second_a if a == b else second_a)
        if b >= 2 and a != b:
            hess = hess + self._second(z, w, b, self._phi(w, b - 2))
        return s * hess
