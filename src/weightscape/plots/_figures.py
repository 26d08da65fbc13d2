"""Generic figures: metric vs step per member, final metric vs a swept axis with error bars.

Every function here is pure: it takes data and returns a new :class:`matplotlib.figure.Figure`
(built directly, never through pyplot, so no global figure state is touched or leaked).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..store import atomic_write

__all__ = [
    "figure_png_bytes",
    "final_stats",
    "final_vs_axis",
    "metric_vs_step",
    "new_figure",
    "save_figure",
]

# One size for all generic figures: readable when embedded at 100% in the report.
_FIGSIZE = (6.4, 4.0)
_DPI = 110
_MAX_LEGEND = 12
_STAT_COLUMNS = ("mean", "sem", "count")


def new_figure(figsize: tuple[float, float] = _FIGSIZE) -> Figure:
    """A fresh Figure with the report's size and a constrained layout (not tracked by pyplot)."""
    return Figure(figsize=figsize, dpi=_DPI, layout="constrained")


def _require_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{what}: columns {missing} not in the data; have {list(df.columns)}")


def _long_to_metric(df: pd.DataFrame, metric: str, name: str, value: str) -> pd.DataFrame:
    """Rows of ``metric``: from a long table (``name``/``value`` columns) or a wide one."""
    if metric in df.columns:
        return df.rename(columns={metric: "__value"})
    _require_columns(df, [name, value], f"metric {metric!r}")
    sel = df[df[name] == metric]
    if sel.empty:
        have = sorted(map(str, df[name].unique()))
        raise ConfigError(f"metric={metric!r} is not in the data; have {have}")
    return sel.rename(columns={value: "__value"})


def metric_vs_step(
    df: pd.DataFrame,
    metric: str,
    *,
    step: str = "step",
    member: str | None = "member",
    name: str = "name",
    value: str = "value",
    logy: bool | None = None,
    title: str | None = None,
) -> Figure:
    """One line per ensemble member: ``metric`` against the optimisation step.

    Args:
        df: long format (columns ``member, step, name, value``, as in a run's
            ``metrics.parquet``) or wide format (a column named ``metric``).
        metric: the metric to plot (a value of ``name``, or a column).
        member: the column that identifies a member; None (or absent) plots one line.
        logy: log-scale the y axis; default: when all values are positive and span > 2 decades.

    Returns:
        A Figure with one Axes; its lines are ordered by member.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"metric_vs_step needs a pandas DataFrame, got {type(df).__name__}")
    data = _long_to_metric(df, metric, name, value)
    _require_columns(data, [step], f"metric {metric!r}")
    fig = new_figure()
    ax = fig.add_subplot()
    groups = [(None, data)] if member is None or member not in data else data.groupby(member)
    n = 0
    for key, g in groups:
        g = g.sort_values(step)
        label = None if key is None else f"{member} {key}"
        ax.plot(g[step].to_numpy(), g["__value"].to_numpy(dtype=float), lw=1.2, label=label)
        n += 1
    vals = data["__value"].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    if logy is None:
        logy = bool(vals.size) and vals.min() > 0 and vals.max() / vals.min() > 100
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(step)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs {step}")
    ax.grid(alpha=0.3)
    if 1 < n <= _MAX_LEGEND:
        ax.legend(fontsize="small", ncols=2 if n > 6 else 1)
    return fig


def final_vs_axis(
    df: pd.DataFrame,
    axis: str,
    metric: str,
    group: str | None = None,
    *,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """The mean of ``metric`` against ``axis``, with standard-error bars over repeats (seeds).

    Each row of ``df`` is one run (or one member of a run); rows that share ``axis`` (and
    ``group``) are repeats, summarised as mean ± standard error of the mean
    (``std(ddof=1) / sqrt(n)``; no bar for a single repeat).

    Args:
        df: one row per run, with columns ``axis``, ``metric`` and optionally ``group``.
        axis: the swept column on the x axis (numeric or categorical).
        metric: the column on the y axis.
        group: optional column: one line per value.

    Returns:
        A Figure with one Axes; one errorbar line per group.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"final_vs_axis needs a pandas DataFrame, got {type(df).__name__}")
    cols = [axis, metric] + ([group] if group is not None else [])
    _require_columns(df, cols, "final_vs_axis")
    stats = final_stats(df, axis, metric, group)
    numeric_x = pd.api.types.is_numeric_dtype(df[axis])
    fig = new_figure()
    ax = fig.add_subplot()
    groups = [(None, stats)] if group is None else stats.groupby(group, sort=True)
    cats = list(pd.unique(stats[axis])) if not numeric_x else None
    n = 0
    for key, g in groups:
        x = g[axis].to_numpy() if numeric_x else np.array([cats.index(v) for v in g[axis]])
        yerr = np.nan_to_num(g["sem"].to_numpy(dtype=float), nan=0.0)
        label = None if key is None else f"{group}={key}"
        y = g["mean"].to_numpy(dtype=float)
        ax.errorbar(x, y, yerr=yerr, marker="o", ms=4, capsize=3, lw=1.2, label=label)
        n += 1
    if not numeric_x:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    ax.set_title(title or f"final {metric} vs {axis} (mean ± s.e.m.)")
    ax.grid(alpha=0.3)
    if 1 < n <= _MAX_LEGEND:
        ax.legend(fontsize="small")
    return fig


def final_stats(df: pd.DataFrame, axis: str, metric: str, group: str | None = None) -> pd.DataFrame:
    """Mean, standard error of the mean and count of ``metric`` per ``axis`` (and ``group``).

    Returns:
        Columns ``[group,] axis, mean, sem, count``, sorted by the keys; ``sem`` is
        ``std(ddof=1) / sqrt(count)``, NaN where ``count == 1``.
    """
    keys = [group, axis] if group is not None else [axis]
    clash = [k for k in keys if k in _STAT_COLUMNS]
    if clash:
        raise ConfigError(f"axis/group names {clash} clash with the statistics {_STAT_COLUMNS}")
    g = df.groupby(keys, sort=True)[metric]
    count = g.count()
    out = pd.DataFrame({"mean": g.mean(), "sem": g.std(ddof=1) / np.sqrt(count), "count": count})
    return out.reset_index()


def figure_png_bytes(fig: Figure, *, dpi: int = _DPI) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, stem: str | Path, *, dpi: int = _DPI) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; return both paths.

    The figure's layout engine (constrained layout for :func:`new_figure`) is run once and then
    switched off, so the two formats share one layout and it is not recomputed per format
    (that halves the time of this function).
    """
    stem = Path(stem)
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ != "PlaceHolderLayoutEngine":
        engine.execute(fig)
        fig.set_layout_engine("none")
    png_bytes = figure_png_bytes(fig, dpi=dpi)
    png = atomic_write(stem.with_name(stem.name + ".png"), lambda fh: fh.write(png_bytes))
    pdf = atomic_write(stem.with_name(stem.name + ".pdf"), lambda fh: fig.savefig(fh, format="pdf"))
    return png, pdf
