"""``run_reproduce``: validate, run each study into ``DIR/<study>``, write summaries and report."""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import resource
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import Precision, resolve_precision
from ..errors import ConfigError, RunDirError, check_choice, check_seed
from ..plots import REPRODUCE_SCHEMA, STUDY_SCHEMA, build_report, save_figure
from ..store import provenance, write_json, write_parquet, write_text
from ._registry import StudyNotImplementedError, get_study, known_studies
from ._types import EXECUTORS, SCALES, Claim, Plan, Study, StudyContext, StudyOutcome

__all__ = ["MARKER", "ReproduceResult", "run_reproduce"]

#: Written first into every reproduce folder; ``--resume`` and ``--force`` require it, so neither
#: ever touches a folder that ``weightscape reproduce`` did not make.
MARKER = "reproduce.json"


@dataclass
class ReproduceResult:
    """What :func:`run_reproduce` did.

    Attributes:
        out: the reproduce folder.
        summary: the content of ``DIR/summary.json`` (empty for a dry run).
        report: path of ``report.html`` (None for a dry run).
        lines: the printed claim lines, in order.
        plans: ``{study: Plan}`` (dry run only).
        missing: requested studies that are not implemented yet (``all`` only).
        failed: studies whose ``run`` raised.
        reused: studies whose finished results were re-used (``--resume``).
    """

    out: Path
    summary: dict = field(default_factory=dict)
    report: Path | None = None
    lines: list[str] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (local executors)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# --- validation ----------------------------------------------------------------------------------
def _resolve_studies(studies) -> tuple[list[Study], list[str], bool]:
    """(studies to run, missing built-ins, whether claim ids get a study prefix)."""
    if isinstance(studies, str):
        studies = [studies]
    names = list(studies)
    if not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"studies={studies!r}: name at least one of {['all', *known_studies()]}")
    allowed = ["all", *known_studies()]
    for n in names:
        check_choice("study", n, allowed)
    want_all = "all" in names
    ordered = list(known_studies()) if want_all else list(dict.fromkeys(names))
    resolved, missing = [], []
    for n in ordered:
        try:
            resolved.append(get_study(n))
        except StudyNotImplementedError:
            if not want_all:
                raise
            missing.append(n)
    if not resolved:
        raise ConfigError(f"no study is implemented yet (missing: {', '.join(missing)})")
    return resolved, missing, want_all or len(resolved) > 1


def _json_object(path: Path) -> dict | None:
    """The JSON object in ``path``; None when it is unreadable, not UTF-8, not JSON, or JSON
    of another kind (a list, a number)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _read_marker(out: Path) -> dict | None:
    return _json_object(out / MARKER)


def _check_out(
    out: Path,
    *,
    resume: bool,
    force: bool,
    scale: str,
    seed: int,
    data: str | None,
    studies: list[str],
    dtype: str,
) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise RunDirError(f"--out {str(out)!r} exists and is not a folder")
    empty = not any(out.iterdir())
    marker = _read_marker(out)
    if not resume and not force:
        raise RunDirError(
            f"output directory {str(out)!r} already exists",
            "pass --resume to continue it, --force to overwrite it, or choose a new --out",
        )
    if empty:
        return
    if marker is None:
        raise RunDirError(
            f"{str(out)!r} is not a weightscape reproduce folder (no valid {MARKER}); "
            f"refusing to {'resume' if resume else 'overwrite'} it"
        )
    if resume:
        old = marker.get("request", {})
        # what a study's results depend on must match; the device may change (results agree to
        # round-off: a run begun on a GPU can be finished on the CPU)
        checks = [("scale", scale), ("seed", seed), ("data", data), ("studies", list(studies)),
                  ("dtype", dtype)]  # fmt: skip
        for key, new in checks:
            if key in ("studies", "dtype") and key not in old:
                continue  # a folder written before these were recorded
            if old.get(key) != new:
                raise RunDirError(
                    f"cannot resume {str(out)!r}: it was made with {key}={old.get(key)!r}, "
                    f"not {new!r}",
                    "use the same studies, --scale, --seed, --data and --dtype, or a new --out",
                )


def _check_data(data: str, chosen) -> None:
    """``--data``: every chosen study must list it, and the data layer must find its files (one
    read; the data layer keeps it in memory for the study)."""
    for st in chosen:
        if data not in st.data:
            takes = f"one of {list(st.data)}" if st.data else "no --data (it picks its own data)"
            raise ConfigError(f"--data {data!r}: study {st.name} takes {takes}")
    from ..data import load

    load(data)  # DataNotFoundError (one line, with how to get the files) when they are missing


def _finished_summary(folder: Path, scale: str) -> dict | None:
    """The study summary in ``folder`` when that study finished at ``scale``; else None."""
    s = _json_object(folder / "summary.json")
    if s is None or s.get("schema") != STUDY_SCHEMA or s.get("status") != "complete":
        return None
    if s.get("context", {}).get("scale") != scale:
        return None
    return s


# --- writing one study ---------------------------------------------------------------------------
def _plain_number(v):
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    return v


def _write_outcome(study: Study, ctx: StudyContext, outcome: StudyOutcome, timing: dict) -> dict:
    figures = []
    for spec in outcome.figures:
        png, pdf = save_figure(spec.figure, ctx.out / "figures" / spec.name)
        figures.append(
            {
                "name": spec.name,
                "caption": spec.caption,
                "png": str(png.relative_to(ctx.out)),
                "pdf": str(pdf.relative_to(ctx.out)),
            }
        )
    tables = []
    for name, df in outcome.tables.items():
        df = df if isinstance(df.index, pd.RangeIndex) else df.reset_index()
        df = df.rename(columns=str)
        path = write_parquet(ctx.out / "tables" / f"{name}.parquet", df)
        tables.append({"name": name, "path": str(path.relative_to(ctx.out)), "rows": len(df)})
    summary = {
        "schema": STUDY_SCHEMA,
        "study": study.name,
        "title": study.title,
        "paper": study.paper,
        "status": "complete",
        "claims": [c.to_dict() for c in outcome.claims],
        "headline": {k: _plain_number(v) for k, v in outcome.headline.items()},
        "notes": list(outcome.notes),
        "figures": figures,
        "tables": tables,
        "config": outcome.config,
        "context": ctx.as_dict(),
        "timing": timing,
        "provenance": provenance(ctx.device),
        "finished": _now(),
    }
    write_json(ctx.out / "summary.json", summary)
    return summary


def _write_failure(study: Study, ctx: StudyContext, err: BaseException, timing: dict) -> dict:
    ctx.out.mkdir(parents=True, exist_ok=True)
    tb = "".join(traceback.format_exception(err))
    write_text(ctx.out / "error.txt", tb)
    summary = {
        "schema": STUDY_SCHEMA,
        "study": study.name,
        "title": study.title,
        "paper": study.paper,
        "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "claims": [],
        "headline": {},
        "notes": [],
        "figures": [],
        "tables": [],
        "config": {},
        "context": ctx.as_dict(),
        "timing": timing,
        "provenance": provenance(ctx.device),
        "finished": _now(),
    }
    write_json(ctx.out / "summary.json", summary)
    return summary


def _run_one(study: Study, ctx: StudyContext) -> dict:
    """Run ``study``; return its summary (status ``complete`` or ``failed``)."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.log(f"running {study.name} at scale {ctx.scale} (executor {ctx.executor})")
    t0, c0 = time.perf_counter(), _cpu_seconds()

    def timing() -> dict:
        return {
            "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(_cpu_seconds() - c0, 3),
        }

    try:
        outcome = study.run(ctx)
        if not isinstance(outcome, StudyOutcome):
            raise ConfigError(
                f"study {study.name!r}: run() returned {type(outcome).__name__}, not a StudyOutcome"
            )
        t_run = timing()
        summary = _write_outcome(study, ctx, outcome, t_run)
        # a failed attempt's traceback does not belong beside a completed study (resume)
        (ctx.out / "error.txt").unlink(missing_ok=True)
    except Exception as err:
        summary = _write_failure(study, ctx, err, timing())
        _err(
            f"[{study.name}] failed: {type(err).__name__}: {err} "
            f"(traceback in {ctx.out / 'error.txt'})"
        )
        return summary
    n_hold = sum(c["holds"] for c in summary["claims"])
    ctx.log(
        f"done in {_fmt_seconds(t_run['wall_s'])}: {n_hold} of {len(summary['claims'])} claims hold"
    )
    return summary


# --- dry run -------------------------------------------------------------------------------------
def _dry_run(pairs, result: ReproduceResult, resume: bool, scale: str) -> ReproduceResult:
    print("dry run: nothing is written", flush=True)
    cpu = gpu = mem = 0.0
    nruns = 0
    for study, ctx in pairs:
        if resume and _finished_summary(ctx.out, scale) is not None:
            print(f"{study.name}: finished in {ctx.out}; would be re-used", flush=True)
            continue
        plan = study.plan(ctx)
        if not isinstance(plan, Plan):
            raise ConfigError(
                f"study {study.name!r}: plan() returned {type(plan).__name__}, not a Plan"
            )
        result.plans[study.name] = plan
        print(
            f"{study.name} (scale {ctx.scale}, executor {ctx.executor}): {len(plan.runs)} runs",
            flush=True,
        )
        for line in plan.runs:
            print(f"  - {line}")
        print(
            f"  estimate: CPU {_fmt_seconds(plan.cpu_s)}, GPU {_fmt_seconds(plan.gpu_s)}, "
            f"peak memory {plan.peak_mem_mb:.0f} MB"
        )
        if plan.notes:
            print(f"  note: {plan.notes}")
        cpu, gpu, mem = cpu + plan.cpu_s, gpu + plan.gpu_s, max(mem, plan.peak_mem_mb)
        nruns += len(plan.runs)
    print(
        f"total: {len(result.plans)} studies, {nruns} runs; CPU {_fmt_seconds(cpu)}, "
        f"GPU {_fmt_seconds(gpu)}, peak memory {mem:.0f} MB",
        flush=True,
    )
    return result


# --- entry point ---------------------------------------------------------------------------------
def run_reproduce(
    studies: str | Sequence[str],
    scale: str,
    out: str | Path,
    executor: str = "inline",
    resume: bool = False,
    dry_run: bool = False,
    *,
    force: bool = False,
    precision: Precision | None = None,
    seed: int = 0,
    slurm: dict | None = None,
    data: str | None = None,
) -> ReproduceResult:
    """Reproduce the claims of one or more studies into ``out``.

    Every argument is validated before anything is written. Then each study runs into
    ``out/<study>/`` (its figures as PNG+PDF under ``figures/``, tables as Parquet under
    ``tables/``, ``summary.json``); ``out/summary.json`` gathers all claims, headline numbers,
    timing and provenance; the claim lines ``claim <k>: holds — <ours> vs <paper>`` are printed
    to stdout, then the report is written and ``report: <path>`` printed.

    Args:
        studies: ``"all"``, a study name, or several names.
        scale: one of ``"smoke"``, ``"small"``, ``"paper"``.
        out: the reproduce folder.
        executor: ``"inline"``, ``"local"`` or ``"slurm"``, passed to each study's sweeps.
        resume: continue an existing folder: finished studies are re-used, the others run with
            ``ctx.resume=True`` so their sweeps skip finished runs.
        dry_run: print the runs and the cost estimate of each study; write nothing.
        force: overwrite an existing reproduce folder.
        precision: dtype/device for the studies (float64 on the CPU by default).
        seed: base seed handed to every study.
        slurm: Slurm options for the studies' sweeps with ``executor="slurm"`` (``partition``,
            ``time`` in minutes, ``gpus``, ``mem_gb``, ``account``, ...; see
            :class:`~weightscape.sweeps.SlurmExecutor`). With a CUDA ``precision.device`` and no
            ``gpus``/``gpus_per_node`` given, one GPU per job is requested (``gpus=1``). Studies
            without sweeps (maxent: one batched computation) run in this process.
        data: a data set for studies that let the user choose one (:attr:`Study.data`; maxent:
            ``mnist``, ``fashion-mnist``, ``mnist-sample``); ``None``: each study picks its
            own. Every chosen study must accept it, and its files must be found (checked
            before anything is written).

    Raises:
        ConfigError: a bad study, scale, executor, seed or combination of flags (one line).
        StudyNotImplementedError: a study asked for by name has no ``reproduce`` module yet.
        RunDirError: ``out`` exists and neither ``resume`` nor ``force`` was given (or it is not a
            reproduce folder, or was made at another scale/seed).
    """
    # 1. validate everything; nothing is written before this block ends
    check_choice("scale", scale, SCALES)
    check_choice("executor", executor, EXECUTORS)
    if resume and force:
        raise ConfigError("--resume and --force exclude each other; pass one")
    precision = resolve_precision(precision)
    check_seed("seed", seed)
    from ..sweeps import check_slurm_options, make_executor

    slurm = check_slurm_options(slurm, executor)
    if (
        executor == "slurm"
        and precision.device.startswith("cuda")
        and not {"gpus", "gpus_per_node"} & set(slurm or {})
    ):
        slurm = {**(slurm or {}), "gpus": 1}  # a CUDA run on a node without a GPU cannot start
    if executor == "slurm" and not dry_run:
        make_executor("slurm", out, options=slurm).check_available()  # sbatch on PATH
    chosen, missing, prefixed = _resolve_studies(studies)
    for st in chosen:
        if scale not in st.scales:
            raise ConfigError(
                f"scale={scale!r} is not available for study {st.name}; choose one of "
                f"{list(st.scales)}"
            )
    if data is not None:
        _check_data(data, chosen)
    out = Path(out)
    _check_out(out, resume=resume, force=force, scale=scale, seed=seed, data=data,
               studies=[st.name for st in chosen], dtype=precision.dtype)  # fmt: skip
    pairs = [
        (
            st,
            StudyContext(
                scale=scale,
                out=out / st.name,
                executor=executor,
                resume=resume,
                precision=precision,
                seed=seed,
                slurm=slurm,
                data=data,
            ),
        )
        for st in chosen
    ]
    result = ReproduceResult(out=out, missing=missing)
    for name in missing:
        _err(f"study {name} is not implemented yet; skipped")
    if dry_run:
        return _dry_run(pairs, result, resume, scale)

    # 2. prepare the folder
    if force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    request = {
        "studies": [st.name for st in chosen],
        "requested": [studies] if isinstance(studies, str) else list(studies),
        "scale": scale,
        "executor": executor,
        "slurm": slurm,
        "resume": resume,
        "seed": seed,
        "dtype": precision.dtype,
        "device": precision.device,
        "data": data,
    }
    started = _now()
    write_json(out / MARKER, {"request": request, "started": started})

    # 3. run (or re-use) each study
    t0, c0 = time.perf_counter(), _cpu_seconds()
    summaries: dict[str, dict] = {}
    for st, ctx in pairs:
        done = _finished_summary(ctx.out, scale) if resume else None
        if done is not None:
            ctx.log("finished earlier; re-used (--resume)")
            result.reused.append(st.name)
            summaries[st.name] = done
            continue
        summaries[st.name] = _run_one(st, ctx)
        if summaries[st.name]["status"] != "complete":
            result.failed.append(st.name)

    # 4. the top-level summary and the claim lines
    claims = []
    for name, s in summaries.items():
        for c in s["claims"]:
            cid = f"{name}.{c['key']}" if prefixed else c["key"]
            claims.append({"id": cid, "study": name, **c})
            result.lines.append(Claim.from_dict(c).line(name if prefixed else None))
    summary = {
        "schema": REPRODUCE_SCHEMA,
        "request": request,
        "studies": {
            name: {
                "title": s["title"],
                "paper": s["paper"],
                "status": s["status"],
                "error": s.get("error"),
                "folder": name,
                "n_claims": len(s["claims"]),
                "n_hold": sum(c["holds"] for c in s["claims"]),
                "headline": s["headline"],
                "timing": s["timing"],
                "reused": name in result.reused,
            }
            for name, s in summaries.items()
        },
        "claims": claims,
        "n_claims": len(claims),
        "n_hold": sum(c["holds"] for c in claims),
        "missing": missing,
        "failed": result.failed,
        "timing": {
            "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(_cpu_seconds() - c0, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        "provenance": provenance(precision.device),
        "started": started,
        "finished": _now(),
    }
    write_json(out / "summary.json", summary)
    result.summary = summary

    # 5. report
    for line in result.lines:
        print(line, flush=True)
    result.report = build_report(out)
    print(f"report: {result.report}", flush=True)
    return result
