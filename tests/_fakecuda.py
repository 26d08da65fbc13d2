"""A CUDA stand-in for CPU-only machines: tensors that say they live on ``cuda:0``.

No session of this project has had a GPU, so the ``--device cuda`` code paths are checked here by
emulation. Inside :func:`fake_cuda`:

- ``torch.cuda.is_available()`` is True, so ``Precision(device="cuda")`` validates;
- factory calls and ``.to``/``.cuda`` with a CUDA device return :class:`FakeCudaTensor`: CPU data
  (real numerics) in a wrapper whose ``.device`` is ``cuda:0``;
- every ATen op checks the devices of its tensor arguments with CUDA's rules and raises where a real
  GPU would: a CUDA tensor combined with a CPU tensor of dimension > 0 (CPU 0-d tensors are allowed,
  as on CUDA), a CPU tensor indexed by CUDA indices, ``.numpy()`` / ``np.asarray`` of a CUDA
  tensor, a CPU ``torch.Generator`` used to sample a CUDA tensor (or a CUDA one for a CPU tensor);
- ``torch.Generator(device="cuda")`` returns a CPU generator marked as CUDA (its stream differs from
  a real GPU's, which no test relies on);
- every host-device synchronisation (``.item()``, ``float(t)``, ``bool(t)``, ``.tolist()``, the
  copy of a CUDA tensor to the CPU) is counted per call site in the ``weightscape`` package
  (:attr:`FakeCuda.syncs`), so a test can bound the syncs of a hot loop.

Only the device bookkeeping is emulated; the numbers are the CPU's. How it works and its limits:

- the wrapper's C++ side names the CPU (so autograd's device guards exist in a CPU-only build) and
  its Python ``.device`` says cuda:0; ATen ops on it reach ``__torch_dispatch__``, which checks the
  devices and runs the op on the wrapped CPU tensor;
- C++ code (autograd, forward-mode AD, ``torch.func`` batching rules) makes helper tensors from
  the wrapper's options, i.e. plain CPU tensors; so a plain CPU tensor counts as "on the CPU" only
  when Python code inside the mode made it (a factory call without ``device=``, ``.cpu()``,
  ``torch.from_numpy``...) or it is a view of one. A CPU tensor made before the mode was entered
  (e.g. a module-level constant) is not flagged;
- sync counts inside ``torch.func`` transforms include reads that C++ makes of scalars it wrapped
  (not syncs on a real GPU): bound syncs only outside transforms;
- not emulated: CUDA's numerics (cuBLAS summation order, TF32), memory limits, streams, CUDA's
  random streams.
"""

from __future__ import annotations

import contextlib
import traceback
import weakref
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

CUDA = torch.device("cuda", 0)
_CPU = torch.device("cpu")
_BACKEND = torch.device("cpu")
_ATEN = torch.ops.aten

# ops that may legitimately read or write across devices
_CROSS_DEVICE = {_ATEN._to_copy.default, _ATEN.copy_.default, _ATEN.copy.default}
_SYNC_OPS = {_ATEN._local_scalar_dense.default, _ATEN.is_nonzero.default}


# CPU tensors returned to Python code by a torch function inside the mode
_USER_CPU: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> tensor


class DeviceMismatch(RuntimeError):
    """Raised where CUDA would raise a device error."""


def _caller() -> str:
    """``file:line`` of the innermost frame in the weightscape package (else the test's)."""
    frames = traceback.extract_stack()[:-2]
    for fr in reversed(frames):
        if "/weightscape/" in fr.filename and "/tests/" not in fr.filename:
            return f"{fr.filename.split('/src/')[-1]}:{fr.lineno}"
    for fr in reversed(frames):
        if "_fakecuda" not in fr.filename and "/torch/" not in fr.filename:
            return f"{fr.filename.split('/')[-1]}:{fr.lineno}"
    return "?"


class FakeCudaTensor(torch.Tensor):
    """CPU data that reports ``device == cuda:0`` and obeys CUDA's device rules."""

    _inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        assert inner.device.type == "cpu" and not isinstance(inner, FakeCudaTensor), (
            type(inner),
            inner.device,
        )
        return torch.Tensor._make_wrapper_subclass(
            cls,
            inner.size(),
            strides=inner.stride(),
            storage_offset=inner.storage_offset(),
            dtype=inner.dtype,
            layout=inner.layout,
            device=_BACKEND,
            requires_grad=inner.requires_grad,
        )

    # torch's C++ side (autograd's device guards) sees the meta device, which exists in every
    # build; Python code sees cuda:0.
    @property
    def device(self):
        return CUDA

    @property
    def is_cuda(self):
        return True

    @property
    def is_cpu(self):
        return False

    def __init__(self, inner: torch.Tensor):
        self._inner = inner

    def __repr__(self, *, tensor_contents=None):
        return f"FakeCudaTensor({self._inner!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = pytree.tree_leaves((args, kwargs))
        fake = [a for a in flat if isinstance(a, FakeCudaTensor)]
        plain = [
            a for a in flat if isinstance(a, torch.Tensor) and not isinstance(a, FakeCudaTensor)
        ]
        if _STATE.active is not None:
            _STATE.active.device_ops += 1
        if func in _SYNC_OPS and _STATE.active is not None:
            _STATE.active.syncs[_caller()] += 1
        if func not in _CROSS_DEVICE:
            _check_mix(func, args, fake, plain)
        to_cpu = False
        if func in (_ATEN._to_copy.default,):
            dev = kwargs.get("device")
            if dev is not None and torch.device(dev).type == "cpu":
                to_cpu = True
                if _STATE.active is not None:
                    _STATE.active.syncs[_caller()] += 1
            kwargs = {**kwargs, "device": _CPU} if dev is not None else kwargs
        gen = kwargs.get("generator")
        if gen is not None:
            _check_generator(gen, CUDA)
        un = pytree.tree_map_only(FakeCudaTensor, lambda t: t._inner, (args, kwargs))
        out = func(*un[0], **un[1])
        if to_cpu:
            return out
        # in-place ops and out= variants return their (wrapped) argument
        if func._schema.is_mutable and isinstance(args[0], FakeCudaTensor):
            if isinstance(out, torch.Tensor) and out is un[0][0]:
                return args[0]
        return pytree.tree_map_only(
            torch.Tensor,
            lambda t: t if isinstance(t, FakeCudaTensor) or t.is_meta else FakeCudaTensor(t),
            out,
        )


def _made_by_user(t: torch.Tensor) -> bool:
    """A CPU tensor the Python code made, or a view of one (forward AD's duals are views)."""
    while t is not None:
        if id(t) in _USER_CPU:
            return True
        t = t._base
    return False


def _check_mix(func, args, fake, plain):
    if not fake:
        return
    # 0-d CPU tensors are allowed (as on CUDA); autograd's "efficient zero" tangents are made by
    # C++ from the wrapper's options, which name the CPU backend, so they are not the user's
    # (forward-mode tangents of non-dual inputs are such zeros): a CPU tensor of zeros counts
    # only when the user's code made it (it went through a torch function in the mode)
    bad = [
        t
        for t in plain
        if t.dim() > 0 and not t._is_zerotensor() and not t.is_meta and _made_by_user(t)
    ]
    if not bad:
        return
    name = func.__name__ if hasattr(func, "__name__") else str(func)
    if func in (_ATEN.index.Tensor, _ATEN.index_put_.default, _ATEN.index_put.default):
        # a CUDA tensor may be indexed by CPU indices; a CPU tensor not by CUDA ones
        self_ = args[0]
        values_ok = func is _ATEN.index.Tensor or not (
            isinstance(args[2], torch.Tensor)
            and not isinstance(args[2], FakeCudaTensor)
            and args[2].dim() > 0
        )
        if isinstance(self_, FakeCudaTensor) and values_ok:
            return
    raise DeviceMismatch(
        f"{name}: expected all tensors on the same device, found cuda:0 and cpu "
        f"(cpu shapes {[tuple(t.shape) for t in bad]}) at {_caller()}"
    )


# generators claimed to be on CUDA (ids of CPU generators made by the patched torch.Generator)
_CUDA_GENERATORS: dict[int, torch.Generator] = {}


def _gen_device(g: torch.Generator) -> torch.device:
    return CUDA if id(g) in _CUDA_GENERATORS else g.device


def _check_generator(g, target: torch.device):
    if _gen_device(g).type != target.type:
        raise DeviceMismatch(
            f"Expected a '{target.type}' device type for generator but found "
            f"'{_gen_device(g).type}' at {_caller()}"
        )


_FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.eye, torch.randn,
    torch.rand, torch.randint, torch.randperm, torch.tensor, torch.as_tensor, torch.linspace,
    torch.logspace, torch.empty_strided, torch.normal, torch.zeros_like, torch.ones_like,
    torch.empty_like, torch.full_like, torch.rand_like, torch.randn_like, torch.randint_like,
    torch.tril_indices, torch.triu_indices, torch.scalar_tensor, torch.bernoulli, torch.multinomial,
}  # fmt: skip
_RANDOM = {
    torch.randn, torch.rand, torch.randint, torch.randperm, torch.normal, torch.bernoulli,
    torch.multinomial, torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.random_,
    torch.Tensor.bernoulli_, torch.Tensor.exponential_, torch.Tensor.geometric_,
    torch.Tensor.cauchy_, torch.Tensor.log_normal_, torch.rand_like, torch.randn_like,
    torch.randint_like,
}  # fmt: skip


_SCALAR_METHODS = {
    torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__int__,
    torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.__complex__,
}  # fmt: skip


def _is_cuda(dev) -> bool:
    if dev is None:
        return False
    if isinstance(dev, int):
        return True
    return torch.device(dev).type == "cuda"


def _wrap(x):
    return pytree.tree_map_only(
        torch.Tensor,
        lambda t: (
            t
            if isinstance(t, FakeCudaTensor)
            else FakeCudaTensor(t.detach()).requires_grad_(t.requires_grad)
            if t.requires_grad and t.is_leaf
            else FakeCudaTensor(t)
        ),
        x,
    )


def _user(t):
    _USER_CPU[id(t)] = t
    return t


class _State:
    active: FakeCuda | None = None


_STATE = _State()


class FakeCuda(TorchFunctionMode):
    """The emulation mode; use through :func:`fake_cuda`."""

    def __init__(self):
        super().__init__()
        self.syncs: Counter[str] = Counter()
        self.device_ops = 0  # ATen ops run on (emulated) CUDA tensors

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        gen = kwargs.get("generator")
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and isinstance(
            args[0], FakeCudaTensor
        ):
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                f"tensor to host memory first. (at {_caller()})"
            )
        if func in _SCALAR_METHODS and args and isinstance(args[0], FakeCudaTensor):
            self.syncs[_caller()] += 1
            with torch._C.DisableTorchFunction():
                return func(args[0]._inner.detach(), *args[1:], **kwargs)
        if func in _FACTORIES and _is_cuda(kwargs.get("device")):
            kwargs["device"] = _CPU
            if gen is not None:
                _check_generator(gen, CUDA)
            if func in (torch.tensor, torch.as_tensor) and isinstance(args[0], FakeCudaTensor):
                args = (args[0]._inner, *args[1:])
            out = func(*args, **kwargs)
            return _wrap(out)
        if func in _RANDOM and gen is not None and "device" not in kwargs:
            ref = [a for a in pytree.tree_leaves(args) if isinstance(a, torch.Tensor)]
            target = CUDA if any(isinstance(a, FakeCudaTensor) for a in ref) else _CPU
            _check_generator(gen, target)
        if func in _FACTORIES and gen is not None and "device" in kwargs:
            _check_generator(gen, torch.device(kwargs["device"]))
        if func is torch.Tensor.cpu and isinstance(args[0], FakeCudaTensor):
            self.syncs[_caller()] += 1
            return _user(args[0]._inner)
        if func in (torch.tensor, torch.as_tensor) and args and isinstance(args[0], FakeCudaTensor):
            dev = kwargs.get("device")
            if dev is not None and not _is_cuda(dev):
                self.syncs[_caller()] += 1
                return _user(func(args[0]._inner, *args[1:], **kwargs))
        if func in (torch.Tensor.to, torch.Tensor.cuda):
            t = args[0]
            if func is torch.Tensor.cuda:
                dev, dtype, copy = CUDA, None, False
            else:
                # Tensor.to's own parser: (device, dtype, non_blocking, memory_format); for
                # .to(other) the device is other's as Python sees it (C++ sees the CPU backend)
                dev, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
                other = [a for a in (*args[1:], kwargs.get("other")) if isinstance(a, torch.Tensor)]
                if other:
                    dev, dtype = other[0].device, other[0].dtype
                copy = bool(kwargs.get("copy", False))
            if dev is not None and dev.type == "cpu" and isinstance(t, FakeCudaTensor):
                self.syncs[_caller()] += 1
                inner = t._inner if dtype is None else t._inner.to(dtype)
                return _user(inner.clone() if copy and inner is t._inner else inner)
            if dev is not None and dev.type == "cuda":
                inner = t._inner if isinstance(t, FakeCudaTensor) else t
                out = inner if dtype is None else inner.to(dtype)
                if isinstance(t, FakeCudaTensor) and out is inner and not copy:
                    return t
                if out is t:  # a host-to-device copy is a new tensor
                    out = out.detach().clone()
                return _wrap(out)
        out = func(*args, **kwargs)
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and not isinstance(t, FakeCudaTensor):
                _USER_CPU[id(t)] = t
        return out


class _GeneratorMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, _REAL_GENERATOR)


class _FakeGenerator(metaclass=_GeneratorMeta):
    """``torch.Generator`` replacement: ``device="cuda"`` gives a CPU generator marked as CUDA."""

    def __new__(cls, device="cpu"):
        if _is_cuda(device):
            g = _REAL_GENERATOR("cpu")
            _CUDA_GENERATORS[id(g)] = g
            return g
        return _REAL_GENERATOR(device)


_REAL_GENERATOR = torch.Generator


@contextlib.contextmanager
def fake_cuda():
    """Run the body with an emulated ``cuda:0`` (see the module docstring); yields the mode."""
    mode = FakeCuda()
    names = ("is_available", "device_count", "synchronize", "reset_peak_memory_stats",
             "memory_allocated", "max_memory_allocated", "empty_cache")  # fmt: skip
    saved = {n: getattr(torch.cuda, n) for n in names}
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
    torch.cuda.memory_allocated = lambda *a, **k: 0
    torch.cuda.max_memory_allocated = lambda *a, **k: 0
    torch.cuda.empty_cache = lambda: None
    torch.Generator = _FakeGenerator
    # nn.Module.to: ``param.data = fake`` would drop the wrapper; a new Parameter keeps it
    shallow = torch._has_compatible_shallow_copy_type

    def _shallow(input: torch.Tensor, from_: torch.Tensor) -> bool:  # (torch's argument names)
        fake = isinstance(input, FakeCudaTensor) or isinstance(from_, FakeCudaTensor)
        return not fake and shallow(input, from_)

    torch._has_compatible_shallow_copy_type = _shallow
    _STATE.active = mode
    try:
        with mode:
            yield mode
    finally:
        _STATE.active = None
        torch.Generator = _REAL_GENERATOR
        torch._has_compatible_shallow_copy_type = shallow
        for n, f in saved.items():
            setattr(torch.cuda, n, f)
        _CUDA_GENERATORS.clear()


def to_cpu(x):
    """Plain CPU tensors from (nested) fake-CUDA ones."""
    return pytree.tree_map_only(FakeCudaTensor, lambda t: t._inner, x)


__all__ = ["CUDA", "DeviceMismatch", "FakeCuda", "FakeCudaTensor", "fake_cuda", "to_cpu"]
