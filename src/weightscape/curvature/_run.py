"""Spectra of a finished training run: read the run directory, write ``hessian.npz`` + ``.json``.

The run directory is the training CLI's (see :class:`weightscape.store.RunDir`): ``config.json``
and ``arrays.npz`` with the ensemble parameters ``param_0 .. param_k`` and the members' specs as a
JSON string (:meth:`weightscape.nets.Ensemble.state_arrays` / ``specs_json``). The training data
are read from ``arrays.npz`` (``x_train``/``y_train`` or ``x``/``y``) when stored there, else
rebuilt from the data recipe in ``config.json`` with :func:`weightscape.data.load`. A different
layout plugs in through ``loader(run_dir) -> RunInputs``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._atomic import null_as_nan
from ..errors import ConfigError, RunDirError, WeightscapeError
from ..nets import Ensemble
from ..store import RunDir, provenance, write_json, write_npz
from ..train.losses import Loss
from ._dense import hessian_split
from ._problem import resolve_loss
from ._spectrum import DEFAULT_RTOL, log_volume

__all__ = ["HESSIAN_JSON", "HESSIAN_NPZ", "RunInputs", "load_run_inputs", "run_hessian"]

HESSIAN_NPZ = "hessian.npz"
HESSIAN_JSON = "hessian.json"

_SPEC_KEYS = ("specs_json", "specs", "ensemble_specs")
_DATA_KEYS = (("x_train", "y_train"), ("x", "y"))


@dataclass(frozen=True)
class RunInputs:
    """What the Hessian of a run needs: the trained ensemble, its training data and loss.

    Attributes:
        ensemble: the final parameters.
        x: training inputs ``[P, d]`` or ``[M, P, d_max]``.
        y: labels ``[P]`` or ``[M, P]``.
        loss: the training loss.
        l2: the L2 coefficient of the training objective (added to ``H``).
    """

    ensemble: Ensemble
    x: torch.Tensor
    y: torch.Tensor
    loss: Loss
    l2: float = 0.0


def _find(d: dict, keys: Sequence[str]):
    """First of ``keys`` in ``d`` or in its nested ``config``/``train`` dicts."""
    for scope in (d, d.get("config") or {}, (d.get("config") or {}).get("train") or {}):
        if isinstance(scope, dict):
            for k in keys:
                if k in scope:
                    return scope[k]
    return None


def load_run_inputs(run_dir: str | Path) -> RunInputs:
    """Default loader of a training run directory (layout in the module docstring)."""
    rd = RunDir.open(run_dir)
    if not (rd.path / "arrays.npz").exists():
        raise RunDirError(f"run directory {str(rd.path)!r} has no arrays.npz")
    arrays = rd.read_arrays()
    cfg = rd.read_config() if (rd.path / "config.json").exists() else {}
    specs = next((arrays[k] for k in _SPEC_KEYS if k in arrays), None)
    if specs is None:
        specs = _find(cfg, _SPEC_KEYS)
    if specs is None:
        raise RunDirError(
            f"run {str(rd.path)!r}: no member specs (looked for {list(_SPEC_KEYS)} in arrays.npz "
            "and config.json)"
        )
    specs = specs if isinstance(specs, str) else str(np.asarray(specs).item())
    if not json.loads(specs).get("specs"):
        raise RunDirError(f"run {str(rd.path)!r}: the member specs are empty")
    params = {k: v for k, v in arrays.items() if k.startswith("param_")}
    if not params:
        raise RunDirError(f"run {str(rd.path)!r}: arrays.npz holds no param_0 .. param_k")
    try:
        ens = Ensemble.from_arrays(specs, params)
    except (ConfigError, TypeError, KeyError) as err:
        raise RunDirError(f"run {str(rd.path)!r}: cannot rebuild the ensemble ({err})") from None
    x = y = None
    for kx, ky in _DATA_KEYS:
        if kx in arrays and ky in arrays:
            x, y = torch.as_tensor(arrays[kx]), torch.as_tensor(arrays[ky])
            break
    if x is None:
        recipe = _find(cfg, ("data",))
        if not isinstance(recipe, dict) or "name" not in recipe:
            raise RunDirError(
                f"run {str(rd.path)!r}: no training data in arrays.npz and no data recipe "
                "(a dict with 'name') in config.json"
            )
        from ..data import load

        opts = {k: v for k, v in recipe.items() if k != "name"}
        ds = load(recipe["name"], **opts)
        x, y = torch.as_tensor(np.asarray(ds.x)), torch.as_tensor(np.asarray(ds.y))
    x = x.to(ens.dtype)
    if y.is_floating_point():
        y = y.to(ens.dtype)
    name = _find(cfg, ("loss",)) or "quadratic_hinge"
    opts = _find(cfg, ("loss_options",)) or {}
    try:
        from ..train.losses import get_loss

        loss = get_loss(name, **opts)
    except ConfigError as err:
        raise RunDirError(f"run {str(rd.path)!r}: {err}") from None
    l2 = float(_find(cfg, ("l2",)) or 0.0)
    return RunInputs(ens, x, y, loss, l2)


def _parse_members(members, M: int) -> list[int]:
    if members is None:
        return list(range(M))
    out = sorted({int(m) for m in members})
    bad = [m for m in out if not 0 <= m < M]
    if bad:
        raise ConfigError(f"members {bad} are out of range; the run has members 0..{M - 1}")
    return out


def run_hessian(
    run_dir: str | Path,
    *,
    members: Sequence[int] | None = None,
    loader: Callable[[Path], RunInputs] | None = None,
    memory_budget: int | None = None,
    method: str = "auto",
    rtol: float = DEFAULT_RTOL,
    log_cutoff: float | None = None,
) -> dict:
    """Add Hessian spectra of some members of a finished run to ``RUN/hessian.{npz,json}``.

    ``hessian.npz`` holds ``eigs_H0_<m>``, ``eigs_Hp_<m>``, ``eigs_H_<m>`` (ascending) and
    ``n_unsat_<m>`` for every member m computed so far; ``hessian.json`` their summaries
    (:meth:`HessianSplit.summary`, compute time, dtype, log-volume over eigenvalues above
    ``log_cutoff``, default ``1e3 · rtol · max λ``). Members computed before are kept; those
    asked again are replaced. Both files are written atomically, after everything is validated
    and computed.

    Returns:
        The JSON payload written.
    """
    path = Path(run_dir)
    try:
        inputs = (loader or load_run_inputs)(path)
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, WeightscapeError):
            raise
        raise RunDirError(f"cannot read run {str(path)!r}: {err}") from None
    idx = _parse_members(members, inputs.ensemble.M)
    loss = resolve_loss(inputs.loss)
    old_npz, old_json = {}, {"members": {}}
    if (path / HESSIAN_NPZ).exists() and (path / HESSIAN_JSON).exists():
        with np.load(path / HESSIAN_NPZ, allow_pickle=False) as z:
            old_npz = {k: z[k] for k in z.files}
        old_json = json.loads((path / HESSIAN_JSON).read_text())
    arrays = dict(old_npz)
    # JSON writes NaN as null: NaN again, as in the members computed now
    summaries = {k: null_as_nan(v) for k, v in old_json.get("members", {}).items()}
    for m in idx:
        t0 = time.perf_counter()
        split = hessian_split(
            inputs.ensemble,
            inputs.x,
            inputs.y,
            loss,
            members=[m],
            memory_budget=memory_budget,
            method=method,
            l2=inputs.l2,
            rtol=rtol,
        )[0]
        seconds = time.perf_counter() - t0
        for name in ("H0", "Hp", "H"):
            arrays[f"eigs_{name}_{m}"] = getattr(split, f"eigs_{name}").cpu().numpy()
        arrays[f"n_unsat_{m}"] = np.asarray(split.n_unsat)
        s = split.summary()
        eh = split.eigs_H
        cutoff = log_cutoff if log_cutoff is not None else 1e3 * rtol * float(eh.abs().max())
        s["log_volume"] = log_volume(eh, cutoff) if cutoff > 0 else 0.0
        s["log_volume_cutoff"] = cutoff
        s["seconds"] = seconds
        s["dtype"] = str(eh.dtype).removeprefix("torch.")  # per member: kept members keep theirs
        summaries[str(m)] = s
    done = sorted(int(k) for k in summaries)
    arrays["members"] = np.asarray(done, dtype=np.int64)
    payload = {
        "members": {str(k): summaries[str(k)] for k in done},
        "loss": loss.name,
        "method": method,
        "rtol": rtol,
        "provenance": provenance(str(inputs.ensemble.device)),
    }
    write_npz(path / HESSIAN_NPZ, **arrays)
    write_json(path / HESSIAN_JSON, payload)
    return payload
