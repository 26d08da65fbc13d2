"""Generic figures: the plotted data equal the input (metric vs step) and independently computed
means and standard errors (final vs axis); files decode; pyplot's global state is untouched."""

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from weightscape.errors import ConfigError
from weightscape.plots import final_stats, final_vs_axis, metric_vs_step, save_figure

from ._html import assert_not_blank

# The plotted arrays are copies of the inputs: equality is exact up to float64 round-off.
TOL = 1e-12


def _long_metrics(seed=0, members=3, steps=20):
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(members):
        for t in rng.permutation(steps):  # shuffled: the figure must sort by step
            for name in ("loss", "acc"):
                rows.append({"member": m, "step": int(t), "name": name, "value": rng.random()})
    return pd.DataFrame(rows)


def test_metric_vs_step_one_line_per_member_with_the_input_values():
    df = _long_metrics()
    fig = metric_vs_step(df, "loss")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 3
    for m, line in enumerate(ax.lines):
        want = df[(df.member == m) & (df.name == "loss")].sort_values("step")
        np.testing.assert_array_equal(line.get_xdata(), want.step.to_numpy())
        np.testing.assert_allclose(line.get_ydata(), want.value.to_numpy(), rtol=0, atol=TOL)
    assert ax.get_ylabel() == "loss"


def test_metric_vs_step_wide_format_and_log_scale():
    steps = np.arange(1, 11)
    df = pd.DataFrame({"step": steps, "loss": 10.0**-steps})  # spans 9 decades
    fig = metric_vs_step(df, "loss", member=None)
    (ax,) = fig.axes
    assert len(ax.lines) == 1 and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 10.0**-steps, rtol=0, atol=TOL)


def test_metric_vs_step_unknown_metric_lists_what_is_there():
    with pytest.raises(
        ConfigError, match=r"metric='lr' is not in the data; have \['acc', 'loss'\]"
    ):
        metric_vs_step(_long_metrics(), "lr")


def _runs(seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for width in (4, 8, 16):
        for depth in (1, 2):
            for s in range(5):
                rows.append(
                    {"width": width, "depth": depth, "seed": s, "loss": rng.normal(width, 1)}
                )
    return pd.DataFrame(rows)


def test_final_vs_axis_means_and_standard_errors_match_numpy():
    df = _runs()
    fig = final_vs_axis(df, "width", "loss")
    (ax,) = fig.axes
    (cont,) = ax.containers  # one ErrorbarContainer: (data line, caps, bar collections)
    line, _, (bars,) = cont.lines
    for i, w in enumerate((4, 8, 16)):
        v = df[df.width == w].loss.to_numpy()
        assert line.get_xdata()[i] == w
        assert abs(line.get_ydata()[i] - v.mean()) < TOL
    # Error bars: one vertical segment per x from mean - sem to mean + sem.
    segs = bars.get_segments()
    for (x0, y0), (x1, y1) in segs:
        v = df[df.width == x0].loss.to_numpy()
        sem = np.std(v, ddof=1) / np.sqrt(v.size)
        assert x0 == x1 and abs((y1 - y0) - 2 * sem) < TOL


def test_final_vs_axis_groups_and_categorical_axis():
    df = _runs()
    fig = final_vs_axis(df, "width", "loss", group="depth")
    assert len(fig.axes[0].containers) == 2
    df["opt"] = df.width.map({4: "sgd", 8: "adam", 16: "fire"})
    ax = final_vs_axis(df, "opt", "loss").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "fire", "sgd"]


def test_final_stats_single_repeat_has_no_error_and_name_clash_is_refused():
    st = final_stats(pd.DataFrame({"x": [1, 2, 2], "y": [1.0, 2.0, 4.0]}), "x", "y")
    assert st["count"].tolist() == [1, 2] and np.isnan(st["sem"][0])
    assert abs(st["sem"][1] - np.std([2.0, 4.0], ddof=1) / np.sqrt(2)) < TOL
    with pytest.raises(ConfigError, match="clash"):
        final_stats(pd.DataFrame({"mean": [1], "y": [1.0]}), "mean", "y")


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = metric_vs_step(_long_metrics(), "acc")
    png, pdf = save_figure(fig, tmp_path / "figs" / "acc")
    assert png.name == "acc.png" and pdf.name == "acc.pdf"
    img = Image.open(io.BytesIO(png.read_bytes()))
    img.load()
    w, h = fig.get_size_inches() * fig.dpi
    assert img.size == (round(w), round(h))
    assert_not_blank(img)
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_figures_do_not_touch_pyplot_state():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    metric_vs_step(_long_metrics(), "loss")
    final_vs_axis(_runs(), "width", "loss")
    assert plt.get_fignums() == before
