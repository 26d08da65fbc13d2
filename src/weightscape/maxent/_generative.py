"""The fitted model as a model of *networks*: Ising energy against test accuracy, and Monte Carlo
walks from trained weights that track the test accuracy of the networks they visit.

Two analyses of the paper's protocol (Zou & Huang 2021, "also" list of the spec):

* :func:`energy_accuracy` — the Ising energy per weight ``ε = E(σ)/N`` of every weight sample
  against its test accuracy: mean and spread of ε per accuracy level, and rank and linear
  correlations. Do the networks the model finds likely (low energy) work better?
* :func:`mc_accuracy` — Monte Carlo chains (heat bath by default) of the fitted model at β = 1
  started at trained weight samples σ*; every ``record_every`` sweeps (or, with the paper's
  random-site dynamics, every ``record_every_steps`` single-site steps) the chain's
  configuration is read as a network and tested. Does the model's probability mass around a
  solution hold working networks, or does the accuracy fall to chance as the chain forgets its
  start? With ``span=(a, b)`` only the spins ``a … b-1`` move (a layer's own model; the rest
  of the net stays at σ*): the liquid-centre question asked of the central layer alone.

Units: energies per weight (``E / n`` of the moving spins' model), accuracy a fraction of the
test set, overlap ``q = σ · σ* / n`` over the moving spins (``d = (1 − q) / 2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..config import Precision, resolve_precision
from ..errors import ConfigError, DatasetError, check_choice, check_positive, check_seed
from ._metropolis import (
    DEFAULT_BLOCK,
    RULES,
    MetropolisConfig,
    MetropolisState,
    metropolis_sample,
    random_site_walk,
)
from ._model import IsingModel
from ._samples import layer_map, network_accuracy
from ._validate import pearson

__all__ = [
    "EnergyAccuracy",
    "MCAccuracyConfig",
    "MCAccuracyTrace",
    "energy_accuracy",
    "mc_accuracy",
    "walk_starts",
]

# How the chains visit the sites (MCAccuracyConfig.order).
ORDERS = ("sweep", "random_site")
# Samples per block when energies are computed (float64 [block, N] temporaries).
ENERGY_BLOCK = 1 << 14


def _spins(sigma, n: int, what: str) -> np.ndarray:
    s = np.asarray(sigma)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.shape[1] != n:
        raise DatasetError(f"{what} has shape {tuple(np.shape(sigma))}; expected [S, {n}]")
    if s.shape[0] == 0:
        raise DatasetError(f"{what} is empty; give at least one configuration")
    if not np.isin(s, (-1, 1)).all():
        raise DatasetError(f"{what} must contain only -1 and +1")
    return s.astype(np.int8)


@dataclass(frozen=True, eq=False)
class EnergyAccuracy:
    """Ising energy per weight against test accuracy of weight samples.

    Attributes:
        energy: ``ε = E(σ) / N`` of every sample ``[S]`` (``E`` in units of the model's
            exponent, β = 1).
        accuracy: test accuracy of every sample ``[S]``.
        table: one row per accuracy level (``bin_width=None``: every distinct accuracy value;
            otherwise bins ``[lo, hi)``): ``acc_lo``, ``acc_hi``, ``accuracy`` (mean), ``n``,
            ``energy_mean``, ``energy_std``.
        spearman, spearman_p: rank correlation of ε and accuracy and its two-sided p-value.
        pearson: linear correlation of ε and accuracy.
    """

    energy: np.ndarray
    accuracy: np.ndarray
    table: pd.DataFrame
    spearman: float
    spearman_p: float
    pearson: float

    def to_dict(self) -> dict:
        """Headline numbers (JSON-ready)."""
        return {
            "n_samples": int(self.energy.size),
            "spearman": self.spearman,
            "spearman_p": self.spearman_p,
            "pearson": self.pearson,
            "energy_mean": float(self.energy.mean()),
            "energy_std": float(self.energy.std()),
            "accuracy_mean": float(self.accuracy.mean()),
        }


def energy_accuracy(
    model: IsingModel, sigma, accuracy, bin_width: float | None = None
) -> EnergyAccuracy:
    """Energy per weight of each sample under ``model`` against its test accuracy.

    Args:
        model: the Ising model of the samples' spins (``N`` spins).
        sigma: ``[S, N]`` ±1 samples (a layer model takes that layer's columns).
        accuracy: ``[S]`` test accuracy of each sample's network.
        bin_width: group accuracies in bins of this width (``None``: by exact value, as the
            discrete accuracies of a fixed test set fall).

    Returns:
        :class:`EnergyAccuracy`.
    """
    from scipy.stats import spearmanr

    n = model.n_spins
    s = _spins(sigma, n, "sigma")
    acc = np.asarray(accuracy, dtype=np.float64).ravel()
    if acc.shape != (s.shape[0],):
        raise DatasetError(
            f"accuracy has {acc.size} values for {s.shape[0]} samples; give one per sample"
        )
    if not np.isfinite(acc).all() or (acc < 0).any() or (acc > 1).any():
        raise DatasetError("accuracy must be fractions in [0, 1]")
    if bin_width is not None and not (math.isfinite(bin_width) and 0 < bin_width <= 1):
        raise ConfigError(f"bin_width={bin_width!r} must be in (0, 1] or None")
    # in blocks: a float64 copy of 2·10^6 samples × 675 spins would take 11 GB
    e = np.concatenate([
        model.energy(torch.as_tensor(s[i : i + ENERGY_BLOCK])).to(torch.float64).cpu().numpy()
        for i in range(0, s.shape[0], ENERGY_BLOCK)
    ]) / n  # fmt: skip
    if bin_width is None:
        lo = hi = acc
    else:
        k = np.floor(acc / bin_width + 1e-9)
        lo, hi = k * bin_width, (k + 1) * bin_width
    df = pd.DataFrame({"acc_lo": lo, "acc_hi": hi, "accuracy": acc, "energy": e})
    table = (
        df.groupby(["acc_lo", "acc_hi"], sort=True)
        .agg(
            accuracy=("accuracy", "mean"),
            n=("energy", "size"),
            energy_mean=("energy", "mean"),
            energy_std=("energy", lambda v: float(np.std(v))),
        )
        .reset_index()
    )
    if s.shape[0] > 2 and np.ptp(acc) > 0 and np.ptp(e) > 0:
        rho, p = spearmanr(e, acc)
        rho, p = float(rho), float(p)
    else:
        rho = p = math.nan
    return EnergyAccuracy(e, acc, table, rho, p, pearson(e, acc))


@dataclass(frozen=True)
class MCAccuracyConfig:
    """Settings of :func:`mc_accuracy`.

    Attributes:
        sweeps: sweeps per chain (a sweep is ``n`` single-spin updates, ``n`` the moving spins;
            with ``order="sweep"`` it visits each moving spin once, in order).
        record_every: sweeps between two records (the start is record 0); must divide
            ``sweeps``.
        order: ``"sweep"`` (default): the blocked sampler visits the sites in order (fast; no
            time resolution below a sweep); ``"random_site"``: every step updates one uniformly
            random site per chain (the paper's dynamics), which can be recorded within a sweep.
        record_every_steps: ``order="random_site"`` only: single-site updates between two
            records (e.g. 1: every step); must divide ``sweeps · n``. ``None``: every
            ``record_every`` sweeps.
        rule: ``"heat_bath"`` (default) or ``"metropolis"``. Both leave the model's
            distribution invariant, but the walk itself differs: the sampler sweeps the sites in
            order, and sequential Metropolis flips a weak-field spin almost surely at every
            visit, so at the fitted models' weak couplings the walk oscillates (paper-size deep
            models: d = 0.57–0.71 from the start after one sweep, 0.33–0.45 after two) and the
            accuracy after one sweep is that of a mostly *inverted* network. Heat bath resamples
            each spin from its conditional and relaxes without that oscillation. (The paper's
            Metropolis picks a random site per step, which does not oscillate either.)
        seed: seed of the acceptances.
        block_size: sites per dense field refresh of the sampler (speed only).
        precision: dtype/device of the sampler (float64 CPU by default).
    """

    sweeps: int = 100
    record_every: int = 1
    rule: str = "heat_bath"
    seed: int = 0
    block_size: int = DEFAULT_BLOCK
    precision: Precision = field(default_factory=Precision)
    order: str = "sweep"
    record_every_steps: int | None = None

    def __post_init__(self):
        resolve_precision(self.precision)  # a Precision, not e.g. the string "float32"
        check_positive("sweeps", self.sweeps, integer=True)
        check_positive("record_every", self.record_every, integer=True)
        if self.sweeps % self.record_every:
            raise ConfigError(
                f"record_every={self.record_every!r} must divide sweeps={self.sweeps!r}"
            )
        check_choice("rule", self.rule, RULES)
        check_seed("seed", self.seed)
        check_choice("order", self.order, ORDERS)
        if self.record_every_steps is not None:
            check_positive("record_every_steps", self.record_every_steps, integer=True)
            if self.order != "random_site":
                raise ConfigError(
                    f"record_every_steps={self.record_every_steps!r} needs order='random_site' "
                    f"(got order={self.order!r}); a sweep in order has no steps to record"
                )


@dataclass(frozen=True, eq=False)
class MCAccuracyTrace:
    """Records of :func:`mc_accuracy` (``T`` records after the start, ``R`` chains).

    Attributes:
        sweeps: sweep of every record ``[T + 1]`` (0 = the start; single-site steps / n, so
            fractional between sweeps with ``order="random_site"``).
        accuracy: test accuracy of each chain's network ``[T + 1, R]``.
        energy: energy per moving spin under the model ``[T + 1, R]``.
        overlap: ``q = σ · σ* / n`` over the moving spins ``[T + 1, R]``.
        sigma: the moving spins' configurations ``[T + 1, R, n]`` (int8).
        acceptance: mean acceptance of every sweep ``[sweeps]`` (``order="sweep"``) or of every
            record interval ``[T]`` (``order="random_site"``).
        span: ``(a, b)``: the moving spins in the network's weight vector.
        tilt: the tilt ``x`` towards each chain's start (0: the model itself).
        steps: single-site updates per chain up to every record ``[T + 1]``.
    """

    sweeps: np.ndarray
    accuracy: np.ndarray
    energy: np.ndarray
    overlap: np.ndarray
    sigma: np.ndarray
    acceptance: np.ndarray
    span: tuple[int, int]
    tilt: float = 0.0
    steps: np.ndarray | None = None

    def table(self) -> pd.DataFrame:
        """One row per record: ``sweep``, mean and std over chains of accuracy, energy and
        overlap, and ``d = (1 − q) / 2`` (mean)."""
        return pd.DataFrame(
            {
                "sweep": self.sweeps,
                "step": self.steps,
                "accuracy_mean": self.accuracy.mean(1),
                "accuracy_std": self.accuracy.std(1),
                "energy_mean": self.energy.mean(1),
                "energy_std": self.energy.std(1),
                "overlap_mean": self.overlap.mean(1),
                "d_mean": (1 - self.overlap.mean(1)) / 2,
            }
        )

    def summary(self) -> dict:
        """Start, first record and last record, means over chains (JSON-ready)."""
        t = self.table()
        out = {"n_chains": int(self.accuracy.shape[1]), "sweeps": _number(self.sweeps[-1]),
               "span": list(self.span), "tilt": self.tilt}  # fmt: skip
        for key, row in (("start", 0), ("first", 1), ("end", len(t) - 1)):
            for col in ("accuracy_mean", "energy_mean", "overlap_mean"):
                out[f"{col}_{key}"] = float(t[col].iloc[row])
        out["sweep_first"] = _number(self.sweeps[1])
        if self.steps is not None:
            out["step_first"] = int(self.steps[1])
        return out


def _number(v) -> int | float:
    """A record's sweep for JSON: an int when whole, else a float."""
    v = float(v)
    return int(v) if v.is_integer() else v


def mc_accuracy(
    model: IsingModel,
    starts,
    arch: str,
    x_test,
    y_test,
    config: MCAccuracyConfig = MCAccuracyConfig(),
    *,
    span: tuple[int, int] | None = None,
    tilt: float = 0.0,
    leak: float = 0.1,
) -> MCAccuracyTrace:
    """Metropolis chains of ``model`` started at trained weights, tested as networks.

    Args:
        model: the Ising model of the moving spins (``n = b − a`` spins).
        starts: ``[R, N]`` ±1 whole-network weight vectors σ* (``N`` the architecture's weights),
            one chain per row.
        arch: the networks' widths, e.g. ``"20-15-15-10"``.
        x_test, y_test: ``[P, d]`` test inputs and ``[P]`` labels.
        config: sweeps, records, rule, site order, seed, precision.
        span: ``(a, b)``: only weights ``a … b-1`` move (a layer model; the others stay at their
            start). ``None``: all ``N`` weights (``model`` has ``N`` spins).
        tilt: ``x``: chain ``r`` samples the model tilted towards its own start,
            ``h → h + x σ*_r`` (the entropy landscape's measure: at equilibrium its distance
            from the start is the landscape's ``d(x)``, here without the Bethe approximation).
            Energies are still those of the untilted model.
        leak: LeakyReLU slope of the hidden units.

    Returns:
        :class:`MCAccuracyTrace`.
    """
    layers = layer_map(arch)
    N = sum(b - a for a, b in layers.values())
    s0 = _spins(starts, N, "starts")
    a, b = (0, N) if span is None else (int(span[0]), int(span[1]))
    if not 0 <= a < b <= N:
        raise ConfigError(f"span={span!r} must satisfy 0 <= a < b <= {N} (arch {arch!r})")
    n = b - a
    if model.n_spins != n:
        raise DatasetError(
            f"the model has {model.n_spins} spins but span {a}:{b} of arch {arch!r} moves {n}"
        )
    R = s0.shape[0]
    if not math.isfinite(tilt):
        raise ConfigError(f"tilt={tilt!r} must be a finite number")
    ref = s0[:, a:b]
    fields = None
    if tilt != 0.0:
        h = model.h.detach().to("cpu", torch.float64)
        fields = h[None, :] + float(tilt) * torch.as_tensor(ref, dtype=torch.float64)
    if config.order == "random_site":
        every = config.record_every_steps or config.record_every * n
        if (config.sweeps * n) % every:
            raise ConfigError(
                f"record_every_steps={every!r} must divide sweeps · n = {config.sweeps} · {n}"
            )
        T = config.sweeps * n // every
        rec, acceptance = random_site_walk(
            model, ref, n_records=T, steps_per_record=every, rule=config.rule,
            seed=config.seed, precision=config.precision, fields=fields,
        )  # fmt: skip
        steps = np.arange(T + 1) * every
        sweeps = steps / n
    else:
        T = config.sweeps // config.record_every
        mcfg = MetropolisConfig(
            n_chains=R, n_samples=T, burn_in=0, thin=config.record_every, rule=config.rule,
            block_size=config.block_size, seed=config.seed, precision=config.precision,
        )  # fmt: skip
        rec, _, trace = metropolis_sample(
            model, mcfg, MetropolisState(torch.as_tensor(ref)), fields=fields
        )
        acceptance = trace.acceptance.numpy()
        sweeps = np.arange(T + 1) * config.record_every
        steps = sweeps * n
    moving = np.concatenate([ref[None], rec.reshape(T, R, n)], axis=0)  # [T+1, R, n]
    nets = np.broadcast_to(s0, (T + 1, R, N)).copy()
    nets[:, :, a:b] = moving
    acc = network_accuracy(nets.reshape(-1, N), arch, x_test, y_test, leak).reshape(T + 1, R)
    # energies of the untilted model (the sampler's own include any tilt)
    energy = model.energy(torch.as_tensor(moving)).to(torch.float64).cpu().numpy() / n
    overlap = (moving.astype(np.float64) * ref[None].astype(np.float64)).mean(-1)
    return MCAccuracyTrace(
        sweeps=sweeps,
        accuracy=acc,
        energy=energy,
        overlap=overlap,
        sigma=moving,
        acceptance=acceptance,
        span=(a, b),
        tilt=float(tilt),
        steps=steps,
    )


def walk_starts(run: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` kept samples to start walks from: one random sample of each of ``k``
    random distinct runs (all runs, then further random samples, when there are fewer)."""
    runs = rng.permutation(np.unique(run))[:k]
    idx = [int(rng.choice(np.flatnonzero(run == r))) for r in runs]
    rest = np.setdiff1d(np.arange(len(run)), idx)
    idx += rng.choice(rest, size=min(k - len(idx), len(rest)), replace=False).tolist()
    return np.asarray(idx)
