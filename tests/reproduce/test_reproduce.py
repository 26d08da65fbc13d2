"""The whole reproduce path with toy studies: output contract, bad inputs, dry run, resume."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.reproduce import (
    Claim,
    StudyNotImplementedError,
    available_studies,
    get_study,
    register_study,
    run_reproduce,
)
from weightscape.reproduce._run import MARKER

from ..plots._html import assert_not_blank, embedded_images, external_references
from ._toy import BROKEN, CALLS, CRASH, NS, SEEDS, draws

CLAIM_LINE = re.compile(
    r"^claim (?P<k>\S+): (?P<verdict>holds|does not hold) — (?P<ours>.+) vs (?P<paper>.+)$"
)


def _refuse_constant(word):
    raise AssertionError(f"{word} is not JSON")


def _listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None


def _reproduce(capsys, *args):
    code = main(["reproduce", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out.strip().splitlines(), cap.err


def _reproduce_failing(capsys, *args):
    """Run a reproduce whose study fails: the command exits 1 through SystemExit.

    Called through the typer app rather than ``cli.main``, so that this checks the command's own
    exit status (``cli.main`` turns the same SystemExit into its return code).
    """
    from weightscape.cli import app

    with pytest.raises(SystemExit) as info:
        app(args=["reproduce", *map(str, args)], standalone_mode=False)
    cap = capsys.readouterr()
    return info.value.code, cap.out.strip().splitlines(), cap.err


def test_toy_reproduce_output_contract(toys, tmp_path, capsys):
    out = tmp_path / "out"
    code, lines, _ = _reproduce(capsys, "toy", "--scale", "smoke", "--out", out)
    assert code == 0
    # stdout: exactly the claim lines, then the report path
    assert lines[-1] == f"report: {out / 'report.html'}"
    matches = [CLAIM_LINE.match(line) for line in lines[:-1]]
    assert all(matches) and [m["k"] for m in matches] == ["1", "2"]
    assert [m["verdict"] for m in matches] == ["holds", "does not hold"]
    # Oracle for claim 1: the grand mean of the same seeded draws, recomputed here.
    allx = np.concatenate([draws(s, 0, max(NS["smoke"])) for s in SEEDS])
    assert matches[0]["ours"] == f"{allx.mean():.3f} ± {allx.std(ddof=1) / np.sqrt(allx.size):.3f}"
    assert matches[0]["paper"] == "0" and matches[1]["paper"] == "1"

    top = json.loads((out / "summary.json").read_text())
    assert top["schema"] == "weightscape.reproduce/1"
    assert top["request"]["scale"] == "smoke" and top["request"]["executor"] == "inline"
    assert (
        top["n_claims"] == 2 and top["n_hold"] == 1 and top["failed"] == [] and top["missing"] == []
    )
    assert {"git_commit", "torch_version", "device"} <= set(top["provenance"])
    assert top["timing"]["wall_s"] >= 0 and top["timing"]["cpu_s"] >= 0
    c1 = top["claims"][0]
    assert set(c1) == {
        "id", "study", "key", "statement", "paper", "ours", "value", "error", "paper_value",
        "deviation", "holds", "verdict",
    }  # fmt: skip
    assert c1["id"] == "1" and c1["study"] == "toy" and c1["verdict"] == "holds"
    assert abs(c1["value"] - allx.mean()) < 1e-12  # same float64 sum order: round-off only
    assert c1["deviation"] == c1["value"] - 0.0
    assert top["studies"]["toy"]["headline"]["seeds"] == len(SEEDS)
    # strict JSON everywhere (RFC 8259 has no NaN): the toy's NaN headline is null
    assert top["studies"]["toy"]["headline"]["not measured"] is None
    for path in out.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=_refuse_constant)

    study = json.loads((out / "toy" / "summary.json").read_text())
    assert study["schema"] == "weightscape.reproduce.study/1" and study["status"] == "complete"
    assert study["context"]["out"] == str(out / "toy") and study["context"]["dtype"] == "float64"
    for f in study["figures"]:
        assert (out / "toy" / f["png"]).is_file()
        assert (out / "toy" / f["pdf"]).read_bytes().startswith(b"%PDF-")
    table = pd.read_parquet(out / "toy" / "tables" / "means.parquet")
    row = table[(table.n == 64) & (table.seed == 2)].iloc[0]
    assert abs(row["mean"] - draws(2, 0, 256)[:64].mean()) < 1e-12

    page = (out / "report.html").read_text()
    imgs = embedded_images(page)
    assert len(imgs) == 2
    for img in imgs:
        assert_not_blank(img)
    assert external_references(page) == []
    for c in top["claims"]:
        assert c["statement"] in page


def test_all_prefixes_claims_and_names_missing_studies(toys, tmp_path, capsys):
    out = tmp_path / "out"
    code, lines, err = _reproduce(capsys, "all", "--scale", "smoke", "--out", out)
    assert code == 0
    ks = [CLAIM_LINE.match(line)["k"] for line in lines[:-1]]
    assert ks == ["toy.1", "toy.2", "toy2.1"]
    assert "study ghost is not implemented yet" in err
    top = json.loads((out / "summary.json").read_text())
    assert top["missing"] == ["ghost"] and list(top["studies"]) == ["toy", "toy2"]
    assert [c["id"] for c in top["claims"]] == ks
    assert "not implemented yet: ghost" in (out / "report.html").read_text()


def _bad_cases(tmp):
    """{case: (argv, fragment of the one-line error)}; every case must write nothing."""
    base = ["--scale", "smoke", "--out", str(tmp / "out")]
    return {
        "unknown study": (["nosuch", *base], "study='nosuch' is not allowed"),
        "unknown scale": (["toy", "--scale", "huge", "--out", str(tmp / "out")], "scale='huge'"),
        "unknown executor": (["toy", *base, "--executor", "mpi"], "executor='mpi'"),
        "scale not offered": (
            ["toy2", "--scale", "paper", "--out", str(tmp / "out")],
            "study toy2",
        ),
        "not implemented": (["ghost", *base], "study ghost is not implemented yet"),
        "resume and force": (["toy", *base, "--resume", "--force"], "exclude each other"),
        "bad device": (["toy", *base, "--device", "tpu"], "device='tpu'"),
        "bad dtype": (["toy", *base, "--dtype", "float16"], "dtype='float16'"),
        "negative seed": (["toy", *base, "--seed", "-1"], "seed=-1"),
        "no --out": (["toy", "--scale", "smoke"], "--out"),
        "no study": (["--scale", "smoke", "--out", str(tmp / "out")], "STUDIES"),
        "slurm option, inline executor": (
            ["toy", *base, "--slurm", "partition=gpu"],
            "--slurm 'partition=gpu' needs --executor slurm; got --executor 'inline'",
        ),
        "unknown slurm option": (
            ["toy", *base, "--executor", "slurm", "--slurm", "colour=red"],
            "unknown slurm option 'colour'",
        ),
        "malformed slurm option": (
            ["toy", *base, "--executor", "slurm", "--slurm", "partition"],
            "--slurm 'partition' is not of the form key=value",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_cases(Path("."))))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(toys, tmp_path, capsys, case):
    argv, msg = _bad_cases(tmp_path)[case]
    assert main(["reproduce", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert msg.lower() in err[0].lower()
    assert list(tmp_path.iterdir()) == []


def test_slurm_without_sbatch_is_refused_before_writing(toys, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no sbatch anywhere
    out = tmp_path / "out"
    code, _, err = _reproduce(
        capsys, "toy", "--scale", "smoke", "--out", out, "--executor", "slurm"
    )
    err = err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs sbatch on PATH" in err[0], err
    assert not out.exists()


def test_slurm_options_reach_the_studies(toys, tmp_path, capsys, monkeypatch):
    """The options land in every study's context (checked with a dry run, which needs no
    Slurm); a CUDA device adds gpus=1 unless the user chose the GPUs."""
    import torch

    from weightscape.config import Precision
    from weightscape.reproduce import Plan, Study

    seen = []

    def plan(ctx):
        seen.append(ctx.slurm)
        return Plan(runs=("one",), cpu_s=1.0)

    register_study(Study(name="probe", title="probe", paper="none", run=plan, plan=plan))
    kw = dict(executor="slurm", dry_run=True)
    run_reproduce("probe", "smoke", tmp_path / "a", slurm={"partition": "p", "time": 30}, **kw)
    assert seen[-1] == {"partition": "p", "time": 30}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # Precision checks the device
    cuda = Precision(device="cuda")
    run_reproduce("probe", "smoke", tmp_path / "b", precision=cuda, **kw)
    assert seen[-1] == {"gpus": 1}
    run_reproduce("probe", "smoke", tmp_path / "c", precision=cuda, slurm={"gpus": 4}, **kw)
    assert seen[-1] == {"gpus": 4}
    run_reproduce("probe", "smoke", tmp_path / "d", executor="inline", dry_run=True)
    assert seen[-1] is None
    assert not any(tmp_path.iterdir())  # dry runs write nothing


def test_data_choice_reaches_the_study_and_is_checked_first(toys, tmp_path, capsys, monkeypatch):
    """--data: only studies that list it take it (one-line error otherwise, before anything is
    written), a data set whose files are missing is refused before writing, the choice reaches
    the study's context and the request, and a resume with another --data is refused."""
    from weightscape.data import _registry
    from weightscape.errors import DataNotFoundError
    from weightscape.reproduce import Plan, Study

    from ._toy import toy2_run

    seen = []

    def plan(ctx):
        seen.append(ctx.data)
        return Plan(runs=("one",), cpu_s=1.0)

    def run(ctx):
        seen.append(ctx.data)
        return toy2_run(ctx)

    def missing():
        """A data set whose files are not here."""
        raise DataNotFoundError("nowhere idx files not found in /nowhere", "download them")

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    _registry.register_dataset("nowhere", missing)
    register_study(Study(name="picky", title="t", paper="p", run=run, plan=plan,
                         data=("digits", "iris", "nowhere")))  # fmt: skip
    out = tmp_path / "out"
    code, _, err = _reproduce(capsys, "toy", "--scale", "smoke", "--out", out, "--data", "iris")
    assert code == 2 and "--data 'iris': study toy takes no --data" in err and not out.exists()
    code, _, err = _reproduce(capsys, "picky", "--scale", "smoke", "--out", out, "--data", "wine")
    assert code == 2 and "takes one of ['digits', 'iris', 'nowhere']" in err
    code, _, err = _reproduce(capsys, "picky", "--scale", "smoke", "--out", out, "--data",
                              "nowhere")  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and "download them" in err
    assert not out.exists() and seen == []
    run_reproduce("picky", "smoke", tmp_path / "dry", data="digits", dry_run=True)
    assert seen == ["digits"] and not (tmp_path / "dry").exists()
    code, _, _ = _reproduce(capsys, "picky", "--scale", "smoke", "--out", out, "--data", "iris")
    assert code == 0 and seen[-1] == "iris"
    top = json.loads((out / "summary.json").read_text())
    assert top["request"]["data"] == "iris"
    study = json.loads((out / "picky" / "summary.json").read_text())
    assert study["context"]["data"] == "iris"
    code, _, err = _reproduce(
        capsys, "picky", "--scale", "smoke", "--out", out, "--data", "digits", "--resume"
    )
    assert code == 2 and "data='iris'" in err


def test_existing_out_is_refused_unchanged(toys, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    for extra in ([], ["--force"], ["--resume"]):
        code, _, err = _reproduce(capsys, "toy", "--scale", "smoke", "--out", out, *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert _listing(out) == ["precious.txt"]
    assert "already exists" in _reproduce(capsys, "toy", "--scale", "smoke", "--out", out)[2]


def test_dry_run_prints_plan_and_writes_nothing(toys, tmp_path, capsys):
    out = tmp_path / "out"
    code, lines, _ = _reproduce(capsys, "all", "--scale", "smoke", "--out", out, "--dry-run")
    assert code == 0 and not out.exists()
    text = "\n".join(lines)
    assert "toy (scale smoke, executor inline): 4 runs" in text
    assert sum(line.startswith("  - seed ") for line in lines) == len(SEEDS)
    assert "estimate: CPU" in text and "peak memory" in text
    assert lines[-1].startswith("total: 2 studies, 5 runs;")
    assert not any(CLAIM_LINE.match(line) for line in lines)


def test_dry_run_estimate_is_the_plans(toys, tmp_path, capsys):
    # the printed estimate is each study's plan() for the chosen scale, nothing hard-coded: a
    # study whose plan returns distinctive numbers per scale shows exactly those, and the total
    # line sums them (toy: 0.04 s -> "0 s"; max of the memories)
    from weightscape.reproduce import Plan, Study

    cpu = {"smoke": 5400.0, "small": 45.0, "paper": 9000.0}

    def plan(ctx):
        return Plan(runs=("one",), cpu_s=cpu[ctx.scale], gpu_s=7.0, peak_mem_mb=321.0)

    register_study(Study(name="toy_cost", title="t", paper="p", run=lambda c: None, plan=plan))
    for scale, cpu_text, total in (
        ("smoke", "90.0 min", "CPU 90.0 min, GPU 7 s, peak memory 321 MB"),
        ("small", "45 s", "CPU 45 s, GPU 7 s, peak memory 321 MB"),
        ("paper", "2.5 h", "CPU 2.5 h, GPU 7 s, peak memory 321 MB"),
    ):
        out = tmp_path / scale
        code, lines, _ = _reproduce(
            capsys, "toy", "toy_cost", "--scale", scale, "--out", out, "--dry-run"
        )
        assert code == 0 and not out.exists()
        i = lines.index(f"toy_cost (scale {scale}, executor inline): 1 runs")
        assert lines[i + 2] == f"  estimate: CPU {cpu_text}, GPU 7 s, peak memory 321 MB"
        assert lines[-1] == f"total: 2 studies, 5 runs; {total}"


def test_resume_reuses_finished_work(toys, tmp_path, capsys):
    out = tmp_path / "out"
    # First attempt: toy crashes after computing two of its four seeds; toy2 still runs.
    CRASH["after"] = 2
    code, lines, err = _reproduce_failing(capsys, "toy", "toy2", "--scale", "smoke", "--out", out)
    assert code == 1 and "injected crash" in err and CALLS == [0, 1]
    assert (out / "toy" / "error.txt").is_file()
    assert [CLAIM_LINE.match(line)["k"] for line in lines[:-1]] == ["toy2.1"]
    # A dry run of the resume says toy2 is re-used and toy would run.
    code, lines, _ = _reproduce(
        capsys, "toy", "toy2", "--scale", "smoke", "--out", out, "--resume", "--dry-run"
    )
    assert code == 0 and any("toy2: finished" in line for line in lines)
    # Resume: toy loads seeds 0 and 1 and computes only 2 and 3; toy2 is not run again.
    CRASH["after"] = None
    calls_before = list(CALLS)
    toy2_summary = (out / "toy2" / "summary.json").read_text()
    code, lines, _ = _reproduce(capsys, "toy", "toy2", "--scale", "smoke", "--out", out, "--resume")
    assert code == 0
    assert CALLS == [*calls_before, 2, 3]
    assert not (out / "toy" / "error.txt").exists()  # the failed attempt's traceback is gone
    assert (out / "toy2" / "summary.json").read_text() == toy2_summary
    assert [CLAIM_LINE.match(line)["k"] for line in lines[:-1]] == ["toy.1", "toy.2", "toy2.1"]
    top = json.loads((out / "summary.json").read_text())
    assert top["studies"]["toy2"]["reused"] and not top["studies"]["toy"]["reused"]
    assert top["failed"] == []
    # The resumed result equals a fresh run's (same seeds, same numbers).
    fresh = tmp_path / "fresh"
    _reproduce(capsys, "toy", "toy2", "--scale", "smoke", "--out", fresh)
    fresh_claims = json.loads((fresh / "summary.json").read_text())["claims"]
    assert fresh_claims == top["claims"]
    # Resuming at another scale is refused, and so are other studies or another dtype (a
    # dtype resume retrained the cached work; other studies dropped the finished ones from
    # the summary); the folder is left as it was.
    listing = _listing(out)
    code, _, err = _reproduce(capsys, "toy", "--scale", "small", "--out", out, "--resume")
    assert code == 2 and "scale='smoke'" in err
    code, _, err = _reproduce(capsys, "toy", "--scale", "smoke", "--out", out, "--resume")
    assert code == 2 and "studies=['toy', 'toy2'], not ['toy']" in err
    code, _, err = _reproduce(capsys, "toy", "toy2", "--scale", "smoke", "--out", out, "--resume",
                              "--dtype", "float32")  # fmt: skip
    assert code == 2 and "dtype='float64', not 'float32'" in err
    assert _listing(out) == listing


def test_force_replaces_a_reproduce_folder(toys, tmp_path, capsys):
    out = tmp_path / "out"
    assert _reproduce(capsys, "toy2", "--scale", "smoke", "--out", out)[0] == 0
    (out / "stale.txt").write_text("old")
    assert _reproduce(capsys, "toy2", "--scale", "smoke", "--out", out, "--force")[0] == 0
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file()


def test_failed_study_is_recorded_and_others_run(toys, tmp_path, capsys):
    register_study(BROKEN)
    out = tmp_path / "out"
    code, lines, err = _reproduce_failing(
        capsys, "toy_broken", "toy2", "--scale", "smoke", "--out", out
    )
    assert code == 1 and "the toy study is broken on purpose" in err
    assert lines[-1] == f"report: {out / 'report.html'}"
    top = json.loads((out / "summary.json").read_text())
    assert top["failed"] == ["toy_broken"] and top["studies"]["toy_broken"]["status"] == "failed"
    assert "ValueError" in (out / "toy_broken" / "error.txt").read_text()
    assert "status: failed" in (out / "report.html").read_text()


def test_report_command_rebuilds_the_page(toys, tmp_path, capsys):
    out = tmp_path / "out"
    run_reproduce("toy2", "smoke", out)
    (out / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.html'}"
    assert "1 of 1 claims hold" in (out / "report.html").read_text()
    # A study's own folder is a valid report target too.
    assert main(["report", str(out / "toy2")]) == 0
    assert "Arithmetic series" in (out / "toy2" / "report.html").read_text()


def test_registry_lazy_import_and_errors(toys):
    assert available_studies() == ("toy", "toy2")
    with pytest.raises(StudyNotImplementedError, match="study ghost is not implemented yet"):
        get_study("ghost")
    assert get_study("toy").name == "toy"


def test_progress_lines_carry_the_elapsed_wall_time(tmp_path, capsys):
    import time
    from dataclasses import replace

    from weightscape.reproduce import StudyContext

    ctx = StudyContext(scale="smoke", out=tmp_path / "maxent")
    ctx.log("training")
    assert capsys.readouterr().err == "[maxent 0:00:00] training\n"
    replace(ctx, started=time.monotonic() - 3725.4).log("landscapes")
    assert capsys.readouterr().err == "[maxent 1:02:05] landscapes\n"
    assert replace(ctx, started=0.0) == ctx  # not a setting: contexts still compare equal


def test_claim_line_format():
    c = Claim(key="3", statement="s", paper="0.5", ours="0.49 ± 0.01", holds=False)
    assert c.line() == "claim 3: does not hold — 0.49 ± 0.01 vs 0.5"
    assert c.line("maxent") == "claim maxent.3: does not hold — 0.49 ± 0.01 vs 0.5"
    assert CLAIM_LINE.match(c.line("maxent"))["k"] == "maxent.3"


def test_study_sweep_gets_executor_and_resume(toys, tmp_path, capsys):
    """A study running a real sweep: --resume reaches run_sweep, which skips finished runs."""
    from weightscape.sweeps import EXECUTORS as SWEEP_EXECUTORS

    from ._toy import SWEEP_RESULTS, TOY_SWEEP

    assert set(SWEEP_EXECUTORS) == {"inline", "local", "slurm"}  # our choices are the sweeps'
    register_study(TOY_SWEEP)
    SWEEP_RESULTS.clear()
    out = tmp_path / "out"
    code, lines, _ = _reproduce(capsys, "toy_sweep", "--scale", "smoke", "--out", out)
    assert code == 0 and lines[0].startswith("claim 1: holds — min(loss - loss_exact) = ")
    assert SWEEP_RESULTS[-1].n_submitted == 4
    # Interrupt it: one run loses its DONE marker, and the study its summary.
    runs = sorted((out / "toy_sweep" / "sweep" / "runs").iterdir())
    (runs[0] / "DONE").unlink()
    (out / "toy_sweep" / "summary.json").unlink()
    code, lines, _ = _reproduce(capsys, "toy_sweep", "--scale", "smoke", "--out", out, "--resume")
    assert code == 0 and CLAIM_LINE.match(lines[0])["verdict"] == "holds"
    assert (SWEEP_RESULTS[-1].n_skipped, SWEEP_RESULTS[-1].n_submitted) == (3, 1)


@pytest.mark.slow
def test_study_sweep_on_the_local_executor(toys, tmp_path, capsys):
    """--executor local reaches run_sweep: the runs are computed in worker processes (slow: each
    worker imports torch), with the same results as inline."""
    from ._toy import SWEEP_RESULTS, TOY_SWEEP

    register_study(TOY_SWEEP)
    SWEEP_RESULTS.clear()
    for ex in ("inline", "local"):
        code, _, _ = _reproduce(
            capsys, "toy_sweep", "--scale", "smoke", "--out", tmp_path / ex, "--executor", ex
        )
        assert code == 0
    assert SWEEP_RESULTS[-1].failures == [] and SWEEP_RESULTS[-1].n_submitted == 4
    inline, local = (
        json.loads((tmp_path / ex / "summary.json").read_text()) for ex in ("inline", "local")
    )
    assert local["request"]["executor"] == "local"
    # Same configs and seeds: the same float64 numbers up to summation order (1e-12 relative).
    assert abs(local["claims"][0]["value"] - inline["claims"][0]["value"]) <= 1e-12


def _slurm_marks(fn):
    from ..sweeps.test_slurm import needs_slurm

    for m in needs_slurm:
        fn = m(fn)
    return fn


@_slurm_marks
def test_study_sweep_on_a_real_slurm_with_options(toys, tmp_path, capsys):
    """--executor slurm with --slurm options: the study's sweep runs as Slurm jobs whose sbatch
    scripts carry the options, with the same claim value as inline."""
    from ._toy import SWEEP_RESULTS, TOY_SWEEP

    register_study(TOY_SWEEP)
    SWEEP_RESULTS.clear()
    code, _, _ = _reproduce(capsys, "toy_sweep", "--scale", "smoke", "--out", tmp_path / "i")
    assert code == 0
    out = tmp_path / "s"
    code, lines, _ = _reproduce(
        capsys, "toy_sweep", "--scale", "smoke", "--out", out, "--executor", "slurm",
        "--slurm", "time=7", "--slurm", "job_name=ws-repro-test",
    )  # fmt: skip
    assert code == 0 and CLAIM_LINE.match(lines[0])["verdict"] == "holds"
    res = SWEEP_RESULTS[-1]
    assert res.failures == [] and res.job_ids
    scripts = list((out / "toy_sweep" / "sweep" / "logs").glob("*submission.sh"))
    assert scripts
    text = scripts[0].read_text()
    assert "--time=7" in text and "--job-name=ws-repro-test" in text
    inline, slurm = (json.loads((p / "summary.json").read_text()) for p in (tmp_path / "i", out))
    assert slurm["request"]["slurm"] == {"time": 7, "job_name": "ws-repro-test"}
    assert abs(slurm["claims"][0]["value"] - inline["claims"][0]["value"]) <= 1e-12


def test_resume_of_a_damaged_marker_is_a_one_line_error(toys, tmp_path, capsys):
    # reproduce.json or a study summary that is JSON but not an object (a list, a string)
    out = tmp_path / "out"
    assert _reproduce(capsys, "toy2", "--scale", "smoke", "--out", out)[0] == 0
    (out / "toy2" / "summary.json").write_text('"x"')  # the study is redone, not a crash
    code, lines, _ = _reproduce(capsys, "toy2", "--scale", "smoke", "--out", out, "--resume")
    assert code == 0 and lines[-1].startswith("report: ")
    (out / "reproduce.json").write_text("[]")
    code, _, err = _reproduce(capsys, "toy2", "--scale", "smoke", "--out", out, "--resume")
    assert code == 2 and "no valid reproduce.json" in err and "Traceback" not in err
