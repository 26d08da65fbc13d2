"""`weightscape sweep run|status|collect` through weightscape.cli.main."""

import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.store import open_sweep
from weightscape.sweeps import Sweep, run_sweep

SPEC = """task = "demo.ridge"
[base]
steps = 10
log_every = 5
[axes]
seed = [0, 1]
[[zip]]
width = [3, 5]
n = [16, 24]
"""


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    return p


def test_run_status_collect(tmp_path, spec, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "run", str(spec), "--out", str(out), "--axis", "lr=0.1,0.2"]) == 0
    assert "8 runs: 0 already done, 8 submitted" in capsys.readouterr().out
    # the CLI sweep is the API sweep with the axis added: same runs, same numbers
    ref = Sweep.from_file(spec).with_overrides(axes={"lr": [0.1, 0.2]})
    run_sweep(ref, tmp_path / "api")
    pd.testing.assert_frame_equal(
        open_sweep(out).runs, open_sweep(tmp_path / "api").runs, check_exact=True
    )
    assert main(["sweep", "status", str(out)]) == 0
    assert "8" in capsys.readouterr().out
    assert main(["sweep", "collect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 finished runs" in text and (out / "runs.parquet").exists()
    assert main(["sweep", "run", str(spec), "--out", str(out), "--axis", "lr=0.1,0.2",
                 "--resume"]) == 0  # fmt: skip
    assert "8 already done, 0 submitted" in capsys.readouterr().out


def test_dry_run_writes_nothing(tmp_path, spec, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "run", str(spec), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "4 runs (seed=2 x width=2)" in text and not out.exists()
    assert main(["sweep", "run", "--task", "demo.ridge", "--axis", "seed=range(3)",
                 "--dry-run"]) == 0  # fmt: skip
    assert "3 runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--set", "widht=3"], "unknown config key 'widht'"),
        (["--set", "width=-3"], "width=-3 must be > 0"),
        (["--executor", "grid"], "unknown executor 'grid'"),
        (["--executor", "slurm", "--slurm", "partiton=x"], "unknown slurm option 'partiton'"),
        (["--task", "other"], "differs from the spec's task"),
        (["--set", "width"], "--set 'width' is not of the form key=value"),
        (["--set", "width=3", "--set", "width=4"], "--set width is given twice"),
        (["--executor", "slurm", "--slurm", "partition"], "--slurm 'partition' is not of"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, spec, capsys, args, match):
    out = tmp_path / "sw"
    assert main(["sweep", "run", str(spec), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0]
    assert not out.exists()


def test_unknown_task(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('task = "nope"\n')
    assert main(["sweep", "run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown task 'nope'; registered tasks:" in err[0]
    assert not (tmp_path / "o").exists()


def test_existing_out_needs_resume(tmp_path, spec, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "run", str(spec), "--out", str(out)]) == 0
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert main(["sweep", "run", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]
    assert sorted(p.name for p in out.rglob("*")) == before


def test_status_of_a_non_sweep_folder(tmp_path, capsys):
    assert main(["sweep", "status", str(tmp_path)]) == 2
    assert "is not a sweep folder" in capsys.readouterr().err


def test_repeated_axis_is_a_one_line_error(tmp_path, capsys):
    # the last --axis seed=... silently won (2 runs instead of 4), unlike a repeated --set
    from weightscape.cli import main

    argv = ["sweep", "run", "--task", "demo.ridge", "--axis", "seed=0,1", "--axis", "seed=2,3"]
    assert main([*argv, "--out", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --axis seed is given twice; give all its values in one --axis"]
    assert not (tmp_path / "sw").exists()
