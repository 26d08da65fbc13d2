"""The :class:`Dataset` container: arrays, task, class names and a JSON-serialisable provenance."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import torch

from ..config import resolve_device, resolve_dtype
from ..errors import DatasetError

__all__ = ["TASKS", "Dataset", "TensorData", "describe"]

TASKS = ("binary", "multiclass", "regression")


class TensorData(NamedTuple):
    """A :class:`Dataset` as torch tensors; ``x_test``/``y_test`` are None without a test set."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None


def _frozen_view(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the caller's array keeps its own flags)."""
    v = a.view()
    v.setflags(write=False)
    return v


@dataclass(frozen=True, eq=False)
class Dataset:
    """A supervised data set, float64 inputs.

    Attributes:
        x: inputs ``[P, d]``, float64.
        y: labels ``[P]``: float64 ±1 for ``task="binary"``, int64 class ids ``0..K-1`` for
            ``"multiclass"``, float64 targets for ``"regression"``.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        name: registry name of the source (``"mnist"``, ``"random"``, ...).
        classes: class names; for ``"binary"`` the names of label −1 and +1 (in that order), for
            ``"multiclass"`` the name of each class id, empty for ``"regression"``.
        class_ids: for ``"multiclass"``, the source's class id of each label ``0..K-1`` (e.g. the
            digit after a class subset, used by :func:`parity_labels`); None otherwise.
        x_test: test inputs ``[P_test, d]`` or None.
        y_test: test labels ``[P_test]`` or None.
        provenance: JSON-serialisable dict: ``source`` (files, package versions, hashes),
            ``options`` (every option and seed), ``transforms`` (applied, in order).

    The arrays are stored as read-only views; transforms return new datasets.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    name: str
    classes: tuple[str, ...] = ()
    class_ids: tuple[int, ...] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise DatasetError(f"task={self.task!r} is not allowed; choose one of {list(TASKS)}")
        set_ = object.__setattr__
        set_(self, "classes", tuple(str(c) for c in self.classes))
        if self.class_ids is not None:
            set_(self, "class_ids", tuple(int(c) for c in self.class_ids))
        for xs, ys, part in ((self.x, self.y, "train"), (self.x_test, self.y_test, "test")):
            if (xs is None) != (ys is None):
                raise DatasetError(f"{part} inputs and labels must be given together")
            if xs is None:
                continue
            self._check_part(xs, ys, part)
        if self.x_test is not None and self.x_test.shape[1] != self.x.shape[1]:
            raise DatasetError(f"x_test has d={self.x_test.shape[1]} but x has d={self.x.shape[1]}")
        for name in ("x", "y", "x_test", "y_test"):
            a = getattr(self, name)
            if a is not None:
                set_(self, name, _frozen_view(a))
        try:
            json.dumps(self.provenance, allow_nan=True)
        except (TypeError, ValueError) as err:
            raise DatasetError(f"provenance is not JSON-serialisable: {err}") from None
        set_(self, "provenance", copy.deepcopy(self.provenance))

    def _check_part(self, xs: np.ndarray, ys: np.ndarray, part: str) -> None:
        if not isinstance(xs, np.ndarray) or xs.ndim != 2 or xs.dtype != np.float64:
            raise DatasetError(f"{part} inputs must be a float64 array [P, d], got {_desc(xs)}")
        if not isinstance(ys, np.ndarray) or ys.shape != (xs.shape[0],):
            raise DatasetError(f"{part} labels must be an array [{xs.shape[0]}], got {_desc(ys)}")
        if self.task == "multiclass":
            if ys.dtype != np.int64:
                raise DatasetError(f"multiclass {part} labels must be int64, got {ys.dtype}")
            if ys.size and (ys.min() < 0 or ys.max() >= len(self.classes)):
                raise DatasetError(
                    f"multiclass {part} labels must lie in 0..{len(self.classes) - 1}"
                )
        else:
            if ys.dtype != np.float64:
                raise DatasetError(f"{self.task} {part} labels must be float64, got {ys.dtype}")
            if self.task == "binary" and not np.all(np.abs(ys) == 1.0):
                raise DatasetError(f"binary {part} labels must be ±1")

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def P(self) -> int:
        """Number of training points."""
        return int(self.x.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.x.shape[1])

    @property
    def n_test(self) -> int:
        """Number of test points (0 without a test set)."""
        return 0 if self.x_test is None else int(self.x_test.shape[0])

    # -- conversions ----------------------------------------------------------------------------
    def to_torch(self, dtype: torch.dtype | str = torch.float64, device="cpu") -> TensorData:
        """The arrays as tensors: inputs and real labels in ``dtype``, class ids as int64.

        ``dtype`` and ``device`` accept what :class:`weightscape.config.Precision` does
        (``"float64"``, ``"cuda"``, ``"auto"``, ...).

        Returns:
            :class:`TensorData` ``(x [P, d], y [P], x_test [P_test, d] | None, y_test | None)``.
        """
        dtype, device = resolve_dtype(dtype), resolve_device(device)
        ydtype = torch.int64 if self.task == "multiclass" else dtype

        def conv(a, dt):
            return None if a is None else torch.tensor(a, dtype=dt, device=device)

        return TensorData(
            conv(self.x, dtype),
            conv(self.y, ydtype),
            conv(self.x_test, dtype),
            conv(self.y_test, ydtype),
        )

    def with_transform(self, record: dict, **changes) -> Dataset:
        """A copy with ``changes`` applied and ``record`` appended to the provenance transforms."""
        prov = copy.deepcopy(self.provenance)
        prov.setdefault("transforms", []).append(record)
        return replace(self, provenance=prov, **changes)

    def __repr__(self) -> str:
        test = f", n_test={self.n_test}" if self.x_test is not None else ""
        return f"Dataset(name={self.name!r}, task={self.task!r}, P={self.P}, d={self.d}{test})"


def _desc(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {list(a.shape)}"
    return type(a).__name__


def _label_counts(ds: Dataset, y: np.ndarray) -> dict[str, int]:
    if ds.task == "binary":
        return {ds.classes[0]: int(np.sum(y < 0)), ds.classes[1]: int(np.sum(y > 0))}
    counts = np.bincount(y, minlength=len(ds.classes))
    return {name: int(c) for name, c in zip(ds.classes, counts, strict=True)}


def _stats(x: np.ndarray) -> dict:
    norms = np.linalg.norm(x, axis=1)
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "max": float(x.max()),
        "norm_min": float(norms.min()),
        "norm_mean": float(norms.mean()),
        "norm_max": float(norms.max()),
    }


def describe(ds: Dataset) -> dict:
    """Shapes, class counts and input statistics of a data set, as a JSON-serialisable dict.

    ``x_stats``: mean, std, min, max over all entries of ``x`` and min/mean/max of the per-sample
    Euclidean norm ``||x_μ||``; ``y_stats`` (regression only) the same moments of ``y``.
    """
    out = {
        "name": ds.name,
        "task": ds.task,
        "P": ds.P,
        "d": ds.d,
        "n_test": ds.n_test,
        "classes": list(ds.classes),
    }
    parts = [("train", ds.x, ds.y)]
    if ds.x_test is not None:
        parts.append(("test", ds.x_test, ds.y_test))
    for part, xs, ys in parts:
        if xs.shape[0] == 0:
            continue
        out[f"{part}_x_stats"] = _stats(xs)
        if ds.task == "regression":
            out[f"{part}_y_stats"] = {
                "mean": float(ys.mean()),
                "std": float(ys.std()),
                "min": float(ys.min()),
                "max": float(ys.max()),
            }
        else:
            out[f"{part}_counts"] = _label_counts(ds, ys)
    return out
