"""Cross-checks against ConIII, run in the separate peers environment through a subprocess.

ConIII 3.0.1 does not install beside NumPy 2, so it lives in ``.venv-peers`` (built by
``scripts/make-peers-env.sh``); :func:`coniii_fit` writes the samples to a temporary ``.npy``, runs
``_coniii_script.py`` with that environment's Python, and reads ``(h, J)`` back from an ``.npz``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DatasetError, check_choice
from ._model import IsingModel
from ._moments import PackedSpins, _check_pm1, unpack_spins

__all__ = ["CONIII_METHODS", "coniii_fit", "peers_python"]

CONIII_METHODS = ("pseudo", "enumerate")
# Where `make test-slow` builds the peers environment, relative to the repository root.
_DEFAULT_PEERS = Path(__file__).resolve().parents[3] / ".venv-peers"
_SCRIPT = Path(__file__).with_name("_coniii_script.py")


def peers_python() -> tuple[Path | None, str]:
    """The peers environment's Python and a reason string (``None`` with the reason if unusable).

    Looks at ``$WEIGHTSCAPE_PEERS`` (default: ``.venv-peers`` at the repository root) and checks
    that ``from coniii import Enumerate, Pseudo`` works there.
    """
    root = Path(os.environ.get("WEIGHTSCAPE_PEERS") or _DEFAULT_PEERS)
    py = root / "bin" / "python"
    if not py.exists():
        return None, f"no peers environment at {root} (build it with `make peers`)"
    try:
        subprocess.run(
            [str(py), "-c", "from coniii import Enumerate, Pseudo"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError) as err:
        tail = getattr(err, "stderr", None) or b""
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else str(tail)
        last = tail.strip().splitlines()[-1:]  # e.g. "ModuleNotFoundError: No module named ..."
        return None, f"ConIII does not import in {root}: {type(err).__name__}" + (
            f" ({last[0]})" if last else ""
        )
    return py, "ok"


def coniii_fit(
    samples, method: str = "pseudo", *, timeout: float = 3600.0
) -> tuple[IsingModel, dict[str, float]]:
    """Fit ±1 ``samples`` ``[S, N]`` with ConIII's ``Pseudo`` or ``Enumerate`` in the peers env.

    Returns:
        ``(model, timings)`` with ``timings = {"setup_seconds", "solve_seconds"}`` measured inside
        the subprocess (interpreter start-up excluded).

    Raises:
        ConfigError: the peers environment is missing (message gives the reason).
        RuntimeError: ConIII failed (its stderr tail is in the message).
    """
    check_choice("method", method, CONIII_METHODS)
    if isinstance(samples, PackedSpins):
        samples = unpack_spins(samples)
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if x.ndim != 2:
        raise DatasetError(f"samples have shape {x.shape}; expected [S, N]")
    _check_pm1(x)  # before the int8 cast: 0/1 codes or fractions would pass it silently
    x = np.ascontiguousarray(x.astype(np.int8))
    py, reason = peers_python()
    if py is None:
        raise ConfigError(f"ConIII is unavailable: {reason}")
    with tempfile.TemporaryDirectory(prefix="coniii-") as tmp:
        src, dst = Path(tmp) / "samples.npy", Path(tmp) / "out.npz"
        np.save(src, x)
        try:
            proc = subprocess.run(
                [str(py), str(_SCRIPT), method, str(src), str(dst)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ConIII {method} did not finish within {timeout} s") from None
        if proc.returncode != 0 or not dst.exists():
            raise RuntimeError(f"ConIII {method} failed: {proc.stderr[-2000:]}")
        with np.load(dst, allow_pickle=False) as z:
            model = IsingModel.from_couplings(z["J"], z["h"])
            timings = {k: float(z[k]) for k in ("setup_seconds", "solve_seconds")}
    return model, timings
