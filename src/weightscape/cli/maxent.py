"""``weightscape maxent …``: the max-ent (pairwise Ising) study of weight space.

The ``maxent`` sub-typer collects one function per command in :data:`COMMANDS`; each takes the
sub-typer and adds its command, so a new command (``train``, ``sample``, ``fit``, ``validate``) is
one more ``_add_<name>(sub)`` function appended there. No science lives here: commands parse and
validate options, call :mod:`weightscape.maxent`, write a run directory and print a summary.

``weightscape maxent landscape MODEL.npz | --couplings J [--fields h] [--references R]
[--slice A:B] --out DIR``: entropy landscapes around references (read from a file, or drawn from
the model in low/medium/high energy classes).

``weightscape maxent accuracy MODEL --samples S --out DIR``: the fitted model as a model of
networks — Ising energy vs test accuracy of the kept samples, and Monte Carlo walks from trained
weights whose every record is tested as a network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from ..errors import ConfigError, check_positive
from ._options import (
    LRNET_BATCH_SIZE,
    LRNET_DATA,
    LRNET_LR,
    LRNET_P,
    LRNET_TEST_SIZE,
    Force,
    RunOut,
    check_out,
    create_run,
    parse_floats,
)

__all__ = ["COMMANDS", "register"]


def load_model_arg(model: str | None, couplings: str | None, fields: str | None):
    """The model from ``MODEL`` (``.npz`` written by IsingModel.save, or a matrix file) or from
    ``--couplings``/``--fields``; exactly one of the two ways."""
    from ..maxent import IsingModel

    if model is not None and couplings is not None:
        raise ConfigError("give either MODEL or --couplings (with optional --fields), not both")
    if model is None and couplings is None:
        raise ConfigError("no model: give MODEL.npz or --couplings J [--fields h]")
    if model is not None:
        if Path(model).is_dir():  # the run directory of 'maxent fit', as validate takes it
            if not (Path(model) / "model.npz").is_file():
                raise ConfigError(f"MODEL {model!r} is a folder without model.npz")
            model = str(Path(model) / "model.npz")
        if fields is not None and Path(model).suffix == ".npz":
            raise ConfigError("--fields cannot be combined with an .npz MODEL (it holds h)")
        return IsingModel.from_files(model, fields)
    return IsingModel.from_files(couplings, fields)


def _add_landscape(sub: typer.Typer) -> None:
    @sub.command("landscape")
    def landscape(
        model: str = typer.Argument(
            None,
            help="Model .npz (J, h) written by IsingModel.save, or the run dir of 'maxent fit'.",
        ),
        couplings: str = typer.Option(
            None, "--couplings", help="N x N coupling matrix (text or .npy); symmetrised."
        ),
        fields: str = typer.Option(None, "--fields", help="Length-N fields (text or .npy)."),
        references: str = typer.Option(
            None,
            "--references",
            help="Reference file: rows 'E acc s1..sN' (authors') or a +-1 matrix. "
            "Default: sample low/medium/high-energy references from the model.",
        ),
        references_format: str = typer.Option(
            "auto", "--references-format", help="auto, authors or plain."
        ),
        slice_: str = typer.Option(
            None, "--slice", help="Columns A:B of the references (or LB, ITR, RB, FULL)."
        ),
        n_per_class: int = typer.Option(3, "--n-per-class", help="Sampled references per class."),
        classes: str = typer.Option("low,medium,high", "--classes", help="Energy classes."),
        mc_chains: int = typer.Option(50, "--mc-chains", help="Metropolis chains (sampling)."),
        mc_samples: int = typer.Option(20, "--mc-samples", help="Records per chain."),
        mc_burn_in: int = typer.Option(1000, "--mc-burn-in", help="Relaxation sweeps."),
        mc_thin: int = typer.Option(10, "--mc-thin", help="Sweeps between records."),
        x_min: float = typer.Option(-3.0, "--x-min", help="Smallest tilt."),
        x_max: float = typer.Option(3.0, "--x-max", help="Largest tilt."),
        x_step: float = typer.Option(
            None, "--x-step", help="Tilt step (default 0.05 with --method bp, 0.1 with mc)."
        ),
        method: str = typer.Option(
            "bp",
            "--method",
            help="bp (Bethe: BP at every tilt, the paper's) or mc (persistent heat-bath chains "
            "carried along the sweep, s(d) by thermodynamic integration: for models where BP "
            "does not converge).",
        ),
        chains: int = typer.Option(
            None, "--chains", help="--method mc: chains per reference (default 64)."
        ),
        sweeps_per_x: int = typer.Option(
            None,
            "--sweeps-per-x",
            help="--method mc: sweeps per tilt, the last half recorded (default 100; >= 4).",
        ),
        confirm: int = typer.Option(
            None,
            "--confirm",
            help="--method mc: re-sweep every reference with significant hysteresis at CONFIRM "
            "x the sweeps per tilt around its loop; it PERSISTS (two states) or is GONE (slow "
            "chains lagging behind a steep d(x)). Default 4; 0: do not confirm.",
        ),
        first_sweep: str = typer.Option("down", "--first-sweep", help="down (from x_max) or up."),
        single_sweep: bool = typer.Option(
            False, "--single-sweep", help="Only the first sweep (no hysteresis)."
        ),
        init_messages: str = typer.Option("zero", "--init-messages", help="zero or random."),
        predictor: str = typer.Option(
            "cubic", "--predictor", help="Warm start: previous, linear, quadratic or cubic."
        ),
        damping: float = typer.Option(0.5, "--damping", help="BP damping (old fraction)."),
        tol: float = typer.Option(1e-6, "--tol", help="BP tolerance."),
        max_iter: int = typer.Option(1000, "--max-iter", help="BP sweeps per tilt."),
        criterion: str = typer.Option(
            "max_change", "--criterion", help="max_change, max_residual or mean_change."
        ),
        accel: str = typer.Option(
            "adaptive+anderson",
            "--accel",
            help="adaptive+anderson (Anderson mixing once convergence turns slow), adaptive, "
            "anderson or none (fixed damping, the authors' scheme).",
        ),
        jump_threshold: float = typer.Option(
            None, "--jump-threshold", help="Jump: |dd| between neighbours above (default x-step)."
        ),
        refine: int = typer.Option(
            8,
            "--refine",
            help="Re-sweep the largest step of d(x) of every flagged reference (jump or "
            "hysteresis) at x-step/REFINE: JUMP if one sub-step keeps > 1/2 of the change (a "
            "discontinuity), STEEP if it spreads (a steep smooth curve). 0: do not refine.",
        ),
        scan: int = typer.Option(
            25,
            "--scan",
            help="Redo both sweeps of every reference at x-step/SCAN around its largest steps "
            "and largest hysteresis: finds hysteresis narrower than the grid step (HYSTERESIS "
            "(fine)). 0 (or --single-sweep): no scan.",
        ),
        gap_average: str = typer.Option(
            "down_converged",
            "--gap-average",
            help="down_converged, up_converged or all_converged.",
        ),
        batch_size: int = typer.Option(
            None, "--batch-size", help="References per batched BP (default: all)."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        seed: int = typer.Option(0, "--seed", help="Seed of sampling and random messages."),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write figures."),
        out: str = typer.Option(..., "--out", help="Output directory to create."),
        force: Force = False,
    ) -> None:
        """Entropy landscapes s(d) around reference configurations (tilt sweeps: Bethe, or
        Monte Carlo with --method mc).

        Prints, per reference: d at x = 0, the largest jump of d on the downward sweep and
        where, the largest hysteresis |d_down - d_up|, the mean gap H(d) - s(d) and, for a
        flagged reference, whether its largest step is a discontinuity (--refine), and
        hysteresis found between grid points (--scan). Writes
        landscape.parquet (long table), landscape.npz, references.npz, summary.json,
        config.json and figures/ under --out.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, model, couplings, fields, references)
        from ..config import Precision
        from ..maxent import (
            CONFIRM_FACTOR,
            BetheConfig,
            LandscapeConfig,
            MCLandscapeConfig,
            MetropolisConfig,
            ReferenceSampling,
            parse_slice,
            read_references,
            sample_references,
        )

        # ---- validate everything before anything is written
        _check_seed(seed)
        if isinstance(refine, bool) or refine < 0 or refine == 1:
            raise ConfigError(f"--refine {refine} must be 0 (off) or an integer >= 2")
        if isinstance(scan, bool) or scan < 0 or scan == 1:
            raise ConfigError(f"--scan {scan} must be 0 (off) or an integer >= 2")
        _check_choice("--method", method, LANDSCAPE_METHODS)
        bp_only = {"--damping": (damping, 0.5), "--tol": (tol, 1e-6),
                   "--max-iter": (max_iter, 1000), "--criterion": (criterion, "max_change"),
                   "--accel": (accel, "adaptive+anderson"),
                   "--init-messages": (init_messages, "zero"), "--predictor": (predictor, "cubic"),
                   "--refine": (refine, 8), "--scan": (scan, 25)}  # fmt: skip
        if method == "mc":
            for flag, (value, default) in bp_only.items():
                # 0 turns --refine / --scan off, which is what --method mc does anyway
                if value != default and not (flag in ("--refine", "--scan") and value == 0):
                    raise ConfigError(f"{flag}={value!r} applies to --method bp only")
            refine = scan = 0
        else:
            mc_flags = (("--chains", chains), ("--sweeps-per-x", sweeps_per_x),
                        ("--confirm", confirm))  # fmt: skip
            for flag, value in mc_flags:
                if value is not None:
                    raise ConfigError(f"{flag}={value!r} applies to --method mc only")
        mdl = load_model_arg(model, couplings, fields)
        cols = parse_slice(slice_)
        grid = {"x_min": x_min, "x_max": x_max, "first_sweep": first_sweep,
                "both_directions": not single_sweep, "seed": seed,
                "jump_threshold": jump_threshold, "gap_average": gap_average,
                "batch_size": batch_size, "precision": Precision(device=device)}  # fmt: skip
        confirm = CONFIRM_FACTOR if confirm is None else confirm  # the library's default
        if method == "mc" and (isinstance(confirm, bool) or confirm < 0 or confirm == 1):
            raise ConfigError(f"--confirm {confirm} must be 0 (off) or an integer >= 2")
        if method == "mc":
            # unset flags take the library's defaults (the dataclass fields' values)
            sweeps = MCLandscapeConfig.sweeps_per_x if sweeps_per_x is None else sweeps_per_x
            if isinstance(sweeps, bool) or sweeps < 4:
                raise ConfigError(f"--sweeps-per-x={sweeps!r} must be an integer >= 4")
            cfg = MCLandscapeConfig(
                x_step=MCLandscapeConfig.x_step if x_step is None else x_step,
                n_chains=MCLandscapeConfig.n_chains if chains is None else chains,
                sweeps_per_x=sweeps,
                measure_sweeps=2 * (sweeps // 4),  # the last half, even
                **grid,
            )
        else:
            bp = BetheConfig(
                damping=damping, tol=tol, max_iter=max_iter, criterion=criterion, accel=accel
            )
            cfg = LandscapeConfig(
                x_step=LandscapeConfig.x_step if x_step is None else x_step,
                init_messages=init_messages,
                predictor=predictor,
                bp=bp,
                **grid,
            )
        sampling = None
        if references is not None:
            refs = read_references(references, fmt=references_format, columns=cols)
            refs = refs.with_model_energies(mdl)
        else:
            if cols is not None:
                raise ConfigError("--slice selects columns of --references; give a file too")
            _positive(mc_samples=mc_samples)  # (0 is a valid MetropolisConfig: burn-in only)
            sampling = ReferenceSampling(
                n_per_class=n_per_class,
                classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
                metropolis=MetropolisConfig(
                    n_chains=mc_chains,
                    n_samples=mc_samples,
                    burn_in=mc_burn_in,
                    thin=mc_thin,
                    seed=seed,
                ),
                seed=seed,
            )
            refs = sample_references(mdl, sampling)  # before --out exists: may fail
        rd = create_run(out, force, model, couplings, fields, references)

        def write(rd):
            payload = run_landscape(
                mdl, refs, sampling, cfg, rd, plots=plots, refine=refine, scan=scan,
                confirm=confirm if method == "mc" else 0,
            )  # fmt: skip
            for row in payload["references"]:
                typer.echo(_line(row))
            typer.echo(f"wrote {rd.path}")

        _guarded(rd, write)


def run_landscape(
    model, refs, sampling, cfg, rd, *, plots: bool = True, refine: int = 8, scan: int = 0,
    confirm: int = 0,
) -> dict:  # fmt: skip
    """Compute the landscapes and write the run directory ``rd``; returns the summary payload.

    ``refs`` (:class:`~weightscape.maxent.References`) were read or drawn with ``sampling``
    (recorded in ``config.json``; ``None`` for a file). ``refine`` (≥ 2; 0 = off): sub-steps
    per tilt step when the largest downward step of a flagged reference is re-swept
    (:func:`~weightscape.maxent.refine_jump`); its ratio and verdict join the summary rows.
    ``scan`` (≥ 2; 0 = off): both sweeps of every reference redone at ``x_step / scan`` around
    its largest steps (:func:`~weightscape.maxent.scan_hysteresis`); its hysteresis joins the
    rows as ``fine_*`` and the fine curves are written to ``scan.parquet``. ``confirm`` (≥ 2;
    0 = off; Monte Carlo only): a reference with significant hysteresis is re-swept around its
    loop at ``confirm``× the sweeps per tilt (:func:`~weightscape.maxent.confirm_hysteresis`);
    its ``confirm_*`` columns join the rows.
    """
    import time
    from dataclasses import asdict

    import numpy as np
    import pandas as pd

    from ..maxent import (
        MCLandscapeConfig,
        confirm_hysteresis,
        entropy_landscapes,
        mc_entropy_landscapes,
        plot_d_of_x,
        plot_entropy_landscape,
        refine_jump,
        scan_hysteresis,
    )

    mc = isinstance(cfg, MCLandscapeConfig)
    if mc:
        refine = scan = 0  # both re-sweep by BP
    t0 = time.perf_counter()
    results = (mc_entropy_landscapes if mc else entropy_landscapes)(model, refs.sigma, cfg)
    t1 = time.perf_counter()
    n = model.n_spins
    frames, rows, scans, t_refine, t_scan = [], [], [], 0.0, 0.0
    scan = scan if len(cfg.sweeps) == 2 else 0  # a single sweep has no hysteresis to look for
    for i, r in enumerate(results):
        f = r.to_frame()
        f.insert(0, "label", refs.labels[i])
        f.insert(0, "reference", i)
        frames.append(f)
        s = r.summary().to_dict()
        flagged = bool(s["has_jump"] or s["has_hysteresis"]) and "down" in cfg.sweeps
        t2 = time.perf_counter()
        rj = refine_jump(model, refs.sigma[i], r, factor=refine) if refine and flagged else None
        t_refine += time.perf_counter() - t2
        t3 = time.perf_counter()
        sc = scan_hysteresis(model, refs.sigma[i], r, factor=scan) if scan else None
        t_scan += time.perf_counter() - t3
        fine = {}
        if sc is not None:
            fine = sc.columns()
            for k, name in enumerate(("down", "up")):
                scans.append(pd.DataFrame({
                    "reference": i, "label": refs.labels[i], "direction": name, "x": sc.x,
                    "d": sc.d[k], "converged": sc.converged[k], "fine": sc.fine,
                }))  # fmt: skip
        rows.append(
            {
                "reference": i,
                "label": refs.labels[i],
                "energy_per_spin": float(refs.energy[i]) / n,
                **s,
                # NaN / None: not flagged, or not refined (--refine 0)
                "refined_ratio": rj["ratio"] if rj else float("nan"),
                "discontinuous": bool(rj["discontinuous"]) if rj else None,
                **fine,
                # Monte Carlo: tilts with significant hysteresis (threshold and z errors)
                **({"n_significant": int(r.significant_hysteresis().sum())} if mc else {}),
                **(
                    confirm_hysteresis(model, refs.sigma[i], r, factor=confirm).columns()
                    if mc and confirm and s["has_hysteresis"]
                    else {}
                ),
            }
        )
    rd.write_config(
        {"landscape": asdict(cfg), "sampling": None if sampling is None else asdict(sampling)},
        device=str(cfg.precision.torch_device),
        extra={"n_spins": n, "n_references": refs.n_references, "source": refs.source},
    )
    rd.write_metrics(pd.concat(frames, ignore_index=True), "landscape")
    if scans:
        rd.write_metrics(pd.concat(scans, ignore_index=True), "scan")
    keys = ("d", "q", "s", "free_entropy", "energy", "e0", "converged", "iterations")
    keys += ("d_se",) if mc else ()
    stack = {k: np.stack([getattr(r, k) for r in results]) for k in keys}
    rd.write_arrays("landscape", x=cfg.grid, **stack)
    rd.write_arrays(
        "references",
        sigma=refs.sigma,
        energy=refs.energy,
        labels=np.asarray(refs.labels, dtype=str),
        file_energy=refs.file_energy,
        accuracy=refs.accuracy,
    )
    payload = {
        "references": rows,
        "seconds_landscape": t1 - t0,
        "seconds_refine": t_refine,
        "refine_factor": refine,
        "seconds_scan": t_scan,
        "scan_factor": scan,
        "n_spins": n,
        "method": "mc" if mc else "bp",
        "confirm_factor": confirm if mc else 0,
    }
    rd.write_json("summary.json", payload)
    if plots:
        from ..plots import save_figure

        labels = [f"{i}: {lab}" for i, lab in enumerate(refs.labels)]
        figdir = rd.path / "figures"
        save_figure(plot_entropy_landscape(results, labels), figdir / "entropy_landscape")
        save_figure(plot_d_of_x(results, labels), figdir / "d_of_x")
    rd.mark_done()
    return payload


def _fmt(v: float, spec: str = ".4f") -> str:
    return "nan" if v != v else format(v, spec)


def _line(row: dict) -> str:
    a, b = row["max_jump_x"]
    flags = []
    disc, ratio = row.get("discontinuous"), _fmt(row.get("refined_ratio", float("nan")), ".2f")
    if disc:  # a flagged step that stays discontinuous when refined (with or without |dd| > thr)
        flags.append(f"JUMP (discontinuous, refined ratio {ratio})")
    elif row["has_jump"] and "n_significant" in row:  # Monte Carlo: steps are not refined
        flags.append("STEP (|dd| > jump threshold)")
    elif row["has_jump"] and disc is None:
        flags.append("JUMP (not refined)")
    elif row["has_jump"]:
        flags.append(f"STEEP (smooth when refined, ratio {ratio})")
    if row["has_hysteresis"] and "n_significant" in row:
        flags.append(f"HYSTERESIS (significant at {row['n_significant']} tilts)")
        if "confirm_persists" in row:
            k, h = row["confirm_sweeps_per_x"], _fmt(row["confirm_max_hysteresis"])
            word = "PERSISTS" if row["confirm_persists"] else "GONE"
            flags.append(f"{word} at {k} sweeps per tilt (max {h})")
    elif row["has_hysteresis"]:
        flags.append("HYSTERESIS")
    elif row.get("fine_has_hysteresis"):
        lo, hi = row["fine_hysteresis_from"], row["fine_hysteresis_to"]
        flags.append(
            f"HYSTERESIS (fine) {_fmt(row['fine_hysteresis'])} "
            f"at x={_fmt(lo, '.3f')}..{_fmt(hi, '.3f')}"
        )
    if row["n_unconverged"]:
        what = "drifting" if "n_significant" in row else "unconverged"
        flags.append(f"{row['n_unconverged']} {what}")
    return (
        f"reference {row['reference']} ({row['label']}, E/N={_fmt(row['energy_per_spin'])}): "
        f"d(0)={_fmt(row['d_at_zero'])}  "
        f"max jump down {_fmt(row['max_jump'])} at x={_fmt(a, '.2f')}->{_fmt(b, '.2f')}  "
        f"max hysteresis {_fmt(row['max_hysteresis'])} at x={_fmt(row['max_hysteresis_x'], '.2f')}"
        f"  mean gap H-s {_fmt(row['mean_gap'])}" + (f"  [{', '.join(flags)}]" if flags else "")
    )


# ---------------------------------------------------------------------------------------------
# train | sample | fit | validate: the weight-sample pipeline of the study

DATASETS = ("mnist", "fashion-mnist", "mnist-sample")
FIT_METHODS = ("bp", "mc", "pseudo", "decimation", "mean-field", "tap", "exact")
LANDSCAPE_METHODS = ("bp", "mc")
# methods that fit samples, not moments (so --symmetrise does not apply)
SAMPLE_METHODS = ("pseudo", "decimation")
# Test points held out of data sets without a given test part (the bundled MNIST sample).
DEFAULT_HELD_OUT = 1000


def _check_choice(flag: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{flag}={value!r} is not allowed; choose one of {list(allowed)}")


def _positive(**flags) -> None:
    """Each ``--flag`` (keyword with ``_`` for ``-``) must be a positive finite number."""
    for name, value in flags.items():
        if value is not None:
            check_positive("--" + name.replace("_", "-"), value, finite=True)


def _check_seed(seed: int) -> None:
    """``--seed`` must be a non-negative integer (NumPy's generators refuse negative seeds)."""
    if seed < 0:
        raise ConfigError(f"--seed={seed!r} must be an integer >= 0")


def _guarded(rd, write) -> None:
    """Run ``write(rd)``; on a failure before the run is complete remove ``rd`` (nothing
    half-written), then re-raise. A run already marked DONE is kept: a failure after that is in
    what is printed about it (e.g. a closed pipe, ``... | head``), not in the run."""
    import shutil

    try:
        write(rd)
    except BaseException:
        if not rd.done:
            shutil.rmtree(rd.path, ignore_errors=True)
        raise


def data_recipe(data: str, preset: str | None, P: int | None, test_size: int | None, seed: int):
    """The :func:`weightscape.data.load` options of a maxent training run (validated)."""
    _check_choice("--data", data, DATASETS)
    opts: dict = {"seed": seed}
    if preset is not None and preset.lower() != "none":
        opts["preset"] = preset
    if P is not None:
        if P < 1:
            raise ConfigError(f"--P={P!r} must be a positive number of training points")
        opts["train_size"] = P
    if test_size is not None:
        if test_size < 1:
            raise ConfigError(f"--test-size={test_size!r} must be a positive number of points")
        opts["test_size"] = test_size
    elif data == "mnist-sample":
        opts["test_size"] = DEFAULT_HELD_OUT  # no given test part: hold out a seeded subset
    return {"name": data, "options": opts}


def load_recipe(recipe: dict):
    """Load the data set of a recipe; it must have a test part."""
    from ..data import load

    ds = load(recipe["name"], **recipe["options"])
    if ds.x_test is None or len(ds.x_test) == 0:
        raise ConfigError(f"data {recipe['name']!r} has no test points; give --test-size")
    if ds.task != "multiclass":
        raise ConfigError(f"data {recipe['name']!r} is {ds.task}; LR-nets need class labels")
    return ds


def _check_arch_fits(widths: tuple[int, ...], ds, arch: str) -> None:
    d, k = ds.x.shape[1], len(ds.classes)
    if widths[0] != d:
        raise ConfigError(
            f"--arch={arch!r} takes {widths[0]} inputs but data {ds.name!r} has d = {d} "
            f"(with this preset); use an arch starting with {d}"
        )
    if widths[-1] < k:
        raise ConfigError(
            f"--arch={arch!r} has {widths[-1]} outputs but data {ds.name!r} has {k} classes"
        )


def _add_train(sub: typer.Typer) -> None:
    @sub.command("train")
    def train(
        arch: str = typer.Option(
            "20-15-15-10", "--arch", help="Widths, e.g. 20-15-15-10 or 20-10."
        ),
        data: str = LRNET_DATA,
        preset: str = typer.Option("zou2021-pca20", "--preset", help="Data preset (or none)."),
        P: int = LRNET_P,
        test_size: int = LRNET_TEST_SIZE,
        runs: int = typer.Option(4, "--runs", help="Independent LR-net runs trained together."),
        epochs: int = typer.Option(20, "--epochs", help="Epochs."),
        batch_size: int = LRNET_BATCH_SIZE,
        lr: float = LRNET_LR,
        l2: float = typer.Option(1e-5, "--l2", help="L2 on theta (Adam weight decay)."),
        init_std: float = typer.Option(0.1, "--init-std", help="theta ~ N(0, init_std^2)."),
        seed: int = typer.Option(0, "--seed", help="Seed of init, batches, noise and data split."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Train LR-nets (binary weights, local reparameterisation) on PCA-20 MNIST-like data.

        Writes lrnet.npz (theta per layer, loss), loss.parquet (epoch, run, loss),
        summary.json (data set named, final loss, mean test accuracy of the mean-sign net),
        config.json (config, seed, data recipe, provenance) and DONE under --out.
        """
        check_out(out, force)  # an --out it must not write: refused before any work
        from dataclasses import asdict

        from ..maxent import LRNetConfig, layer_map

        _positive(runs=runs, epochs=epochs, init_std=init_std)
        cfg = LRNetConfig(
            arch=arch,
            n_runs=runs,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            l2=l2,
            init_std=init_std,
            seed=seed,
        )
        recipe = data_recipe(data, preset, P, test_size, seed)
        ds = load_recipe(recipe)
        _check_arch_fits(cfg.widths, ds, arch)
        rd = create_run(out, force)

        def write(rd):
            import numpy as np
            import pandas as pd

            from ..maxent import save_lrnet, train_lrnet

            res = train_lrnet(ds.x.copy(), ds.y.copy(), cfg)
            save_lrnet(res, rd.path / "lrnet.npz")
            E, M = res.loss.shape
            rd.write_metrics(
                pd.DataFrame(
                    {
                        "epoch": np.repeat(np.arange(E), M),
                        "run": np.tile(np.arange(M), E),
                        "loss": res.loss.ravel(),
                    }
                ),
                "loss",
            )
            rd.write_config(
                asdict(cfg), seeds=[seed], extra={"data": recipe, "kind": "maxent-train"}
            )
            rd.write_json(
                "summary.json",
                {
                    "arch": arch,
                    "n_weights": cfg.n_weights,
                    "layers": layer_map(arch),
                    "data": ds.name,
                    "preset": recipe["options"].get("preset"),
                    "P_train": int(ds.x.shape[0]),
                    "P_test": int(ds.x_test.shape[0]),
                    "final_loss": res.loss[-1].tolist(),
                    "data_provenance": ds.provenance,
                },
            )
            rd.mark_done()
            typer.echo(
                f"trained {M} LR-nets {arch} (N = {cfg.n_weights}) for {E} epochs on {ds.name} "
                f"(P = {ds.x.shape[0]}); final loss {float(res.loss[-1].mean()):.4f}; "
                f"run: {rd.path}"
            )

        _guarded(rd, write)


def _open_train_run(path: str):
    from ..errors import RunDirError
    from ..store import RunDir

    rd = RunDir.open(path)
    meta = rd.read_config()
    if meta.get("kind") != "maxent-train" or not (rd.path / "lrnet.npz").is_file():
        raise RunDirError(f"{path!r} is not a run of 'weightscape maxent train' (no lrnet.npz)")
    return rd, meta


def _add_sample(sub: typer.Typer) -> None:
    @sub.command("sample")
    def sample(
        run: str = typer.Argument(..., help="Run directory of 'weightscape maxent train'."),
        draws: int = typer.Option(100, "--draws", help="Weight draws per LR-net run."),
        threshold: float = typer.Option(
            0.5, "--threshold", help="Accuracy cut (absolute) or quantile of all draws' accuracies."
        ),
        kind: str = typer.Option("quantile", "--kind", help="quantile or absolute."),
        seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Draw binary weights sigma ~ Bernoulli(sigmoid theta), test each, keep the accurate.

        Writes samples.npz (bit-packed spins, per-sample accuracy and run id, layer map,
        threshold and its kind), samples.parquet, summary.json, config.json and DONE.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, run)
        from dataclasses import asdict

        from ..maxent import SampleConfig, draw_weight_samples, load_lrnet

        _positive(draws=draws)
        _check_seed(seed)
        scfg = SampleConfig(n_draws=draws, threshold=threshold, kind=kind, seed=seed)
        trd, tmeta = _open_train_run(run)
        res = load_lrnet(trd.path / "lrnet.npz")
        ds = load_recipe(tmeta["data"])
        ws = draw_weight_samples(res, ds.x_test.copy(), ds.y_test.copy(), scfg)
        if ws.sigma.shape[0] == 0:
            raise ConfigError(
                f"--threshold={threshold!r} ({kind}) keeps no sample: the best draw has "
                f"accuracy {float(ws.all_accuracy.max()):.4f}; lower it or use --kind quantile"
            )
        rd = create_run(out, force, run)

        def write(rd):
            import numpy as np
            import pandas as pd

            from ..maxent import save_weight_samples

            meta = {
                "arch": res.config.arch,
                "data": ds.name,
                "train_run": str(trd.path.resolve()),
                "threshold_kind": kind,
            }
            save_weight_samples(ws, rd.path / "samples.npz", **meta)
            S = ws.sigma.shape[0]
            rd.write_metrics(
                pd.DataFrame({"sample": np.arange(S), "run": ws.run, "accuracy": ws.accuracy}),
                "samples",
            )
            rd.write_config(
                asdict(scfg),
                seeds=[seed],
                extra={"kind": "maxent-sample", "train_run": str(trd.path.resolve())},
            )
            summary = {
                "n_kept": S,
                "n_drawn": int(ws.all_accuracy.size),
                "n_spins": int(ws.sigma.shape[1]),
                "threshold": ws.threshold,
                "threshold_rule": ws.threshold_rule,
                "threshold_kind": kind,
                "accuracy_kept_mean": float(ws.accuracy.mean()),
                "accuracy_all_mean": float(ws.all_accuracy.mean()),
                "accuracy_all_max": float(ws.all_accuracy.max()),
                "layers": ws.layers,
                **meta,
            }
            rd.write_json("summary.json", summary)
            rd.mark_done()
            typer.echo(
                f"kept {S} of {ws.all_accuracy.size} weight samples (N = {ws.sigma.shape[1]}) "
                f"with test accuracy >= {ws.threshold:.4f} ({ws.threshold_rule}) on {ds.name}; "
                f"run: {rd.path}"
            )

        _guarded(rd, write)


def resolve_layer(spec: str, layers: dict[str, tuple[int, int]], n: int) -> tuple[str, int, int]:
    """``--layer``: a layer name of the samples' layer map, ``all``, or ``A:B`` → (name, a, b)."""
    t = str(spec).strip()
    if t.lower() in ("all", "full"):
        return "all", 0, n
    if t in layers:
        a, b = layers[t]
        return t, a, b
    from ..maxent import parse_range

    ab = parse_range(t)
    if ab is None:
        raise ConfigError(
            f"--layer={spec!r} is not allowed; choose one of {[*layers, 'all']} or A:B "
            f"(0-based, end exclusive, within 0:{n})"
        )
    a, b = ab
    if not 0 <= a < b <= n:
        raise ConfigError(f"--layer={spec!r} must satisfy 0 <= A < B <= {n}")
    return t, a, b


def _open_samples(path: str):
    from pathlib import Path as _P

    from ..maxent import load_weight_samples

    p = _P(path)
    if p.is_dir():
        p = p / "samples.npz"
    ws, meta = load_weight_samples(p)
    return ws, {**meta, "samples_file": str(p.resolve())}


def _arch(meta: dict, samples: str) -> str:
    """The architecture a samples file records (``arch`` of its metadata), or a one-line error."""
    arch = meta.get("arch")
    if arch is None:
        raise ConfigError(f"{samples!r} does not record its architecture (arch)")
    return arch


# --bp-scheme of --method bp: the study's stable-iterate scheme or the authors' learning script.
BP_SCHEMES = ("stable", "authors")
# --max-iter when not given: the authors' script runs 100 learning steps; every other method 500.
DEFAULT_MAX_ITER, AUTHORS_MAX_ITER = 500, 100
# --l2 when not given: pseudo-likelihood 1e-3 (samples are few compared with N²/2 couplings),
# BP learning the paper's λ = 1e-4, exact learning none.
DEFAULT_L2 = {"pseudo": 1e-3, "decimation": 1e-3, "bp": 1e-4, "mc": 0.0, "exact": 0.0}


def make_method(
    method: str,
    *,
    l1: float,
    l2: float | None,
    max_iter: int | None,
    ridge: float,
    evaluate: str,
    keep_from: int = 0,
    decimation_step: float | None = None,
    chains: int | None = None,
    seed: int | None = None,
    symmetry: tuple[str, int] | None = None,
    bp_scheme: str | None = None,
):
    """The inverse method object of ``--method`` (validated); ``l2=None`` and ``max_iter=None``:
    the method's defaults (``max_iter`` 500, or 100 with ``--bp-scheme authors``);
    ``keep_from`` (bp only): the kept iterate is the best of steps ``keep_from … max_iter``
    (``--bp-scheme authors``: 51 when not given); ``bp_scheme`` (bp only, ``None`` =
    ``"stable"``): ``"stable"`` (start h = atanh m, warm-started damped BP, only iterates whose BP
    converged to an attracting fixed point kept) or ``"authors"`` (the authors' learning script,
    :meth:`~weightscape.maxent.BoltzmannBPConfig.authors`, drawing from ``seed``);
    ``decimation_step`` (decimation only, ``None`` = 0.02): the fraction of all couplings pruned
    per round; ``chains``, ``seed`` and ``symmetry`` (mc only): persistent chains (``None`` =
    1000), their seed (``None`` = 0), and ``(arch, first spin)`` for orbit-averaged Monte Carlo
    moments."""
    from ..maxent import (
        BoltzmannBP,
        BoltzmannBPConfig,
        DecimationConfig,
        ExactBoltzmann,
        ExactBoltzmannConfig,
        MeanFieldConfig,
        MeanFieldInversion,
        MonteCarloBoltzmann,
        MonteCarloBoltzmannConfig,
        PseudoLikelihood,
        PseudoLikelihoodConfig,
        PseudoLikelihoodDecimation,
        TAPInversion,
    )

    _check_choice("--method", method, FIT_METHODS)
    if l1 and method != "pseudo":
        raise ConfigError(f"--l1={l1!r} applies to --method pseudo only (got {method!r})")
    if ridge and method not in ("mean-field", "tap"):
        raise ConfigError(f"--ridge={ridge!r} applies to --method mean-field or tap only")
    if l2 is None:
        l2 = DEFAULT_L2.get(method, 0.0)
    elif method in ("mean-field", "tap"):
        raise ConfigError(f"--l2 does not apply to --method {method} (use --ridge)")
    if keep_from and method != "bp":
        raise ConfigError(f"--keep-from applies to --method bp only, not --method {method}")
    if decimation_step is not None:
        if method != "decimation":
            raise ConfigError(
                f"--decimation-step applies to --method decimation only, not --method {method}"
            )
        if not 0 < decimation_step < 1:
            raise ConfigError(f"--decimation-step={decimation_step!r} must lie in (0, 1)")
    if bp_scheme is not None:
        _check_choice("--bp-scheme", bp_scheme, BP_SCHEMES)
        if method != "bp":
            raise ConfigError(f"--bp-scheme applies to --method bp only, not --method {method}")
    authors = method == "bp" and bp_scheme == "authors"
    if max_iter is None:
        max_iter = AUTHORS_MAX_ITER if authors else DEFAULT_MAX_ITER
    if chains is not None and method != "mc":
        raise ConfigError(
            f"--mc-chains={chains!r} applies to --method mc only, not --method {method}"
        )
    if seed is not None and method != "mc" and not authors:
        raise ConfigError(
            f"--seed={seed!r} applies to --method mc or to --method bp --bp-scheme authors only"
        )
    if seed is not None:
        _check_seed(seed)
    if method == "mc":
        _positive(mc_chains=chains)
        sym, start = symmetry if symmetry is not None else (None, 0)
        return MonteCarloBoltzmann(
            MonteCarloBoltzmannConfig(
                n_chains=1000 if chains is None else chains,
                n_iter=max_iter,
                l2=l2,
                symmetry=sym,
                symmetry_start=start,
                seed=0 if seed is None else seed,
                evaluate=evaluate,
            )
        )
    if method == "decimation":
        pl = PseudoLikelihoodConfig(l2=l2, max_iter=max_iter, evaluate="none")
        step = 0.02 if decimation_step is None else decimation_step
        return PseudoLikelihoodDecimation(DecimationConfig(pl, step=step, evaluate=evaluate))
    if method == "pseudo":
        return PseudoLikelihood(
            PseudoLikelihoodConfig(l1=l1, l2=l2, max_iter=max_iter, evaluate=evaluate)
        )
    if method == "bp":
        base = BoltzmannBPConfig.authors(0 if seed is None else seed) if authors else None
        settings = {
            "l2": l2,
            "n_iter": max_iter,
            "evaluate": "bp" if evaluate == "auto" else evaluate,
            "keep_from": keep_from or (base.keep_from if authors else 0),
        }
        if authors and settings["keep_from"] > max_iter:
            raise ConfigError(
                f"--bp-scheme authors keeps the best of steps {settings['keep_from']}..max-iter; "
                f"--max-iter={max_iter} is too few (give --keep-from too)"
            )
        return BoltzmannBP(
            dataclasses.replace(base, **settings) if authors else BoltzmannBPConfig(**settings)
        )
    if method == "exact":
        return ExactBoltzmann(ExactBoltzmannConfig(l2=l2, max_iter=max_iter))
    mf = MeanFieldConfig(ridge=ridge, evaluate=evaluate)
    return MeanFieldInversion(mf) if method == "mean-field" else TAPInversion(mf)


def _add_fit(sub: typer.Typer) -> None:
    @sub.command("fit")
    def fit(
        samples: str = typer.Argument(..., help="samples.npz (or its run dir) of 'maxent sample'."),
        method: str = typer.Option(
            "pseudo",
            "--method",
            help="bp, mc (Boltzmann learning with persistent Monte Carlo chains), pseudo, "
            "decimation (pseudo-likelihood decimation: sparse J), mean-field, tap, exact.",
        ),
        layer: str = typer.Option(
            "all", "--layer", help="Layer name (LB, ITR, RB, ...), all, or A:B."
        ),
        l1: float = typer.Option(0.0, "--l1", help="L1 on J (pseudo)."),
        l2: float = typer.Option(
            None,
            "--l2",
            help="L2 on J (default: pseudo and decimation 1e-3, bp 1e-4 (the paper's), mc and "
            "exact 0).",
        ),
        max_iter: int = typer.Option(
            None,
            "--max-iter",
            help="L-BFGS iterations (pseudo, exact) or learning steps (bp, mc); default 500 "
            "(bp with --bp-scheme authors: 100).",
        ),
        ridge: float = typer.Option(0.0, "--ridge", help="Ridge on chi (mean-field, tap)."),
        evaluate: str = typer.Option(
            "auto",
            "--evaluate",
            help="Moments of the report: auto, exact, bp, metropolis (mc only) or none.",
        ),
        symmetrise: bool = typer.Option(
            False,
            "--symmetrise",
            help="Fit the moments averaged over all hidden-unit relabellings (the paper's "
            "permutation-symmetric data; bp, mc, mean-field, tap, exact).",
        ),
        mc_chains: int = typer.Option(
            None, "--mc-chains", help="mc: persistent Monte Carlo chains (default 1000)."
        ),
        seed: int = typer.Option(
            None,
            "--seed",
            help="mc: seed of the chains; bp --bp-scheme authors: of the start and the random "
            "BP messages (default 0).",
        ),
        keep_from: int = typer.Option(
            0,
            "--keep-from",
            help="bp: keep the best iterate of steps K..max-iter (the authors' script: 51, the "
            "default with --bp-scheme authors).",
        ),
        bp_scheme: str = typer.Option(
            None,
            "--bp-scheme",
            help="bp: stable (default: start h = atanh m, warm-started damped BP, only "
            "iterates whose BP converged to an attracting fixed point kept) or authors (the "
            "authors' learning script, what `reproduce maxent` uses: start h = 0, BP restarted "
            "undamped from random messages every step, best of steps 51-100).",
        ),
        decimation_step: float = typer.Option(
            None,
            "--decimation-step",
            help="decimation: fraction of all couplings set to zero per round (default 0.02).",
        ),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Fit a pairwise Ising model to the weight samples of one layer or the whole net.

        Writes model.npz (J, h), fit_report.json (method, iterations, seconds, moment errors),
        layer_table.parquet/.json (J mean/std/max|J|, field spread per layer), config.json, DONE.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, samples)
        from ..maxent import EXACT_LEARNING_MAX_SPINS

        ws, meta = _open_samples(samples)
        n = ws.sigma.shape[1]
        name, a, b = resolve_layer(layer, ws.layers, n)
        if method == "exact" and b - a > EXACT_LEARNING_MAX_SPINS:
            raise ConfigError(
                f"--method=exact needs at most {EXACT_LEARNING_MAX_SPINS} spins; --layer={layer!r} "
                f"has {b - a}; choose bp, pseudo, mean-field or tap, or a smaller A:B"
            )
        if ws.sigma.shape[0] < 2:
            raise ConfigError(f"{samples!r} holds {ws.sigma.shape[0]} sample(s); need at least 2")
        sym = (_arch(meta, samples), a) if symmetrise and method == "mc" else None
        inv = make_method(method, l1=l1, l2=l2, max_iter=max_iter, ridge=ridge, evaluate=evaluate,
                          keep_from=keep_from, decimation_step=decimation_step, chains=mc_chains,
                          seed=seed, symmetry=sym, bp_scheme=bp_scheme)  # fmt: skip
        data = ws.sigma[:, a:b]
        fit_data = data
        if symmetrise:
            if method in SAMPLE_METHODS:
                raise ConfigError(
                    f"--symmetrise fits moments; --method {method} needs samples (use bp, "
                    "mean-field, tap or exact)"
                )
            from ..maxent import symmetrised_moments

            fit_data = symmetrised_moments(ws.sigma, _arch(meta, samples)).slice(a, b)
        model, report = inv.fit(fit_data)  # before --out exists: a failing fit writes nothing
        rd = create_run(out, force, samples)

        def write(rd):
            from dataclasses import asdict

            from ..maxent import coupling_table, layers_in_slice

            model.save(rd.path / "model.npz")
            table = coupling_table(model, layers_in_slice(ws.layers, a, b) or {name: (0, b - a)})
            rd.write_metrics(table, "layer_table")
            rd.write_json("layer_table.json", table.to_dict(orient="records"))
            rep = {
                **report.to_dict(),
                "layer": name,
                "slice": [a, b],
                "n_spins": b - a,
                "n_samples": int(data.shape[0]),
                "symmetrised": symmetrise,
                "samples": meta["samples_file"],
                **meta,
            }
            rd.write_json("fit_report.json", rep)
            if method == "decimation":
                import pandas as pd

                ex = report.extras
                trace = pd.DataFrame(
                    {
                        "round": range(len(ex["fraction"])),
                        "fraction_decimated": ex["fraction"],
                        "log_pl": ex["log_pl"],
                        "tilted_log_pl": ex["tilted"],
                    }
                )
                rd.write_metrics(trace, "decimation")
            rd.write_config(
                {
                    "method": method,
                    "method_config": asdict(inv.config),
                    "layer": name,
                    "slice": [a, b],
                    "symmetrised": symmetrise,
                },
                extra={"kind": "maxent-fit", "samples": str(samples)},
            )
            rd.mark_done()
            typer.echo(
                f"fitted {method} to {name} (spins {a}:{b}, {data.shape[0]} samples"
                f"{', symmetrised moments' if symmetrise else ''}): "
                f"moment error {report.error:.4g} ({report.evaluated_by}), "
                f"{report.iterations} iterations, {report.seconds:.2f} s; run: {rd.path}"
            )
            if method == "decimation":
                ex = report.extras
                typer.echo(
                    f"  decimation: kept {ex['couplings_kept']} of {ex['couplings_total']} "
                    f"couplings (fraction pruned {ex['fraction_decimated']:.4f}, round "
                    f"{ex['best_round']} of {ex['rounds']}); trace in decimation.parquet"
                )
            for row in table.itertuples():
                typer.echo(
                    f"  {row.layer}: J mean {row.J_mean:.4g} std {row.J_std:.4g} "
                    f"max|J| {row.J_max_abs:.4g}; h std {row.h_std:.4g}"
                )

        _guarded(rd, write)


def _model_and_fit(model: str):
    """``MODEL``: a model ``.npz`` or the run dir of ``maxent fit`` → (path, the fit's report or
    ``{}``: where a ``fit_report.json`` lies beside the model)."""
    import json
    from pathlib import Path as _P

    mpath = _P(model)
    if mpath.is_dir():
        mpath = mpath / "model.npz"
    rep = mpath.parent / "fit_report.json"
    return mpath, (json.loads(rep.read_text()) if rep.is_file() else {})


# Relabelled copies of each sample for the third-order moments of a symmetrised fit of a partial
# layer (whole layers use the exact orbit averages).
PERM_COPIES = 16


def _add_validate(sub: typer.Typer) -> None:
    @sub.command("validate")
    def validate(
        model: str = typer.Argument(..., help="model.npz (or the run dir of 'maxent fit')."),
        samples: str = typer.Option(
            None, "--samples", help="samples.npz (default: the one the fit used)."
        ),
        layer: str = typer.Option(
            None, "--layer", help="Slice of the samples (default: the fit's)."
        ),
        mc_chains: int = typer.Option(100, "--mc-chains", help="Metropolis chains."),
        mc_samples: int = typer.Option(100, "--mc-samples", help="Records per chain."),
        mc_burn_in: int = typer.Option(10000, "--mc-burn-in", help="Relaxation sweeps."),
        mc_thin: int = typer.Option(10, "--mc-thin", help="Sweeps between records."),
        n_triplets: int = typer.Option(2000, "--triplets", help="Random triplets (third order)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the chains and the triplets."),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the scatter figure."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Model vs data: m, C, connected C and third-order moments (Metropolis), Pearson r.

        Writes validation.json (r and RMS per statistic), moments.parquet (scatter),
        layer_table.parquet/.json, figures/scatter.*, config.json and DONE.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, model, samples)

        from ..maxent import IsingModel, MetropolisConfig, validate_model

        _check_seed(seed)
        mpath, fit_meta = _model_and_fit(model)
        mdl = IsingModel.load(mpath)
        if samples is None:
            samples = fit_meta.get("samples")
            if samples is None:
                raise ConfigError("no --samples given and the model has no fit_report.json")
        ws, smeta = _open_samples(samples)
        n = ws.sigma.shape[1]
        if layer is None:
            a, b = fit_meta.get("slice", [0, n])
            name = fit_meta.get("layer", "all")
        else:
            name, a, b = resolve_layer(layer, ws.layers, n)
        if b - a != mdl.n_spins:
            raise ConfigError(
                f"the model has N = {mdl.n_spins} spins but --layer={name!r} selects {b - a} "
                "of the samples; give the layer the model was fitted to"
            )
        _positive(mc_chains=mc_chains, mc_samples=mc_samples, mc_thin=mc_thin)
        mc = MetropolisConfig(
            n_chains=mc_chains, n_samples=mc_samples, burn_in=mc_burn_in, thin=mc_thin, seed=seed
        )
        data, data_moments, sym_arch = ws.sigma[:, a:b], None, None
        symmetrised = bool(fit_meta.get("symmetrised", False))
        if symmetrised:  # compare with the data the model was fitted to
            arch = _arch({**fit_meta, **smeta}, samples)
            bounds = {0} | {e for _, e in ws.layers.values()}
            if a in bounds and b in bounds:  # whole layers: exact orbit averages, both sides
                sym_arch = arch
            else:  # a partial layer: relabelled copies for the third order
                from ..maxent import symmetrised_data

                sym, aug = symmetrised_data(ws.sigma, arch, PERM_COPIES, seed)
                data, data_moments = aug[:, a:b], sym.slice(a, b)
        res = validate_model(mdl, data, mc, n_triplets=n_triplets, triplet_seed=seed,
                             data_moments=data_moments, hidden_symmetry=sym_arch,
                             start=a)  # fmt: skip
        rd = create_run(out, force, model, samples)

        def write(rd):
            from dataclasses import asdict

            from ..maxent import coupling_table, layers_in_slice

            table = coupling_table(mdl, layers_in_slice(ws.layers, a, b) or {name: (0, b - a)})
            rd.write_metrics(table, "layer_table")
            rd.write_json("layer_table.json", table.to_dict(orient="records"))
            rd.write_metrics(res.scatter, "moments")
            rd.write_arrays("triplets", triplets=res.triplets)
            rd.write_json(
                "validation.json",
                {
                    **res.to_dict(),
                    "layer": name,
                    "slice": [a, b],
                    "model": str(mpath),
                    "samples": str(samples),
                    "symmetrised": symmetrised,
                },
            )
            rd.write_config(
                {"metropolis": asdict(mc), "n_triplets": n_triplets, "layer": name},
                seeds=[seed],
                extra={"kind": "maxent-validate"},
            )
            if plots:
                from ..plots import save_figure

                save_figure(_validation_figure(res), rd.path / "figures" / "scatter")
            rd.mark_done()
            r = res.r
            typer.echo(
                f"{name} (N = {b - a}): Pearson r  m {r['m']:.4f}  C {r['C']:.4f}  "
                f"connected {r['connected']:.4f}  third {r['third']:.4f} "
                f"(plain ⟨σσσ⟩ {r['third_raw']:.4f})  "
                f"({res.n_model_samples} Metropolis samples"
                f"{'; data symmetrised as in the fit' if symmetrised else ''}); run: {rd.path}"
            )
            for row in table.itertuples():
                typer.echo(
                    f"  {row.layer}: J mean {row.J_mean:.4g} std {row.J_std:.4g} "
                    f"max|J| {row.J_max_abs:.4g}; h std {row.h_std:.4g}"
                )

        _guarded(rd, write)


def _validation_figure(res):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.2))
    axes = fig.subplots(1, 4)
    for ax, key in zip(axes, ("m", "C", "connected", "third"), strict=True):
        d = res.scatter[res.scatter.statistic == key]
        ax.plot(d.data, d.model, ".", ms=2)
        if len(d):
            lo = float(min(d.data.min(), d.model.min()))
            hi = float(max(d.data.max(), d.model.max()))
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
        ax.set_title(f"{key}: r = {res.r[key]:.3f}", fontsize=9)
        ax.set_xlabel("data")
        ax.set_ylabel("model (Metropolis)")
    fig.tight_layout()
    return fig


def _add_relabel(sub: typer.Typer) -> None:
    @sub.command("relabel")
    def relabel(
        samples: str = typer.Argument(..., help="samples.npz (or its run dir) of 'maxent sample'."),
        fractions: str = typer.Option(
            "0,0.3,0.6,0.9", "--fractions", help="Relabelled fractions of the samples."
        ),
        layers: str = typer.Option(None, "--layers", help="Layers to refit (default: all)."),
        l2: float = typer.Option(1e-3, "--l2", help="Pseudo-likelihood L2 on J."),
        max_iter: int = typer.Option(500, "--max-iter", help="L-BFGS iterations per fit."),
        seed: int = typer.Option(0, "--seed", help="Seed of the relabelling."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Relabel the hidden units of a fraction of the samples and refit each layer.

        Writes relabel.parquet/.json (J mean/std/max|J|, field spread per fraction and
        layer), models.npz (J_<fraction>_<layer>, h_<...>), config.json and DONE.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, samples)
        from ..maxent import PseudoLikelihood, PseudoLikelihoodConfig, relabel_experiment

        _check_seed(seed)
        fr = parse_floats("fractions", fractions, positive=False)
        if any(not 0.0 <= f <= 1.0 for f in fr):
            raise ConfigError(f"--fractions={fractions!r}: each fraction must lie in [0, 1]")
        ws, meta = _open_samples(samples)
        arch = _arch(meta, samples)
        names = None if layers is None else [t.strip() for t in layers.split(",") if t.strip()]
        for name in names or []:
            if name not in ws.layers:
                raise ConfigError(
                    f"--layers: {name!r} is not allowed; choose among {list(ws.layers)}"
                )
        pl = PseudoLikelihood(
            PseudoLikelihoodConfig(l2=l2, max_iter=max_iter, newton_steps=0, evaluate="none")
        )
        res = relabel_experiment(ws.sigma, arch, fr, layers=names, method=pl, seed=seed)
        rd = create_run(out, force, samples)

        def write(rd):
            rd.write_metrics(res.table, "relabel")
            rd.write_json("relabel.json", res.table.to_dict(orient="records"))
            arrays = {}
            for (f, name), m in res.models.items():
                arrays[f"J_{f:g}_{name}"] = m.J.numpy()
                arrays[f"h_{f:g}_{name}"] = m.h.numpy()
            rd.write_arrays("models", **arrays)
            rd.write_config(
                {"fractions": fr, "layers": names, "l2": l2, "max_iter": max_iter},
                seeds=[seed],
                extra={"kind": "maxent-relabel", "samples": meta["samples_file"], "arch": arch},
            )
            rd.mark_done()
            for row in res.table.itertuples():
                typer.echo(
                    f"fraction {row.fraction:.2f} ({row.n_relabelled} relabelled) {row.layer}: "
                    f"J mean {row.J_mean:.4g} std {row.J_std:.4g} max|J| {row.J_max_abs:.4g}; "
                    f"h std {row.h_std:.4g}"
                )
            typer.echo(f"run: {rd.path}")

        _guarded(rd, write)


def _add_frozen_centre(sub: typer.Typer) -> None:
    @sub.command("frozen-centre")
    def frozen_centre(
        arch: str = typer.Option("784-100-100-10", "--arch", help="Widths (odd number of layers)."),
        data: str = LRNET_DATA,
        preset: str = typer.Option("none", "--preset", help="Data preset (none: raw pixels)."),
        P: int = LRNET_P,
        test_size: int = LRNET_TEST_SIZE,
        runs: int = typer.Option(2, "--runs", help="Runs per mode."),
        epochs: int = typer.Option(10, "--epochs", help="Epochs."),
        batch_size: int = LRNET_BATCH_SIZE,
        lr: float = LRNET_LR,
        frozen_layer: int = typer.Option(
            None, "--frozen-layer", help="Weight layer redrawn every epoch (default: central)."
        ),
        eval_draws: int = typer.Option(10, "--eval-draws", help="Binary nets per run and epoch."),
        seed: int = typer.Option(0, "--seed", help="Seed of training, redraws and evaluation."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """Frozen centre vs full training: the central layer redrawn at random every epoch.

        Writes curves.parquet (mode, epoch, run, test accuracy, loss), summary.json,
        lrnet_frozen.npz / lrnet_full.npz, figures/frozen_centre.*, config.json and DONE.
        """
        check_out(out, force)  # an --out it must not write: refused before any work
        from dataclasses import asdict

        from ..maxent import FrozenCentreConfig, LRNetConfig

        _positive(runs=runs, epochs=epochs, eval_draws=eval_draws)
        cfg = FrozenCentreConfig(
            lrnet=LRNetConfig(
                arch=arch, n_runs=runs, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
            ),
            frozen_layer=frozen_layer,
            eval_draws=eval_draws,
            redraw_seed=seed + 1,
            eval_seed=seed + 2,
        )
        recipe = data_recipe(data, preset, P, test_size, seed)
        ds = load_recipe(recipe)
        _check_arch_fits(cfg.lrnet.widths, ds, arch)
        rd = create_run(out, force)

        def write(rd):
            from ..maxent import frozen_centre_experiment, plot_frozen_centre, save_lrnet
            from ..plots import save_figure

            fz, full, curves = frozen_centre_experiment(
                ds.x.copy(), ds.y.copy(), ds.x_test.copy(), ds.y_test.copy(), cfg
            )
            rd.write_metrics(curves, "curves")
            save_lrnet(fz.result, rd.path / "lrnet_frozen.npz")
            save_lrnet(full.result, rd.path / "lrnet_full.npz")
            summary = {
                "arch": arch,
                "data": ds.name,
                "preset": recipe["options"].get("preset"),
                "P_train": int(ds.x.shape[0]),
                "P_test": int(ds.x_test.shape[0]),
                "frozen_layer": fz.layer,
                "final_accuracy_frozen": float(fz.accuracy[-1].mean()),
                "final_accuracy_full": float(full.accuracy[-1].mean()),
                "accuracy_frozen_by_epoch": fz.accuracy.mean(1).tolist(),
                "accuracy_full_by_epoch": full.accuracy.mean(1).tolist(),
                "chance": 1.0 / len(ds.classes),
            }
            rd.write_json("summary.json", summary)
            rd.write_config(
                asdict(cfg), seeds=[seed], extra={"data": recipe, "kind": "maxent-frozen-centre"}
            )
            title = f"{arch} on {ds.name}: layer {fz.layer} redrawn every epoch"
            save_figure(plot_frozen_centre(curves, title), rd.path / "figures" / "frozen_centre")
            rd.mark_done()
            typer.echo(
                f"{arch} on {ds.name} (P = {ds.x.shape[0]}), {epochs} epochs × {runs} runs: "
                f"final test accuracy frozen centre {summary['final_accuracy_frozen']:.4f}, "
                f"full training {summary['final_accuracy_full']:.4f} "
                f"(chance {summary['chance']:.2f}); run: {rd.path}"
            )

        _guarded(rd, write)


def _add_accuracy(sub: typer.Typer) -> None:
    @sub.command("accuracy")
    def accuracy(
        model: str = typer.Argument(..., help="model.npz (or the run dir of 'maxent fit')."),
        samples: str = typer.Option(
            None, "--samples", help="samples.npz (or its run dir); default: the fit's."
        ),
        layer: str = typer.Option(
            None,
            "--layer",
            help="Weights the model describes: all, LB, ITR, RB or A:B (default: the fit's "
            "layer, else all). Only they move in the walks.",
        ),
        train_run: str = typer.Option(
            None, "--train-run", help="Run dir of 'maxent train' (default: the samples' own)."
        ),
        starts: int = typer.Option(
            20, "--starts", help="Walks, each from a kept sample (distinct runs where possible)."
        ),
        sweeps: int = typer.Option(100, "--sweeps", help="Monte Carlo sweeps per walk (β = 1)."),
        record_every: int = typer.Option(
            1, "--record-every", help="Sweeps between two tests (must divide --sweeps)."
        ),
        rule: str = typer.Option("heat_bath", "--rule", help="heat_bath or metropolis."),
        order: str = typer.Option(
            "sweep",
            "--order",
            help="sweep (sites in order, fast) or random-site (one random site per step, the "
            "paper's walks; can be recorded within a sweep).",
        ),
        record_every_steps: int = typer.Option(
            None,
            "--record-every-steps",
            help="random-site: single-site steps between two tests (e.g. 1: every step); "
            "default: every --record-every sweeps.",
        ),
        tilt: float = typer.Option(
            0.0,
            "--tilt",
            help="Tilt x towards each walk's start (h + x sigma*: the entropy landscape's "
            "measure); 0: the model itself.",
        ),
        bin_width: float = typer.Option(
            None, "--bin-width", help="Accuracy bin of the energy table (default: exact values)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the starts and of the walks."),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the figure."),
        out: RunOut = ...,
        force: Force = False,
    ) -> None:
        """The fitted model as a model of networks: Ising energy vs test accuracy of the kept
        samples, and Monte Carlo walks from trained weights tested as networks every record.

        Prints Spearman rho, p and Pearson r of energy per weight vs accuracy, and the walks'
        mean accuracy at the start, after the first record and at the end, with energy per
        weight, final overlap and the chance level. Writes energy_accuracy.parquet (per
        sample), energy_accuracy_levels.parquet (per accuracy level), mc_accuracy.parquet
        (sweep, step, chain, start sample, accuracy, energy, overlap), mc_accuracy.npz (the moving
        spins [T+1, R, n] int8, sweeps, span, starts, acceptance), summary.json,
        figures/mc_accuracy.*, config.json and DONE under --out.
        """
        # an --out it must not write (nor one holding an input): refused before any work
        check_out(out, force, model, samples)
        import math

        import numpy as np

        from ..maxent import IsingModel, MCAccuracyConfig, parse_arch, walk_starts

        # ---- validate everything before anything is written
        _check_seed(seed)
        check_positive("--starts", starts, integer=True)
        if bin_width is not None and not (math.isfinite(bin_width) and 0 < bin_width <= 1):
            raise ConfigError(f"--bin-width={bin_width!r} must be in (0, 1]")
        if not math.isfinite(tilt):
            raise ConfigError(f"--tilt={tilt!r} must be a finite number")
        _check_choice("--order", order, ("sweep", "random-site"))
        if record_every_steps is not None and order != "random-site":
            raise ConfigError(
                f"--record-every-steps={record_every_steps!r} needs --order random-site"
            )
        if record_every_steps is not None:
            check_positive("--record-every-steps", record_every_steps, integer=True)
        mcfg = MCAccuracyConfig(sweeps=sweeps, record_every=record_every, rule=rule, seed=seed,
                                order=order.replace("-", "_"),
                                record_every_steps=record_every_steps)  # fmt: skip
        mpath, fit_meta = _model_and_fit(model)
        mdl = IsingModel.load(mpath)
        if samples is None:
            samples = fit_meta.get("samples")
            if samples is None:
                raise ConfigError(f"no --samples given and {model!r} has no fit_report.json")
        ws, smeta = _open_samples(samples)
        arch = _arch(smeta, samples)
        N = ws.sigma.shape[1]
        if layer is None and fit_meta.get("slice") is not None:
            name, (a, b) = fit_meta.get("layer", "fit"), fit_meta["slice"]
        else:
            name, a, b = resolve_layer("all" if layer is None else layer, ws.layers, N)
        if b - a != mdl.n_spins:
            raise ConfigError(
                f"the model has N = {mdl.n_spins} spins but --layer={name!r} selects {b - a} "
                f"of the samples' {N} weights; give the layer the model was fitted to"
            )
        S = ws.sigma.shape[0]
        if starts > S:
            raise ConfigError(
                f"--starts={starts!r} exceeds the {S} kept samples of {samples!r}; give at most {S}"
            )
        if train_run is None:
            train_run = smeta.get("train_run")
            if train_run is None or not Path(train_run).is_dir():
                where = (
                    "records no training run"
                    if train_run is None
                    else f"records the training run {train_run!r}, which does not exist"
                )
                raise ConfigError(
                    f"{samples!r} {where}; give --train-run DIR (the run of 'maxent train' that "
                    "made it) for the test data"
                )
        _, tmeta = _open_train_run(train_run)
        ds = load_recipe(tmeta["data"])
        _check_arch_fits(parse_arch(arch), ds, arch)
        span = None if (a, b) == (0, N) else (a, b)
        every = record_every_steps or 0
        if every and (sweeps * (b - a)) % every:
            raise ConfigError(
                f"--record-every-steps={every!r} must divide --sweeps x the moving weights = "
                f"{sweeps} x {b - a}"
            )
        mpath, train_run = mpath.resolve(), str(Path(train_run).resolve())
        rd = create_run(out, force, model, samples)

        def write(rd):
            from dataclasses import asdict

            import pandas as pd

            from ..maxent import energy_accuracy, mc_accuracy

            ea = energy_accuracy(mdl, ws.sigma[:, a:b], ws.accuracy, bin_width)
            idx = walk_starts(ws.run, starts, np.random.default_rng(seed))
            tr = mc_accuracy(mdl, ws.sigma[idx], arch, ds.x_test.copy(), ds.y_test.copy(), mcfg,
                            span=span, tilt=tilt)  # fmt: skip
            chance = 1.0 / len(ds.classes)
            rd.write_metrics(
                pd.DataFrame({"sample": np.arange(S), "run": ws.run, "accuracy": ws.accuracy,
                              "energy": ea.energy}),
                "energy_accuracy",
            )  # fmt: skip
            rd.write_metrics(ea.table, "energy_accuracy_levels")
            T1, R = tr.accuracy.shape
            rd.write_metrics(
                pd.DataFrame({
                    "sweep": np.repeat(tr.sweeps, R), "step": np.repeat(tr.steps, R),
                    "chain": np.tile(np.arange(R), T1),
                    "sample": np.tile(idx, T1), "accuracy": tr.accuracy.ravel(),
                    "energy": tr.energy.ravel(), "overlap": tr.overlap.ravel(),
                }),
                "mc_accuracy",
            )  # fmt: skip
            rd.write_arrays("mc_accuracy", sigma=tr.sigma, sweeps=tr.sweeps, steps=tr.steps,
                            span=np.asarray(tr.span), starts=idx,
                            acceptance=tr.acceptance)  # fmt: skip
            summ = tr.summary()
            rd.write_json(
                "summary.json",
                {
                    "model": str(mpath),
                    "samples": smeta["samples_file"],
                    "train_run": train_run,
                    "arch": arch,
                    "layer": name,
                    "span": [a, b],
                    "n_spins": b - a,
                    "energy_accuracy": ea.to_dict(),
                    "mc_accuracy": summ,
                    "rule": rule,
                    "order": order,
                    "tilt": tilt,
                    "data": ds.name,
                    "P_test": int(ds.x_test.shape[0]),
                    "chance": chance,
                    "start_samples": idx.tolist(),
                },
            )
            rd.write_config(
                {"mc": asdict(mcfg), "starts": starts, "bin_width": bin_width, "tilt": tilt,
                 "layer": name,
                 "span": [a, b]},
                seeds=[seed],
                extra={"kind": "maxent-accuracy", "model": str(mpath),
                       "samples": smeta["samples_file"], "train_run": train_run,
                       "data": tmeta["data"]},
            )  # fmt: skip
            if plots:
                from ..plots import save_figure

                fig = _accuracy_figure(tr, ea.table, chance, f"{name} ({b - a} weights)")
                save_figure(fig, rd.path / "figures" / "mc_accuracy")
            rd.mark_done()
            typer.echo(
                f"energy vs accuracy ({name}, N = {b - a}, {S} samples): Spearman rho "
                f"{_fmt(ea.spearman)} (p = {_fmt(ea.spearman_p, '.3g')}), Pearson r "
                f"{_fmt(ea.pearson)}"
            )
            typer.echo(
                f"walks ({R} chains, {sweeps} {rule} sweeps ({order}), tilt {tilt:g}, {name} "
                "moving): "
                "accuracy "
                f"{summ['accuracy_mean_start']:.4f} → {summ['accuracy_mean_first']:.4f} "
                f"(sweep {summ['sweep_first']}) → {summ['accuracy_mean_end']:.4f} (sweep "
                f"{summ['sweeps']}); energy per weight {summ['energy_mean_start']:.4f} → "
                f"{summ['energy_mean_end']:.4f}; overlap at the end "
                f"{summ['overlap_mean_end']:.4f}; chance {chance:.4f}"
            )
            typer.echo(f"run: {rd.path}")

        _guarded(rd, write)


def _accuracy_figure(tr, levels, chance: float, what: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    ax1, ax3 = fig.subplots(1, 2)
    m, sd = tr.accuracy.mean(1), tr.accuracy.std(1)
    ax1.plot(tr.sweeps, m, color="C0", label="test accuracy")
    ax1.fill_between(tr.sweeps, m - sd, m + sd, color="C0", alpha=0.2)
    ax1.axhline(chance, color="0.5", lw=1, ls="--", label="chance")
    ax1.set_xlabel("sweeps (β = 1)")
    ax1.set_ylabel("test accuracy (mean ± sd over chains)", color="C0")
    ax1.set_title(f"walks from trained weights: {what} moving", fontsize=9)
    ax2 = ax1.twinx()
    ax2.plot(tr.sweeps, tr.energy.mean(1), color="C1", label="energy per weight")
    ax2.set_ylabel("energy per weight (mean)", color="C1")
    ax1.legend(fontsize=7, loc="upper right")
    t = levels
    ax3.plot(t.accuracy, t.energy_mean, ".-", ms=3, color="C2")
    ax3.fill_between(t.accuracy, t.energy_mean - t.energy_std, t.energy_mean + t.energy_std,
                     color="C2", alpha=0.2)  # fmt: skip
    ax3.set_xlabel("test accuracy of the kept sample (level)")
    ax3.set_ylabel("Ising energy per weight (mean ± sd)")
    ax3.set_title("kept samples: energy vs accuracy", fontsize=9)
    fig.tight_layout()
    return fig


# One function per command; add new commands here.
COMMANDS = [
    _add_landscape,
    _add_train,
    _add_sample,
    _add_fit,
    _add_validate,
    _add_relabel,
    _add_frozen_centre,
    _add_accuracy,
]


def register(app: typer.Typer) -> None:
    """Add the ``maxent`` sub-typer with every command of :data:`COMMANDS`."""
    sub = typer.Typer(
        name="maxent",
        help="Max-ent (Ising) models of weight space: train, sample, fit, validate, relabel, "
        "landscape, frozen centre, accuracy (the model as a model of networks).",
        no_args_is_help=True,
    )
    for add in COMMANDS:
        add(sub)
    app.add_typer(sub, name="maxent")
