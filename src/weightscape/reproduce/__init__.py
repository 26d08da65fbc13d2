"""Reproduce the papers' claims: one command, one folder, one verdict per claim.

``weightscape reproduce {jamming,landscape,maxent,all} --scale {smoke,small,paper} --out DIR``
runs each study into ``DIR/<study>/`` and writes ``DIR/summary.json`` and ``DIR/report.html``.
This package is the orchestration layer on top of everything else; the science lives in the study
packages, which plug in through the contract below.

The contract for a study package ``weightscape.<study>``
--------------------------------------------------------
Put a module ``weightscape/<study>/reproduce.py`` that, when imported, calls
:func:`register_study` with a :class:`Study`::

    from weightscape.reproduce import Claim, Plan, Study, StudyContext, StudyOutcome, register_study

    def plan(ctx: StudyContext) -> Plan:          # --dry-run: must write nothing
        return Plan(runs=("N=8..64, 3 seeds",), cpu_s=60.0, gpu_s=0.0, peak_mem_mb=300.0)

    def run(ctx: StudyContext) -> StudyOutcome:
        # run_sweep(spec, ctx.out / "sweep", executor=ctx.executor, resume=ctx.resume, ...)
        return StudyOutcome(
            claims=[Claim(key="1", statement="...", paper="0.5", ours="0.49 ± 0.02",
                          holds=True, value=0.49, error=0.02, paper_value=0.5)],
            figures=[("gap_histogram", fig, "caption")],   # or {"name": fig}
            tables={"runs": df},                               # pandas DataFrames
            headline={"N*/P": 0.49},
            notes=["departures: see docs/studies/<study>.md"],
            config={...},                                      # the protocol, JSON-serialisable
        )

    register_study(Study(name="jamming", title="...", paper="Author et al., Journal (year)",
                         run=run, plan=plan, scales=("smoke", "small", "paper")))

* :class:`StudyContext` (frozen) carries ``scale``, ``out`` (the study's own folder
  ``DIR/<study>``), ``executor`` (``inline``/``local``/``slurm``: hand it to ``run_sweep``),
  ``resume`` (hand it to ``run_sweep`` so finished runs are re-used), ``precision``
  (:class:`weightscape.Precision`: dtype and device) and ``seed`` (derive every seed from it).
  ``ctx.log(msg)`` prints progress to stderr.
* The study writes only under ``ctx.out``. :func:`run_reproduce` then saves the figures as
  ``ctx.out/figures/<name>.png`` and ``.pdf``, the tables as ``ctx.out/tables/<name>.parquet``,
  and ``ctx.out/summary.json``; a study whose ``run`` raises is recorded as failed (traceback in
  ``ctx.out/error.txt``) and the others still run.
* Figures come from pure functions ``weightscape.plots.<name>(data) -> Figure`` (or the study's
  own, in the same style: :class:`matplotlib.figure.Figure` built directly, never pyplot).
* ``docs/studies/<study>.md`` says how the reproduction departs from the paper and why.

Output contract
---------------
* stdout: one line per claim, ``claim <k>: holds — <ours> vs <paper>`` or
  ``claim <k>: does not hold — <ours> vs <paper>`` (for ``all`` or several studies ``<k>`` is
  ``<study>.<key>``), then ``report: <path>``. Progress goes to stderr.
* ``DIR/summary.json`` (schema ``weightscape.reproduce/1``): ``request``, ``studies`` (status,
  claim counts, headline numbers, timing per study), ``claims`` (id, study, key, statement,
  paper, ours, value, error, paper_value, deviation, holds, verdict), ``missing``, ``failed``,
  ``timing``, ``provenance``.
* ``DIR/<study>/summary.json`` (schema ``weightscape.reproduce.study/1``): the study's claims,
  headline, notes, figure and table files, config, context, timing, provenance.
* ``DIR/reproduce.json``: the request, written first. ``--resume`` and ``--force`` act only on
  folders that hold it.

Built-in studies (:data:`BUILTIN_STUDIES`) are imported lazily by name; one whose module does not
exist yet is reported as "study X is not implemented yet" (an error when asked for by name, a
note when ``all`` is asked for).
"""

from ._registry import (
    BUILTIN_STUDIES,
    StudyNotImplementedError,
    available_studies,
    get_study,
    known_studies,
    register_study,
    unregister_study,
)
from ._run import MARKER, ReproduceResult, run_reproduce
from ._types import (
    EXECUTORS,
    SCALES,
    Claim,
    FigureSpec,
    Plan,
    Study,
    StudyContext,
    StudyOutcome,
)

# registry: BUILTIN_STUDIES..unregister_study; contract types: Claim, Plan, Study,
# StudyContext, StudyOutcome, FigureSpec, SCALES, EXECUTORS; running: run_reproduce.
__all__ = [
    "BUILTIN_STUDIES",
    "EXECUTORS",
    "MARKER",
    "SCALES",
    "Claim",
    "FigureSpec",
    "Plan",
    "ReproduceResult",
    "Study",
    "StudyContext",
    "StudyNotImplementedError",
    "StudyOutcome",
    "available_studies",
    "get_study",
    "known_studies",
    "register_study",
    "run_reproduce",
    "unregister_study",
]
