"""Run a ConIII solver on ±1 samples; run by the peers interpreter (weightscape never imports it).

Usage: ``python _coniii_script.py METHOD IN.npy OUT.npz`` with METHOD ``pseudo`` or ``enumerate``;
IN holds int8 ±1 samples ``[S, N]``. OUT gets ``h`` ``[N]``, ``J`` ``[N, N]`` (ConIII's convention
equals weightscape's: E = -Σ h_i s_i - Σ_{i<j} J_ij s_i s_j), ``setup_seconds``, ``solve_seconds``.
Only numpy, scipy and coniii are imported (it runs under NumPy < 2).
"""

import sys
import time
import warnings

import numpy as np


def main() -> int:
    method, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    X = np.load(src, allow_pickle=False).astype(np.int64)
    n = X.shape[1]
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    from coniii import Enumerate, Pseudo

    if method == "pseudo":
        solver = Pseudo(X, iprint=False)
    elif method == "enumerate":
        solver = Enumerate(X, iprint=False)
    else:
        print(f"unknown method {method!r}; use 'pseudo' or 'enumerate'", file=sys.stderr)
        return 2
    t1 = time.perf_counter()
    params = np.asarray(solver.solve(), dtype=np.float64)
    t2 = time.perf_counter()
    h = params[:n]
    J = np.zeros((n, n))
    iu = np.triu_indices(n, 1)
    J[iu] = params[n:]
    J = J + J.T
    np.savez(dst, h=h, J=J, setup_seconds=t1 - t0, solve_seconds=t2 - t1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
