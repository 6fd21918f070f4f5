"""The docker-compose.yml topology, run natively: Postgres metadata DB, CeleryExecutor over Redis,
and api-server, scheduler, dag-processor, triggerer and a Celery worker as separate processes.

The DAGs are not unpaused by hand: docker-compose.yml's own DAGS_ARE_PAUSED_AT_CREATION is used,
and once the dag-processor has parsed dags/, every project DAG must be unpaused. The DAGs this
test does not exercise are then paused deliberately (as docs/deploy.md says to), before the
scheduler starts. The source DAG is triggered from the CLI and also gets its scheduled run; the
transform DAG must then be started by the scheduler from the ``frontex_landed`` asset event, run
its tasks on the Celery worker (which reports task state through the API server's Execution API),
and publish the warehouse.

As under docker-compose.yml, the broker requires a password: the test starts a Redis server of
its own with ``--requirepass`` (a password made the way docs/deploy.md makes REDIS_PASSWORD), and
the broker URL is the compose file's own, with that password and this server's address put in.
Every Airflow process runs with the checkout mounted read-only (a mount namespace of its own), as
docker-compose.yml mounts the code: a task that wrote into the code tree would fail.

Needs PostgreSQL on 127.0.0.1 (trust auth for user ``postgres``; override with
WH_TOPOLOGY_PG_*), ``redis-server`` on PATH (or WH_TOPOLOGY_REDIS_SERVER), util-linux
``unshare`` with mount namespaces, and apache-airflow[celery,postgres] plus the FAB provider (the
auth manager docker-compose.yml configures).
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import topology as topo
from tests.conftest import snapshot_root

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")  # not resolved: the venv's own entry point
DAG_IDS = ("frontex_ingest", "warehouse_transform")
PROJECT_DAG_IDS = topo.project_dag_ids()  # all seven, parsed and unpaused on deployment
# What docker-compose.yml sets for every Airflow service, read from the file itself.
COMPOSE_ENV = topo.compose_common_environment()


def pool_command() -> list[str]:
    """The ``airflow pools set ...`` that docker-compose.yml's airflow-init runs, as arguments
    of ``airflow`` (the transform's one-slot pool: without it the scheduler never queues the
    transform's tasks)."""
    import shlex

    import yaml

    compose = yaml.safe_load(topo.COMPOSE_FILE.read_text(encoding="utf-8"))
    script = "\n".join(compose["services"]["airflow-init"]["command"]).replace("\\\n", " ")
    [line] = [line for line in script.splitlines() if "airflow pools set" in line]
    args = shlex.split(line)
    return args[args.index("pools"):]
MANUAL_RUN_ID = "topology_manual"
EXPECTED = (173460, 4966869)  # count(*), sum(detections) of marts.fct_border_crossings

STARTUP_TIMEOUT_S = 180
PARSE_TIMEOUT_S = 180
RUN_TIMEOUT_S = float(os.environ.get("WH_TOPOLOGY_RUN_TIMEOUT_S", "300"))

pytestmark = pytest.mark.topology


class Topology:
    def __init__(self, root: Path):
        self.root = root
        self.home = root / "airflow"
        self.logs = root / "logs"
        self.warehouse = root / "warehouse" / "migration.duckdb"
        self.db = f"wh_topology_{os.getpid()}"
        self.redis_port = topo.free_port()
        # As docs/deploy.md generates REDIS_PASSWORD.
        self.redis_password = secrets.token_urlsafe(32)
        self.redis: topo.Component | None = None
        self.api_port = topo.free_port()
        self.health_port = topo.free_port()
        self.components: list[topo.Component] = []
        self.env: dict[str, str] = {}

    # -- set-up ----------------------------------------------------------------------------

    def make_env(self, snapshot: Path) -> None:
        pg = f"postgres@{topo.PG_HOST}:{topo.PG_PORT}/{self.db}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "WH_", "PYTHONPATH"))}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            # As docker-compose.yml; needs apache-airflow-providers-fab.
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg}",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION":
                COMPOSE_ENV["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
                f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            # 64 characters: shorter HMAC keys draw InsecureKeyLengthWarning from PyJWT (HS512).
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.health_port),
            # Log servers of the worker and the triggerer: free ports, not 8793/8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(topo.free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(topo.free_port()),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "PYTHONPATH": str(REPO_ROOT),
            "PATH": os.pathsep.join((str(AIRFLOW.parent), os.environ.get("PATH", ""))),
            "WH_SNAPSHOT_DIR": str(snapshot),
            "WH_WAREHOUSE": str(self.warehouse),
            "WH_LANDING_DIR": str(self.root / "landing"),
            "WH_RUNS_DIR": str(self.root / "warehouse" / "runs"),
            "WH_SOURCE_TASK_RETRIES": "0",
            "GX_ANALYTICS_ENABLED": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        })
        self.env = env

    def broker_url(self) -> str:
        """docker-compose.yml's broker URL with the password put in as compose does, and this
        test's Redis server in place of the ``redis`` service."""
        url = urlsplit(topo.interpolate(COMPOSE_ENV["AIRFLOW__CELERY__BROKER_URL"],
                                        {"REDIS_PASSWORD": self.redis_password}))
        assert url.password == self.redis_password, "the compose broker URL carries no password"
        return url._replace(netloc=f":{url.password}@127.0.0.1:{self.redis_port}").geturl()

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        name = "-".join(a for a in args if not a.startswith("-"))[:60]
        log = self.logs / f"cli-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            done = subprocess.run(topo.read_only_checkout([str(AIRFLOW), *args]),
                                  env=self.env, cwd=self.root,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if done.returncode:
            raise AssertionError(f"`airflow {' '.join(args)}` exited {done.returncode}:\n"
                                 + topo.tail(log))
        return done

    def start(self, name: str, *args: str) -> None:
        comp = topo.Component(name, topo.read_only_checkout([str(AIRFLOW), *args]),
                              self.logs / f"{name}.log")
        self.components.append(comp)
        comp.start(self.env, self.root)

    def check_alive(self) -> None:
        for comp in self.components:
            if (rc := comp.exited()) is not None:
                raise AssertionError(f"{comp.name} exited with {rc}:\n{topo.tail(comp.log)}")

    def wait_for(self, what: str, predicate, timeout: float, interval: float = 2):
        return topo.wait_for(what, predicate, timeout, interval, self.components)

    def http_ok(self, url: str) -> bool:
        return topo.http_ok(url)

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        return topo.query(self.db, statement, params)

    # -- tear-down and diagnostics -----------------------------------------------------------

    def stop(self) -> None:
        # The worker first, so no task is left half-reported; then the rest, API server last.
        for comp in sorted(self.components, key=lambda c: ("celery-worker", "scheduler",
                                                             "triggerer", "dag-processor",
                                                             "api-server").index(c.name)):
            comp.stop()

    def diagnostics(self) -> str:
        failures = [f"----- {path}\n" + path.read_text(errors="replace")[:1500]
                    for path in sorted((self.root / "warehouse" / "runs").glob("*/failure.json"))]
        return topo.diagnostics(self.components, self.home, self.sql, task_logs=4,
                                task_log_lines=60, extra=failures)


@pytest.fixture
def topology(tmp_path: Path):
    snapshot = snapshot_root()
    if not (snapshot / "frontex" / "ibc.xlsx").is_file():
        pytest.fail(f"recorded snapshot not found: {snapshot / 'frontex' / 'ibc.xlsx'} "
                    "(set WH_SNAPSHOT_DIR to a directory laid out like ../shared/data)")
    if not AIRFLOW.is_file():
        pytest.fail(f"no airflow entry point beside {sys.executable}")
    t = Topology(tmp_path)
    topo.require_services()
    topo.require_read_only_checkout()
    topo.create_database(t.db)
    try:
        t.redis = topo.start_redis(tmp_path / "redis", t.redis_port, t.redis_password,
                                   t.logs / "redis-server.log")
        try:
            t.make_env(snapshot)
            yield t
        finally:
            try:
                t.stop()
            finally:
                t.redis.stop()
    finally:
        topo.drop_database(t.db)


def test_asset_triggered_transform_publishes_on_celery(topology: Topology):
    t = topology
    started = time.monotonic()
    try:
        t.airflow("db", "migrate", timeout=600)
        # What compose's airflow-init does after migrating (the transform's one-slot pool).
        t.airflow(*pool_command(), timeout=120)

        # The scheduler starts only once the DAGs are parsed and scoped below: unpaused DAGs are
        # scheduled at once, and this test runs only the two of DAG_IDS.
        t.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(t.api_port))
        t.start("dag-processor", "dag-processor")
        t.start("triggerer", "triggerer")
        t.wait_for("the API server", lambda: t.http_ok(
            f"http://127.0.0.1:{t.api_port}/api/v2/version"), STARTUP_TIMEOUT_S)
        t.wait_for("the Execution API", lambda: t.http_ok(
            f"http://127.0.0.1:{t.api_port}/execution/health"), STARTUP_TIMEOUT_S)
        # Like docker-compose.yml: the worker starts once the Execution API answers.
        t.start("celery-worker", "celery", "worker", "--concurrency", "2",
                "--celery-hostname", f"{t.db}@%h")

        assert len(PROJECT_DAG_IDS) == 7 and set(DAG_IDS) <= set(PROJECT_DAG_IDS), PROJECT_DAG_IDS

        def parsed():
            errors = t.sql("select filename, stacktrace from import_error")
            assert not errors, f"DAG import errors: {errors}"
            rows = t.sql("select dag_id from dag where not is_stale and dag_id in %s "
                         "and dag_id in (select dag_id from serialized_dag)", (PROJECT_DAG_IDS,))
            return len(rows) == len(PROJECT_DAG_IDS)

        t.wait_for(f"the {len(PROJECT_DAG_IDS)} DAGs to be parsed", parsed, PARSE_TIMEOUT_S)
        # Nobody unpaused anything: the compose file's setting did.
        paused = t.sql("select dag_id, is_paused from dag where dag_id in %s order by dag_id",
                       (PROJECT_DAG_IDS,))
        assert paused == [(d, False) for d in PROJECT_DAG_IDS], (
            f"DAGs paused at creation with DAGS_ARE_PAUSED_AT_CREATION="
            f"{t.env['AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION']}: {paused}")

        # Out of this test's scope (their runs would only cost time): paused deliberately, the
        # way docs/deploy.md documents it, before the scheduler can schedule them.
        others = sorted(set(PROJECT_DAG_IDS) - set(DAG_IDS))
        t.airflow("dags", "pause", "--treat-dag-id-as-regex", "--yes",
                  "^(" + "|".join(map(re.escape, others)) + ")$")
        assert t.sql("select dag_id from dag where is_paused order by dag_id") == [
            (d,) for d in others]

        t.airflow("dags", "trigger", "frontex_ingest", "--run-id", MANUAL_RUN_ID)
        t.start("scheduler", "scheduler")
        t.wait_for("the scheduler health check", lambda: t.http_ok(
            f"http://127.0.0.1:{t.health_port}/health"), STARTUP_TIMEOUT_S)

        def settled():
            runs = t.sql("select dag_id, run_id, run_type, state from dag_run")
            failed = [r for r in runs if r[3] == "failed"]
            assert not failed, f"failed runs: {failed}"
            manual_ok = ("frontex_ingest", MANUAL_RUN_ID, "manual", "success") in runs
            # Unpaused at creation: the scheduler schedules the source DAG by itself (catchup is
            # off, so one run, of the latest interval; it lands the file or finds it landed).
            scheduled_ok = any(r[0] == "frontex_ingest" and r[2] == "scheduled"
                               and r[3] == "success" for r in runs)
            transform_ok = any(r[0] == "warehouse_transform" and r[2] == "asset_triggered"
                               and r[3] == "success" for r in runs)
            active = [r for r in runs if r[3] in ("queued", "running")]
            pending_events = t.sql("select count(*) from asset_dag_run_queue")[0][0]
            # Settled: nothing queued or running and no asset event still waiting for a run, so
            # no transform is writing when the published file is read below.
            return (manual_ok and scheduled_ok and transform_ok and not active
                    and not pending_events and runs)

        runs = t.wait_for("frontex_ingest (manual and scheduled) and an asset-triggered "
                          "warehouse_transform to succeed", settled, RUN_TIMEOUT_S, interval=3)
        print(f"settled after {time.monotonic() - started:.0f} s: {sorted(runs)}")
        assert {r[0] for r in runs} == set(DAG_IDS), f"a deliberately paused DAG ran: {runs}"

        # The transform consumed an event emitted by the Frontex landing task.
        consumed = t.sql("""
            select e.source_dag_id, e.source_task_id
            from dag_run r
            join dagrun_asset_event re on re.dag_run_id = r.id
            join asset_event e on e.id = re.event_id
            join asset a on a.id = e.asset_id
            where r.dag_id = 'warehouse_transform' and r.run_type = 'asset_triggered'
              and r.state = 'success' and a.name = 'frontex_landed'""")
        assert ("frontex_ingest", "land_workbook") in consumed, consumed

        # Every task ran on the Celery worker, none in-process.
        hosts = t.sql("select distinct queue, executor, hostname from task_instance "
                      "where state = 'success'")
        print(f"task instances ran on (queue, executor, hostname): {hosts}")
        assert hosts and all(h[1] in (None, "CeleryExecutor") and h[2] for h in hosts), hosts
        done_tis = t.sql("select count(*) from task_instance where state = 'success'")[0][0]

        def on_celery() -> int:
            worker_log = (t.logs / "celery-worker.log").read_text(errors="replace")
            return len(re.findall(r"Task execute_workload\[[^\]]+\] succeeded", worker_log))

        # A task reports success through the Execution API before its Celery job returns and the
        # worker logs "succeeded": give the last one a moment.
        try:
            t.wait_for("the worker to log every task", lambda: on_celery() >= done_tis, 60, 1)
        except AssertionError:
            raise AssertionError(f"{done_tis} tasks succeeded, {on_celery()} on the worker")

        assert t.warehouse.is_file(), f"no published warehouse at {t.warehouse}"
        import duckdb

        # No config={"enable_progress_bar": ...}: DuckDB 1.5 refuses that option in connect().
        with duckdb.connect(str(t.warehouse), read_only=True) as con:
            rows, total = con.execute(
                "select count(*), sum(detections) from marts.fct_border_crossings").fetchone()
        assert (rows, int(total)) == EXPECTED
        print(f"topology test passed in {time.monotonic() - started:.0f} s")
    except BaseException:
        print(t.diagnostics())
        raise
