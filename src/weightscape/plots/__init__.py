"""Figures as pure functions of data, and the self-contained HTML report.

Every plotting function takes data (a pandas DataFrame) and returns a new
:class:`matplotlib.figure.Figure`, built without pyplot so no global state is touched; study
packages add their own functions in the same style. :func:`save_figure` writes a figure as PNG and
PDF; :func:`build_report` writes ``report.html`` for a reproduce folder, a study folder, or a
sweep/run folder.
"""

from ._figures import (
    figure_png_bytes,
    final_stats,
    final_vs_axis,
    metric_vs_step,
    new_figure,
    save_figure,
)
from ._report import REPRODUCE_SCHEMA, STUDY_SCHEMA, build_report, collect_runs

# figures: metric_vs_step, final_vs_axis, final_stats, new_figure, save_figure,
# figure_png_bytes; report: build_report, collect_runs, REPRODUCE_SCHEMA, STUDY_SCHEMA.
__all__ = [
    "REPRODUCE_SCHEMA",
    "STUDY_SCHEMA",
    "build_report",
    "collect_runs",
    "figure_png_bytes",
    "final_stats",
    "final_vs_axis",
    "metric_vs_step",
    "new_figure",
    "save_figure",
]
