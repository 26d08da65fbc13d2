"""The Slurm backend: option handling (unit) and a real single-node cluster (integration).

The integration tests need `make test-integration` (scripts/integration.sh starts Slurm and exports
WEIGHTSCAPE_SLURM=1); elsewhere they skip with the reason printed.
"""

import os
import shutil
import subprocess
import time

import cloudpickle
import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.errors import SweepError
from weightscape.store import SweepDir, open_sweep
from weightscape.sweeps import SlurmExecutor, Sweep, check_slurm_options, run_sweep, sweep_status

from . import _tasks

# Slurm jobs unpickle the test tasks: ship this helper module by value so that the job's Python
# does not need the tests folder on its path.
cloudpickle.register_pickle_by_value(_tasks)

SMALL = {"steps": 20, "log_every": 5}


def test_options_translate_to_submitit(tmp_path):
    ex = SlurmExecutor(
        tmp_path,
        threads_per_worker=2,
        options={"partition": "debug", "time": 7, "mem_gb": 4, "gpus": 1, "qos": "low"},
    )
    p = ex.parameters()
    assert p["slurm_partition"] == "debug" and p["timeout_min"] == 7
    assert p["mem_gb"] == 4 and p["gpus_per_node"] == 1 and p["slurm_qos"] == "low"
    assert p["cpus_per_task"] == 2  # defaults to the fixed thread count


def test_misspelt_option_is_one_line_listing_allowed(tmp_path):
    with pytest.raises(SweepError) as err:
        SlurmExecutor(tmp_path, options={"partiton": "debug"})
    msg = str(err.value)
    assert "\n" not in msg and "'partiton'" in msg and "'partition'" in msg and "'mem_gb'" in msg


@pytest.mark.parametrize(
    "opts, ok",
    [
        ({"time": 7, "gpus": 2, "mem_gb": 7.5, "max_num_timeout": 0, "partition": "p"}, True),
        ({"time": "abc"}, False),
        ({"time": 7.5}, False),
        ({"gpus": 0}, False),
        ({"gpus": True}, False),
        ({"mem_gb": 0}, False),
        ({"cpus_per_task": -1}, False),
    ],
)
def test_slurm_option_values_are_checked_before_submitting(tmp_path, opts, ok):
    # counts and sizes submitit would only refuse at submission, after the sweep folder exists
    if ok:
        assert check_slurm_options(opts, "slurm") == opts
        return
    ((key, value),) = opts.items()
    with pytest.raises(SweepError, match=f"slurm option {key}={value!r} must be"):
        check_slurm_options(opts, "slurm")
    with pytest.raises(SweepError):
        run_sweep(Sweep(task="demo.ridge", base=SMALL), tmp_path / "sw", executor="slurm",
                  slurm=opts)  # fmt: skip
    assert not (tmp_path / "sw").exists()


def test_unreachable_controller_is_an_error_before_writing(tmp_path, monkeypatch):
    # sbatch installed but no controller: sinfo fails as Slurm's own tools do (a stand-in
    # script with Slurm's message), and nothing is written
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "sinfo").write_text(
        "#!/bin/sh\necho 'slurm_load_partitions: Unable to contact slurm controller' >&2\nexit 1\n"
    )
    for f in bin_.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_))
    s = Sweep(task="demo.ridge", base=SMALL)
    with pytest.raises(SweepError, match=r"controller does not answer .*Unable to contact") as err:
        run_sweep(s, tmp_path / "sw", executor="slurm")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "sw").exists()


def test_no_sbatch_is_an_error_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    s = Sweep(task="demo.ridge", base=SMALL)
    with pytest.raises(SweepError, match="needs sbatch on PATH"):
        run_sweep(s, tmp_path / "sw", executor="slurm")
    assert not (tmp_path / "sw").exists()


# --- integration: a real Slurm cluster --------------------------------------------------------
def _slurm_reason() -> str | None:
    if os.environ.get("WEIGHTSCAPE_SLURM") != "1":
        return "WEIGHTSCAPE_SLURM is not 1: start Slurm with `make test-integration`"
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH"
    return None


needs_slurm = [
    pytest.mark.integration,
    pytest.mark.skipif(_slurm_reason() is not None, reason=str(_slurm_reason())),
]


def _wait_finished(path, timeout=300):
    t0 = time.time()
    seen = []
    while time.time() - t0 < timeout:
        st = sweep_status(path)
        seen.append(st)
        if st.finished:
            return seen
        time.sleep(1)
    raise AssertionError(f"sweep not finished after {timeout} s: {seen[-1]}")


def _job_report(job_id, out):
    # what a failed integration test shows: Slurm's view of the job and the ends of its logs
    show = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
    files = sorted((out / "logs").glob("*_log.*"))
    logs = [f"--- {p.name}\n{p.read_text()[-1500:]}" for p in files]
    return "\n".join([show.stdout.strip(), *logs])


def _assert_tables_equal(a, b):
    # same code, one thread per worker: counts exactly, floats to 1e-12 relative
    assert list(a.runs["run"]) == list(b.runs["run"])
    pd.testing.assert_frame_equal(a.runs, b.runs, rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(a.series, b.series, rtol=1e-12, atol=0)


def _mark(fn):
    for m in needs_slurm:
        fn = m(fn)
    return fn


@_mark
def test_slurm_sweep_equals_inline(tmp_path):
    s = Sweep(task="demo.ridge", base=SMALL, axes={"seed": [0, 1, 2], "width": [3, 7]})
    run_sweep(s, tmp_path / "inline")
    res = run_sweep(s, tmp_path / "slurm", executor="slurm", max_pack_size=2, slurm={"time": 5})
    assert res.ok, res.failures
    assert res.n_packs == 3 and len(res.job_ids) == 3  # one job-array task per pack
    assert len({j.split("_")[0] for j in res.job_ids}) == 1  # ... of one array
    _assert_tables_equal(open_sweep(tmp_path / "inline"), open_sweep(tmp_path / "slurm"))
    logs = list((tmp_path / "slurm" / "logs").glob("*_log.out"))
    assert len(logs) == 3


@_mark
def test_slurm_sweep_watched_then_collected(tmp_path):
    s = Sweep(task="demo.ridge", base={**SMALL, "sleep_s": 0.5}, axes={"seed": [0, 1, 2, 3]})
    run_sweep(s, tmp_path / "inline")
    out = tmp_path / "slurm"
    res = run_sweep(s, out, executor="slurm", max_pack_size=1, slurm={"time": 5}, wait=False)
    assert not res.waited and len(res.job_ids) == 4
    # while jobs are queued, a resume is refused (it would race the jobs)
    if sweep_status(out).jobs.keys() & {"PENDING", "RUNNING", "CONFIGURING"}:
        with pytest.raises(SweepError, match="still queued or running"):
            run_sweep(s, out, executor="slurm", slurm={"time": 5})
    seen = _wait_finished(out)
    for st in seen:
        assert st.total == 4 and sum(st.counts.values()) == 4
    assert seen[-1].counts["done"] == 4
    # collect later, through the CLI
    assert main(["sweep", "status", str(out)]) == 0
    assert main(["sweep", "collect", str(out)]) == 0
    assert (out / "runs.parquet").exists() and (out / "series.parquet").exists()
    _assert_tables_equal(open_sweep(tmp_path / "inline"), open_sweep(out))


@_mark
def test_preempted_job_is_requeued_and_skips_done_runs(tmp_path):
    # one pack of 3 runs finished one after the other, each sleeping 3 s after config.json;
    # once the first is DONE the job gets USR2 (what Slurm sends before a time-out or a
    # preemption): submitit checkpoints, `scontrol requeue`s it, and the requeued job skips the
    # finished run and recomputes the partial one.
    s = Sweep(task="test.sequential", base={**SMALL, "sleep_s": 3.0}, axes={"seed": [0, 1, 2]})
    run_sweep(s, tmp_path / "inline")
    out = tmp_path / "slurm"
    res = run_sweep(s, out, executor="slurm", slurm={"time": 5}, wait=False)
    (job_id,) = res.job_ids
    sd = SweepDir(out)
    first = sd.run(s.hashes()[0])
    t0 = time.time()
    while not first.done:
        assert time.time() - t0 < 180, f"first run not done: {sweep_status(out)}"
        time.sleep(0.2)
    done_mtime = (first.path / "DONE").stat().st_mtime_ns
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    # Slurm defers a requeued job's start (Reason=BeginTime, cred_expire = 120 s) so that the
    # new launch credential postdates the revoked one. Credential times have a resolution of one
    # second: a start forced within the second of the requeue is refused by slurmd ("Killing
    # non-startable batch JobId=…: Job credential revoked") and the job ends FAILED (seen in CI).
    # So: wait for the requeue, let two seconds pass, then make the job eligible.
    t0 = time.time()
    while time.time() - t0 < 120:
        q = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True
        ).stdout.split()
        if q[:2] == ["PENDING", "BeginTime"]:
            time.sleep(2.0)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
            break
        time.sleep(0.2)
    try:
        _wait_finished(out)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{_job_report(job_id, out)}") from None
    assert (first.path / "DONE").stat().st_mtime_ns == done_mtime  # not recomputed
    log = "".join(p.read_text() for p in (out / "logs").glob("*_log.err"))
    assert "Caught signal SIGUSR2" in log and "DUE TO JOB REQUEUE" in log, log[-2000:]
    _assert_tables_equal(open_sweep(tmp_path / "inline"), open_sweep(out))
