#!/usr/bin/env bash
# Stop exactly the processes infra/local/stack-up.sh started: each PID file under the run folder names a
# process group (every server was started in its own session). SIGTERM, then SIGKILL after a grace period.
# Data (S3 objects, MLflow and Prefect databases) stays in the run folder; delete it to start afresh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${ABAIR_STACK_DIR:-$ROOT/.stack}"
GRACE="${ABAIR_STACK_GRACE:-30}"
PIDS="$STACK_DIR/pids"

say() { printf '[stack-down] %s\n' "$*"; }

[[ -d "$PIDS" ]] || { say "nothing to stop ($PIDS does not exist)"; exit 0; }

# A group is alive while one of its processes is, zombies (exited, awaiting their reaper) aside.
alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }

# Clients first (worker, Dask workers), servers last, so nothing reconnects while it stops.
order=(prefect-worker dask-worker-2 dask-worker-1 dask-scheduler prefect-server mlflow s3)
mapfile -t found < <(cd "$PIDS" && ls -1 *.pid 2>/dev/null | sed 's/\.pid$//')
names=()
for name in "${order[@]}" "${found[@]}"; do
    [[ -f "$PIDS/$name.pid" ]] && [[ ! " ${names[*]} " == *" $name "* ]] && names+=("$name")
done

for name in "${names[@]}"; do
    pid="$(cat "$PIDS/$name.pid")"
    if alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        say "$name: SIGTERM sent to process group $pid"
    fi
done
deadline=$((SECONDS + GRACE))
status=0
for name in "${names[@]}"; do
    pid="$(cat "$PIDS/$name.pid")"
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        say "$name: SIGKILL sent to process group $pid (no exit within ${GRACE}s of SIGTERM)"
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    fi
    if alive "$pid"; then
        say "$name: process group $pid is still alive"
        status=1
    else
        rm -f "$PIDS/$name.pid"
        say "$name stopped"
    fi
done
exit $status
