"""Checkpoints of a training run: one ``.npz`` (arrays) + one ``.json`` (scalars, config).

Everything needed to continue bitwise: parameters, optimizer and schedule state, per-member
flags, the metric buffers, the step, and the minibatch generator's state. No pickle. The ``.npz``
is written first and the ``.json`` (which names the step of its ``.npz``) last, both atomically,
so a crash between the two is detected on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, RunDirError
from ..store import write_json, write_npz

__all__ = ["checkpoint_files", "load_checkpoint", "save_checkpoint"]

VERSION = 1


def checkpoint_files(path: str | Path) -> tuple[Path, Path]:
    """``(npz, json)`` file names of a checkpoint path (any suffix is replaced)."""
    path = Path(path)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def _normalise(cfg_dict: dict) -> dict:
    return json.loads(json.dumps(cfg_dict, sort_keys=True, default=list))


def save_checkpoint(path, cfg, *, step, mi, params, opt, sched, sampler, **arrays) -> None:
    npz, js = checkpoint_files(path)
    # write_npz copies tensors (any device) to the host
    out = {f"param_{i}": p for i, p in enumerate(params)}
    scalars = {}
    for prefix, state in (("opt", opt), ("sched", sched)):
        for k, v in state.items():
            if isinstance(v, int):
                scalars[f"{prefix}.{k}"] = v
            else:
                out[f"{prefix}.{k}"] = v
    out["sampler.gen"] = sampler["gen"]
    out["sampler.perm"] = sampler["perm"]
    out.update(arrays)
    out["step"] = step
    write_npz(npz, **out)
    write_json(
        js,
        {
            "version": VERSION,
            "step": int(step),
            "mi": int(mi),
            "n_params": len(params),
            "sampler_pos": int(sampler["pos"]),
            "scalars": scalars,
            "config": _normalise(cfg.to_dict()),
        },
    )


def load_checkpoint(path, cfg, M: int) -> dict:
    npz, js = checkpoint_files(path)
    if not npz.exists() or not js.exists():
        raise RunDirError(f"no checkpoint at {path}: expected {npz.name} and {js.name}")
    meta = json.loads(js.read_text())
    if meta.get("version") != VERSION:
        raise RunDirError(f"checkpoint {js} has version {meta.get('version')}, expected {VERSION}")
    if meta["config"] != _normalise(cfg.to_dict()):
        diff = sorted(
            k for k in meta["config"] if meta["config"][k] != _normalise(cfg.to_dict()).get(k)
        )
        raise ConfigError(f"checkpoint {js} was written with a different config (fields {diff})")
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if int(arrays["step"]) != meta["step"]:
        raise RunDirError(f"checkpoint {npz} and {js} disagree on the step (interrupted write?)")
    if arrays["active"].shape[0] != M:
        raise ConfigError(f"checkpoint has M={arrays['active'].shape[0]} members, the model {M}")
    opt, sched = {}, {}
    for k, v in arrays.items():
        if k.startswith("opt."):
            opt[k[4:]] = v
        elif k.startswith("sched."):
            sched[k[6:]] = v
    for k, v in meta["scalars"].items():
        prefix, name = k.split(".", 1)
        (opt if prefix == "opt" else sched)[name] = v
    return {
        "step": meta["step"],
        "mi": meta["mi"],
        "params": [arrays[f"param_{i}"] for i in range(meta["n_params"])],
        "opt": opt,
        "sched": sched,
        "sampler": {
            "gen": arrays["sampler.gen"],
            "perm": arrays["sampler.perm"],
            "pos": meta["sampler_pos"],
        },
        **{k: arrays[k] for k in ("mbuf", "mact", "active", "reason", "steps_run")},
    }
