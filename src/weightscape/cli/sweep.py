"""``weightscape sweep run|status|collect``: grids of runs on an inline, local or Slurm executor."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SweepError
from ._options import SLURM, parse_slurm

__all__ = ["register"]

sweep_app = typer.Typer(
    name="sweep",
    help="Run a grid of runs (inline, local processes or Slurm), watch it, collect its results.",
    no_args_is_help=True,
)


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _build_sweep(spec: Path | None, task: str | None, sets: list[str], axes: list[str]):
    from ..sweeps import Sweep, parse_assignments, parse_axis_values

    if spec is None and task is None:
        raise SweepError("give a sweep spec file (SPEC.toml) or --task NAME")
    if spec is not None:
        sweep = Sweep.from_file(spec)
        if task is not None and task != sweep.task:
            raise SweepError(f"--task {task!r} differs from the spec's task {sweep.task!r}")
    else:
        sweep = Sweep(task=task)
    set_d = parse_assignments(sets, flag="--set")
    axis_d: dict = {}
    for a in axes:
        key, values = parse_axis_values(a)
        if key in axis_d:  # as for a repeated --set: the first one would be lost silently
            raise SweepError(f"--axis {key} is given twice; give all its values in one --axis")
        axis_d[key] = values
    if set_d or axis_d:
        sweep = sweep.with_overrides(sets=set_d, axes=axis_d)
    return sweep


@sweep_app.command("run")
def run_cmd(
    spec: Path | None = typer.Argument(None, help="Sweep spec (.toml or .json)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Sweep folder to write."),
    task: str | None = typer.Option(None, "--task", help="Task name (when no SPEC is given)."),
    executor: str = typer.Option("inline", "--executor", "-e", help="inline | local | slurm"),
    sets: list[str] = typer.Option([], "--set", help="Fix a config value: key=value."),
    axes: list[str] = typer.Option([], "--axis", help="Add/replace an axis: key=v1,v2,..."),
    resume: bool = typer.Option(False, "--resume", help="Continue a sweep in an existing --out."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list; write nothing."),
    workers: int | None = typer.Option(None, "--workers", help="Local worker processes."),
    threads: int = typer.Option(1, "--threads", help="Threads per worker (fixed)."),
    slurm: list[str] = SLURM,
    max_pack: int | None = typer.Option(None, "--max-pack", help="Most runs per pack (job)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for Slurm jobs to finish."),
) -> None:
    """Expand SPEC (plus --set/--axis) and compute every run not finished yet into --out."""
    from ..sweeps import make_executor, make_packs, run_sweep

    sweep = _build_sweep(spec, task, sets, axes)
    slurm_opts = parse_slurm(slurm, executor)
    if dry_run:
        ex = make_executor(
            executor,
            out or Path("."),
            threads_per_worker=threads,
            max_workers=workers,
            options=slurm_opts,
        )
        configs, hashes = sweep.expand(), sweep.hashes()
        size = max_pack
        if size is None and ex.parallelism and ex.parallelism > 1:
            size = -(-len(configs) // ex.parallelism)
        packs = make_packs(sweep.get_task(), configs, hashes, hashes, max_pack_size=size)
        con = _console()
        shape = " x ".join(f"{d}={n}" for d, n in zip(sweep.dims, sweep.shape, strict=True))
        con.print(
            f"{sweep.task}: {len(configs)} runs ({shape or 'one run'}), "
            f"{len(packs)} packs on {executor}"
        )
        for h, c in list(zip(hashes, configs, strict=True))[:10]:
            con.print(f"  {h}  " + " ".join(f"{d}={c[d]!r}" for d in sweep.dims))
        if len(configs) > 10:
            con.print(f"  ... {len(configs) - 10} more")
        return
    if out is None:
        raise SweepError("--out DIR is required (or pass --dry-run)")
    if sweep.task == "train":  # its data, before the sweep folder is made
        from .train import check_data

        check_data(sweep.expand(), seeds=False)
    result = run_sweep(
        sweep,
        out,
        executor=executor,
        resume=resume,
        max_workers=workers,
        threads_per_worker=threads,
        slurm=slurm_opts or None,
        max_pack_size=max_pack,
        wait=wait,
    )
    con = _console()
    msg = (
        f"{result.n_runs} runs: {result.n_skipped} already done, {result.n_submitted} submitted "
        f"in {result.n_packs} packs ({result.seconds:.1f} s)"
    )
    if result.job_ids:
        msg += f"; Slurm jobs {result.job_ids[0].split('_')[0]}"
    con.print(msg)
    if not wait:
        con.print(f"watch with: weightscape sweep status {out}")
    if result.failures:
        for f in result.failures[:5]:
            typer.echo(f"failed {len(f['runs'])} runs (job {f['job_id']}): {f['error']}", err=True)
        typer.echo(
            f"error: {result.n_failed} runs failed; re-run with --resume to compute them", err=True
        )
        raise typer.Exit(1)


@sweep_app.command("status")
def status_cmd(path: Path = typer.Argument(..., help="Sweep folder.")) -> None:
    """Count the runs of a sweep by state (done, running, partial, pending) and its Slurm jobs."""
    from rich.table import Table

    from ..sweeps import sweep_status

    st = sweep_status(path)
    table = Table(title=f"{st.path} ({st.task})")
    for key in st.counts:
        table.add_column(key, justify="right")
    table.add_row(*[str(v) for v in st.counts.values()])
    con = _console()
    con.print(table)
    if st.jobs:
        con.print("Slurm jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(st.jobs.items())))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


@sweep_app.command("collect")
def collect_cmd(
    path: Path = typer.Argument(..., help="Sweep folder."),
    limit: int = typer.Option(20, "--limit", help="Rows of the table to print."),
) -> None:
    """Write runs.parquet and series.parquet of the finished runs and print the runs table."""
    from rich.table import Table

    from ..errors import check_positive
    from ..store import collect_sweep

    check_positive("--limit", limit, allow_zero=True, integer=True)  # before anything is written
    data = collect_sweep(path)
    df = data.runs
    keys = set(data.spec.get("config_keys", [])) | set(data.spec.get("base", {}))
    cols = ["run", *data.dims] + [c for c in df.columns if c not in keys and c != "run"]
    cols = [c for c in cols if c in df.columns]
    table = Table(title=f"{data.path}: {len(df)} finished runs")
    for c in cols:
        table.add_column(c, justify="right")
    for _, row in df.head(limit).iterrows():
        table.add_row(*[_fmt(row[c]) for c in cols])
    con = _console()
    con.print(table)
    if len(df) > limit:
        con.print(f"... {len(df) - limit} more rows")
    con.print(f"wrote {data.path / 'runs.parquet'} and {data.path / 'series.parquet'}")


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command group to the root app."""
    app.add_typer(sweep_app, name="sweep")
