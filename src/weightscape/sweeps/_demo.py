r"""``demo.ridge``: a small, real, packable task for tests, examples and the overhead benchmark.

Random-features ridge regression fitted by gradient descent. Data (seeded by ``data_seed``):
:math:`X \in \mathbb{R}^{n\times d}` standard normal, :math:`y = \tanh(X w_*/\sqrt d) + \sigma\xi`.
Features (seeded by ``seed``): :math:`\Phi = \tanh(X W)`, :math:`W_{ij} \sim N(0, 1/d)`,
``[n, width]``. Objective

.. math::
    L(a) = \frac{1}{2n}\lVert \Phi a - y\rVert^2 + \frac{\lambda}{2}\lVert a\rVert^2,

minimized from :math:`a_0 = 0` by ``steps`` steps of gradient descent with rate ``lr``; its exact
minimum :math:`L(a_*)`, :math:`(\Phi^\top\Phi/n + \lambda I)a_* = \Phi^\top y/n`, is written too
(the oracle: ``loss - loss_exact >= 0`` and tends to 0).

Runs with the same data recipe and optimizer (everything but ``seed``, ``width`` and ``sleep_s``)
form one pack: their feature matrices are zero-padded to the widest, ``[M, n, w_max]``, and all
members take their gradient steps together. A zero-padded column has zero gradient and stays
zero, so packing does not change the result (up to the summation order of a dot product).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, check_positive
from ..store import RunDir
from ._task import Task, register_task

__all__ = ["DEMO_TASK", "ridge_exact"]

DEFAULTS = {
    "n": 32,  # samples
    "d": 8,  # input dimension
    "width": 16,  # random features
    "seed": 0,  # feature seed
    "data_seed": 0,
    "noise": 0.1,  # label noise sigma
    "steps": 200,
    "lr": 0.5,
    "ridge": 1e-3,  # lambda
    "log_every": 10,  # steps between logged metrics
    "sleep_s": 0.0,  # seconds spent after config.json is written (fault-injection tests)
}


def _validate(cfg: dict) -> None:
    for key in ("n", "d", "width", "steps", "log_every"):
        check_positive(key, cfg[key], integer=True)
    for key in ("seed", "data_seed"):
        check_positive(key, cfg[key], integer=True, allow_zero=True)
    check_positive("lr", cfg["lr"])
    check_positive("ridge", cfg["ridge"], allow_zero=True)
    check_positive("noise", cfg["noise"], allow_zero=True)
    check_positive("sleep_s", cfg["sleep_s"], allow_zero=True)
    if cfg["lr"] > 2.0:
        raise ConfigError(f"lr={cfg['lr']!r} must be <= 2 (the features are bounded by 1)")


def _pack_key(cfg: dict):
    return tuple(v for k, v in sorted(cfg.items()) if k not in ("seed", "width", "sleep_s"))


def _data(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([cfg["data_seed"], 0])
    n, d = cfg["n"], cfg["d"]
    x = rng.standard_normal((n, d))
    w_star = rng.standard_normal(d)
    y = np.tanh(x @ w_star / np.sqrt(d)) + cfg["noise"] * rng.standard_normal(n)
    return x, y


def _features(cfg: dict, x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng([cfg["seed"], 1])
    w = rng.standard_normal((cfg["d"], cfg["width"])) / np.sqrt(cfg["d"])
    return np.tanh(x @ w)


def ridge_exact(phi: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """The minimizer :math:`a_*` ``[w]`` and minimum :math:`L(a_*)` for ``phi`` ``[n, w]``."""
    n, w = phi.shape
    a = np.linalg.solve(phi.T @ phi / n + ridge * np.eye(w), phi.T @ y / n)
    r = phi @ a - y
    return a, float(r @ r / (2 * n) + ridge / 2 * a @ a)


def _run(configs: list[dict], dirs: list[Path]) -> None:
    c0 = configs[0]
    x, y = _data(c0)
    n, steps, lr, ridge, every = c0["n"], c0["steps"], c0["lr"], c0["ridge"], c0["log_every"]
    rds = []
    for cfg, d in zip(configs, dirs, strict=True):
        rd = RunDir(d)
        rd.write_config(cfg, seeds={"seed": cfg["seed"], "data_seed": cfg["data_seed"]})
        rds.append(rd)
        if cfg["sleep_s"] > 0:
            time.sleep(cfg["sleep_s"])
    widths = [c["width"] for c in configs]
    m, w_max = len(configs), max(widths)
    phi = np.zeros((m, n, w_max))  # [M, n, w_max], zero-padded feature columns
    for i, cfg in enumerate(configs):
        phi[i, :, : cfg["width"]] = _features(cfg, x)
    a = np.zeros((m, w_max))
    logged: list[tuple[int, np.ndarray, np.ndarray]] = []
    for t in range(steps + 1):
        r = np.einsum("mnw,mw->mn", phi, a) - y  # [M, n]
        grad = np.einsum("mnw,mn->mw", phi, r) / n + ridge * a  # [M, w_max]
        if t % every == 0 or t == steps:
            loss = np.einsum("mn,mn->m", r, r) / (2 * n) + ridge / 2 * np.einsum("mw,mw->m", a, a)
            logged.append((t, loss, np.sqrt(np.einsum("mw,mw->m", grad, grad))))
        if t < steps:
            a = a - lr * grad
    for i, (cfg, rd) in enumerate(zip(configs, rds, strict=True)):
        w = cfg["width"]
        rows = [(t, "loss", float(l[i])) for t, l, _ in logged]
        rows += [(t, "grad_norm", float(g[i])) for t, _, g in logged]
        metrics = pd.DataFrame(rows, columns=["step", "name", "value"])
        rd.write_metrics(metrics.astype({"step": "int64", "value": "float64"}))
        _, loss_exact = ridge_exact(phi[i, :, :w], y, ridge)
        a_i = a[i, :w]
        final = logged[-1][1][i]
        rd.write_arrays(a=a_i)
        rd.write_json(
            "summary.json",
            {
                "loss": float(final),
                "loss_exact": loss_exact,
                "excess": float(final) - loss_exact,
                "a_norm": float(np.sqrt(a_i @ a_i)),
            },
        )
        rd.mark_done()


DEMO_TASK = register_task(
    Task(
        name="demo.ridge",
        defaults=DEFAULTS,
        run=_run,
        validate=_validate,
        pack_key=_pack_key,
        checkpointable=False,
        description="random-features ridge regression by gradient descent (packable)",
    )
)
