"""``weightscape reproduce maxent``: study C end to end (registers the :class:`Study`).

Zou & Huang, Phys. Rev. Research 3, 033290 (2021): train binary-weight networks (LR-net) on
MNIST-PCA20, sample their weights, fit a pairwise max-ent (Ising) model per layer and for a
shallow net by BP-based Boltzmann learning (the paper's inverse method and settings), validate it
by Metropolis Monte Carlo (m, C, third-order connected moments), and read the weight space's
geometry from the entropy landscape, TAP free-energy histograms, coexisting BP fixed points
and an iso-energy sweep.

Why many runs and few draws per run: the draws of one trained run are independent
``Bernoulli(σ(θ))`` per weight, a product measure with no connected correlations; every connected
correlation of the pooled samples comes from differences *between* runs, so the number of runs
``R`` sets the information about the pairwise structure (the connected correlation matrix has
rank ``R − 1`` plus within-run noise), while more draws per run only resample a product measure.
LR-net training is batched over runs, so runs are cheap.

Scales (see ``docs/studies/maxent.md``):

* ``smoke`` (a few minutes on a 2-core CPU): 48 runs × 10 epochs of 20-15-15-10 and of 20-10 on
  the bundled 5,000-image MNIST sample (4,000 train / 1,000 test), 8 draws per run, kept above the
  median accuracy; BP Boltzmann learning of LB/ITR/RB and the shallow layer; Metropolis
  validation (64 chains); landscapes on a coarse tilt grid (step 0.25), 3 references each;
  TAP histograms from 200 starts; BP fixed points from 8 starts.
* ``small`` (≲ 30 min): 192 runs × 50 epochs, 16 draws per run, step 0.1, 6 references.
* ``paper``: 100 runs × 100 epochs, 100 draws per run, the whole 675-spin net too, step 0.05,
  10^4 Metropolis samples after 10^4 sweeps, 2000 TAP starts (the paper's protocol).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..data import load
from ..reproduce import Claim, Plan, Study, StudyContext, StudyOutcome, register_study
from ._bethe import BetheConfig
from ._bp_learning import BoltzmannBP, BoltzmannBPConfig
from ._fit import model_moments
from ._landscape import (
    IsoEnergyConfig,
    LandscapeConfig,
    binary_entropy,
    bp_fixed_points,
    entropy_landscapes,
    iso_energy_landscape,
)
from ._landscape_plots import plot_d_of_x, plot_entropy_landscape
from ._lrnet import LRNetConfig, train_lrnet
from ._metropolis import MetropolisConfig, metropolis_sample
from ._moments import sample_moments
from ._samples import SampleConfig, draw_weight_samples
from ._tap import TAPConfig, tap_landscape

__all__ = [
    "SCALES",
    "STUDY",
    "between_within",
    "claim_bound",
    "claim_connected",
    "claim_fit_quality",
    "claim_itr_weaker",
    "iso_summary",
    "layer_table",
]

SCALES: dict[str, dict] = {
    "smoke": {
        "runs": 48, "epochs": 10, "draws": 8, "quantile": 0.5, "whole_net": False,
        "x_step": 0.25, "refs": 1, "mc_chains": 64, "mc_burn_in": 500, "mc_samples": 20,
        "mc_thin": 5, "n_triplets": 2000, "tap_starts": 200, "bp_fp_starts": 8,
    },
    "small": {
        "runs": 192, "epochs": 50, "draws": 16, "quantile": 0.5, "whole_net": False,
        "x_step": 0.1, "refs": 2, "mc_chains": 200, "mc_burn_in": 2000, "mc_samples": 50,
        "mc_thin": 10, "n_triplets": 5000, "tap_starts": 1000, "bp_fp_starts": 32,
    },
    "paper": {
        "runs": 100, "epochs": 100, "draws": 100, "quantile": 0.5, "whole_net": True,
        "x_step": 0.05, "refs": 3, "mc_chains": 100, "mc_burn_in": 10_000, "mc_samples": 100,
        "mc_thin": 10, "n_triplets": 10_000, "tap_starts": 2000, "bp_fp_starts": 64,
    },
}  # fmt: skip
# Held-out images of the 5,000-image sample used as the test set (seeded split).
N_TEST = 1000
# Claim thresholds, fixed in advance (not tuned to our outcome).
R_MIN = 0.95  # claim 1: Pearson r of model (Metropolis) vs data m and C at least this
R3_MIN = 0.8  # claim 1: third-order connected moments, noisier estimates: r at least this
ITR_RATIO_MAX = 0.5  # claim 2: "several times weaker" read as at most half the outer layers'
DEEP_ARCH, SHALLOW_ARCH = "20-15-15-10", "20-10"
LAYERS = ("LB", "ITR", "RB")


def plan(ctx: StudyContext) -> Plan:
    s = SCALES[ctx.scale]
    runs = (
        f"LR-net {DEEP_ARCH}: {s['runs']} runs × {s['epochs']} epochs on mnist-sample PCA-20",
        f"LR-net {SHALLOW_ARCH}: {s['runs']} runs × {s['epochs']} epochs",
        f"{s['draws']} weight draws per run, kept above quantile {s['quantile']} of accuracy",
        "BP Boltzmann learning (paper settings): LB, ITR, RB, shallow"
        + (", whole net" if s["whole_net"] else ""),
        f"Metropolis validation: {s['mc_chains']} chains × {s['mc_samples']} samples "
        f"after {s['mc_burn_in']} sweeps, thin {s['mc_thin']}",
        f"entropy landscapes: x in [-3, 3] step {s['x_step']}, 3×{s['refs']} references per model",
        f"TAP free-energy histograms ({s['tap_starts']} starts), BP fixed points at x = 0 "
        f"({s['bp_fp_starts']} starts), iso-energy sweep (ITR, shallow)",
    )
    cpu = {"smoke": 240.0, "small": 1800.0, "paper": 36000.0}[ctx.scale]
    return Plan(runs=runs, cpu_s=cpu, peak_mem_mb=1500.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _triplets(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``k`` distinct index triplets ``i < j < k`` drawn uniformly ``[T, 3]``."""
    t = np.sort(rng.integers(0, n, size=(4 * k, 3)), axis=1)
    t = t[(t[:, 0] < t[:, 1]) & (t[:, 1] < t[:, 2])]
    return np.unique(t, axis=0)[:k]


def _references(model, sigma: np.ndarray, per_class: int) -> tuple[np.ndarray, list[str]]:
    """Data samples of low / medium / high model energy (quantiles 5%, 50%, 95%)."""
    e = model.energy(torch.as_tensor(sigma)).detach().cpu().numpy()
    order = np.argsort(e, kind="stable")
    S = len(order)
    rows, labels = [], []
    for name, q in (("low", 0.05), ("medium", 0.5), ("high", 0.95)):
        c = int(q * (S - 1))
        for k in range(per_class):
            rows.append(order[min(S - 1, c + k)])
            labels.append(name)
    return sigma[np.asarray(rows)], labels


# ---------------------------------------------------------------- claims (pure, tested)


def claim_fit_quality(fits: pd.DataFrame) -> Claim:
    """Claim 1 from the ``fits`` table (columns ``model, r_m, r_C, r_3, bp_converged``).

    Holds iff every fit's Metropolis moments have Pearson r ≥ :data:`R_MIN` with the data's m and
    C (i<j) and ≥ :data:`R3_MIN` with the third-order connected moments.
    """
    # np.min propagates NaN (pandas' min would skip it and let a failed estimate pass)
    rm, rc, r3 = (float(np.min(fits[c].to_numpy(dtype=float))) for c in ("r_m", "r_C", "r_3"))
    conv = [str(n) for n, ok in zip(fits.model, fits.bp_converged, strict=True) if ok]
    holds = bool(min(rm, rc) >= R_MIN and r3 >= R3_MIN)  # NaN compares False: does not hold
    return Claim(
        key="1",
        statement="the fitted pairwise model reproduces the data m_i, C_ij and third-order moments",
        paper="model vs data on the diagonal (r ≈ 1), third order close to it",
        ours=(f"min Pearson r over {len(fits)} fits (Metropolis): m {rm:.3f}, C {rc:.3f}, "
              f"third-order {r3:.3f} (holds if m, C ≥ {R_MIN} and third ≥ {R3_MIN}); "
              f"BP converged for {len(conv)} of {len(fits)}"
              + (f" ({', '.join(conv)})" if conv else "")),
        holds=holds, value=min(rm, rc, r3), paper_value=1.0,
    )  # fmt: skip


def claim_itr_weaker(fits: pd.DataFrame) -> tuple[Claim, float]:
    """Claim 2: ``std J_ITR / min(std J_LB, std J_RB) ≤`` :data:`ITR_RATIO_MAX`."""
    js = fits.set_index("model").J_std
    ratio = float(js["ITR"] / min(js["LB"], js["RB"]))
    claim = Claim(
        key="2", statement="central-layer (ITR) couplings several times weaker than LB/RB",
        paper="J std of ITR several times smaller",
        ours=(f"J std LB {js['LB']:.3g}, ITR {js['ITR']:.3g}, RB {js['RB']:.3g}; "
              f"ITR/min(LB,RB) = {ratio:.2f} (holds if ≤ {ITR_RATIO_MAX})"),
        holds=bool(ratio <= ITR_RATIO_MAX), value=ratio,
    )  # fmt: skip
    return claim, ratio


def claim_connected(land: pd.DataFrame) -> Claim:
    """Claim 3 from the ``landscapes`` table (``model, has_jump, has_hysteresis``).

    Holds iff no deep model (every model but ``shallow``) shows a jump or hysteresis around any
    reference and the shallow model shows a jump *and* hysteresis around at least one.
    """
    g = land.groupby("model")
    jump, hyst = g.has_jump.any(), g.has_hysteresis.any()
    deep = [n for n in jump.index if n != "shallow"]
    deep_broken = [n for n in deep if jump[n] or hyst[n]]

    def word(n):
        return "+".join(k for k, v in (("jump", jump[n]), ("hysteresis", hyst[n])) if v) or "smooth"

    holds = (not deep_broken) and bool(jump["shallow"] and hyst["shallow"])
    return Claim(
        key="3", statement="deep weight space connected (no jump/hysteresis of d(x)); "
                           "shallow weight space broken (jump and hysteresis)",
        paper="deep: smooth s(d); shallow: jump + hysteresis",
        ours=("deep: " + ", ".join(f"{n} {word(n)}" for n in deep)
              + f"; shallow: {word('shallow')}"),
        holds=bool(holds),
    )  # fmt: skip


def claim_bound(land: pd.DataFrame) -> Claim:
    """Claim 4: the mean gap ``H(d) − s(d)`` (averaged over references) is smallest for ITR."""
    gaps = land.groupby("model").mean_gap.mean()[list(LAYERS)]
    ok = bool(gaps.notna().all() and gaps.idxmin() == "ITR")
    return Claim(
        key="4", statement="the central layer's s(d) lies closest to the bound H(d)",
        paper="ITR s(d) almost on H(d)",
        ours="mean gap H(d) − s(d): " + ", ".join(f"{k} {v:.3g}" for k, v in gaps.items()),
        holds=ok, value=float(gaps["ITR"]),
    )  # fmt: skip


def between_within(sigma: np.ndarray, run: np.ndarray) -> dict[str, float]:
    """Where the pooled connected correlations come from (law of total covariance).

    ``Cov_pooled = Cov_between + Cov_within`` exactly, with ``Cov_between`` the covariance of the
    per-run means (weighted by kept draws) and ``Cov_within`` the draw-weighted mean of the
    per-run covariances. Draws of one run are a product measure, so ``Cov_within`` has only
    sampling noise off the diagonal and the pooled structure is between-run.

    Args:
        sigma: ``[S, N]`` ±1 samples; run: ``[S]`` run id of each row.

    Returns:
        ``runs`` (distinct runs), ``conn_pooled`` / ``conn_within`` (mean |·| over i<j),
        ``between_fraction`` (off-diagonal squared Frobenius share of ``Cov_between``).
    """
    x = np.asarray(sigma, dtype=np.float64)
    S, n = x.shape
    m = x.mean(0)
    ids, inv = np.unique(np.asarray(run), return_inverse=True)
    counts = np.bincount(inv, minlength=len(ids)).astype(np.float64)
    mu = np.zeros((len(ids), n))
    np.add.at(mu, inv, x)
    mu /= counts[:, None]
    d = x - mu[inv]
    within = d.T @ d / S
    db = mu - m
    between = db.T @ (db * (counts / S)[:, None])
    pooled = between + within
    iu = np.triu_indices(n, 1)
    fb, fp = float((between[iu] ** 2).sum()), float((pooled[iu] ** 2).sum())
    return {
        "runs": len(ids),
        "conn_pooled": float(np.abs(pooled[iu]).mean()),
        "conn_within": float(np.abs(within[iu]).mean()),
        "between_fraction": fb / fp if fp > 0 else math.nan,
    }


def iso_summary(name: str, r) -> dict:
    """Scalars of one :class:`IsoEnergyResult`: converged points, largest ``|Δd|`` between
    neighbouring converged tilts, mean gap ``H(d) − s(d)`` and the β range found."""
    c = np.asarray(r.converged, dtype=bool)
    d = np.asarray(r.d)[c]
    gap = binary_entropy(d) - np.asarray(r.s)[c]
    return {
        "model": name,
        "target_e0": float(r.target),
        "n_converged": int(c.sum()),
        "n_points": int(c.size),
        "max_jump": float(np.abs(np.diff(d)).max()) if d.size > 1 else math.nan,
        "mean_gap": float(gap.mean()) if gap.size else math.nan,
        "beta_min": float(np.nanmin(r.beta[c])) if c.any() else math.nan,
        "beta_max": float(np.nanmax(r.beta[c])) if c.any() else math.nan,
    }


def _tap_figure(results: dict) -> Figure:
    """One panel per model (free energies of different models differ by far more than the
    spread within one, so a shared axis would hide the peaks)."""
    fig = Figure(figsize=(3.2 * len(results), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for k, (ax, (name, r)) in enumerate(zip(axes, results.items(), strict=True)):
        if r.free_energy.size:
            counts, edges = r.histogram(30)
            ax.stairs(counts, edges, color=f"C{k % 10}", fill=True)
        ax.set_title(f"{name}: {r.n_fixed_points} fixed pt(s), {r.n_converged}/{r.n_starts}",
                     fontsize=8)  # fmt: skip
        ax.set_xlabel("TAP βf per spin", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.locator_params(axis="x", nbins=3)
    axes[0].set_ylabel("starts")
    fig.tight_layout()
    return fig


def _iso_figure(results: dict) -> Figure:
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    dd = np.linspace(1e-4, 0.5, 200)
    ax.plot(dd, binary_entropy(dd), color="0.5", lw=1, label="H(d)")
    for k, (name, r) in enumerate(results.items()):
        c = np.asarray(r.converged, dtype=bool)
        ax.plot(np.asarray(r.d)[c], np.asarray(r.s)[c], ".-", ms=3, color=f"C{k}", label=name)
    ax.set_xlabel("distance d")
    ax.set_ylabel("entropy s(d) at fixed e_0")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def layer_table(fits: pd.DataFrame) -> pd.DataFrame:
    """The paper's layer table: J mean / std / max|J| and field mean / spread per model."""
    cols = ["model", "n_spins", "J_mean", "J_std", "J_max_abs", "h_mean", "h_std"]
    return fits[cols].reset_index(drop=True)


def _format_layer_table(tab: pd.DataFrame) -> list[str]:
    lines = ["layer table: model  N  J_mean  J_std  max|J|  h_mean  h_std"]
    for r in tab.itertuples():
        lines.append(f"  {r.model:8s} {r.n_spins:4d} {r.J_mean:+.4f} {r.J_std:.4f} "
                     f"{r.J_max_abs:.3f} {r.h_mean:+.3f} {r.h_std:.3f}")  # fmt: skip
    return lines


# ---------------------------------------------------------------- figures


def _scatter_figure(valid: dict[str, tuple]) -> Figure:
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    for k, (name, pairs) in enumerate(valid.items()):
        for ax, (d, m) in zip(axes, pairs, strict=True):
            ax.plot(d, m, ".", ms=2, color=f"C{k}", label=name, alpha=0.6)
    for ax, what in zip(axes, ("m_i", "C_ij (i<j)", "third-order connected"), strict=True):
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
        ax.set_xlabel(f"data {what}")
        ax.set_ylabel(f"model {what} (Metropolis)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the study


def _train_and_sample(ctx, s, ds, tr, te):
    nets, samples, train_rows = {}, {}, []
    for label, arch in (("deep", DEEP_ARCH), ("shallow", SHALLOW_ARCH)):
        cfg = LRNetConfig(arch=arch, n_runs=s["runs"], epochs=s["epochs"], seed=ctx.seed,
                          precision=ctx.precision)  # fmt: skip
        ctx.log(f"LR-net {arch}: {cfg.n_runs} runs × {cfg.epochs} epochs")
        nets[label] = res = train_lrnet(ds.x[tr], ds.y[tr], cfg)
        scfg = SampleConfig(n_draws=s["draws"], threshold=s["quantile"], kind="quantile",
                            seed=ctx.seed + 1)  # fmt: skip
        samples[label] = ws = draw_weight_samples(res, ds.x[te], ds.y[te], scfg)
        mu = np.abs(np.tanh(res.flat_theta / 2))
        for r in range(cfg.n_runs):
            acc = ws.all_accuracy[r * scfg.n_draws : (r + 1) * scfg.n_draws]
            train_rows.append({"net": label, "arch": arch, "run": r,
                               "final_loss": float(res.loss[-1, r]),
                               "mean_test_acc": float(acc.mean()),
                               "mean_abs_mu": float(mu[r].mean()),
                               "kept": int((ws.run == r).sum())})  # fmt: skip
    return nets, samples, pd.DataFrame(train_rows)


def _fit_and_validate(ctx, s, name, sig, rng):
    cfg = BoltzmannBPConfig()  # the paper's η_J, η_h, λ, 100 iterations, BP 1e-4 / 1000 sweeps
    ctx.log(f"BP Boltzmann learning {name}: {sig.shape[0]} samples × {sig.shape[1]} spins")
    model, rep = BoltzmannBP(cfg).fit(sig)
    n = sig.shape[1]
    _, _, info = model_moments(model, "bp", cfg.bp)
    mc = MetropolisConfig(n_chains=s["mc_chains"], n_samples=s["mc_samples"],
                          burn_in=s["mc_burn_in"], thin=s["mc_thin"], seed=ctx.seed + 7,
                          precision=ctx.precision)  # fmt: skip
    ctx.log(f"Metropolis validation {name}: {mc.n_chains} chains")
    mcs, _, _ = metropolis_sample(model, mc)
    trip = _triplets(n, s["n_triplets"], rng)
    dmom = sample_moments(sig, triplets=trip)
    mmom = sample_moments(mcs, triplets=trip)
    iu = np.triu_indices(n, 1)
    dm, mm = dmom.m.cpu().numpy(), mmom.m.cpu().numpy()
    dC, mC = dmom.C.cpu().numpy()[iu], mmom.C.cpu().numpy()[iu]
    dK, mK = dmom.connected.cpu().numpy()[iu], mmom.connected.cpu().numpy()[iu]
    d3, m3 = dmom.third.cpu().numpy(), mmom.third.cpu().numpy()
    J, h = model.J.cpu().numpy(), model.h.cpu().numpy()
    row = {
        "model": name, "n_spins": n, "n_samples": sig.shape[0],
        "J_mean": float(J[iu].mean()), "J_std": float(J[iu].std()),
        "J_max_abs": float(np.abs(J[iu]).max()),
        "h_mean": float(h.mean()), "h_std": float(h.std()),
        "r_m": _pearson(dm, mm), "r_C": _pearson(dC, mC), "r_Cconn": _pearson(dK, mK),
        "r_3": _pearson(d3, m3), "n_triplets": len(trip),
        "bp_converged": bool(info.get("bp_converged", False)),
        "fit_error": float(rep.error),
        "best_iteration": int(rep.extras.get("best_iteration", -1)),
        "bp_not_converged_steps": int(rep.extras.get("bp_not_converged", -1)),
        "fit_seconds": rep.seconds, "mc_samples": int(mcs.shape[0]),
    }  # fmt: skip
    return model, row, ((dm, mm), (dC, mC), (d3, m3))


def run(ctx: StudyContext) -> StudyOutcome:
    s = SCALES[ctx.scale]
    seed = ctx.seed
    ds = load("mnist-sample", preset="zou2021-pca20")
    perm = np.random.default_rng(seed).permutation(ds.P)
    te, tr = perm[:N_TEST], perm[N_TEST:]
    nets, samples, training = _train_and_sample(ctx, s, ds, tr, te)
    deep, shallow = samples["deep"], samples["shallow"]
    datasets = {name: deep.layer(name) for name in LAYERS}
    if s["whole_net"]:
        datasets["deep-all"] = deep.sigma
    datasets["shallow"] = shallow.sigma
    structure = pd.DataFrame([
        {"model": name, "n_samples": sig.shape[0],
         **between_within(sig, (shallow if name == "shallow" else deep).run)}
        for name, sig in datasets.items()
    ])  # fmt: skip

    rng = np.random.default_rng(seed + 11)
    models, fit_rows, valid = {}, [], {}
    for name, sig in datasets.items():
        models[name], row, valid[name] = _fit_and_validate(ctx, s, name, sig, rng)
        fit_rows.append(row)
    fits = pd.DataFrame(fit_rows)
    layers = layer_table(fits)

    lcfg = LandscapeConfig(x_step=s["x_step"], bp=BetheConfig(), precision=ctx.precision)
    landscapes, land_rows = {}, []
    for name, model in models.items():
        refs, labels = _references(model, datasets[name], s["refs"])
        ctx.log(f"entropy landscape {name}: {len(labels)} references, {len(lcfg.grid)} tilts")
        res = entropy_landscapes(model, refs, lcfg)
        landscapes[name] = res
        for lab, r in zip(labels, res, strict=True):
            sm = r.summary().to_dict()
            land_rows.append({"model": name, "reference": lab, **{
                k: sm[k] for k in ("d_at_zero", "max_jump", "max_hysteresis", "mean_gap",
                                   "has_jump", "has_hysteresis", "n_unconverged")}})  # fmt: skip
    land = pd.DataFrame(land_rows)

    tap_res, tap_rows, fp_rows = {}, [], []
    for name, model in models.items():
        ctx.log(f"TAP landscape and BP fixed points {name}")
        t = tap_landscape(model, TAPConfig(n_starts=s["tap_starts"], max_iter=2000,
                                           seed=seed + 3, precision=ctx.precision))  # fmt: skip
        tap_res[name] = t
        f = t.free_energy
        tap_rows.append({"model": name, "n_starts": t.n_starts, "n_converged": t.n_converged,
                         "n_fixed_points": t.n_fixed_points,
                         "f_min": float(f.min()) if f.size else math.nan,
                         "f_max": float(f.max()) if f.size else math.nan})  # fmt: skip
        fp = bp_fixed_points(model, n_starts=s["bp_fp_starts"], seed=seed + 5,
                             precision=ctx.precision)  # fmt: skip
        fp_rows.append({"model": name, "n_starts": fp.n_starts, "n_converged": fp.n_converged,
                        "n_fixed_points": fp.n_fixed_points,
                        "free_entropies": ", ".join(f"{v:.4f}" for v in fp.free_entropy),
                        "counts": ", ".join(str(int(c)) for c in fp.counts)})  # fmt: skip
    taps, fixed = pd.DataFrame(tap_rows), pd.DataFrame(fp_rows)

    # iso-energy variant: hold e_0 at the low-energy reference's own energy (one sweep, down)
    icfg = IsoEnergyConfig(landscape=dataclasses.replace(lcfg, both_directions=False))
    iso_res, iso_rows = {}, []
    for name in ("ITR", "shallow"):
        ctx.log(f"iso-energy landscape {name}")
        refs, _ = _references(models[name], datasets[name], 1)
        r = iso_energy_landscape(models[name], refs[0], icfg)
        iso_res[name] = r
        iso_rows.append(iso_summary(name, r))
    iso = pd.DataFrame(iso_rows)

    claim2, ratio = claim_itr_weaker(fits)
    claims = [claim_fit_quality(fits), claim2, claim_connected(land), claim_bound(land)]

    figures = [
        ("validation_scatter", _scatter_figure(valid),
         "model (Metropolis) vs data: magnetisations, pair moments, third-order connected"),
        ("entropy_deep_layers", plot_entropy_landscape(
            {n: landscapes[n][0] for n in LAYERS}, title="deep layers, low-E ref"),
         "s(d) of the LB/ITR/RB models around a low-energy reference, with H(d)"),
        ("entropy_deep_vs_shallow", plot_entropy_landscape(
            {n: landscapes[n][0] for n in ("ITR", "shallow")}, direction="both"),
         "s(d) both sweeps: deep central layer vs shallow net"),
        ("d_of_x", plot_d_of_x({n: landscapes[n][0] for n in models}),
         "d(x) on both sweeps: jumps and hysteresis show here"),
        ("tap_histogram", _tap_figure(tap_res),
         "TAP free energies per spin of converged random starts: deep layers vs shallow"),
        ("iso_energy", _iso_figure(iso_res),
         "iso-energy s(d) (e_0 held at the low-energy reference's energy): ITR vs shallow"),
    ]  # fmt: skip
    headline = {
        "acc_deep_all_draws": float(deep.all_accuracy.mean()),
        "acc_deep_kept": float(deep.accuracy.mean()),
        "acc_shallow_all_draws": float(shallow.all_accuracy.mean()),
        "acc_shallow_kept": float(shallow.accuracy.mean()),
        "J_std_ratio_ITR": ratio,
        "r_min": float(min(fits.r_m.min(), fits.r_C.min())),
        "r3_min": float(fits.r_3.min()),
    }
    table_lines = _format_layer_table(layers)
    for line in table_lines:
        ctx.log(line)
    notes = [
        f"data: bundled 5,000-image MNIST sample ({len(tr)} train / {len(te)} test), "
        "not full MNIST",
        f"accuracy of all draws: deep {deep.all_accuracy.mean():.3f}, shallow "
        f"{shallow.all_accuracy.mean():.3f}; kept (paper: up 0.80–0.83, shallow 0.70–0.72): "
        f"deep {deep.accuracy.mean():.3f}, shallow {shallow.accuracy.mean():.3f}",
        f"thresholds: deep {deep.threshold_rule} → {deep.threshold:.3f}, "
        f"shallow {shallow.threshold_rule} → {shallow.threshold:.3f}",
        f"samples: {s['runs']} runs × {s['draws']} draws per net; kept deep {len(deep.sigma)}, "
        f"shallow {len(shallow.sigma)}",
        "inverse method: BP Boltzmann learning, the paper's settings (η_J 0.01, η_h 0.3, "
        "λ 1e-4, 100 steps, best iterate); validation by Metropolis on the fitted model",
        "\n".join(table_lines),
        "sample structure (connected correlations, mean |·| over i<j): " + "; ".join(
            f"{r.model} pooled {r.conn_pooled:.3f}, within runs {r.conn_within:.4f}, "
            f"between-run share {r.between_fraction:.3f} ({r.runs} runs)"
            for r in structure.itertuples()),
        "TAP: " + "; ".join(f"{r.model} {r.n_fixed_points} fixed points "
                            f"({r.n_converged}/{r.n_starts} converged)"
                            for r in taps.itertuples()),
        "BP fixed points at x = 0: " + "; ".join(
            f"{r.model} {r.n_fixed_points} ({r.n_converged}/{r.n_starts} converged)"
            for r in fixed.itertuples()),
        "iso-energy (one downward sweep, low-E reference): " + "; ".join(
            f"{r.model} {r.n_converged}/{r.n_points} converged, max |Δd| {r.max_jump:.3f}, "
            f"mean gap {r.mean_gap:.3g}" for r in iso.itertuples()),
        "references: data samples at the 5/50/95% quantiles of model energy",
        "departures from the paper: docs/studies/maxent.md",
    ]  # fmt: skip
    n_bad = int(land.n_unconverged.sum())
    n_all = len(land) * 2 * len(lcfg.grid)
    notes.append(f"landscapes: BP unconverged at {n_bad} of {n_all} (reference, sweep, x) points;"
                 " unconverged points are excluded from jumps, hysteresis and gaps")  # fmt: skip
    if not s["whole_net"]:
        notes.append("the whole 675-spin deep net is not fitted at this scale (layers only)")
    return StudyOutcome(
        claims=claims,
        figures=figures,
        tables={
            "training": training,
            "fits": fits,
            "layers": layers,
            "sample_structure": structure,
            "landscapes": land,
            "tap": taps,
            "bp_fixed_points": fixed,
            "iso_energy": iso,
        },
        headline=headline,
        notes=notes,
        config={
            "scale": ctx.scale,
            **s,
            "n_test": N_TEST,
            "inverse": {
                "method": "boltzmann_bp",
                **{k: v for k, v in dataclasses.asdict(BoltzmannBPConfig()).items() if k != "bp"},
            },
            "r_min": R_MIN,
            "r3_min": R3_MIN,
            "itr_ratio_max": ITR_RATIO_MAX,
            "lrnet": {
                k: v
                for k, v in dataclasses.asdict(nets["deep"].config).items()
                if k not in ("arch", "precision")
            },
        },
    )


STUDY = register_study(
    Study(
        name="maxent",
        title="A data-driven max-ent model of binary-network weight space (liquid-like centre)",
        paper="Zou & Huang, Phys. Rev. Research 3, 033290 (2021)",
        run=run,
        plan=plan,
    )
)
