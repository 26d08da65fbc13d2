"""The maxent study's smoke run writes claims in the reproduce contract format."""

import json

import pytest

from weightscape.reproduce import run_reproduce


@pytest.mark.slow
def test_maxent_smoke_writes_claims(tmp_path, capsys):
    run_reproduce("maxent", "smoke", tmp_path / "out")
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    claims = [c for c in summary["claims"] if c["study"] == "maxent"]
    assert sorted(c["key"] for c in claims) == ["1", "2", "3", "4"]
    for c in claims:
        assert c["verdict"] in ("holds", "does not hold")
        verdict = "holds" if c["holds"] else "does not hold"
        assert f"claim maxent.{c['key']}: {verdict} — " in out or (
            f"claim {c['key']}: {verdict} — " in out
        )
    study = tmp_path / "out" / "maxent"
    for name in ("training", "fits", "landscapes"):
        assert (study / "tables" / f"{name}.parquet").exists()
    assert (study / "figures" / "d_of_x.png").exists()
