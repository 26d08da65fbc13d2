"""Pure figure functions for entropy landscapes and TAP histograms (data → matplotlib Figure).

Built directly on :class:`matplotlib.figure.Figure` (never pyplot: no global figure state). Points
where BP did not converge are drawn as grey crosses, never joined into the curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, check_choice
from ._landscape import DIRECTIONS, LandscapeResult, binary_entropy
from ._tap import TAPLandscape

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with weightscape.maxent
    from matplotlib.figure import Figure

__all__ = ["plot_d_of_x", "plot_entropy_landscape", "plot_tap_histogram"]

_FIGSIZE = (6.4, 4.4)
_DPI = 110
_STYLE = {"down": "-", "up": "--"}


def _new_figure() -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")


def _as_named(results, labels, kind, what: str) -> list[tuple[str, object]]:
    if isinstance(results, kind):
        results = [results]
    if isinstance(results, Mapping):
        items = list(results.items())
    elif isinstance(results, Sequence):
        if labels is None:
            labels = [f"reference {i}" for i in range(len(results))]
        if len(labels) != len(results):
            raise ConfigError(f"{len(labels)} labels for {len(results)} {what}")
        items = list(zip(labels, results, strict=True))
    else:
        raise ConfigError(f"expected a {kind.__name__}, a sequence or a mapping of them")
    if not items:
        raise ConfigError(f"no {what} to plot")
    for _, r in items:
        if not isinstance(r, kind):
            raise ConfigError(f"expected {kind.__name__}, got {type(r).__name__}")
    return items


def _directions(direction: str, result: LandscapeResult) -> list[str]:
    check_choice("direction", direction, (*DIRECTIONS, "both"))
    swept = result.config.sweeps
    return [d for d in DIRECTIONS if d in swept and direction in (d, "both")]


def plot_entropy_landscape(
    results,
    labels: Sequence[str] | None = None,
    *,
    direction: str = "down",
    title: str | None = None,
) -> Figure:
    """``s(d)`` against ``d`` with the bound ``H(d)``.

    Args:
        results: a :class:`LandscapeResult`, a sequence of them, or a mapping label → result.
        labels: legend labels for a sequence.
        direction: ``"down"`` (default: the sweep the spec summarises), ``"up"`` or ``"both"``.
        title: axes title.
    """
    items = _as_named(results, labels, LandscapeResult, "landscapes")
    fig = _new_figure()
    ax = fig.add_subplot()
    dd = np.linspace(0.0, 1.0, 401)
    ax.plot(dd, binary_entropy(dd), color="0.5", lw=2, label="H(d) bound")
    # Monte Carlo results (MCLandscapeResult, with d_se) flag chains still drifting instead
    mc = any(hasattr(r, "d_se") for _, r in items)
    bad_label = "not converged (BP) or drifting (Monte Carlo)" if mc else "BP not converged"
    for k, (name, r) in enumerate(items):
        color = f"C{k % 10}"
        for direc in _directions(direction, r):
            i = DIRECTIONS.index(direc)
            ok = r.converged[i]
            d = np.where(ok, r.d[i], np.nan)
            s = np.where(ok, r.s[i], np.nan)
            lab = name if direction != "both" else f"{name} ({direc})"
            ax.plot(d, s, _STYLE[direc], color=color, lw=1.5, label=lab)
            if (~ok).any():
                ax.plot(r.d[i][~ok], r.s[i][~ok], "x", color="0.3", ms=5, label=bad_label)
                bad_label = None
    ax.set_xlabel("distance d")
    ax.set_ylabel("entropy s(d) [nats/spin]")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_d_of_x(
    results,
    labels: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """``d(x)`` on both sweeps (downward solid, upward dashed): jumps and hysteresis show here."""
    items = _as_named(results, labels, LandscapeResult, "landscapes")
    fig = _new_figure()
    ax = fig.add_subplot()
    bad_label = "BP not converged"
    for k, (name, r) in enumerate(items):
        color = f"C{k % 10}"
        for direc in _directions("both", r):
            i = DIRECTIONS.index(direc)
            ok = r.converged[i]
            ax.plot(r.x, np.where(ok, r.d[i], np.nan), _STYLE[direc], color=color, lw=1.5,
                    label=f"{name} ({direc})")  # fmt: skip
            if (~ok).any():
                ax.plot(r.x[~ok], r.d[i][~ok], "x", color="0.3", ms=5, label=bad_label)
                bad_label = None
    ax.set_xlabel("tilt x")
    ax.set_ylabel("distance d")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_tap_histogram(
    results,
    labels: Sequence[str] | None = None,
    *,
    bins: int = 50,
    title: str | None = None,
) -> Figure:
    """Histogram of TAP free energies per spin of converged random starts (one per landscape)."""
    items = _as_named(results, labels, TAPLandscape, "TAP landscapes")
    fig = _new_figure()
    ax = fig.add_subplot()
    for k, (name, r) in enumerate(items):
        lab = f"{name}: {r.n_fixed_points} fixed points, {r.n_converged}/{r.n_starts} converged"
        if r.free_energy.size:
            counts, edges = r.histogram(bins)
            ax.stairs(counts, edges, color=f"C{k % 10}", label=lab)
        else:
            ax.plot([], [], color=f"C{k % 10}", label=lab)
    ax.set_xlabel("TAP free energy βf per spin")
    ax.set_ylabel("starts")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
