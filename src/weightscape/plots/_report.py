"""The self-contained HTML report of a reproduce folder, a study folder, or sweep/run folders.

The page has no scripts and loads nothing: figures are embedded as base64 PNG, styles are inline.
Everything is read from disk, so ``weightscape report DIR`` can be re-run at any time.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import RunDirError
from ..store import SweepDir, open_sweep, write_text
from ..store._aggregate import _label, _labelled
from ._figures import final_vs_axis, metric_vs_step, save_figure

__all__ = ["REPRODUCE_SCHEMA", "STUDY_SCHEMA", "build_report", "collect_runs"]

#: ``schema`` of ``DIR/summary.json`` written by ``weightscape reproduce``.
REPRODUCE_SCHEMA = "weightscape.reproduce/1"
#: ``schema`` of ``DIR/<study>/summary.json``.
STUDY_SCHEMA = "weightscape.reproduce.study/1"

REPORT_NAME = "report.html"
# Bounds that keep a report of a large sweep readable (and its file small).
_MAX_TABLE_ROWS = 40
_MAX_STEP_FIGS = 6
_MAX_AXIS_FIGS = 12
_MAX_RUNS_SCANNED = 5000

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.holds{color:#176d26;font-weight:600}.fails{color:#a4161a;font-weight:600}
figure{display:inline-block;margin:0.6em 1em 0.6em 0;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:0.85em;color:#444;
 max-width:640px}
pre{background:#f7f7f7;padding:0.6em;overflow-x:auto;font-size:0.8em;max-height:30em}
.muted{color:#666;font-size:0.9em}.scroll{overflow-x:auto;max-width:100%}
"""


# --- small HTML helpers ------------------------------------------------------------------------
def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:.4g}"
    return str(v)


def _table(rows: list[dict], columns: list[str], *, num=()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cls = ' class="num"' if c in num else ""
            cells.append(f"<td{cls}>{_e(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _kv_table(d: dict) -> str:
    rows = [{"key": k, "value": v} for k, v in d.items()]
    return _table(rows, ["key", "value"])


def _img(png: Path, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = f"<figcaption><b>{_e(alt)}</b>{': ' + _e(caption) if caption else ''}</figcaption>"
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _df_html(df: pd.DataFrame, note: str = "") -> str:
    n = len(df)
    shown = df.head(_MAX_TABLE_ROWS)
    body = shown.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", escape=True)
    more = (
        f"<p class='muted'>first {_MAX_TABLE_ROWS} of {n} rows{note}</p>" if n > len(shown) else ""
    )
    return f"<div class='scroll'>{body}</div>{more}"


def _json_pre(obj) -> str:
    return f"<pre>{_e(json.dumps(obj, indent=2, sort_keys=True, default=str))}</pre>"


def _claims_table(claims: list[dict], with_study: bool) -> str:
    head = (["claim"] if with_study else ["key"]) + [
        "statement",
        "paper",
        "ours",
        "error",
        "deviation",
        "verdict",
    ]
    rows = []
    for c in claims:
        k = c.get("id") if with_study else c.get("key")
        cls = "holds" if c.get("holds") else "fails"
        cells = [
            f"<td>{_e(k)}</td>",
            f"<td>{_e(c.get('statement', ''))}</td>",
            f"<td>{_e(c.get('paper', ''))}</td>",
            f"<td>{_e(c.get('ours', ''))}</td>",
            f"<td class='num'>{_e(_fmt(c.get('error')))}</td>",
            f"<td class='num'>{_e(_fmt(c.get('deviation')))}</td>",
            f"<td class='{cls}'>{_e(c.get('verdict', ''))}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _page(title: str, sections: list[str]) -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='muted'>generated by weightscape report, {stamp}</p>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


# --- reproduce and study folders ---------------------------------------------------------------
def _study_section(folder: Path, s: dict, *, level: int = 2) -> str:
    h, h2 = f"h{level}", f"h{level + 1}"
    name = s.get("study", folder.name)
    out = [f"<section id='study-{_e(name)}'><{h}>{_e(name)}: {_e(s.get('title', ''))}</{h}>"]
    out.append(f"<p><i>{_e(s.get('paper', ''))}</i></p>")
    status = s.get("status", "complete")
    if status != "complete":
        out.append(f"<p class='fails'>status: {_e(status)} — {_e(s.get('error', ''))}</p>")
    if s.get("claims"):
        out.append(f"<{h2}>Claims</{h2}>" + _claims_table(s["claims"], with_study=False))
    if s.get("headline"):
        out.append(f"<{h2}>Headline numbers</{h2}>" + _kv_table(s["headline"]))
    figs = s.get("figures", [])
    if figs:
        out.append(f"<{h2}>Figures</{h2}>")
        for f in figs:
            png = folder / f["png"]
            if png.is_file():
                out.append(_img(png, f["name"], f.get("caption", "")))
            else:
                out.append(f"<p class='fails'>missing figure file {_e(f['png'])}</p>")
    for t in s.get("tables", []):
        path = folder / t["path"]
        out.append(f"<{h2}>Table {_e(t['name'])}</{h2}>")
        if path.is_file():
            out.append(_df_html(pd.read_parquet(path), f"; full table in {t['path']}"))
        else:
            out.append(f"<p class='fails'>missing table file {_e(t['path'])}</p>")
    if s.get("notes"):
        out.append(f"<{h2}>Notes</{h2}>" + "".join(f"<p>{_e(n)}</p>" for n in s["notes"]))
    out.append(
        f"<p class='muted'>How this reproduction departs from the paper: "
        f"docs/studies/{_e(name)}.md</p>"
    )
    out.append(f"<{h2}>Configuration</{h2}>")
    out.append(_json_pre({"context": s.get("context", {}), "config": s.get("config", {})}))
    if s.get("timing"):
        out.append(f"<{h2}>Timing</{h2}>" + _kv_table(s["timing"]))
    out.append("</section>")
    return "\n".join(out)


def _reproduce_report(folder: Path, summary: dict) -> str:
    req = summary.get("request", {})
    sections = []
    claims = summary.get("claims", [])
    n_hold = sum(bool(c.get("holds")) for c in claims)
    overview = [
        "<h2>Overview</h2>",
        f"<p>scale <b>{_e(req.get('scale', '?'))}</b>, executor {_e(req.get('executor', '?'))};"
        f" {n_hold} of {len(claims)} claims hold.</p>",
    ]
    if summary.get("missing"):
        overview.append(
            f"<p class='fails'>not implemented yet: {_e(', '.join(summary['missing']))}</p>"
        )
    if summary.get("failed"):
        overview.append(f"<p class='fails'>failed: {_e(', '.join(summary['failed']))}</p>")
    if claims:
        overview.append(_claims_table(claims, with_study=True))
    sections.append("\n".join(overview))
    for name in summary.get("studies", {}):
        sfile = folder / name / "summary.json"
        if sfile.is_file():
            s = json.loads(sfile.read_text())
        else:  # the study failed before writing its own summary: show what the top level knows
            s = summary["studies"][name]
        sections.append(_study_section(folder / name, s))
    sections.append(
        "<h2>Provenance</h2>"
        + _kv_table(summary.get("provenance", {}))
        + "<h3>Request</h3>"
        + _json_pre(req)
        + ("<h3>Timing</h3>" + _kv_table(summary["timing"]) if summary.get("timing") else "")
    )
    return _page("weightscape reproduction report", sections)


def _study_report(folder: Path, s: dict) -> str:
    sections = [_study_section(folder, s)]
    if s.get("provenance"):
        sections.append("<h2>Provenance</h2>" + _kv_table(s["provenance"]))
    return _page(f"weightscape report: {s.get('study', folder.name)}", sections)


# --- generic sweep / run folders ---------------------------------------------------------------
def _flatten(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def _series_files(run: Path) -> list[Path]:
    """Parquet files of a run in long ``[member,] step, name, value`` format."""
    return [p for p in (run / "metrics.parquet", run / "series.parquet") if p.is_file()]


def _is_run(path: Path) -> bool:
    return (path / "config.json").is_file() or bool(_series_files(path))


def _find_runs(folder: Path) -> list[Path]:
    if _is_run(folder):
        return [folder]
    runs = []
    for cfg in sorted(folder.rglob("config.json")):
        runs.append(cfg.parent)
        if len(runs) >= _MAX_RUNS_SCANNED:
            break
    return runs


def _final_values(df: pd.DataFrame, keys=()) -> pd.DataFrame:
    """The last-step value of each metric per ``keys`` (and ``member`` when present), wide."""
    if not {"step", "name", "value"} <= set(df.columns) or df.empty:
        return pd.DataFrame()
    keys = [*keys, *(["member"] if "member" in df.columns else [])]
    by = [*keys, "name"]
    # the row at the last step (groupby.last would skip a NaN there: a diverged run's final
    # loss would read as its last finite one)
    d = df.sort_values("step", kind="stable").reset_index(drop=True)
    last = d.groupby(by, sort=False).tail(1).set_index(by)["value"].sort_index()
    if not keys:  # one run's own metrics: a single row
        return pd.DataFrame([last.to_dict()])
    wide = last.unstack("name").reset_index()
    wide.columns.name = None
    return wide


def collect_runs(folder: str | Path) -> pd.DataFrame:
    """One row per (run, member) under ``folder``: flattened config and final metric values.

    A run is a folder with ``config.json`` (the :class:`weightscape.store.RunDir` layout); its
    ``config`` entry is flattened to dotted columns (``train.lr``), its ``seeds`` entry to
    ``seeds.*``, and the last-step value of each metric in ``metrics.parquet`` (or
    ``series.parquet``) becomes a column. ``run`` holds the run folder relative to ``folder``.
    """
    folder = Path(folder)
    rows = []
    for run in _find_runs(folder):
        cfg = {}
        if (run / "config.json").is_file():
            raw = json.loads((run / "config.json").read_text())
            cfg = _flatten(raw.get("config", {}))
            seeds = raw.get("seeds")
            if isinstance(seeds, dict):
                cfg.update(_flatten(seeds, "seeds."))
            elif seeds is not None:
                cfg["seed"] = seeds
        cfg = {k: _label(v) for k, v in cfg.items()}  # lists as JSON text (hashable cells)
        base = {"run": str(run.relative_to(folder)), "done": (run / "DONE").exists(), **cfg}
        finals = [_final_values(pd.read_parquet(p)) for p in _series_files(run)]
        finals = [f for f in finals if not f.empty]
        if finals:
            merged = finals[0]
            on = ["member"] if "member" in merged.columns else None
            for f in finals[1:]:
                merged = merged.merge(f, on=on, how="outer", suffixes=("", "_series"))
            rows.extend({**base, **rec} for rec in merged.to_dict("records"))
        else:
            rows.append(base)
    return pd.DataFrame(rows)


def _is_seed(name: str) -> bool:
    return "seed" in name.lower()


@dataclass
class _Gathered:
    """What the generic report draws from: per-metric tables of final values and the series."""

    tables: dict[str, pd.DataFrame]  # metric -> one row per repeat (run or run x member)
    axes: list[str]  # swept axes to put on x (seed axes are repeats, not axes)
    series: pd.DataFrame  # long table of one run, for metric vs step
    series_label: str
    runs: pd.DataFrame  # the table shown in the report
    n_runs: int
    provenance: dict
    config: dict


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _gather_sweep(folder: Path) -> _Gathered:
    data = open_sweep(folder)
    # list-valued axes (e.g. train.stop) as JSON text: groupby and unique need hashable labels
    runs, series = _labelled(data.runs, data.dims), _labelled(data.series, data.dims)
    config_keys = set(data.spec.get("config_keys", [])) | set(data.dims)
    config_keys |= set(data.spec.get("base", {})) | set(data.spec.get("axes", {}))
    dims = [d for d in data.dims if d in runs.columns]
    tables: dict[str, pd.DataFrame] = {}
    for c in runs.columns:  # final scalars of summary.json: one row per run
        if c != "run" and c not in config_keys and _numeric(runs[c]):
            tables[c] = runs[[*dims, c]]
    finals = _final_values(series, keys=["run", *dims]) if len(series) else pd.DataFrame()
    for c in finals.columns:  # last logged value per run (and member) of metrics not summarised
        if c not in ("run", "member", *dims) and c not in tables and _numeric(finals[c]):
            tables[c] = finals[[*dims, c]]
    first = series[series["run"] == series["run"].iloc[0]] if len(series) else series
    label = f"run {first['run'].iloc[0]}" if len(first) else ""
    return _Gathered(
        tables=tables,
        axes=[d for d in dims if not _is_seed(d)],
        series=first,
        series_label=label,
        runs=runs,
        n_runs=len(data.spec.get("runs", [])),
        provenance=data.spec.get("provenance") or {},
        config={k: data.spec.get(k) for k in ("task", "base", "axes", "zip", "dims")},
    )


def _gather_runs(folder: Path, runs_dirs: list[Path]) -> _Gathered:
    runs = collect_runs(folder)
    series_runs = [r for r in runs_dirs if _series_files(r)]
    series = pd.DataFrame()
    label = ""
    if series_runs:
        run = series_runs[0]
        series = pd.concat([pd.read_parquet(p) for p in _series_files(run)], ignore_index=True)
        label = "this run" if run == folder else f"run {run.relative_to(folder)}"
    names: set[str] = set()
    for run in series_runs[:50]:
        for p in _series_files(run):
            d = pd.read_parquet(p, columns=["name"]) if _has_name(p) else pd.DataFrame()
            names.update(map(str, d.get("name", pd.Series([], dtype=str)).unique()))
    metrics = [m for m in sorted(names) if m in runs.columns and _numeric(runs[m])]
    axes = []
    if len(runs_dirs) > 1:
        for c in runs.columns:
            if c in ("run", "done", "member", *metrics) or _is_seed(c):
                continue
            if runs[c].nunique(dropna=True) > 1:
                axes.append(c)
    first_cfg = next((r / "config.json" for r in runs_dirs if (r / "config.json").is_file()), None)
    raw = json.loads(first_cfg.read_text()) if first_cfg is not None else {}
    return _Gathered(
        tables={m: runs[[*axes, m]] for m in metrics},
        axes=axes,
        series=series,
        series_label=label,
        runs=runs,
        n_runs=len(runs_dirs),
        provenance=raw.get("provenance") or {},
        config=raw.get("config", {}),
    )


def _has_name(path: Path) -> bool:
    import pyarrow.parquet as pq

    return "name" in pq.read_schema(path).names


def _generic_report(folder: Path) -> str:
    if (folder / SweepDir.SPEC).is_file():
        g = _gather_sweep(folder)
        kind = "sweep"
    else:
        runs_dirs = _find_runs(folder)
        if not runs_dirs:
            raise RunDirError(
                f"nothing to report in {str(folder)!r}",
                "expected the summary.json of a reproduce, a sweep.json, or run folders with "
                "config.json/metrics.parquet",
            )
        g = _gather_runs(folder, runs_dirs)
        kind = "run" if runs_dirs == [folder] else "run folders"
    figdir = folder / "figures"
    figs: list[tuple[str, Path, str]] = []
    stems: set[str] = set()

    def unique(stem: str) -> str:  # metric names that clean up alike ("loss/train", "loss_train")
        k, out = 2, stem
        while out in stems:
            out, k = f"{stem}_{k}", k + 1
        stems.add(out)
        return out

    if {"step", "name", "value"} <= set(g.series.columns) and len(g.series):
        for metric in sorted(map(str, g.series["name"].unique()))[:_MAX_STEP_FIGS]:
            fig = metric_vs_step(g.series, metric, title=f"{metric} vs step ({g.series_label})")
            stem = unique(f"step_{_safe(metric)}")
            png, _ = save_figure(fig, figdir / stem)
            per = "per ensemble member, " if "member" in g.series.columns else ""
            figs.append((stem, png, f"{metric} during training, {per}{g.series_label}"))
    n_axis = 0
    for axis in g.axes[:3]:
        for metric, table in g.tables.items():
            if n_axis >= _MAX_AXIS_FIGS:
                break
            sub = table.dropna(subset=[metric])
            if sub.empty or axis not in sub.columns:
                continue
            others = [a for a in g.axes if a != axis and a in sub.columns]
            group = next((a for a in others if sub[a].nunique() <= 8), None)
            fig = final_vs_axis(sub, axis, metric, group=group)
            stem = unique(f"final_{_safe(metric)}_vs_{_safe(axis)}")
            png, _ = save_figure(fig, figdir / stem)
            cap = f"final {metric} vs {axis}: mean ± standard error over seeds" + (
                " and members" if "member" in g.runs.columns or "member" in g.series else ""
            )
            figs.append((stem, png, cap + (f"; one line per {group}" if group else "")))
            n_axis += 1
    done = int(g.runs["done"].sum()) if "done" in g.runs else len(g.runs)
    sections = [f"<h2>Runs</h2><p>{kind}: {g.n_runs} run(s), {done} finished.</p>"]
    if g.axes:
        sections.append(f"<p>swept: {_e(', '.join(g.axes))}</p>")
    if figs:
        sections.append("<h2>Figures</h2>" + "".join(_img(p, n, c) for n, p, c in figs))
    if not g.runs.empty:
        sections.append("<h2>Runs table</h2>" + _df_html(g.runs))
    if g.provenance:
        sections.append("<h2>Provenance</h2>" + _kv_table(g.provenance))
    if g.config:
        sections.append("<h2>Configuration</h2>" + _json_pre(g.config))
    return _page(f"weightscape report: {folder.name}", sections)


def _safe(s: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(s))
    return out.strip("._") or "x"


# --- entry point -------------------------------------------------------------------------------
def build_report(folder: str | Path) -> Path:
    """Write ``folder/report.html`` from what is on disk and return its path.

    ``folder`` may be a reproduce folder (``summary.json`` with schema :data:`REPRODUCE_SCHEMA`),
    one study's folder (:data:`STUDY_SCHEMA`), or a sweep/run folder (run folders with
    ``config.json`` and ``metrics.parquet``; a ``sweep.json`` folder is read with
    :func:`weightscape.store.open_sweep`), for which the generic figures (metric vs step per
    member; final metric vs each swept axis with error bars over seeds) are drawn and saved as
    PNG and PDF under ``folder/figures/``.

    Raises:
        RunDirError: ``folder`` does not exist or holds nothing to report.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunDirError(f"report folder {str(folder)!r} does not exist")
    summary_file = folder / "summary.json"
    summary = None
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text())
        except json.JSONDecodeError as err:
            raise RunDirError(f"{str(summary_file)!r} is not valid JSON: {err.msg}") from None
    schema = summary.get("schema") if isinstance(summary, dict) else None
    if schema == REPRODUCE_SCHEMA:
        page = _reproduce_report(folder, summary)
    elif schema == STUDY_SCHEMA:
        page = _study_report(folder, summary)
    else:
        page = _generic_report(folder)
    return write_text(folder / REPORT_NAME, page)
