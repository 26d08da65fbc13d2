"""The ``slurm`` backend: one Slurm job-array task per pack, through submitit."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import submitit
from submitit.slurm.slurm import SlurmExecutor as _SubmititSlurm

from ..errors import SweepError
from ._executor import EXECUTORS, Executor, PackHandle
from ._pack import Pack, PackJob

__all__ = [
    "ACTIVE_STATES",
    "SlurmExecutor",
    "check_slurm_options",
    "slurm_options",
    "squeue_states",
]

# Our short names for the common options → submitit's AutoExecutor parameter names.
_ALIASES = {
    "partition": "slurm_partition",
    "time": "timeout_min",  # minutes
    "mem_gb": "mem_gb",
    "gpus": "gpus_per_node",
    "cpus_per_task": "cpus_per_task",
    "job_name": "name",
    "max_num_timeout": "slurm_max_num_timeout",  # how often a timed-out job is requeued
}
# Generic AutoExecutor parameters, passed as they are.
_GENERIC = {"timeout_min", "nodes", "gpus_per_node", "tasks_per_node", "name", "stderr_to_stdout"}
# Every sbatch option submitit knows (qos, account, constraint, setup, additional_parameters, ...).
_SLURM = set(_SubmititSlurm._valid_parameters()) - {"time", "partition", "job_name"}

# squeue states of a job that is not over yet
ACTIVE_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "PREEMPTED",
}


def slurm_options() -> list[str]:
    """Every key :class:`SlurmExecutor` accepts in ``slurm={...}`` (our short names and
    submitit's), sorted."""
    return sorted(set(_ALIASES) | _GENERIC | _SLURM)


def check_slurm_options(options, executor: str) -> dict | None:
    """The one check of Slurm options: a copy of ``options`` (None when there are none).

    Raises:
        SweepError: options given with an ``executor`` other than ``"slurm"``, options that are
            not a mapping, a key :class:`SlurmExecutor` does not know (the message lists the
            allowed keys), or a count or size that is not a number in range (``time``,
            ``gpus``, ``mem_gb``, ...).
    """
    if not options:
        return None
    if not isinstance(options, Mapping):
        raise SweepError(f"slurm={options!r} must be a mapping of Slurm options")
    if executor != "slurm":
        raise SweepError(
            f"slurm options {sorted(options)} need executor 'slurm', got executor={executor!r}"
        )
    allowed = slurm_options()
    for key, value in options.items():
        if key not in allowed:
            raise SweepError(f"unknown slurm option {key!r}; allowed: {allowed}")
        if key in _NUMBERS:
            what, least, integer = _NUMBERS[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and value >= least and (not integer or float(value).is_integer())):
                raise SweepError(f"slurm option {key}={value!r} must be {what}")
    return dict(options)


# options whose values are numbers, checked before anything is submitted (submitit would only
# fail at submission, after the sweep folder exists): (what it must be, least value, integer)
_NUMBERS = {
    "time": ("a whole number of minutes >= 1", 1, True),
    "timeout_min": ("a whole number of minutes >= 1", 1, True),
    "gpus": ("an integer >= 1", 1, True),
    "gpus_per_node": ("an integer >= 1", 1, True),
    "cpus_per_task": ("an integer >= 1", 1, True),
    "nodes": ("an integer >= 1", 1, True),
    "tasks_per_node": ("an integer >= 1", 1, True),
    "max_num_timeout": ("an integer >= 0", 0, True),
    "mem_gb": ("a number of GB > 0", 1e-9, False),
}


def squeue_states(job_ids: list[str]) -> dict[str, str] | None:
    """``{job_id: state}`` from ``squeue`` (array tasks one per line, recently ended jobs too).

    Jobs that ``squeue`` no longer lists are absent; ``None`` when ``squeue`` is missing or fails.
    """
    if not job_ids:
        return {}
    if shutil.which("squeue") is None:
        return None
    arrays = sorted({j.split("_")[0] for j in job_ids})
    cmd = ["squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(arrays)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        # squeue rejects the whole call when it knows none of the ids (all aged out)
        return {} if "Invalid job id" in out.stderr else None
    states = {}
    for line in out.stdout.splitlines():
        if "|" in line:
            jid, state = line.strip().split("|", 1)
            states[jid] = state.strip()
    return states


@dataclass
class SlurmHandle(PackHandle):
    """A pack running as one Slurm job-array task."""

    job: submitit.Job | None = None
    executor: SlurmExecutor | None = field(default=None, repr=False)

    def _has_result(self) -> bool:
        return self.job.paths.result_pickle.exists()

    def done(self) -> bool:
        if self._has_result():
            return True
        if not self.executor._states_known:
            return False
        state = self.executor._states.get(self.job_id)
        return state is None or state not in ACTIVE_STATES

    def error(self) -> str | None:
        if self._has_result():
            try:
                self.job.result()
            except Exception as exc:  # the job's own exception, re-raised by submitit
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                last = lines[-1] if lines else type(exc).__name__
                return f"{last} (log: {self.job.paths.stderr})"
            return None
        state = self.executor._states.get(self.job_id, "gone from squeue")
        return f"job ended without a result ({state}; log: {self.job.paths.stderr})"


class SlurmExecutor(Executor):
    """Submits each pack as a task of a Slurm job array through ``submitit.AutoExecutor``.

    Options (``slurm={...}``): ``partition``, ``time`` (minutes), ``mem_gb``, ``gpus`` (per
    node), ``cpus_per_task`` (default ``threads_per_worker``), ``job_name``,
    ``max_num_timeout`` (requeues after time-outs, default 3), and any sbatch option submitit
    knows by its submitit name (``qos``, ``account``, ``constraint``, ``exclude``,
    ``signal_delay_s``, ``array_parallelism``, ``setup``, ``additional_parameters``, ...). A
    misspelt key is a one-line :class:`SweepError` listing the allowed ones.

    Each job runs :class:`~weightscape.sweeps.PackJob` (a ``submitit.helpers.Checkpointable``):
    on preemption or time-out it is requeued and skips the runs already ``DONE``. Logs go to
    ``SWEEP/logs``. Job states come from ``squeue`` (``sacct`` needs slurmdbd, which a small
    cluster may not run).
    """

    name = "slurm"
    poll_s = 1.0

    def _check_options(self) -> None:
        check_slurm_options(self.options, self.name)
        self._states: dict[str, str] = {}
        self._states_known = False

    def parameters(self) -> dict:
        """The submitit ``update_parameters`` keywords these options translate to."""
        params = {
            "timeout_min": 60,
            "cpus_per_task": self.threads_per_worker,
            "name": "weightscape-sweep",
            "slurm_setup": [f"export OMP_NUM_THREADS={self.threads_per_worker}"],
        }
        for key, value in self.options.items():
            if key in _ALIASES:
                params[_ALIASES[key]] = value
            elif key in _GENERIC:
                params[key] = value
            else:
                params[f"slurm_{key}"] = value
        if "timeout_min" in params:
            params["timeout_min"] = int(params["timeout_min"])
        return params

    @property
    def parallelism(self) -> int | None:
        return None

    def check_available(self) -> None:
        """``sbatch`` on PATH and, where ``sinfo`` is installed, a controller that answers it
        (else submitting would fail with submitit's traceback after the sweep folder exists)."""
        hint = "run on a Slurm login node, or start one with scripts/slurm-up.sh"
        if shutil.which("sbatch") is None:
            raise SweepError("executor 'slurm' needs sbatch on PATH", hint)
        if shutil.which("sinfo") is None:
            return
        try:
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            raise SweepError("executor 'slurm': sinfo got no answer in 60 s", hint) from None
        except OSError as err:
            raise SweepError(f"executor 'slurm': sinfo failed ({err})", hint) from None
        if out.returncode != 0:
            why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
            raise SweepError(
                f"executor 'slurm': the Slurm controller does not answer ({why})", hint
            )

    def _submit(self, packs: list[Pack]) -> list[PackHandle]:
        self.check_available()
        ex = submitit.AutoExecutor(folder=self.folder / "logs", cluster="slurm")
        try:
            ex.update_parameters(**self.parameters())
        except (NameError, ValueError, AssertionError) as err:
            msg = str(err).splitlines()[0]
            raise SweepError(f"slurm options rejected by submitit: {msg}") from None
        jobs = ex.map_array(
            PackJob(),
            [p.task for p in packs],
            [list(p.configs) for p in packs],
            [list(p.dirs) for p in packs],
            [self.threads_per_worker] * len(packs),
        )
        return [
            SlurmHandle(pack=p, job_id=str(j.job_id), job=j, executor=self)
            for p, j in zip(packs, jobs, strict=True)
        ]

    def wait(self, handles: list[PackHandle], poll_s: float | None = None) -> list[str | None]:
        poll = self.poll_s if poll_s is None else poll_s
        while True:
            states = squeue_states([h.job_id for h in handles])
            if states is not None:
                self._states, self._states_known = states, True
            if all(h.done() for h in handles):
                break
            time.sleep(poll)
        return [h.error() for h in handles]


EXECUTORS[SlurmExecutor.name] = SlurmExecutor
