#!/usr/bin/env bash
# `make test-integration`: start a real single-node Slurm cluster (always stopped again on exit),
# install a headless Chromium when apt works, then run the tests marked `integration`.
#
# Tests that need Slurm read WEIGHTSCAPE_SLURM=1 (exported here once `sinfo` answers) and skip with
# a printed reason otherwise. Extra arguments replace the test paths (default: tests/).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  if ! command -v chromium >/dev/null 2>&1; then
    echo "integration: installing chromium (headless browser for the report test)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q chromium; } >/dev/null 2>&1 \
      || echo "integration: chromium could not be installed; browser tests will skip"
  fi
fi

trap 'bash "$ROOT/scripts/slurm-down.sh"' EXIT
if bash "$ROOT/scripts/slurm-up.sh"; then
  export WEIGHTSCAPE_SLURM=1
else
  echo "integration: Slurm is unavailable here (needs root and apt-get); Slurm tests will skip"
fi

if [ "$#" -gt 0 ]; then
  "$ROOT/.venv/bin/pytest" -q -m integration "$@"
else
  "$ROOT/.venv/bin/pytest" -q -m integration tests/
fi
