"""Aggregation of sweep folders: runs/series tables, xarray grid, collect cache, run states."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightscape.errors import RunDirError
from weightscape.store import RunDir, SweepDir, _aggregate, collect_sweep, open_sweep
from weightscape.sweeps import Sweep, run_sweep


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("agg") / "sw"
    s = Sweep(
        task="demo.ridge",
        base={"steps": 10, "log_every": 5},
        axes={"seed": [0, 1, 2]},
        zip=[{"width": [3, 5], "n": [16, 24]}],
    )
    run_sweep(s, out)
    return s, out


def test_to_xarray_grid_matches_table(done_sweep):
    _, out = done_sweep
    data = open_sweep(out)
    ds = data.to_xarray()
    assert dict(ds.sizes) == {"seed": 3, "width": 2}
    # zipped companion key n is a coordinate along width; fixed keys are attributes
    assert list(ds["n"].values) == [16, 24] and ds["n"].dims == ("width",)
    assert ds.attrs["steps"] == 10 and ds.attrs["task"] == "demo.ridge"
    for row in data.runs.to_dict("records"):
        cell = ds.sel(seed=row["seed"], width=row["width"])
        assert cell["run"].item() == row["run"]
        for k in ("loss", "loss_exact", "excess", "a_norm"):
            assert cell[k].item() == row[k]


def test_series_in_xarray_matches_long_table(done_sweep):
    _, out = done_sweep
    data = open_sweep(out)
    ds = data.to_xarray(series=True)
    assert ds["series.loss"].dims == ("seed", "width", "step")
    ser = data.series
    for r in ser.sample(10, random_state=0).to_dict("records"):
        cell = ds[f"series.{r['name']}"].sel(seed=r["seed"], width=r["width"], step=r["step"])
        assert cell.item() == r["value"]


def test_open_while_running_reads_finished_runs_only(done_sweep, tmp_path):
    s, out = done_sweep
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    h = s.hashes()
    RunDir(copy / "runs" / h[1]).clear_done()  # now partial
    shutil.rmtree(copy / "runs" / h[4])  # now pending
    data = open_sweep(copy)
    assert list(data.runs["run"]) == [x for i, x in enumerate(h) if i not in (1, 4)]
    assert set(data.series["run"]) == set(data.runs["run"])
    ds = data.to_xarray()
    # the missing cells are NaN, the others hold the finished values
    assert np.isnan(ds["loss"].values).sum() == 2
    assert np.isnan(ds["loss"].sel(seed=0, width=5).item())


def test_collect_writes_parquet_and_is_used_as_cache(done_sweep, tmp_path, monkeypatch):
    _, out = done_sweep
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = collect_sweep(copy)
    runs = pd.read_parquet(copy / "runs.parquet")
    pd.testing.assert_frame_equal(runs, data.runs, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(copy / "series.parquet"), data.series, check_exact=True
    )

    def boom(*a, **k):
        raise AssertionError("run folders read although the cache is current")

    monkeypatch.setattr(_aggregate, "_read_run", boom)
    monkeypatch.setattr(_aggregate, "_read_series", boom)
    cached = open_sweep(copy)
    pd.testing.assert_frame_equal(cached.runs, data.runs, check_exact=True)
    pd.testing.assert_frame_equal(cached.series, data.series, check_exact=True)
    # a run that finished after collect makes the cache stale: folders are read again
    monkeypatch.undo()
    h = SweepDir(copy).run_hashes()[0]
    RunDir(copy / "runs" / h).clear_done()
    assert len(open_sweep(copy).runs) == len(data.runs) - 1


def test_summary_key_clashing_with_config_key(tmp_path):
    row = _aggregate._summary_row("abc", {"seed": 1}, {"seed": 2.0, "loss": 0.5})
    assert row == {"run": "abc", "seed": 1, "summary.seed": 2.0, "loss": 0.5}


def test_not_a_sweep_folder(tmp_path):
    with pytest.raises(RunDirError, match="is not a sweep folder"):
        open_sweep(tmp_path)


def test_run_states(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert rd.state == "pending"
    rd.path.mkdir()
    assert rd.state == "partial"
    rd.mark_running()  # claimed by this very process: left over from a crash
    assert rd.state == "partial"
    child = subprocess.Popen(["sleep", "30"])
    try:
        info = json.loads((rd.path / "RUNNING.json").read_text())
        info["pid"] = child.pid
        (rd.path / "RUNNING.json").write_text(json.dumps(info))
        assert rd.state == "running"  # a live worker claims it
    finally:
        child.kill()
        child.wait()
    assert rd.state == "partial"  # its worker is gone
    rd.mark_done()
    assert rd.state == "done"


def test_null_summary_scalar_is_nan_in_the_table(tmp_path):
    """A summary scalar written as null (JSON's NaN) reads back as NaN in a float column, also
    when no run has a number there (pandas alone would make that an object column of None)."""
    out = tmp_path / "sw"
    sweep = Sweep(task="demo.ridge", base={"steps": 10, "log_every": 5}, axes={"seed": [0, 1]})
    run_sweep(sweep, out)
    for run in (out / "runs").iterdir():
        s = json.loads((run / "summary.json").read_text())
        s["loss"] = None
        (run / "summary.json").write_text(json.dumps(s))
    runs = open_sweep(out).runs
    assert runs["loss"].dtype == np.float64 and runs["loss"].isna().all()
    assert np.isfinite(runs["excess"]).all()


def test_to_xarray_before_any_run_finished(tmp_path):
    # the grid with nothing measured on it (it raised KeyError on the empty runs table)
    out = tmp_path / "sw"
    s = Sweep(task="demo.ridge", base={"steps": 10, "log_every": 5}, axes={"seed": [0, 1, 2]})
    run_sweep(s, out)
    for h in s.hashes():
        (out / "runs" / h / "DONE").unlink()
    ds = open_sweep(out).to_xarray()
    assert list(ds["seed"].values) == [0, 1, 2] and not ds.data_vars


def test_collect_names_a_column_of_mixed_types(tmp_path):
    # a summary scalar that is text in one run and a number in another cannot be one Parquet
    # column: a one-line SweepError naming it (pyarrow's ArrowInvalid before)
    from weightscape.errors import SweepError

    out = tmp_path / "sw"
    run_sweep(
        Sweep(task="demo.ridge", base={"steps": 10, "log_every": 5}, axes={"seed": [0, 1]}), out
    )
    first = sorted((out / "runs").iterdir())[0]
    s = json.loads((first / "summary.json").read_text())
    s["loss"] = "diverged"
    (first / "summary.json").write_text(json.dumps(s))
    with pytest.raises(SweepError, match="'loss' is a number in some runs and text in others"):
        collect_sweep(out)


def test_git_commit_is_none_for_a_copy_inside_another_repository(tmp_path):
    # a non-editable install in another project's checkout (its .venv) recorded that project's
    # commit as weightscape's
    import shutil
    import sys

    import weightscape

    proj = tmp_path / "proj"
    proj.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=proj, check=True)
    (proj / "README").write_text("x")
    subprocess.run([*git, "add", "README"], cwd=proj, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=proj, check=True)
    site = proj / ".venv" / "site"
    shutil.copytree(Path(weightscape.__file__).parent, site / "weightscape")
    code = "from weightscape.store import git_commit; print(git_commit())"
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
        check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "None"


def test_a_list_valued_axis_aggregates_and_reports(tmp_path):
    # an axis whose values are lists (legal for train.stop) broke to_xarray and the report
    # (unhashable lists in the grid index and groupbys): its labels are the lists' JSON text
    from weightscape.plots import build_report
    from weightscape.sweeps import Task, register_task

    def run(configs, dirs):
        for c, d in zip(configs, dirs, strict=True):
            rd = RunDir(d)
            rd.write_config(c, seeds={"seed": c["seed"]})
            rd.write_metrics(pd.DataFrame({"step": [0, 1], "name": ["loss"] * 2,
                                           "value": [1.0, 0.5 * len(c["hidden"])]}))  # fmt: skip
            rd.write_json("summary.json", {"loss": 0.5 * len(c["hidden"])})
            rd.mark_done()

    register_task(Task(name="test.listaxis", defaults={"seed": 0, "hidden": [4]}, run=run),
                  replace=True)  # fmt: skip
    out = tmp_path / "sw"
    run_sweep(Sweep(task="test.listaxis", axes={"hidden": [[4], [8, 8]], "seed": [0, 1]}), out)
    ds = open_sweep(out).to_xarray(series=True)
    assert list(ds["hidden"].values) == ["[4]", "[8, 8]"]
    assert ds["loss"].sel(hidden="[8, 8]").values.tolist() == [1.0, 1.0]
    assert build_report(out).is_file()
