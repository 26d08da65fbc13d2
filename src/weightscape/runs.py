"""Training runs end to end: data recipe → nets → train → run directories.

This module sits after :mod:`weightscape.store` in the data flow: it is the recipe that the
``weightscape train`` command and the ``"train"`` sweep task share.

A run is described by a flat config (the keys of :data:`TRAIN_DEFAULTS`, dotted names): ``seed``
(initialisation seed of the net), ``data.*`` (the dataset name and its :func:`weightscape.data.load`
options; ``None`` = not given), ``net.*`` (architecture), ``train.*`` (the
:class:`~weightscape.train.TrainConfig`) and ``precision.*``. Members whose configs differ only in
``seed``, ``data.*``, ``net.width`` and ``train.lr`` are trained as one batched ensemble
(:func:`train_pack_key`): members with different data recipes get per-member, zero-padded inputs and
sample masks, which is exact.

Files of a run folder written here: ``config.json``, ``metrics.parquet`` (long: ``member, step,
name, value``), ``summary.json`` (+ ``summary.parquet`` for ensembles), ``arrays.npz``
(``param_<i>`` stacked ensemble parameters, ``specs_json``, ``gaps_train``/``gaps_test``) and
``DONE`` last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Precision
from .data import Dataset, load
from .errors import ConfigError, RunDirError
from .nets import Ensemble, MLPSpec
from .store import RunDir
from .train import TrainConfig, TrainResult, train

__all__ = [
    "TRAIN_DEFAULTS",
    "EnsembleOutcome",
    "MemberRecipe",
    "hessian_inputs",
    "load_run",
    "member_recipes",
    "run_members",
    "train_config_from_flat",
    "train_pack_key",
    "write_ensemble_run",
]

#: Every key a training run config may set (flat, dotted), with its default.
TRAIN_DEFAULTS: dict = {
    "seed": 0,
    # data: name + load() options; None = not passed to load()
    "data.name": "random",
    **{
        f"data.{k}": None
        for k in (
            "P",
            "d",
            "labels",
            "P_test",
            "path",
            "preset",
            "classes",
            "parity",
            "balance",
            "split",
            "train_size",
            "test_size",
            "pca",
            "whiten",
            "pca_fit",
            "center",
            "normalize",
            "seed",
            "cache_dir",
        )
    },
    # net
    "net.depth": 1,
    "net.width": 10,
    "net.out_dim": None,  # None: 1 for binary/regression data, the number of classes otherwise
    "net.bias": True,
    "net.activation": "relu",
    "net.leaky_slope": 0.01,
    "net.fan_in_scale": False,
    "net.init": "geiger2019",
    "net.init_gain": 1.0,
    "net.output_norm": 1.0,
    # train (TrainConfig fields; optimizer/loss options flattened)
    "train.loss": "quadratic_hinge",
    "train.kappa": None,
    "train.l2": 0.0,
    "train.optimizer": "adam",
    "train.lr": 1e-3,
    "train.momentum": None,
    "train.schedule": "constant",
    "train.max_steps": 1000,
    "train.batch_size": None,
    "train.stop": ["unsat_zero"],
    "train.grad_tol": 1e-10,
    "train.loss_tol": 0.0,
    "train.check_every": 1,
    "train.measure_every": None,
    "train.n_log_points": 150,
    "train.poll_every": 100,
    "train.seed": 0,
    "precision.dtype": "float64",
    "precision.device": "cpu",
}

_MEMBER_KEYS = ("seed", "net.width", "train.lr")


def _data_options(cfg: Mapping) -> dict:
    return {
        k[5:]: v
        for k, v in cfg.items()
        if k.startswith("data.") and k != "data.name" and v is not None
    }


def _as_tuple(v):
    return tuple(v) if isinstance(v, list | tuple) else v


def train_config_from_flat(cfg: Mapping, lr=None) -> TrainConfig:
    """The :class:`TrainConfig` of a flat run config (``lr`` overrides ``train.lr``)."""
    loss_options = {} if cfg.get("train.kappa") is None else {"kappa": cfg["train.kappa"]}
    opt_options = {} if cfg.get("train.momentum") is None else {"momentum": cfg["train.momentum"]}
    return TrainConfig(
        loss=cfg["train.loss"],
        loss_options=loss_options,
        l2=cfg["train.l2"],
        optimizer=cfg["train.optimizer"],
        lr=cfg["train.lr"] if lr is None else lr,
        optimizer_options=opt_options,
        schedule=cfg["train.schedule"],
        max_steps=cfg["train.max_steps"],
        batch_size=cfg["train.batch_size"],
        stop=tuple(cfg["train.stop"]),
        grad_tol=cfg["train.grad_tol"],
        loss_tol=cfg["train.loss_tol"],
        check_every=cfg["train.check_every"],
        measure_every=cfg["train.measure_every"],
        n_log_points=cfg["train.n_log_points"],
        poll_every=cfg["train.poll_every"],
        seed=cfg["train.seed"],
    )


def train_pack_key(cfg: Mapping) -> str:
    """Runs with equal keys train as one ensemble: all but seed, data, width and lr agree."""
    shared = {k: v for k, v in cfg.items() if k not in _MEMBER_KEYS and not k.startswith("data.")}
    return json.dumps(shared, sort_keys=True, default=str)


@dataclass(frozen=True)
class MemberRecipe:
    """One member: its data recipe, architecture and seeds (from a flat config)."""

    data_name: str
    data_options: tuple  # sorted (key, value) pairs
    width: int | tuple
    seed: int
    lr: float

    def data_key(self):
        return (self.data_name, self.data_options)


def member_recipes(configs: Sequence[Mapping]) -> list[MemberRecipe]:
    out = []
    for cfg in configs:
        opts = tuple(sorted((k, _as_tuple(v)) for k, v in _data_options(cfg).items()))
        out.append(
            MemberRecipe(
                data_name=cfg["data.name"],
                data_options=opts,
                width=_as_tuple(cfg["net.width"]),
                seed=int(cfg["seed"]),
                lr=float(cfg["train.lr"]),
            )
        )
    return out


@dataclass
class EnsembleOutcome:
    """What :func:`run_members` returns."""

    ensemble: Ensemble
    result: TrainResult
    datasets: dict  # data_key -> Dataset
    member_data: list  # data_key of each member
    precision: Precision


def _spec(cfg: Mapping, width, d_in: int, ds: Dataset) -> MLPSpec:
    depth = int(cfg["net.depth"])
    widths = tuple(width) if isinstance(width, tuple) else (int(width),) * depth
    if len(widths) != depth:
        raise ConfigError(f"net.width={list(widths)} must have net.depth={depth} entries")
    out_dim = cfg["net.out_dim"]
    if out_dim is None:
        out_dim = len(ds.classes) if ds.task == "multiclass" else 1
    return MLPSpec(
        d_in=d_in,
        widths=widths,
        out_dim=int(out_dim),
        bias=cfg["net.bias"],
        activation=cfg["net.activation"],
        leaky_slope=cfg["net.leaky_slope"],
        fan_in_scale=cfg["net.fan_in_scale"],
        init=cfg["net.init"],
        init_gain=cfg["net.init_gain"],
        output_norm=cfg["net.output_norm"],
    )


def _stack(arrays: Sequence[np.ndarray], M_rows: int, P: int, d: int | None):
    """Zero-pad per-member arrays ``[P_m(, d_m)]`` into ``[M, P(, d)]``."""
    shape = (M_rows, P) if d is None else (M_rows, P, d)
    out = np.zeros(shape, dtype=arrays[0].dtype)
    for m, a in enumerate(arrays):
        if d is None:
            out[m, : a.shape[0]] = a
        else:
            out[m, : a.shape[0], : a.shape[1]] = a
    return out


def run_members(
    configs: Sequence[Mapping],
    *,
    progress: bool | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | Path | None = None,
) -> EnsembleOutcome:
    """Train the members described by flat ``configs`` (one per member) as one ensemble.

    All configs must share :func:`train_pack_key`. Datasets are loaded once per distinct recipe.
    When every member uses the same recipe, the inputs are shared ``[P, d]`` (one GEMM for the
    first layer); otherwise they are per-member ``[M, P_max, d_max]``, zero-padded, with a sample
    mask for members with fewer points (exact).
    """
    if not configs:
        raise ConfigError("no members to train")
    keys = {train_pack_key(c) for c in configs}
    if len(keys) != 1:
        raise ConfigError("members of one ensemble must agree on everything but seed/data/width/lr")
    cfg0 = configs[0]
    prec = Precision(cfg0["precision.dtype"], cfg0["precision.device"])
    recipes = member_recipes(configs)
    datasets: dict = {}
    for r in recipes:
        if r.data_key() not in datasets:
            datasets[r.data_key()] = load(r.data_name, **dict(r.data_options))
    tasks = {ds.task for ds in datasets.values()}
    if len(tasks) != 1:
        raise ConfigError(f"members of one ensemble mix data tasks {sorted(tasks)}")
    member_ds = [datasets[r.data_key()] for r in recipes]
    specs = [
        _spec(cfg0, r.width, ds.x.shape[1], ds) for r, ds in zip(recipes, member_ds, strict=True)
    ]
    dt, dev = prec.torch_dtype, prec.torch_device
    ens = Ensemble.init(specs, [r.seed for r in recipes], dtype=dt, device=dev)
    M = len(recipes)
    ylab = torch.int64 if member_ds[0].task == "multiclass" else dt
    mask = None
    if len(datasets) == 1:
        ds = member_ds[0]
        x = torch.as_tensor(ds.x.copy(), dtype=dt, device=dev)  # datasets are read-only
        y = torch.as_tensor(ds.y.copy(), device=dev).to(ylab)
        x_test = None if ds.x_test is None else torch.as_tensor(ds.x_test, dtype=dt, device=dev)
        y_test = None if ds.y_test is None else torch.as_tensor(ds.y_test, device=dev).to(ylab)
    else:
        P = max(ds.x.shape[0] for ds in member_ds)
        d = ens.max_sizes[0]
        x = torch.as_tensor(_stack([ds.x for ds in member_ds], M, P, d), dtype=dt, device=dev)
        y = torch.as_tensor(_stack([ds.y for ds in member_ds], M, P, None), device=dev).to(ylab)
        m = np.zeros((M, P))
        for i, ds in enumerate(member_ds):
            m[i, : ds.x.shape[0]] = 1.0
        mask = torch.as_tensor(m, dtype=dt, device=dev) if (m == 0).any() else None
        x_test = y_test = None
        if all(ds.x_test is not None for ds in member_ds):
            tests = [ds.x_test.shape[0] for ds in member_ds]
            if len(set(tests)) == 1:  # test sets must have one size (no test-side masks)
                Pt = tests[0]
                x_test = torch.as_tensor(
                    _stack([ds.x_test for ds in member_ds], M, Pt, d), dtype=dt, device=dev
                )
                y_test = torch.as_tensor(
                    _stack([ds.y_test for ds in member_ds], M, Pt, None), device=dev
                ).to(ylab)
    lrs = tuple(r.lr for r in recipes)
    tcfg = train_config_from_flat(cfg0, lr=lrs if len(set(lrs)) > 1 else lrs[0])
    result = train(
        ens,
        x,
        y,
        tcfg,
        sample_mask=mask,
        x_test=x_test,
        y_test=y_test,
        progress=progress,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        resume_from=resume_from,
    )
    return EnsembleOutcome(ens, result, datasets, [r.data_key() for r in recipes], prec)


def _member_summary(outcome: EnsembleOutcome, m: int) -> dict:
    row = outcome.result.summary.iloc[m].to_dict()
    spec = outcome.ensemble.specs[m]
    ds = outcome.datasets[outcome.member_data[m]]
    row.update(
        N=spec.n_weights,
        n_params=spec.n_params,
        P=int(ds.x.shape[0]),
        d=int(ds.x.shape[1]),
        depth=spec.depth,
        width=spec.widths[0] if spec.widths else 0,
        seed=outcome.ensemble.seeds[m],
    )
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def write_ensemble_run(rd: RunDir, configs: Sequence[Mapping], outcome: EnsembleOutcome) -> None:
    """Write one run folder holding the whole ensemble (the ``weightscape train`` layout)."""
    ens = outcome.ensemble
    rd.write_config(
        {"members": list(configs)},
        seeds=list(ens.seeds),
        device=str(outcome.precision.torch_device),
        extra={
            "data": [outcome.datasets[k].provenance for k in dict.fromkeys(outcome.member_data)]
        },
    )
    rd.write_metrics(outcome.result.metrics)
    summary = pd.DataFrame([_member_summary(outcome, m) for m in range(ens.M)])
    rd.write_metrics(summary, name="summary")
    rd.write_json("summary.json", {"members": summary.to_dict(orient="records")})
    arrays = ens.state_arrays()
    arrays["specs_json"] = np.array(ens.specs_json())
    for part, g in outcome.result.gaps.items():
        arrays[f"gaps_{part}"] = g
    rd.write_arrays(**arrays)
    rd.mark_done()


def write_member_runs(
    dirs: Sequence[Path], configs: Sequence[Mapping], outcome: EnsembleOutcome
) -> None:
    """Write one run folder per member (the sweep layout)."""
    ens = outcome.ensemble
    metrics = outcome.result.metrics
    for m, (path, cfg) in enumerate(zip(dirs, configs, strict=True)):
        rd = RunDir(path)
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.write_config(dict(cfg), seeds={"init": cfg["seed"]}, device=str(ens.device))
        rd.write_metrics(
            metrics[metrics["member"] == m].drop(columns="member").reset_index(drop=True)
        )
        rd.write_json("summary.json", _member_summary(outcome, m))
        one = ens.select([m])
        arrays = one.state_arrays()
        arrays["specs_json"] = np.array(one.specs_json())
        for part, g in outcome.result.gaps.items():
            g = g[m]
            arrays[f"gaps_{part}"] = g[~np.isnan(g)]
        rd.write_arrays(**arrays)
        rd.mark_done()


def load_run(path: str | Path):
    """Read a finished training run folder.

    Returns:
        ``(ensemble, members, datasets)``: the trained :class:`~weightscape.nets.Ensemble`, the
        members' flat configs, and each member's :class:`~weightscape.data.Dataset` (reloaded from
        its recipe, which is deterministic).
    """
    rd = RunDir.open(path)
    meta = rd.read_config()
    arrays = rd.read_arrays()
    if "specs_json" not in arrays:
        raise RunDirError(f"{str(path)!r} is not a training run (arrays.npz has no specs_json)")
    ens = Ensemble.from_arrays(str(arrays["specs_json"]), arrays)
    cfg = meta["config"]
    members = cfg["members"] if "members" in cfg else [cfg]
    cache: dict = {}
    datasets = []
    for r in member_recipes(members):
        if r.data_key() not in cache:
            cache[r.data_key()] = load(r.data_name, **dict(r.data_options))
        datasets.append(cache[r.data_key()])
    return ens, members, datasets


def hessian_inputs(path: str | Path):
    """The :class:`weightscape.curvature.RunInputs` of a training run folder written here.

    Members trained on one shared dataset get shared inputs ``[P, d]``; members with their own
    data recipes must all have the same P (the Hessian has no sample masks), else a
    :class:`RunDirError` says so.
    """
    from .curvature._run import RunInputs

    ens, members, datasets = load_run(path)
    cfg = members[0]
    dt = ens.dtype
    ylab = torch.int64 if datasets[0].task == "multiclass" else dt
    if len({id(ds) for ds in datasets}) == 1:
        x = torch.as_tensor(datasets[0].x.copy(), dtype=dt)
        y = torch.as_tensor(datasets[0].y.copy()).to(ylab)
    else:
        sizes = {ds.x.shape[0] for ds in datasets}
        if len(sizes) != 1:
            raise RunDirError(
                f"run {str(path)!r}: members have different P {sorted(sizes)}; "
                "analyse them with --members one P at a time is not supported"
            )
        P, d = sizes.pop(), ens.max_sizes[0]
        x = torch.as_tensor(_stack([ds.x for ds in datasets], ens.M, P, d), dtype=dt)
        y = torch.as_tensor(_stack([ds.y for ds in datasets], ens.M, P, None)).to(ylab)
    tcfg = train_config_from_flat(cfg)
    return RunInputs(ens, x, y, tcfg.make_loss(), float(tcfg.l2))


def _run_task(configs: list[dict], dirs: list[Path]) -> None:
    outcome = run_members(configs, progress=False)
    write_member_runs(dirs, configs, outcome)


def _validate(cfg: dict) -> None:
    train_config_from_flat(cfg)
    Precision(cfg["precision.dtype"], cfg["precision.device"])
    depth = cfg["net.depth"]
    if not isinstance(depth, int) or depth < 0:
        raise ConfigError(f"net.depth={depth!r} must be an integer >= 0")
    w = cfg["net.width"]
    ws = w if isinstance(w, list | tuple) else [w]
    for v in ws:
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"net.width={w!r} must be a positive integer (or a list of them)")


def _register_task() -> None:
    from .sweeps import Task, register_task, task_names

    if "train" in task_names():
        return
    register_task(
        Task(
            name="train",
            defaults=TRAIN_DEFAULTS,
            run=_run_task,
            validate=_validate,
            pack_key=train_pack_key,
            description="train fully connected nets; members of a pack train as one ensemble",
        )
    )


_register_task()
