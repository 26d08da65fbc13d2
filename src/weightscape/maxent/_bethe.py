"""Batched dense BP with the Bethe free energy: many field vectors (tilts, references, random
starts) on one coupling matrix, solved together.

Same fixed-point equations as :func:`~weightscape.maxent.bp_solve` (messages are cavity
magnetisations, ``M[b, i, j] = m_{i→j}`` for batch element ``b``), evaluated with fewer
transcendental calls. With ``y_{k→i} = tanh J_ki · m_{k→i}`` and ``u = atanh y``:

.. math::

    H_i = h_i + \\sum_k u_{k→i}
        = h_i + \\tfrac12 \\ln \\frac{\\prod_k (1 + y_{k→i})}{\\prod_k (1 - y_{k→i})},
    \\qquad
    m_{i→j} = \\tanh(H_i - u_{j→i}) = \\frac{m_i - y_{j→i}}{1 - m_i\\, y_{j→i}},
    \\quad m_i = \\tanh H_i,

(the last step is the tanh subtraction formula, since ``tanh u_{j→i} = y_{j→i}``). One sweep so
costs ``O(N)`` logs and tanh's plus ``O(N²)`` multiply/divide, instead of the ``2N²`` atanh/tanh of
the textbook form; products are taken over chunks short enough never to overflow. Where
``1 - m_i y_{j→i}`` is small (|J| ≳ 5 only) the subtraction formula would lose digits and the
message is recomputed as ``tanh(H_i - atanh y_{j→i})``.

Iteration: damped, ``M ← d M + (1-d) F(M)``. With ``accel="adaptive"`` (default) each batch element
starts at the configured damping (in the entropy landscape: at the damping it had adapted to at
the previous ``x``, carried along like the messages) and lowers it by ``ADAPT_STEP`` after every
sweep that reduced its residual (down to ``min_damping``), and moves it halfway to 1 after every
sweep that raised the residual: on the dense weak-coupling models of the landscape the linearised
BP map has a spectrum filling a disc around 0, for which the undamped step is the fastest
stationary iteration, and no polynomial (Krylov/Anderson) acceleration can beat its rate
(measured: Anderson mixing saves 2% of the sweeps on the N = 675 benchmark model, 2210 → 2159,
at ≈ 2× the memory traffic per sweep).
``accel="anderson"``: safeguarded Anderson mixing of the undamped update (``history``
differences; :class:`~weightscape.maxent._bp.AndersonMixer`: a growing residual drops the history
and takes the damped step, repeated growth leaves the damped iteration for good). It pays where
one real mode is slow, near a spinodal: 2–5× fewer sweeps than adaptive damping on planted
two-cluster landscapes. ``accel="adaptive+anderson"`` (the landscape's default): adaptive
damping, and Anderson mixing for the rest of a solve once ``ANDERSON_ENGAGE_SWEEPS`` sweeps in a
row lowered the criterion by less than ``ANDERSON_ENGAGE_RATIO`` (where adaptive damping would
climb towards 0.95 and can stall past a spinodal: > 1000 sweeps, unconverged); on fast
contractions it is ``"adaptive"`` sweep for sweep.
``accel="none"`` keeps the damping fixed (the authors' scheme). The convergence criterion always
uses the *configured* damping, so it means the same in all modes. Every batch element stops on
its own criterion and is frozen from then on, so a batched solve returns what separate solves
would.

At a fixed point the Bethe free entropy per spin is

.. math::

    -\\beta f = \\frac1N\\Big[\\sum_i \\ln\\big(e^{h_i}\\prod_k \\cosh J_{ik}(1+y_{k→i})
    + e^{-h_i}\\prod_k \\cosh J_{ik}(1-y_{k→i})\\big)
    - \\sum_{i<j} \\ln\\big(\\cosh J_{ij}(1 + \\tanh J_{ij} m_{i→j} m_{j→i})\\big)\\Big]

which equals ``(1/N)[Σ_{i<j} ln cosh J_ij + Σ_i ln 2cosh H_i + ½ Σ_{k≠i} ln(1 - y_{k→i}²)
- Σ_{i<j} ln(1 + t_ij m_{i→j} m_{j→i})]`` (the form evaluated here, stable for large fields); the
energy per spin ``βe = -(1/N)[Σ_{i<j} J_ij C_ij + Σ_i h_i m_i]`` with the Bethe pair moments
``C_ij``, and the Bethe entropy ``s = -βf + βe``. All exact on trees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DatasetError, NumericalError, check_choice, check_positive
from ._bp import (
    ANDERSON_DEFAULT_HISTORY,
    ATANH_GUARD,
    BP_DEFAULT_DAMPING,
    CRITERIA,
    PAIR_DENOM_GUARD,
    AndersonMixer,
    check_damping,
    check_messages,
)
from ._model import IsingModel

__all__ = [
    "ACCELERATIONS",
    "CRITERIA",
    "BetheConfig",
    "BetheResult",
    "bethe_pair_moments",
    "bethe_solve",
]

ACCELERATIONS = ("none", "adaptive", "anderson", "adaptive+anderson")
# Convergence criteria on the residual R = F(M) - M (F: the undamped BP update), d = configured
# damping:
#   max_change   (1-d) max|R|  - the largest change a damped step makes (the spec's default);
#   max_residual max|R|        - as bp_solve;
#   mean_change  (1-d) mean|R|.
# Landscape default tolerance (the spec: largest message change < 1e-6).
BETHE_DEFAULT_TOL = 1e-6
# Adaptive damping: decrement after a sweep that lowered the residual; ceiling after increases.
ADAPT_STEP = 0.125
ADAPT_MAX_DAMPING = 0.95
# accel="adaptive+anderson": an element switches from adaptive damping to Anderson mixing (for the
# rest of its solve) after ANDERSON_ENGAGE_SWEEPS consecutive sweeps that lowered its convergence
# criterion by less than the factor ANDERSON_ENGAGE_RATIO (or raised it): a slow real mode (near
# a spinodal) or a growing residual, where adaptive damping climbs towards ADAPT_MAX_DAMPING and
# can stall. Fast contractions never pay for the mixing (one isolated slow sweep, common in the
# first sweeps of a warm start, does not count).
ANDERSON_ENGAGE_RATIO = 0.9
ANDERSON_ENGAGE_SWEEPS = 2
# Below this value of 1 - m_i y_{j→i} the subtraction formula loses more than ~1e4 ulps: recompute
# those messages with tanh/atanh (only reachable when |tanh J| > 1 - 1e-4, i.e. |J| > 4.95).
SUBTRACTION_GUARD = 1e-4
# CPU sweeps go through the batch in chunks of elements whose messages and two work arrays
# (3 N² numbers each) fit in this many bytes, about a last-level cache: one chunk's sweep then
# runs from cache instead of streaming [B, N, N] arrays from memory ≈ 10 times, and every chunk
# reuses the same work arrays (measured at N = 675, 4 references, one thread: 26-31% less time
# per sweep). Results are those of the whole batch at once (every operation is per element).
SWEEP_CHUNK_BYTES = 16 << 20
# Largest |log| of a partial product before it is taken: exp(±600) stays finite in float64 and
# float32 overflows at 88, so float32 products use a bound of 60.
_LOG_PRODUCT_BOUND = {torch.float64: 600.0, torch.float32: 60.0}


@dataclass(frozen=True)
class BetheConfig:
    """Settings of :func:`bethe_solve`.

    Attributes:
        damping: fraction ``d ∈ [0, 1)`` of the old message kept per step (spec: 0.5).
        tol: converged when the criterion falls below ``tol`` (spec: 1e-6).
        max_iter: maximum sweeps per batch element.
        criterion: one of :data:`CRITERIA`; ``"max_change"`` = ``(1-d) max|F(M) - M|``, the
            largest message change of a damped step (the spec's "largest message change").
        accel: ``"adaptive"`` (default: damping lowered while the residual falls, same fixed
            points in fewer sweeps), ``"none"`` (fixed damping, the authors' scheme),
            ``"anderson"`` (safeguarded Anderson mixing) or ``"adaptive+anderson"`` (adaptive,
            then Anderson mixing once convergence turns slow; the landscape's default). See the
            module docstring.
        min_damping: floor of the adaptive damping (``0 ≤ min_damping ≤ damping``).
        history: differences kept by ``accel="anderson"`` (safeguarded Anderson mixing of the
            undamped update, :class:`~weightscape.maxent._bp.AndersonMixer`; ``damping`` is its
            fallback step when the residual grows).
    """

    damping: float = BP_DEFAULT_DAMPING
    tol: float = BETHE_DEFAULT_TOL
    max_iter: int = 1000
    criterion: str = "max_change"
    accel: str = "adaptive"
    min_damping: float = 0.0
    history: int = ANDERSON_DEFAULT_HISTORY

    def __post_init__(self):
        check_damping(self.damping)
        check_positive("tol", self.tol, finite=True)  # inf: every point "converged" at once
        check_positive("max_iter", self.max_iter, integer=True)
        check_choice("criterion", self.criterion, CRITERIA)
        check_choice("accel", self.accel, ACCELERATIONS)
        if isinstance(self.min_damping, bool) or not isinstance(self.min_damping, int | float):
            raise ConfigError(f"min_damping={self.min_damping!r} must be a number")
        if not 0.0 <= self.min_damping <= self.damping:
            raise ConfigError(
                f"min_damping={self.min_damping!r} must lie in [0, damping={self.damping}]"
            )
        check_positive("history", self.history, integer=True)


@dataclass(frozen=True, eq=False)
class BetheResult:
    """Marginals and thermodynamics at the final messages, per batch element.

    Attributes:
        m: magnetisations ``tanh H_i`` ``[B, N]``.
        fields: total effective fields ``H_i`` ``[B, N]``.
        free_entropy: Bethe ``-βf = ln Z_Bethe / N`` ``[B]``.
        energy: ``βe = ⟨E⟩/N`` with the Bethe pair moments ``[B]`` (fields as solved, i.e.
            including any tilt).
        entropy: ``s = -βf + βe`` ``[B]`` (nats per spin).
        converged: ``[B]`` bool.
        iterations: sweeps done ``[B]`` (int64).
        residual: last value of the criterion ``[B]``.
    """

    m: torch.Tensor
    fields: torch.Tensor
    free_entropy: torch.Tensor
    energy: torch.Tensor
    entropy: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.m.shape[0]


def bethe_pair_moments(J: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
    """Bethe pair moments ``C_ij = (t + m_{i→j}m_{j→i}) / (1 + t m_{i→j}m_{j→i})``.

    Args:
        J: couplings ``[N, N]``.
        messages: ``[..., N, N]``.

    Returns:
        ``[..., N, N]`` with unit diagonal.
    """
    t = torch.tanh(J)
    mm = messages * messages.transpose(-1, -2)
    C = (t + mm) / (1.0 + t * mm).clamp_min(PAIR_DENOM_GUARD)
    C.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    return C


def _numpy_transpose_ok(M: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether :meth:`_Kernel.cavity_yt` may transpose ``M`` into ``out`` with NumPy (CPU float
    tensors outside autograd; elsewhere torch's transposed multiply)."""
    return (
        M.device.type == "cpu"
        and out.device.type == "cpu"
        and M.dtype in (torch.float64, torch.float32)
        and out.dtype == M.dtype
        and not (M.requires_grad or out.requires_grad)
    )


class _Workspace:
    """Preallocated ``[B, N, N]`` buffers of one BP sweep (slices ``[:b]`` serve fewer rows)."""

    def __init__(self, b: int, n: int, dtype, device):
        self.T = torch.empty(b, n, n, dtype=dtype, device=device)  # Yᵀ, then numerators
        self.A = torch.empty(b, n, n, dtype=dtype, device=device)  # factors, den, then M - F(M)
        self.R = torch.empty(b, n, n, dtype=dtype, device=device)  # thermodynamics: m m


class _Kernel:
    """The BP map on one coupling matrix: precomputed ``tanh J``, chunking and guards.

    A sweep works on ``Yt[b, i, j] = y_{j→i} = tanh J_ij · m_{j→i}`` (the transposed messages
    times ``tanh J``, ``J`` symmetric): the fields are then row sums and the new message
    ``m_{i→j}`` sits at ``[i, j]``, so the only cache-hostile operation is one transposed read
    of ``M`` per sweep (a transposed copy, then the multiplication by ``tanh J`` in place).

    Cost of one sweep at N = 675, one element, one thread (measured, thread CPU time under load):
    the transposed copy ≈ 27%, ``*= tanh J`` 11%, the two field products (``1 ± y`` and the
    products) 18%, ``1 - m y`` 7%, ``m - y`` 3%, the ``addcdiv`` 12%, the damped step 7%, the
    criterion (``max R``, ``min R``) 9%: twelve passes over ``[N, N]``, each elementwise and
    cheap, so time goes with the number of passes and the transposition.
    """

    def __init__(self, J: torch.Tensor):
        self.J = J
        self.n = J.shape[0]
        self.t = torch.tanh(J)
        tmax = float(self.t.abs().max()) if self.n > 1 else 0.0
        self.clamp = tmax >= 1.0 - ATANH_GUARD
        tmax = min(tmax, 1.0 - ATANH_GUARD)
        # |log(1 ± y)| ≤ max(log 2, -log(1 - tmax)) per factor → factors per partial product
        per = max(math.log(2.0), -math.log1p(-tmax))
        bound = _LOG_PRODUCT_BOUND.get(J.dtype, 60.0)
        self.chunk = max(1, int(bound / per))
        self.guard = tmax > 1.0 - SUBTRACTION_GUARD
        self.one = torch.ones(1, dtype=J.dtype, device=J.device)
        self.lncosh = 0.5 * float(torch.log(torch.cosh(J)).sum())  # Σ_{i<j} ln cosh J_ij
        self._pair = None  # see pair_constants
        # batch elements per chunk of a sweep (see SWEEP_CHUNK_BYTES); all at once off the CPU
        per = 3 * self.n * self.n * J.element_size()
        self.per_chunk = max(1, SWEEP_CHUNK_BYTES // per) if J.device.type == "cpu" else None

    def chunks(self, b: int) -> list[tuple[int, int]]:
        """Ranges ``(e0, e1)`` of batch elements a sweep of ``b`` elements goes through."""
        if self.per_chunk is None or b <= self.per_chunk:
            return [(0, b)]
        return [(e, min(e + self.per_chunk, b)) for e in range(0, b, self.per_chunk)]

    def _log_prod(self, X: torch.Tensor) -> torch.Tensor:
        """``Σ_j log X[b, i, j]`` ``[b, N]`` by products over chunks of ``j``."""
        if self.chunk >= self.n:
            return torch.log(X.prod(dim=2))
        return sum(
            torch.log(X[:, :, a : a + self.chunk].prod(dim=2)) for a in range(0, self.n, self.chunk)
        )

    def cavity_yt(self, M: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``Yt[b, i, j] = y_{j→i} = tanh J_ij · m_{j→i}`` ``[b, N, N]`` (in ``out``).

        On the CPU the transposed copy is NumPy's (its strided copy is faster than torch's
        transposed multiply, ≈ 10% of a sweep at N = 675), then ``tanh J`` multiplies in place:
        the same products, bit for bit, as the one-op ``torch.mul(Mᵀ, tanh J)`` used elsewhere.
        """
        if _numpy_transpose_ok(M, out):
            np.copyto(out.numpy(), M.numpy().transpose(0, 2, 1))
            Yt = out.mul_(self.t)
        else:
            Yt = torch.mul(M.transpose(1, 2), self.t, out=out)
        if self.clamp:
            Yt.clamp_(-1.0 + ATANH_GUARD, 1.0 - ATANH_GUARD)
        return Yt

    def log_factors(self, Yt: torch.Tensor, work: torch.Tensor):
        """``(Σ_j ln(1 + Yt), Σ_j ln(1 - Yt))`` ``[b, N]`` each (``work``: scratch, left holding
        ``1 - Yt``)."""
        plus = self._log_prod(torch.add(Yt, 1.0, out=work))
        minus = self._log_prod(torch.sub(self.one, Yt, out=work))
        return plus, minus

    def residual(
        self, h: torch.Tensor, M: torch.Tensor, ws: _Workspace, start: int = 0
    ) -> torch.Tensor:
        """``M - F(M)`` ``[b, N, N]`` (in ``ws.A[start : start + b]``), ``F`` the undamped BP
        update.

        ``F(M)[i, j] = (m_i - y_{j→i}) / (1 - m_i y_{j→i})`` is folded into the subtraction
        (one ``addcdiv``). The large temporaries live in the preallocated workspace ``ws``
        (fresh multi-megabyte allocations would page-fault on every sweep); ``start``: the rows
        of ``ws.A`` that receive the result (chunks of a batch whose residual is needed whole
        use their own rows, others reuse the first ones, which stay in cache).
        """
        b = M.shape[0]
        T, A = ws.T[:b], ws.A[start : start + b]
        Yt = self.cavity_yt(M, T)
        plus, minus = self.log_factors(Yt, A)
        H = torch.add(h, plus.sub_(minus), alpha=0.5)
        m = torch.tanh(H)[:, :, None]
        # 1 - m_i y = (1 - y) + (1 - m_i) y: one addcmul on the 1 - y that log_factors left in
        # ws.A (vectorised: one broadcast operand); rounding within a few ulp of 1 - m_i y, exact
        # differences where y and m_i are near +1, and SUBTRACTION_GUARD covers small values
        den = torch.addcmul(A, Yt, 1.0 - m, out=A)
        fix = None
        if self.guard:
            bad = den < SUBTRACTION_GUARD
            if bool(bad.any()):
                idx = bad.nonzero(as_tuple=True)
                fix = idx, torch.tanh(H[idx[0], idx[1]] - torch.atanh(Yt[idx]))
        num = torch.sub(m, Yt, out=Yt)
        negR = torch.addcdiv(M, num, den, value=-1.0, out=den)  # in place of den: 4 hot arrays
        if fix is not None:
            idx, F = fix
            negR[idx] = M[idx] - F
        negR.diagonal(dim1=1, dim2=2).zero_()
        return negR

    def thermodynamics(self, h: torch.Tensor, M: torch.Tensor, ws: _Workspace):
        """``(m, H, -βf, βe)`` at messages ``M`` ``[b, N, N]`` with fields ``h`` ``[b, N]``
        (``[b, N]``, ``[b, N]``, ``[b]``, ``[b]``), chunk by chunk as the sweeps."""
        parts = [self._thermodynamics(h[a:e], M[a:e], ws) for a, e in self.chunks(M.shape[0])]
        if len(parts) == 1:
            return parts[0]
        return tuple(torch.cat(p) for p in zip(*parts, strict=True))

    def _thermodynamics(self, h: torch.Tensor, M: torch.Tensor, ws: _Workspace):
        """:meth:`thermodynamics` of one chunk.

        With ``p = t m_{i→j} m_{j→i} = m_{i→j} y_{j→i}``: the sums of ``ln(1 - y²) = ln(1 + y) +
        ln(1 - y)`` and of ``ln(1 + p)`` are taken as logs of chunked products, like the fields,
        and the pair energy as ``Σ J C = Σ K · (t² + p) / (1 + p)`` with ``K = J / t`` (1 where
        ``J = 0``), i.e. ``J · (t + m m) / (1 + t m m)`` without forming ``m m``.
        """
        n = self.n
        b = M.shape[0]
        Yt = self.cavity_yt(M, ws.T[:b])
        plus, minus = self.log_factors(Yt, ws.A[:b])
        H = h + 0.5 * (plus - minus)
        m = torch.tanh(H)
        aH = H.abs()
        log2cosh = aH + torch.log1p(torch.exp(-2.0 * aH))  # = ln(2 cosh H)
        site_y = 0.5 * (plus + minus).sum(1)  # ½ Σ_{k≠i} ln(1 - y_{k→i}²)
        p = torch.mul(M, Yt, out=ws.R[:b])  # t m_{i→j} m_{j→i}
        P = torch.add(p, 1.0, out=ws.A[:b])
        edge = 0.5 * self._log_prod(P).sum(1)
        free_entropy = (self.lncosh + log2cosh.sum(1) + site_y - edge) / n
        if self.clamp:
            P.clamp_min_(PAIR_DENOM_GUARD)
        K, t2 = self.pair_constants()
        tC = p.add_(t2).div_(P)  # t C = (t² + p) / (1 + p)
        if b == 1:  # ½ Σ_ij J_ij C_ij (dot: a one-row mv is much slower)
            pair = 0.5 * torch.dot(tC.view(-1), K.view(-1)).view(1)
        else:
            pair = 0.5 * torch.mv(tC.view(b, -1), K.view(-1))
        energy = -(pair + (h * m).sum(1)) / n
        return m, H, free_entropy, energy

    def pair_constants(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(J / tanh J, tanh² J)`` ``[N, N]`` each (``J / tanh J = 1`` where ``tanh J = 0``),
        made on first use and kept."""
        if self._pair is None:
            t0 = self.t == 0
            K = torch.where(t0, 1.0, self.J / torch.where(t0, 1.0, self.t))
            self._pair = K, self.t * self.t
        return self._pair


def _as_fields(model: IsingModel, fields) -> tuple[torch.Tensor, bool]:
    n = model.n_spins
    if fields is None:
        return model.h[None, :], False
    h = torch.as_tensor(fields, dtype=model.dtype, device=model.device)
    if h.ndim == 1:
        h, batched = h[None, :], False
    else:
        batched = True
    if h.ndim != 2 or h.shape[1] != n:
        raise DatasetError(f"fields have shape {tuple(h.shape)}; expected [B, N] with N = {n}")
    if not bool(torch.isfinite(h).all()):
        raise DatasetError("fields contain NaN or infinite values")
    return h, batched


def bethe_solve(
    model: IsingModel,
    config: BetheConfig = BetheConfig(),
    messages: torch.Tensor | None = None,
    *,
    fields: torch.Tensor | None = None,
) -> tuple[torch.Tensor, BetheResult, torch.Tensor]:
    """Solve BP for ``B`` field vectors on the couplings of ``model`` at once.

    Args:
        model: couplings ``J`` ``[N, N]`` (shared) and default fields ``h`` ``[N]``.
        config: damping, tolerance, criterion, acceleration.
        messages: warm start ``[B, N, N]`` (or ``[N, N]``, broadcast); ``None`` starts at 0.
        fields: ``[B, N]`` fields per batch element (e.g. ``h + x σ*`` for many tilts or
            references); ``None`` uses ``model.h`` (``B = 1``). A ``[N]`` vector counts as B = 1.

    Returns:
        ``(messages, result, trace)``: final messages ``[B, N, N]`` (``[N, N]`` when ``fields`` was
        not batched), :class:`BetheResult` (all fields ``[B, ...]``), and the criterion at every
        sweep ``[T, B]`` (float64 CPU; NaN once an element has stopped).

    Raises:
        NumericalError: when messages become non-finite.
    """
    h, batched = _as_fields(model, fields)
    B, n = h.shape
    dtype, device = model.dtype, model.device
    if messages is None:
        M = torch.zeros(B, n, n, dtype=dtype, device=device)
    else:
        M0 = torch.as_tensor(messages, dtype=dtype, device=device)
        if M0.shape == (n, n):
            M0 = M0.expand(B, n, n)
        if M0.shape != (B, n, n):
            raise ConfigError(
                f"messages have shape {tuple(M0.shape)}; expected [B, N, N] = [{B}, {n}, {n}]"
            )
        M = M0.clone()
        M.diagonal(dim1=1, dim2=2).zero_()
        check_messages(M)
    return _solve(_Kernel(model.J), _Workspace(B, n, dtype, device), h, config, M, batched)


def _solve(
    kern: _Kernel, ws: _Workspace, h: torch.Tensor, config: BetheConfig, M, batched, damping=None
):
    """The loop of :func:`bethe_solve` on a prepared kernel and workspace (reused by sweeps).

    ``M`` ``[B, N, N]`` is updated in place. ``damping`` (adaptive mode only): a float64 array
    ``[B]`` with each element's starting damping instead of ``config.damping``, overwritten with
    the damping each element had adapted to when it stopped (continuation across tilts).
    """
    B, n = h.shape
    dtype, device = h.dtype, h.device
    d0 = float(config.damping)
    scale = 1.0 if config.criterion == "max_residual" else 1.0 - d0
    use_max = config.criterion != "mean_change"
    adaptive = config.accel in ("adaptive", "adaptive+anderson")
    hybrid = config.accel == "adaptive+anderson"
    # the mixer's 2·history + 2 buffers [B, N²] are made only when some element mixes (fresh
    # buffers page-fault: made at every tilt they would cost more than the sweeps they save)
    mixer = None
    if config.accel == "anderson":
        mixer = AndersonMixer(B, n * n, config.history, dtype, device)
    engaged = np.full(B, config.accel == "anderson")  # elements whose steps Anderson mixes
    slow_run = np.zeros(B, dtype=np.int64)  # consecutive slow sweeps (adaptive+anderson)
    # Bookkeeping on the host in NumPy (one device→host copy of the criterion per sweep).
    iters = np.zeros(B, dtype=np.int64)
    last = np.full(B, math.nan)
    conv = np.zeros(B, dtype=bool)
    trace = []
    active = np.arange(B)  # batch elements still iterating (rows of M)
    ha = h
    damp = np.full(B, d0) if damping is None or not adaptive else damping.astype(np.float64)
    prev = np.full(B, math.inf)
    out_M = None
    step_d, step = None, None
    for it in range(config.max_iter):
        b = M.shape[0]
        mixing = mixer is not None and bool(engaged.any())
        if not mixing and (step_d is None or not np.array_equal(step_d, damp)):
            step_d = damp  # (1 - d) as a tensor only when it changed
            step = torch.from_numpy(1.0 - damp).to(dtype=dtype, device=device)[:, None, None]
        stats = []  # per chunk: [k, elements] (max R, min R or mean |R|; ‖R‖₂ when mixing)
        for e0, e1 in kern.chunks(b):  # chunk by chunk, each while its arrays are in cache
            # M - F(M); kept whole in ws.A[:b] for the mixer, else each chunk reuses ws.A's head
            negR = kern.residual(ha[e0:e1], M[e0:e1], ws, e0 if mixing else 0)
            if not mixing:  # damped step M + (1 - d)(F(M) - M)
                M[e0:e1].addcmul_(negR, step[e0:e1], value=-1.0)
            if n > 1:
                flat = negR.view(e1 - e0, -1)
                if use_max:  # max |R| = max(max R, -min R): two read-only passes, no |R| buffer
                    rows = [flat.amax(1), flat.amin(1)]
                else:
                    rows = [flat.abs().mean(1)]
                if mixing:
                    rows.append(torch.linalg.vector_norm(flat, dim=1))
                stats.append(torch.stack(rows))
        negR = ws.A[:b]  # M - F(M) of the whole batch (when mixing)
        norms = None
        if n > 1:
            host = (stats[0] if len(stats) == 1 else torch.cat(stats, 1)).to(torch.float64)
            host = host.cpu().numpy()
            crit = (np.maximum(host[0], -host[1]) if use_max else host[0]) * scale
            norms = host[-1]
        else:
            crit = np.zeros(b)
        if not np.isfinite(crit).all():
            raise NumericalError("BP messages became non-finite; check J and h for huge values")
        if mixing and n > 1:  # Anderson step of the engaged elements; the others (and those that
            # stop now) take their damped step
            stop = (crit < config.tol) | (it == config.max_iter - 1)
            fallback = np.where(engaged, d0, damp)
            mixer.step(M.view(b, -1), negR.view(b, -1).neg_(), norms, fallback, stop | ~engaged)
        if hybrid and not engaged.all():  # adaptive+anderson: engage slow elements
            slow_run = np.where(crit >= ANDERSON_ENGAGE_RATIO * prev, slow_run + 1, 0)
            start = ~engaged & (slow_run >= ANDERSON_ENGAGE_SWEEPS)
            if start.any():
                if mixer is None:
                    mixer = AndersonMixer(b, n * n, config.history, dtype, device)
                else:
                    mixer.reset(start)
                engaged = engaged | start
        if adaptive:
            damp = np.where(
                crit < prev,
                np.maximum(damp - ADAPT_STEP, config.min_damping),
                np.maximum(np.minimum(0.5 * (1.0 + damp), ADAPT_MAX_DAMPING), d0),
            )
            prev = crit
        row = np.full(B, math.nan)
        row[active] = crit
        trace.append(row)
        iters[active] += 1
        last[active] = crit
        done = crit < config.tol
        if it == config.max_iter - 1:
            done[:] = True
        if done.any():
            conv[active[done]] = crit[done] < config.tol
            if damping is not None and adaptive:
                damping[active[done]] = damp[done]
            if done.all() and out_M is None:  # all at once: no copy
                out_M = M
                break
            if out_M is None:
                out_M = torch.empty_like(M)
            dsel = torch.from_numpy(done.nonzero()[0]).to(device)
            out_M[torch.from_numpy(active[done]).to(device)] = M[dsel]
            if done.all():
                break
            keep = ~done
            ksel = torch.from_numpy(keep.nonzero()[0]).to(device)
            M, ha = M[ksel], ha[ksel]
            if mixer is not None:
                mixer.keep(ksel, keep)
            engaged, slow_run = engaged[keep], slow_run[keep]
            active, damp, prev = active[keep], damp[keep], prev[keep]
    m, H, fe, en = kern.thermodynamics(h, out_M, ws)
    result = BetheResult(
        m=m,
        fields=H,
        free_entropy=fe,
        energy=en,
        entropy=fe + en,
        converged=torch.from_numpy(conv),
        iterations=torch.from_numpy(iters),
        residual=torch.from_numpy(last),
    )
    tr = torch.from_numpy(np.stack(trace)) if trace else torch.zeros(0, B, dtype=torch.float64)
    return (out_M if batched else out_M[0]), result, tr
