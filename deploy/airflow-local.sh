#!/usr/bin/env bash
# Scheduled runs on one machine, without Docker: the project's DAGs under a real Airflow
# scheduler, with the embedded defaults of `make run` (SQLite metadata DB, the checkout's
# landing/ and warehouse/), LocalExecutor instead of dag.test(). See docs/deploy.md.
#
#   deploy/airflow-local.sh            # from the checkout, after `make venv`; Ctrl-C stops it
#
# It migrates the metadata DB, then runs api-server, scheduler, dag-processor and triggerer as
# children of this script. When one of them exits, the others are stopped and the script exits
# non-zero, so a supervisor (systemd `Restart=on-failure`, ...) restarts the whole set.
# Every DAG is unpaused at creation: the source DAGs run on their schedules (ingest/catalog.py),
# the transform on their Asset events, the quality report daily.
#
# Settings (environment; anything already set wins, including any AIRFLOW__* option):
#   AIRFLOW_HOME     metadata DB (airflow.db), airflow.cfg, task logs; default .airflow/scheduled
#                    (beside `make run`'s .airflow/, not shared with it)
#   AIRFLOW_API_HOST / AIRFLOW_API_PORT   UI, REST and Execution API; default 127.0.0.1:8080
#   VENV             the virtual environment with Airflow; default .venv
#   WH_*             the project's settings (README, ingest/config.py); their defaults resolved
#                    to absolute paths here: warehouse/migration.duckdb, landing/, warehouse/runs/
#   WH_SNAPSHOT_DIR  replay recorded files laid out like ../shared/data; unset = live sources
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
if [[ ! -x "$VENV/bin/airflow" ]]; then
    echo "airflow-local: no $VENV/bin/airflow; create the environment first: make venv" >&2
    exit 2
fi
export PATH="$VENV/bin:$PATH"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow/scheduled}"
mkdir -p "$AIRFLOW_HOME"
AIRFLOW_HOME="$(cd "$AIRFLOW_HOME" && pwd)"
API_HOST="${AIRFLOW_API_HOST:-127.0.0.1}"
API_PORT="${AIRFLOW_API_PORT:-8080}"

export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
# Scheduled means scheduled: new DAGs start unpaused (as in docker-compose.yml). Pause one
# deliberately with `airflow dags pause <dag_id>`; that state is kept across restarts.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-$API_HOST}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-$API_PORT}"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://$API_HOST:$API_PORT}"
# Task processes report their state to the API server's Execution API.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://$API_HOST:$API_PORT/execution/}"
# `import ingest`, `import pipeline`, `import expectations` in tasks, whatever their cwd.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export GX_ANALYTICS_ENABLED="${GX_ANALYTICS_ENABLED:-False}"
export DBT_SEND_ANONYMOUS_USAGE_STATS="${DBT_SEND_ANONYMOUS_USAGE_STATS:-false}"
export DO_NOT_TRACK="${DO_NOT_TRACK:-1}"
# The project's WH_* settings with their defaults from ingest/config.py, as absolute paths, so
# every component and task process sees the same files.
resolved="$(python - <<'PY'
import shlex
from ingest.config import export_resolved
for key, value in sorted(export_resolved({}).items()):
    print(f"export {key}={shlex.quote(value)}")
PY
)"
eval "$resolved"

echo "airflow-local: AIRFLOW_HOME=$AIRFLOW_HOME warehouse=$WH_WAREHOUSE" \
     "snapshots=${WH_SNAPSHOT_DIR:-(live sources)}"
# Creates airflow.cfg on first start, with the random secrets (JWT, API, Fernet) that the
# components below then share.
airflow db migrate
# One slot: no two tasks of the transform (the single writer of the warehouse) run at once.
airflow pools set warehouse_writer 1 \
    "one transform task at a time: the single writer of the warehouse" >/dev/null

pids=()
airflow api-server --host "$AIRFLOW__API__HOST" --port "$AIRFLOW__API__PORT" & pids+=($!)
# Task processes report to the API server's Execution API: start the scheduler once it answers,
# or the first tasks fail with "connection refused" (seen on a loaded machine, where the API
# server takes over a minute to start).
for _ in $(seq 1 300); do
    python - "$AIRFLOW__API__BASE_URL/api/v2/version" <<'PY' && break
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except Exception:
    sys.exit(1)
PY
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "airflow-local: the API server exited before it answered" >&2
        exit 1
    fi
    sleep 1
done
airflow scheduler & pids+=($!)
airflow dag-processor & pids+=($!)
airflow triggerer & pids+=($!)
echo "airflow-local: UI on $AIRFLOW__API__BASE_URL (user admin, password in" \
     "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"

# Stopping is bounded: the scheduler, dag-processor and triggerer first (their running tasks
# report how they ended to the API server), then the API server, each given STOP_GRACE_S
# seconds after TERM before it is killed with everything it started. Without the bound, a
# scheduler whose LocalExecutor workers kept retrying against an API server that had stopped
# held the script for minutes (seen in CI after the dag-processor was killed mid-run).
STOP_GRACE_S=30
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
    kill -KILL "$1" 2>/dev/null || true
}
stop_within_grace() {
    local pid alive
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 1 "$STOP_GRACE_S"); do
        alive=""
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
        [ -z "$alive" ] && return 0
        sleep 1
    done
    echo "airflow-local: still running after ${STOP_GRACE_S} s, killed:$alive" >&2
    for pid in $alive; do kill_tree "$pid"; done
}
stop() {
    trap - TERM INT
    stop_within_grace "${pids[@]:1}"
    stop_within_grace "${pids[0]}"
    wait || true
}
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT
set +e
wait -n  # bash 4.3+: returns when the first of the components exits, with its status
rc=$?
echo "airflow-local: a component exited with $rc; stopping the others" >&2
stop
exit $(( rc == 0 ? 1 : rc ))
