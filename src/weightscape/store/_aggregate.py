"""Aggregation of a sweep's finished runs into pandas tables and an xarray Dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SweepError
from ._atomic import null_as_nan, write_parquet
from ._sweepdir import SweepDir

__all__ = ["SweepData", "collect_sweep", "open_sweep"]

RUN_COLUMN = "run"  # the run hash column in both tables


def _summary_row(run_hash: str, config: dict, summary: dict) -> dict:
    row = {RUN_COLUMN: run_hash}
    row.update(config)
    # null (how JSON writes NaN and infinity) is NaN again in the table
    for key, value in null_as_nan(summary).items():
        # a summary scalar named like a config key keeps both, the scalar as "summary.<key>"
        row[f"summary.{key}" if key in config or key == RUN_COLUMN else key] = value
    return row


def _read_run(sd: SweepDir, run_hash: str) -> dict:
    rd = sd.run(run_hash)
    cfg = rd.read_config().get("config", {})
    summary_path = rd.path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return _summary_row(run_hash, cfg, summary)


def _read_series(sd: SweepDir, run_hash: str) -> pd.DataFrame | None:
    path = sd.run(run_hash).path / "metrics.parquet"
    if not path.is_file():
        return None
    df = pd.read_parquet(path)
    df.insert(0, RUN_COLUMN, run_hash)
    return df


@dataclass
class SweepData:
    """The finished runs of a sweep.

    Attributes:
        path: the sweep folder.
        spec: the content of ``sweep.json`` (task, base, axes, zip, dims, runs, provenance).
        runs: one row per finished run: ``run`` (the hash), every config field, then the final
            scalars of ``summary.json`` (a scalar named like a config key becomes
            ``summary.<key>``). Rows in grid order.
        dims: the swept axes (one per axis, one per zip group named by its first key).
    """

    path: Path
    spec: dict
    runs: pd.DataFrame
    _series: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def dims(self) -> list[str]:
        return list(self.spec.get("dims", []))

    @property
    def series(self) -> pd.DataFrame:
        """Long table of every finished run's metrics: ``run``, the swept axes, then the columns of
        ``metrics.parquet`` (``[member,] step, name, value``). Read on first access."""
        if self._series is None:
            sd = SweepDir(self.path)
            parts = [_read_series(sd, h) for h in self.runs[RUN_COLUMN]]
            parts = [p for p in parts if p is not None and len(p)]
            if parts:
                df = pd.concat(parts, ignore_index=True)
            else:
                df = pd.DataFrame({RUN_COLUMN: [], "step": [], "name": [], "value": []})
            self._series = _add_dims(df, self.runs, self.dims)
        return self._series

    def to_xarray(self, *, series: bool = False):
        """An :class:`xarray.Dataset` with one dimension per swept axis.

        Data variables are the final scalars (and ``run``, the hash); a run not finished yet is
        NaN. Config keys held fixed become attributes; the other keys of a zip group become
        coordinates along the group's dimension. With ``series=True`` every metric name also
        becomes a variable ``series.<name>`` over the swept dims, ``step`` (and ``member`` where
        the metrics have one).
        """
        import xarray as xr

        dims = self.dims
        df = _labelled(self.runs, dims)
        spec_base = self.spec.get("base", {})
        zip_groups = self.spec.get("zip", [])
        # sweep.json is written with sorted keys: a zip group's dim is the key listed in dims
        companions = {k: d for g in zip_groups for d in g if d in dims for k in g if k != d}
        config_keys = [c for c in df.columns if c in self._config_keys()]
        fixed = [c for c in config_keys if c not in dims and c not in companions]
        values = [c for c in df.columns if c not in config_keys]
        if dims:
            idx = self._grid_index()
            if df.empty:  # no run finished yet: the grid, with nothing measured on it
                table = pd.DataFrame(index=idx)
            else:
                table = df.set_index(dims)[values].reindex(idx)
            ds = xr.Dataset.from_dataframe(table)
            for key, dim in companions.items():
                group = next(g for g in zip_groups if dim in g)
                ds = ds.assign_coords({key: (dim, list(group[key]))})
        else:
            ds = xr.Dataset({c: ((), df[c].iloc[0]) for c in values} if len(df) else {})
        attrs = {}
        for c in fixed:
            if len(df[c]):
                attrs[c] = _attr(df[c].iloc[0])
        for k, v in spec_base.items():
            attrs.setdefault(k, _attr(v))
        ds.attrs.update(attrs)
        ds.attrs["task"] = self.spec.get("task", "")
        if series and len(self.series):
            s = _labelled(self.series, dims)
            extra = ["member"] if "member" in s.columns else []
            for name, part in s.groupby("name", sort=True):
                table = part.set_index([*dims, *extra, "step"])["value"]
                table = table[~table.index.duplicated(keep="last")]
                da = xr.DataArray.from_series(table)
                if dims:
                    da = da.reindex({d: ds[d].values for d in dims})
                ds[f"series.{name}"] = da
        return ds

    def _config_keys(self) -> set[str]:
        keys: set[str] = set(self.dims)
        keys.update(self.spec.get("config_keys", []))
        keys.update(self.spec.get("base", {}))
        keys.update(self.spec.get("axes", {}))
        for g in self.spec.get("zip", []):
            keys.update(g)
        return keys

    def _grid_index(self) -> pd.MultiIndex | pd.Index:
        axes = self.spec.get("axes", {})
        levels = []
        for d in self.dims:
            if d in axes:
                levels.append([_label(v) for v in axes[d]])
            else:
                g = next(g for g in self.spec.get("zip", []) if d in g)
                levels.append([_label(v) for v in g[d]])
        if len(levels) == 1:
            return pd.Index(levels[0], name=self.dims[0])
        return pd.MultiIndex.from_product(levels, names=self.dims)


def _label(value):
    """An axis value as an index label: a list (e.g. ``train.stop``) as its JSON text, which
    is hashable; anything else as it is."""
    return json.dumps(value) if isinstance(value, list | tuple) else value


def _labelled(df: pd.DataFrame, dims) -> pd.DataFrame:
    """``df`` with list values of the ``dims`` columns as :func:`_label` text (a copy when any
    is changed)."""
    listy = [d for d in dims if d in df.columns and df[d].map(lambda v: isinstance(v, list)).any()]
    if not listy:
        return df
    df = df.copy()
    for d in listy:
        df[d] = df[d].map(_label)
    return df


def _attr(value):
    """A config value as a netCDF-safe attribute: a scalar, or JSON text for lists and None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return json.dumps(value)


def _add_dims(series: pd.DataFrame, runs: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    if not dims or not len(runs):
        return series
    keys = runs[[RUN_COLUMN, *dims]]
    out = series.merge(keys, on=RUN_COLUMN, how="left")
    return out[[RUN_COLUMN, *dims, *[c for c in series.columns if c != RUN_COLUMN]]]


def _scan_runs(sd: SweepDir, done: list[str]) -> pd.DataFrame:
    rows = [_read_run(sd, h) for h in done]
    if not rows:
        return pd.DataFrame({RUN_COLUMN: pd.Series([], dtype=str)})
    return pd.DataFrame(rows)


def open_sweep(path: str | Path) -> SweepData:
    """The finished runs of the sweep in ``path`` (it may still be running: only runs with a
    ``DONE`` marker are read).

    When ``runs.parquet`` (from :func:`collect_sweep`) lists exactly the finished runs, it is read
    instead of every run folder.
    """
    sd = SweepDir(path)
    spec = sd.read_spec()
    done = sd.done_hashes()
    runs = None
    series = None
    if sd.runs_table.is_file():
        cached = pd.read_parquet(sd.runs_table)
        if list(cached[RUN_COLUMN]) == done:
            runs = cached
            if sd.series_table.is_file():
                series = pd.read_parquet(sd.series_table)
    if runs is None:
        runs = _scan_runs(sd, done)
    return SweepData(path=sd.path, spec=spec, runs=runs, _series=series)


def collect_sweep(path: str | Path) -> SweepData:
    """Read the finished runs and write ``runs.parquet`` and ``series.parquet`` (atomically)."""
    sd = SweepDir(path)
    spec = sd.read_spec()
    runs = _scan_runs(sd, sd.done_hashes())
    for col in runs.columns:  # Parquet columns hold one type: name the column that does not
        kinds = {type(v).__name__ for v in runs[col] if v is not None and v == v}
        if "str" in kinds and kinds & {"int", "float", "bool"}:
            raise SweepError(
                f"{col!r} is a number in some runs and text in others ({sorted(kinds)}); a "
                "table column holds one type: make the task write one type for it"
            )
    data = SweepData(path=sd.path, spec=spec, runs=runs)
    write_parquet(sd.series_table, data.series)
    write_parquet(sd.runs_table, runs)
    return data
