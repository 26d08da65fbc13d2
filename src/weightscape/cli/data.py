"""``weightscape data``: list the registered data sets and inspect one after its transforms."""

from __future__ import annotations

import json

import typer

from ..errors import DatasetError, SweepError

__all__ = ["parse_options", "register"]


def parse_options(items: list[str] | None, flag: str = "--option") -> dict:
    """``["P=100", "classes=3,5", "normalize=none"]`` → ``{"P": 100, "classes": [3, 5],
    "normalize": None}``: :func:`weightscape.sweeps.parse_assignments` with comma lists and
    ``none``; a malformed or repeated option is a one-line :class:`DatasetError` naming ``flag``."""
    from ..sweeps import parse_assignments

    try:
        return parse_assignments(items, lists=True, flag=flag)
    except SweepError as err:
        raise DatasetError(str(err)) from None


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def _show_text(summary: dict, provenance: dict) -> None:
    echo = typer.echo
    echo(f"dataset   {summary['name']} ({summary['task']})")
    echo(
        f"shape     x [{summary['P']}, {summary['d']}], test [{summary['n_test']}, {summary['d']}]"
    )
    if summary["classes"]:
        echo(f"classes   {len(summary['classes'])}: {', '.join(summary['classes'])}")
    for part in ("train", "test"):
        if f"{part}_x_stats" not in summary:
            continue
        s = summary[f"{part}_x_stats"]
        if f"{part}_counts" in summary:
            echo(f"{part:<9} counts {_counts(summary[f'{part}_counts'])}")
        if f"{part}_y_stats" in summary:
            y = summary[f"{part}_y_stats"]
            echo(
                f"{part:<9} y mean {_fmt(y['mean'])} std {_fmt(y['std'])} "
                f"min {_fmt(y['min'])} max {_fmt(y['max'])}"
            )
        echo(
            f"{part:<9} x mean {_fmt(s['mean'])} std {_fmt(s['std'])} min {_fmt(s['min'])} "
            f"max {_fmt(s['max'])}; |x| min {_fmt(s['norm_min'])} mean {_fmt(s['norm_mean'])} "
            f"max {_fmt(s['norm_max'])}"
        )
    echo("provenance")
    echo(json.dumps(provenance, indent=2))


def register(app: typer.Typer) -> None:
    """Add the ``data`` group (``list``, ``show``) to the root app."""
    data_app = typer.Typer(
        help="Datasets: list the registered ones, show one after its transforms.",
        no_args_is_help=True,
    )

    @data_app.command("list")
    def list_() -> None:
        """List the registered data sets, their options and the presets."""
        from ..data import PRESETS, TRANSFORM_OPTIONS, available, dataset_options, describe_dataset

        for name in available():
            own = [k for k in dataset_options(name) if k not in TRANSFORM_OPTIONS]
            extra = f"  [options: {', '.join(own)}]" if own else ""
            typer.echo(f"{name:<14} {describe_dataset(name)}{extra}")
        typer.echo(f"transform options (all sets): {', '.join(TRANSFORM_OPTIONS)}")
        for name, values in PRESETS.items():
            typer.echo(f"preset {name}: {json.dumps(dict(values))}")

    @data_app.command("show")
    def show(
        name: str = typer.Argument(..., help="Data set name (see `weightscape data list`)."),
        option: list[str] = typer.Option(
            None,
            "--option",
            "-o",
            help="key=value, repeatable: e.g. -o P=100 -o classes=3,5 -o preset=zou2021-pca20",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
    ) -> None:
        """Load NAME with the given options; print shape, class counts, statistics, provenance."""
        from ..data import describe, load

        options = parse_options(option)
        ds = load(name, **options)
        summary = describe(ds)
        if as_json:
            typer.echo(json.dumps({"summary": summary, "provenance": ds.provenance}, indent=2))
        else:
            _show_text(summary, ds.provenance)

    app.add_typer(data_app, name="data")
