"""The jamming CLI and reproduce study: bad input writes nothing; smoke scale end to end."""

import json

import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.cli._options import parse_ints
from weightscape.errors import ConfigError


def test_parse_ints():
    assert parse_ints("P", "100, 200") == [100, 200]
    for bad in ("", "a,b", "0,1", "-3"):
        with pytest.raises(ConfigError):
            parse_ints("P", bad)
    with pytest.raises(ConfigError, match=r"--depths '1,2,1' repeats a value"):
        parse_ints("depths", "1,2,1")


@pytest.mark.parametrize(
    "args",
    [
        ["--depths", "x"],
        ["--P", "0"],
        ["--protocol", "adam9"],
        ["--executor", "cloud"],
        ["--max-steps", "-5"],
    ],
)
def test_phase_diagram_bad_input_exits_2_and_writes_nothing(tmp_path, args):
    out = tmp_path / "pd"
    assert main(["jamming", "phase-diagram", "--out", str(out), *args]) == 2
    assert not out.exists()


def test_jamming_study_plan_writes_nothing(tmp_path):
    from weightscape.reproduce import StudyContext, get_study

    st = get_study("jamming")
    for scale in ("smoke", "small", "paper"):
        plan = st.plan(StudyContext(scale=scale, out=tmp_path / "x"))
        assert plan.runs and plan.cpu_s > 0
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_phase_diagram_cli_tiny(tmp_path):
    # Two P values at depth 1, 3 seeds, 2k steps: files written, N* rows for both P.
    out = tmp_path / "pd"
    rc = main(["jamming", "phase-diagram", "--out", str(out), "--depths", "1", "--P", "30,60",
               "--seeds", "3", "--max-steps", "2000", "--max-rounds", "2"])  # fmt: skip
    assert rc == 0
    t = pd.read_parquet(out / "phase.parquet")
    assert sorted(t.P) == [30, 60]
    assert json.loads((out / "phase.json").read_text())["protocol"]["max_steps"] == 2000
    assert (out / "phase_diagram.png").exists()


@pytest.mark.slow
def test_reproduce_jamming_smoke(tmp_path, capsys):
    # The smoke scale end to end (< 3 min): claim lines, figures, tables; the SAT/UNSAT switch
    # shows and every SAT run ended with loss exactly 0.
    out = tmp_path / "r"
    assert main(["reproduce", "jamming", "--scale", "smoke", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("claim switch: holds") for line in lines)
    # the spec's oracle "N*(P) grows linearly on random data at small P (R² stated)": three P
    # values at depth 1, a weighted fit N* = P / c through the origin with R² ≥ 0.9 (claim 1)
    phase = pd.read_parquet(out / "jamming" / "tables" / "phase.parquet")
    assert sorted(phase.P) == [40, 80, 120] and phase.nstar.notna().all()
    fits = pd.read_parquet(out / "jamming" / "tables" / "phase_fits.parquet")
    assert fits.n_points.iloc[0] == 3 and fits.r2.iloc[0] >= 0.9
    assert any(line.startswith("claim 1: holds") and "R² = " in line for line in lines)
    s = json.loads((out / "jamming" / "summary.json").read_text())
    assert {f["name"] for f in s["figures"]} >= {"phase_diagram", "ndelta_vs_n", "cover_depth0"}
    runs = pd.read_parquet(out / "jamming" / "tables" / "runs.parquet")
    sat = runs[runs.outcome == "sat"]
    assert (sat.loss[sat.criterion == "unsat_zero"] == 0).all()
    # SAT at the budget: every gap ≤ 1e-9, so loss ≤ N_Δ·(1e-9)²/(2P)
    assert (sat.loss <= sat.n_unsat * 1e-18 / (2 * sat.P)).all()
