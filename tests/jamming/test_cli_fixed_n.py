"""``weightscape jamming fixed-n``: the files it writes are what :func:`fixed_n_diagram` returns
for the same arguments (run here independently, in memory: no sweep folders), ``--resume``
recomputes nothing, and bad input exits 2 with one line and nothing written.

A tiny problem (N ≈ 30, depths 1 and 2, 2 seeds, 600 steps): most runs end undecided, which is
enough for the plumbing; the ratio 0.1 gives P = 3 and 4, where some runs reach N_Δ = 0 (a
depth with no decided run at all is drawn as a legend entry, see the figure test below).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.cli._options import parse_floats
from weightscape.errors import ConfigError
from weightscape.jamming import fixed_n_diagram, fixed_n_figure, fixed_n_sizes, get_protocol

DEPTHS, N, RATIOS, SEEDS, STEPS, N_BOOT, DATA_SEED = [1, 2], 30, [0.1, 0.2, 2.0], 2, 600, 50, 3
ARGS = [
    "--depths", "1,2", "--N", "30", "--ratios", "0.1,0.2,2.0", "--seeds", "2",
    "--max-steps", "600", "--n-boot", "50", "--data-seed", "3",
]  # fmt: skip


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _done_files(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (out / "sweeps").glob("L*/scanP/runs/*/DONE")}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """One finished ``fixed-n`` folder, its stdout, and the same diagram computed directly."""
    out = tmp_path_factory.mktemp("fixed-n") / "fx"
    code, stdout, stderr = _run(["jamming", "fixed-n", "--out", str(out), *ARGS])
    assert code == 0, stderr[-3000:]
    prot = get_protocol("fast", max_steps=STEPS)
    ref = fixed_n_diagram(
        DEPTHS, N, RATIOS, prot, SEEDS, data_seed=DATA_SEED, executor="memory", n_boot=N_BOOT
    )
    return out, stdout, ref


def test_files_equal_the_direct_computation(cli):
    out, stdout, ref = cli
    for name in ("fixed_n.parquet", "runs.parquet", "fixed_n.json", "fixed_n.png", "fixed_n.pdf"):
        assert (out / name).is_file(), name
    # one sweep per depth, one run folder per (P, seed)
    for L in DEPTHS:
        assert len(list((out / "sweeps" / f"L{L}" / "scanP" / "runs").glob("*/DONE"))) == 6
    # same seeds -> the same runs, bit for bit, whether trained through the sweep folders or in
    # memory; the per-depth table (P* fit with its seeded bootstrap) follows from them
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), ref.runs, check_exact=True)
    table = pd.read_parquet(out / "fixed_n.parquet")
    pd.testing.assert_frame_equal(table, ref.table, check_exact=True)
    # the command's up-front size check chooses the library's widths
    assert [t[:3] for t in fixed_n_sizes(DEPTHS, N, RATIOS)] == [
        (r.depth, r.width, r.N) for r in ref.table.itertuples()
    ]
    assert list(table.width) == [5, 4] and list(table.N) == [30, 36]  # n_weights(1, 5) = 30 ...
    assert sorted(ref.runs[ref.runs.depth == 2].P.unique()) == [4, 7, 72]  # round(α · 36)

    doc = json.loads((out / "fixed_n.json").read_text())
    assert doc["protocol"]["name"] == "fast" and doc["protocol"]["max_steps"] == STEPS
    assert doc["config"] == {
        "depths": DEPTHS,
        "N": N,
        "ratios": RATIOS,
        "seeds": SEEDS,
        "n_boot": N_BOOT,
        "data": "random",
        "data_seed": DATA_SEED,
        "executor": "inline",
        "slurm": None,
    }
    assert "git_commit" in doc["provenance"]
    for row, rec in zip(ref.table.itertuples(), doc["depths"], strict=True):
        assert (rec["depth"], rec["width"], rec["N"], rec["method"]) == (
            row.depth,
            row.width,
            row.N,
            row.method,
        )
        for key in ("P_star", "P_star_err", "ratio", "ratio_err"):
            v = getattr(row, key)
            assert rec[key] == (v if math.isfinite(v) else None), key
    assert (doc["depth_test"] is None) == (ref.depth_test is None)

    lines = stdout.splitlines()
    assert len(lines) == len(DEPTHS) + 1
    assert lines[0].startswith("L=1 (h=5, N=30): P* = ") and "6 runs" in lines[0]
    assert lines[1].startswith("L=2 (h=4, N=36): P* = ")
    assert lines[-1].startswith("depth independence: ")


def test_resume_recomputes_nothing(cli):
    out, stdout, _ = cli
    done = _done_files(out)
    runs = pd.read_parquet(out / "runs.parquet")
    code, again, stderr = _run(["jamming", "fixed-n", "--out", str(out), *ARGS, "--resume"])
    assert code == 0, stderr[-3000:]
    assert _done_files(out) == done  # no run folder added, none rewritten
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), runs, check_exact=True)
    assert again == stdout


def test_depth_test_is_written_and_printed(cli, tmp_path, monkeypatch):
    """The depth-test fields and line, with a diagram whose P* is located at both depths (a
    stand-in for the library call: the tiny problem above locates none)."""
    import weightscape.jamming as jamming
    from weightscape.jamming import DepthTest, FixedNDiagram

    ref = cli[2]
    table = ref.table.assign(
        P_star=[60.0, 75.6], P_star_err=[3.0, 7.2], ratio=[2.0, 2.1], ratio_err=[0.1, 0.2]
    )
    test = DepthTest(
        c_mean=2.02, c_mean_err=0.089, chi2=0.2, dof=1, p_value=0.65, table=pd.DataFrame()
    )
    fake = FixedNDiagram(table, ref.runs, ref.fits, test)
    monkeypatch.setattr(jamming, "fixed_n_diagram", lambda *a, **k: fake)
    out = tmp_path / "fx"
    code, stdout, stderr = _run(["jamming", "fixed-n", "--out", str(out), *ARGS])
    assert code == 0, stderr[-3000:]
    doc = json.loads((out / "fixed_n.json").read_text())
    assert doc["depth_test"] == {
        "c_mean": 2.02,
        "c_mean_err": 0.089,
        "chi2": 0.2,
        "dof": 1,
        "p_value": 0.65,
    }
    assert [d["ratio"] for d in doc["depths"]] == [2.0, 2.1]
    assert [d["ratio_err"] for d in doc["depths"]] == [0.1, 0.2]
    lines = stdout.splitlines()
    assert "P* = 60.0 ± 3.0" in lines[0] and "P*/N = 2.000 ± 0.100" in lines[0]
    assert lines[-1] == (
        "depth independence: common P*/N = 2.020 ± 0.089, χ² = 0.20 (dof 1), p = 0.650"
    )


def test_figure_with_an_all_undecided_depth(cli):
    # a depth whose runs are all undecided has no jammed fraction: the figure says so in the
    # legend instead of failing (it raised a TypeError on the empty fraction)
    _, _, ref = cli
    runs = ref.runs.assign(outcome=ref.runs.outcome.where(ref.runs.depth == 1, "undecided"))
    fig = fixed_n_figure(type(ref)(ref.table, runs, ref.fits, ref.depth_test))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("L = 2") and t.endswith("no decided run") for t in labels), labels
    assert any(t.startswith("L = 1") and not t.endswith("no decided run") for t in labels)


def test_sizes_refuse_a_repeated_depth_and_an_infinite_ratio():
    # the same depth twice would be a depth test of one depth against itself (χ² = 0, p = 1)
    with pytest.raises(ConfigError, match=r"depths=\[1, 2, 1\] repeats a depth"):
        fixed_n_sizes([1, 2, 1], 30, [1.0, 2.0])
    # an infinite ratio (no P) is a one-line ConfigError, not round()'s OverflowError
    with pytest.raises(ConfigError, match="ratios=inf must be finite"):
        fixed_n_sizes([1], 30, [1.0, math.inf])


def test_parse_floats():
    assert parse_floats("ratios", "1.4, 2") == [1.4, 2.0]
    for bad in ("", "a,b", "0,1", "-3", "inf", "nan"):
        with pytest.raises(ConfigError, match="--ratios"):
            parse_floats("ratios", bad)
    # the relabelling fractions of maxent relabel may be 0; inf and text still are not numbers
    assert parse_floats("fractions", "0,0.3", positive=False) == [0.0, 0.3]
    for bad in ("", "abc", "0,inf"):
        with pytest.raises(ConfigError, match="--fractions"):
            parse_floats("fractions", bad, positive=False)


def _tree(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = (p.stat().st_size, p.stat().st_mtime_ns)
    return out


BAD = [
    (["--N", "0"], ["--N=0", "> 0"]),
    (["--ratios", "a,b"], ["--ratios 'a,b'", "numbers"]),
    (["--depths", "0"], ["--depths '0'", "positive"]),
    (["--depths", "1,1"], ["--depths '1,1'", "repeats"]),
    (["--seeds", "0"], ["--seeds=0", "> 0"]),
    (["--protocol", "adam9"], ["adam9", "fast"]),
    (["--slurm", "partition=cpu"], ["--slurm 'partition=cpu'", "--executor slurm", "inline"]),
    (["--ratios", "1.0,1.01"], ["--ratios=[1.0, 1.01]", "2 distinct P", "depth 1"]),
    (["--out-exists"], ["exists", "--resume"]),
    (["--out-exists", "--resume"], ["no sweeps/ folder", "--resume cannot continue it"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, args, needles):
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "keep.txt").write_text("keep\n")
    if args[:1] == ["--out-exists"]:
        argv = ["jamming", "fixed-n", *ARGS, *args[1:], "--out", str(tmp_path / "exists")]
    else:
        argv = ["jamming", "fixed-n", *ARGS, *args, "--out", str(tmp_path / "fx")]
    before = _tree(tmp_path)
    code, stdout, stderr = _run(argv)
    assert code == 2, stderr[-2000:]
    err = stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert stdout == "" and _tree(tmp_path) == before
