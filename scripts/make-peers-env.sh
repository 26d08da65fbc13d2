#!/usr/bin/env bash
# Builds the separate peers environment with ConIII (it does not install beside NumPy 2).
# Usage: scripts/make-peers-env.sh [DIR]   (default .venv-peers). Idempotent.
set -euo pipefail
dir=${1:-.venv-peers}
if [ -f "$dir/.installed" ]; then exit 0; fi
python3 -m venv "$dir"
"$dir/bin/pip" install --disable-pip-version-check -q "numpy<2" "scipy==1.11.4" multiprocess numba mpmath dill joblib setuptools wheel
CONDA_PREFIX="$(cd "$dir" && pwd)" "$dir/bin/pip" install --disable-pip-version-check -q --no-build-isolation coniii==3.0.1
"$dir/bin/python" -c "from coniii import Enumerate, Pseudo" 
touch "$dir/.installed"
