"""The non-Docker recipe for scheduled runs on one machine (docs/deploy.md), started as documented.

``deploy/airflow-local.sh`` runs in a temporary AIRFLOW_HOME, with every project path (WH_*) in the
test's tmp directory and WH_SNAPSHOT_DIR pointing at the recorded files, so nothing goes to the
network or outside tmp. Only the ports are chosen free (plain Airflow options, which the script
leaves alone when set). The test passes when:

- the metadata DB (SQLite, in AIRFLOW_HOME) holds all seven project DAGs, parsed without import
  errors and unpaused, though nobody unpaused anything;
- the scheduler has, by itself, created a scheduled run of every time-scheduled DAG, the LocalExecutor
  has run the Frontex source task to success (landing the recorded workbook under tmp), and the
  Asset event it emitted has started a warehouse_transform run;
- when a component dies, the script stops the others and exits with that component's status, as the
  script documents for supervisors (systemd ``Restart=on-failure``).
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests import topology as topo
from tests.conftest import snapshot_root

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "deploy" / "airflow-local.sh"
VENV = Path(sys.executable).parent.parent  # not resolved: the venv, not its base interpreter
PROJECT_DAG_IDS = topo.project_dag_ids()
EVENT_DAG_IDS = ("warehouse_transform",)  # scheduled on Asset events, not on time

STARTUP_TIMEOUT_S = 180
PARSE_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180
STOP_TIMEOUT_S = 90

pytestmark = pytest.mark.topology


class LocalDeployment:
    def __init__(self, root: Path, snapshot: Path):
        self.root = root
        self.home = root / "airflow"
        self.db = self.home / "airflow.db"
        self.api_port = topo.free_port()
        self.landing = root / "landing"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "WH_", "PYTHONPATH", "VENV"))}
        env.update({
            # What docs/deploy.md tells a user to set ...
            "AIRFLOW_HOME": str(self.home),
            "WH_SNAPSHOT_DIR": str(snapshot),
            "WH_WAREHOUSE": str(root / "warehouse" / "migration.duckdb"),
            "WH_LANDING_DIR": str(self.landing),
            "WH_RUNS_DIR": str(root / "warehouse" / "runs"),
            "WH_REPORTS_DIR": str(root / "reports"),
            "WH_QUALITY_DB": str(root / "warehouse" / "quality_history.duckdb"),
            "VENV": str(VENV),
            # ... and what a test on a shared machine needs: free ports, no retry delays.
            "AIRFLOW_API_PORT": str(self.api_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(topo.free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(topo.free_port()),
            "WH_SOURCE_TASK_RETRIES": "0",
        })
        self.env = env
        self.proc = topo.Component("airflow-local", [str(SCRIPT)], root / "airflow-local.log")

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        return topo.sqlite_query(self.db, statement, params)

    def wait_for(self, what: str, predicate, timeout: float, interval: float = 2):
        return topo.wait_for(what, predicate, timeout, interval, [self.proc])

    def diagnostics(self) -> str:
        return topo.diagnostics([self.proc], self.home, self.sql)


@pytest.fixture
def local(tmp_path: Path):
    snapshot = snapshot_root()
    if not (snapshot / "frontex" / "ibc.xlsx").is_file():
        pytest.fail(f"recorded snapshot not found: {snapshot / 'frontex' / 'ibc.xlsx'} "
                    "(set WH_SNAPSHOT_DIR to a directory laid out like ../shared/data)")
    if not (VENV / "bin" / "airflow").is_file():
        pytest.fail(f"no airflow entry point in {VENV / 'bin'}")
    d = LocalDeployment(tmp_path, snapshot)
    d.proc.start(d.env, REPO_ROOT)
    try:
        yield d
    finally:
        d.proc.stop()
        left = topo.group_processes(d.proc.proc.pid)
        assert not left, f"processes of the deployment left running: {left}"


def test_local_recipe_schedules_unpaused_dags_on_sqlite(local: LocalDeployment):
    d = local
    started = time.monotonic()
    try:
        d.wait_for("the API server", lambda: topo.http_ok(
            f"http://127.0.0.1:{d.api_port}/api/v2/version"), STARTUP_TIMEOUT_S)
        # The script resolved the project settings to the test's paths, not the checkout's.
        banner = re.search(r"airflow-local: AIRFLOW_HOME=(\S+) warehouse=(\S+)",
                           d.proc.log.read_text(errors="replace"))
        assert banner and banner.groups() == (str(d.home), d.env["WH_WAREHOUSE"]), (
            f"the script should resolve AIRFLOW_HOME and the warehouse to the test's "
            f"{d.home} and {d.env['WH_WAREHOUSE']}, its banner says "
            f"{banner.groups() if banner else 'nothing'}")

        assert len(PROJECT_DAG_IDS) == 7, f"the project has 7 DAGs, found {PROJECT_DAG_IDS}"
        marks = ",".join("?" * len(PROJECT_DAG_IDS))

        def parsed():
            errors = d.sql("select filename, stacktrace from import_error")
            assert not errors, f"DAG import errors: {errors}"
            rows = d.sql(f"select dag_id from dag where not is_stale and dag_id in ({marks}) "
                         "and dag_id in (select dag_id from serialized_dag)", PROJECT_DAG_IDS)
            return len(rows) == len(PROJECT_DAG_IDS)

        d.wait_for(f"the {len(PROJECT_DAG_IDS)} DAGs to be parsed", parsed, PARSE_TIMEOUT_S)
        print(f"parsed after {time.monotonic() - started:.0f} s")
        dags = d.sql("select dag_id, is_paused from dag order by dag_id")
        assert dags == [(dag_id, 0) for dag_id in PROJECT_DAG_IDS], (
            f"every project DAG should be in the metadata DB and unpaused at creation, "
            f"got (dag_id, is_paused) {dags}")

        timed = sorted(set(PROJECT_DAG_IDS) - set(EVENT_DAG_IDS))

        def scheduled():
            runs = d.sql("select dag_id, run_type, state from dag_run")
            have = {r[0] for r in runs if r[1] == "scheduled"}
            frontex = d.sql("select t.state from task_instance t join dag_run r "
                            "on r.dag_id = t.dag_id and r.run_id = t.run_id "
                            "where r.dag_id = 'frontex_ingest' and r.run_type = 'scheduled' "
                            "and t.task_id = 'land_workbook'")
            assert ("failed",) not in frontex, "the scheduled Frontex task failed"
            transform = [r for r in runs if r[0] == "warehouse_transform"
                         and r[1] == "asset_triggered"]
            return have == set(timed) and frontex == [("success",)] and transform and runs

        runs = d.wait_for("scheduled runs of every time-scheduled DAG, a successful Frontex "
                          "task and an asset-triggered transform", scheduled, RUN_TIMEOUT_S)
        print(f"scheduled after {time.monotonic() - started:.0f} s: {sorted(runs)}")
        landed = list((d.landing / "frontex").glob("*.xlsx"))
        assert landed, f"the scheduled Frontex run landed nothing under {d.landing}"

        # A component dies: the script stops the others and exits with its status. The one to
        # kill is the dag-processor the script started (its child): Airflow 3's dag-processor
        # parses each DAG file in a child it forks without exec and in its own process group
        # (DagFileProcessorProcess.start -> WatchedSubprocess.start, os.fork), so while a file is
        # being parsed (every 30 s, slower on a loaded machine) a second process in the group
        # shows the same command line. Killing that one would stop nothing.
        group = topo.group_processes(d.proc.proc.pid)
        dag_processor = [pid for pid, cmd in group.items() if cmd.endswith("airflow dag-processor")
                         and topo.parent_pid(pid) == d.proc.proc.pid]
        assert len(dag_processor) == 1, (
            f"exactly one dag-processor should be a child of the script "
            f"(pid {d.proc.proc.pid}), found {dag_processor} in its process group: "
            + "; ".join(f"{pid} (parent {topo.parent_pid(pid)}): {cmd}"
                        for pid, cmd in sorted(group.items())))
        os.kill(dag_processor[0], signal.SIGKILL)
        t0 = time.monotonic()
        topo.wait_for("the script to exit after its dag-processor died",
                      lambda: d.proc.exited() is not None, STOP_TIMEOUT_S, 0.5)
        rc = d.proc.exited()
        print(f"script exited {rc} {time.monotonic() - t0:.0f} s after the dag-processor died")
        assert rc == 128 + signal.SIGKILL, (
            f"the script should exit with its killed dag-processor's status "
            f"{128 + signal.SIGKILL}, exited {rc}")
        components = {pid: cmd for pid, cmd in group.items()
                      if re.search(r"airflow (scheduler|triggerer)$|airflow api_server", cmd)}
        kinds = {re.search(r"scheduler|triggerer|api_server", c)[0] for c in components.values()}
        assert kinds == {"scheduler", "triggerer", "api_server"}, (
            f"the scheduler, triggerer and API server should have been running beside the "
            f"dag-processor, found {sorted(kinds)} in {group}")
        alive = topo.group_processes(d.proc.proc.pid)
        assert not set(components) & set(alive), f"components left running: {alive}"
        print(f"local deployment test passed in {time.monotonic() - started:.0f} s")
    except BaseException:
        print(d.diagnostics())
        raise
