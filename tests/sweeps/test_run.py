"""Running sweeps: inline/local backends, resume, injected crashes, a real kill -9, errors."""

import os
import signal
import threading
import time

import pandas as pd
import pytest

from weightscape.errors import ConfigError, RunDirError, SweepError
from weightscape.store import SweepDir, open_sweep
from weightscape.sweeps import Sweep, make_packs, run_sweep, sweep_status

from . import _tasks

SMALL = {"steps": 20, "log_every": 5}


def _sweep(task="demo.ridge", **base):
    return Sweep(task=task, base={**SMALL, **base}, axes={"seed": [0, 1, 2], "width": [3, 7]})


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None


def test_inline_sweep_tables(tmp_path):
    s = _sweep()
    res = run_sweep(s, tmp_path / "sw")
    assert res.ok and (res.n_runs, res.n_skipped, res.n_submitted) == (6, 0, 6)
    assert res.n_packs == 1  # one pack key: seeds and widths differ only
    data = open_sweep(tmp_path / "sw")
    runs = data.runs
    # one row per run, in grid order, config fields equal to the expanded configs
    assert list(runs["run"]) == s.hashes()
    for row, cfg in zip(runs.to_dict("records"), s.expand(), strict=True):
        assert {k: row[k] for k in cfg} == cfg
    assert {"loss", "loss_exact", "excess", "a_norm"} <= set(runs.columns)
    # series: 20/5 + 1 = 5 logged steps x 2 metrics per run
    ser = data.series
    assert len(ser) == 6 * 5 * 2 and list(ser.columns[:3]) == ["run", "seed", "width"]
    # the final logged loss equals the summary's final loss
    last = ser[(ser.name == "loss") & (ser.step == 20)].set_index("run")["value"]
    assert (last.loc[runs["run"]].to_numpy() == runs["loss"].to_numpy()).all()
    assert not list((tmp_path / "sw").rglob("*.pkl"))  # no pickle among the results


def test_resume_skips_done_runs(tmp_path):
    s = _sweep()
    run_sweep(s, tmp_path / "sw")
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*/DONE")}
    res = run_sweep(s, tmp_path / "sw", resume=True)
    assert (res.n_skipped, res.n_submitted, res.n_packs) == (6, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in done} == done


def test_injected_crash_then_resume_equals_uninterrupted(tmp_path):
    s, k = _sweep("test.crashy"), 4
    _tasks.arm(None)
    run_sweep(s, tmp_path / "ref")
    ref = open_sweep(tmp_path / "ref")

    _tasks.arm(k)  # crash while computing run k (0-based), after k runs finished
    with pytest.raises(_tasks.InjectedCrash):
        run_sweep(s, tmp_path / "sw")
    st = sweep_status(tmp_path / "sw")
    assert st.counts == {"done": k, "running": 0, "partial": 1, "pending": 6 - k - 1}
    partial = SweepDir(tmp_path / "sw").run(s.hashes()[k])
    assert (partial.path / "config.json").exists() and not partial.done
    # a partial run is never counted
    mid = open_sweep(tmp_path / "sw")
    assert list(mid.runs["run"]) == s.hashes()[:k]
    pd.testing.assert_frame_equal(mid.runs, ref.runs.iloc[:k], check_exact=True)

    _tasks.arm(None)
    done_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*/DONE")}
    res = run_sweep(s, tmp_path / "sw", resume=True)
    assert (res.n_skipped, res.n_submitted) == (k, 6 - k)
    # every finished run is kept (not recomputed), and the table equals the uninterrupted one
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before
    after = open_sweep(tmp_path / "sw")
    pd.testing.assert_frame_equal(after.runs, ref.runs, check_exact=True)
    pd.testing.assert_frame_equal(after.series, ref.series, check_exact=True)


def test_existing_out_without_resume_writes_nothing(tmp_path):
    s = _sweep()
    run_sweep(s, tmp_path / "sw")
    before = _tree(tmp_path / "sw")
    with pytest.raises(RunDirError, match=r"already exists.*--resume"):
        run_sweep(s, tmp_path / "sw", resume=False)
    with pytest.raises(SweepError, match="holds a different sweep"):
        run_sweep(_sweep(steps=21), tmp_path / "sw", resume=True)
    assert _tree(tmp_path / "sw") == before


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"executor": "cloud"}, SweepError, r"unknown executor 'cloud'; choose one of"),
        ({"executor": "slurm", "slurm": {"partiton": "x"}}, SweepError, r"'partiton'; allowed"),
        ({"executor": "local", "slurm": {"time": 5}}, SweepError, r"need executor .slurm."),
        ({"threads_per_worker": 0}, ConfigError, r"threads_per_worker=0"),
        ({"max_pack_size": 0}, ConfigError, r"max_pack_size=0"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs, err, match):
    with pytest.raises(err, match=match):
        run_sweep(_sweep(), tmp_path / "sw", **kwargs)
    assert not (tmp_path / "sw").exists() or not (tmp_path / "sw" / "sweep.json").exists()


def test_task_that_forgets_done_is_an_error(tmp_path):
    with pytest.raises(SweepError, match="without marking runs done"):
        run_sweep(_sweep("test.lazy"), tmp_path / "sw")


def test_make_packs_groups_by_key_and_splits():
    s = Sweep(task="demo.ridge", axes={"seed": [0, 1, 2], "data_seed": [0, 1], "width": [2, 3]})
    cfgs, hashes = s.expand(), s.hashes()
    packs = make_packs(s.get_task(), cfgs, hashes, hashes, max_pack_size=4)
    # two data seeds -> two pack keys of 6 runs each, split into 2 chunks of 3
    assert sorted(len(p) for p in packs) == [3, 3, 3, 3]
    assert sorted(h for p in packs for h in p.hashes) == sorted(hashes)
    for p in packs:
        assert len({c["data_seed"] for c in p.configs}) == 1
    unpacked = make_packs(_tasks.UNPACKED, cfgs, hashes, hashes)
    assert [p.hashes for p in unpacked] == [(h,) for h in hashes]


def test_local_backend_equals_inline(tmp_path):
    # both compute with one BLAS/OpenMP thread per worker: identical numbers (exact), even though
    # the local backend splits the runs into 2 packs (zero-padding to another width only adds
    # exact zeros, and einsum sums in the same order)
    s = _sweep()
    run_sweep(s, tmp_path / "inline")
    res = run_sweep(s, tmp_path / "local", executor="local", max_workers=2)
    assert res.ok and res.n_packs == 2
    a, b = open_sweep(tmp_path / "inline"), open_sweep(tmp_path / "local")
    assert len(a.runs) == len(b.runs) == 6
    pd.testing.assert_frame_equal(a.runs, b.runs, rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(a.series, b.series, rtol=1e-12, atol=0)


def _kill_first_running(sweep_dir, hashes, killed, timeout=120):
    # once 2 runs are finished, SIGKILL the worker of a run that is mid-way (config.json written)
    sd = SweepDir(sweep_dir)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if sum(sd.run(h).done for h in hashes) < 2:
            time.sleep(0.02)
            continue
        for h in hashes:
            info = sd.run(h).running_info()
            if info and (sd.run(h).path / "config.json").exists():
                os.kill(int(info["pid"]), signal.SIGKILL)
                killed.append(h)
                return
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_minus_9_of_a_worker_then_resume(tmp_path):
    # one run per pack, each sleeping 0.5 s after writing config.json: a worker is killed mid-run
    s = _sweep("test.unpacked", sleep_s=0.5)
    run_sweep(s, tmp_path / "ref")
    ref = open_sweep(tmp_path / "ref")

    killed: list[str] = []
    watcher = threading.Thread(
        target=_kill_first_running, args=(tmp_path / "sw", s.hashes(), killed)
    )
    watcher.start()
    res = run_sweep(s, tmp_path / "sw", executor="local", max_workers=2)
    watcher.join()
    assert killed and not res.ok  # the pool broke: the killed pack (at least) failed
    assert killed[0] in {h for f in res.failures for h in f["runs"]}
    st = sweep_status(tmp_path / "sw")
    assert 2 <= st.counts["done"] < 6 and st.counts["running"] == 0
    assert not SweepDir(tmp_path / "sw").run(killed[0]).done
    mid = open_sweep(tmp_path / "sw")
    pd.testing.assert_frame_equal(
        mid.runs.reset_index(drop=True),
        ref.runs[ref.runs.run.isin(mid.runs.run)].reset_index(drop=True),
        check_exact=True,
    )

    done_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*/DONE")}
    res = run_sweep(s, tmp_path / "sw", executor="local", max_workers=2, resume=True)
    assert res.ok and res.n_skipped == len(done_before)
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before
    pd.testing.assert_frame_equal(open_sweep(tmp_path / "sw").runs, ref.runs, check_exact=True)


def test_local_executor_reports_failures_without_wait(tmp_path):
    # wait=False only leaves Slurm jobs running; the local pool finishes its packs anyway, and
    # their failures must be reported (it said ok with every run failed). (inline raises the
    # task's own exception, as with wait=True.)
    s = Sweep(task="test.failing", base={"steps": 4}, axes={"seed": [0, 1]})
    r = run_sweep(s, tmp_path / "sw", executor="local", max_workers=1, wait=False)
    assert not r.ok and len(r.failures) >= 1 and r.waited


def test_a_claim_from_another_host_names_the_files_to_delete(tmp_path):
    # a job killed on another node leaves RUNNING.json that nothing here can check: the
    # refusal says how to release it, and after that the resume goes on
    import json as _json

    s = Sweep(task="demo.ridge", base={"steps": 4}, axes={"seed": [0, 1]})
    out = tmp_path / "sw"
    run_sweep(s, out)
    h = s.hashes()[0]
    run = out / "runs" / h
    (run / "DONE").unlink()
    (run / "RUNNING.json").write_text(_json.dumps({"host": "node17", "pid": 1, "started": 0}))
    with pytest.raises(SweepError, match=r"node17.*rm .*/runs/\*/RUNNING.json"):
        run_sweep(s, out, resume=True)
    (run / "RUNNING.json").unlink()
    assert run_sweep(s, out, resume=True).n_submitted == 1
