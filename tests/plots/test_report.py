"""The report of run and sweep folders: generic figures, embedded images, no external URLs."""

import json

import numpy as np
import pandas as pd
import pytest

from weightscape.cli import main
from weightscape.errors import RunDirError
from weightscape.plots import build_report, collect_runs
from weightscape.store import RunDir

from ._html import assert_not_blank, embedded_images, external_references


def _metrics(rng, members=2, steps=10, scale=1.0):
    rows = []
    for m in range(members):
        for t in range(steps):
            rows.append(
                {
                    "member": m,
                    "step": t,
                    "name": "loss",
                    "value": scale * np.exp(-t) + rng.random() * 1e-3,
                }
            )
            rows.append(
                {"member": m, "step": t, "name": "acc", "value": 1 - np.exp(-t) * rng.random()}
            )
    return pd.DataFrame(rows)


def _run(path, config, seed, metrics):
    rd = RunDir.create(path)
    rd.write_config(config, seeds={"init": seed, "data": seed})
    rd.write_metrics(metrics)
    rd.mark_done()
    return rd


@pytest.fixture
def sweep(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "sweep"
    for width in (4, 8, 16):
        for seed in (0, 1, 2):
            cfg = {"net": {"width": width, "depth": 2}, "lr": 0.1}
            _run(root / f"w{width}_s{seed}", cfg, seed, _metrics(rng, scale=width))
    return root


def test_collect_runs_final_values_are_the_last_steps(sweep):
    runs = collect_runs(sweep)
    assert len(runs) == 9 * 2  # 9 runs x 2 members
    assert {"net.width", "net.depth", "lr", "seeds.init", "loss", "acc", "member"} <= set(
        runs.columns
    )
    for rec in runs.sample(5, random_state=0).to_dict("records"):
        m = pd.read_parquet(sweep / rec["run"] / "metrics.parquet")
        last = (
            m[(m.member == rec["member"]) & (m.name == "loss")].sort_values("step").value.iloc[-1]
        )
        assert rec["loss"] == last  # a copy, so exactly equal


def test_sweep_report_has_final_vs_axis_figures_and_is_self_contained(sweep):
    path = build_report(sweep)
    page = path.read_text()
    imgs = embedded_images(page)
    assert len(imgs) >= 4  # loss/acc vs step for one run + loss/acc vs width
    for img in imgs:
        assert_not_blank(img)
    assert external_references(page) == []
    for stem in ("final_loss_vs_net.width", "step_loss"):
        assert (sweep / "figures" / f"{stem}.png").is_file()
        assert (sweep / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF-")
    assert "swept: net.width" in page  # depth and lr are constant; seeds are not axes


def test_single_run_report_via_cli(tmp_path, capsys):
    rng = np.random.default_rng(1)
    run = tmp_path / "run"
    _run(run, {"width": 4}, 0, _metrics(rng, members=3))
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run / 'report.html'}"
    page = (run / "report.html").read_text()
    imgs = embedded_images(page)
    assert len(imgs) == 2  # acc and loss vs step
    for img in imgs:
        assert_not_blank(img)
    prov = json.loads((run / "config.json").read_text())["provenance"]
    assert prov["torch_version"] in page


def test_report_of_nothing_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="nothing to report"):
        build_report(tmp_path / "empty")
    for bad in (tmp_path / "empty", tmp_path / "absent"):
        assert main(["report", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert list((tmp_path / "empty").iterdir()) == []


def test_external_reference_checker_catches_urls():
    # The checker itself must work, or the no-external-URL assertions above prove nothing.
    bad = [
        '<img src="https://x.org/a.png">',
        "<a href='http://x.org'>x</a>",
        '<img src="//cdn.x.org/a.png">',
        "<style>body{background:url(a.png)}</style>",
        '<script src="a.js"></script>',
        '<link rel="stylesheet" href="a.css">',
    ]
    for page in bad:
        assert external_references(page), page
    assert external_references('<img src="data:image/png;base64,AAAA"><a href="#x">x</a>') == []


def test_report_of_a_real_sweep_folder(tmp_path):
    from weightscape.store import open_sweep
    from weightscape.sweeps import Sweep, run_sweep

    sweep = Sweep(
        task="demo.ridge",
        base={"steps": 20, "log_every": 10},
        axes={"width": [4, 16], "seed": [0, 1, 2]},
    )
    run_sweep(sweep, tmp_path / "sw", executor="inline")
    page = build_report(tmp_path / "sw").read_text()
    figs = {p.stem for p in (tmp_path / "sw" / "figures").glob("*.png")}
    # seed is a repeat, not an axis: every final-value figure is against width, none vs seed
    finals = {f for f in figs if f.startswith("final_")}
    summary_scalars = {"loss", "loss_exact", "excess"} & set(
        open_sweep(tmp_path / "sw").runs.columns
    )
    assert summary_scalars and {f"final_{m}_vs_width" for m in summary_scalars} <= finals
    assert all(f.endswith("_vs_width") for f in finals)
    assert "step_loss" in figs and "swept: width" in page
    imgs = embedded_images(page)
    assert len(imgs) == len(figs)
    for img in imgs:
        assert_not_blank(img)
    assert external_references(page) == []


def _metric_run(root, name, rows, member=True):
    rd = RunDir.create(root / name)
    rd.write_config({"width": 4}, seeds={"init": 0})
    df = pd.DataFrame(rows)
    rd.write_metrics(df if member else df.drop(columns="member"))
    rd.mark_done()
    return rd.path


def test_report_of_runs_without_members_and_nan_last_steps(tmp_path):
    # sweep run folders log no `member` column (demo.ridge, write_member_runs): the report of
    # one such run or of their folder crashed on unstack; a NaN at the last step is the final
    # value (groupby.last skipped it: a diverged run read as its last finite loss)
    rows = [{"member": 0, "step": t, "name": "loss", "value": v}
            for t, v in enumerate([1.0, 0.5, np.nan])]  # fmt: skip
    one = _metric_run(tmp_path / "runs", "a", rows, member=False)
    _metric_run(tmp_path / "runs", "b", rows[:2], member=False)
    assert build_report(one).is_file()
    table = collect_runs(tmp_path / "runs").set_index("run")
    assert np.isnan(table.loc["a", "loss"]) and table.loc["b", "loss"] == 0.5
    assert build_report(tmp_path / "runs").is_file()


def test_metrics_whose_names_clean_up_alike_get_their_own_figures(tmp_path):
    import base64
    import re

    rows = [{"member": 0, "step": t, "name": "loss/train", "value": float(np.exp(-t))}
            for t in range(10)]  # fmt: skip
    rows += [{"member": 0, "step": t, "name": "loss_train", "value": float(t * t)}
             for t in range(10)]  # fmt: skip
    path = _metric_run(tmp_path, "r0", rows)
    page = build_report(path).read_text()
    imgs = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    steps = {alt: base64.b64decode(data) for alt, data in imgs if alt.startswith("step_")}
    assert len(steps) == 2 and len(set(steps.values())) == 2
