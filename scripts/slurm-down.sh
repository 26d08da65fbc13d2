#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm-up.sh started (and only that one).
#
# Reads the pids from the state file (default /tmp/weightscape-slurm/state, override with
# WEIGHTSCAPE_SLURM_STATE), cancels the jobs still queued, stops slurmd, slurmctld and (when
# slurm-up.sh started it) munged by their pids, and removes the state file. Safe to call twice.
set -uo pipefail

STATE=${WEIGHTSCAPE_SLURM_STATE:-/tmp/weightscape-slurm/state}
log() { echo "slurm-down: $*" >&2; }

if [ ! -f "$STATE" ]; then
  log "nothing to stop (no state file $STATE)"
  exit 0
fi
# shellcheck disable=SC1090
. "$STATE"

stop_pid() { # name pid: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 pid=${2:-}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { log "stopped $name ($pid)"; return 0; }
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  log "killed $name ($pid)"
}

if kill -0 "${SLURMCTLD_PID:-}" 2>/dev/null; then
  scancel --user="$(id -un)" 2>/dev/null || true
fi
stop_pid slurmd "${SLURMD_PID:-}"
stop_pid slurmctld "${SLURMCTLD_PID:-}"
if [ "${MUNGED_STARTED:-0}" = "1" ]; then
  stop_pid munged "${MUNGED_PID:-}"
fi
rm -f "$STATE"
exit 0
