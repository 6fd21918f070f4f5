"""The production topology on several hosts with no shared disk (issue 20, item 5).

Hosts are network namespaces (tests/netns.py), each with an empty folder of its own that no
other host can read, the checkout read-only (the code is "the image"):

- ``sched``: the Airflow api-server (with the Execution API), dag-processor and scheduler;
- ``worker1``, ``worker2``: one Celery worker each;
- ``reader``: a BI client that only runs what ``python -m pipeline.run reader-sql`` prints.

PostgreSQL (the machine's, through a forwarder), a Redis server and SeaweedFS (S3) listen on the
bridge's address in the root namespace: the hosts reach them over the veth network only. Every
host has ``WH_STORAGE_URL`` (a fresh bucket) and ``WH_SCRATCH_DIR`` in its own folder; the local
data settings point at folders that must stay absent. The recorded snapshot (``WH_SNAPSHOT_DIR``,
read-only) plays the publisher.

The run: ``frontex_ingest`` lands the workbook from whichever worker gets the task; the
asset-triggered ``warehouse_transform`` builds. While one of its middle steps runs, the host of
the worker running it dies (every process in its namespace SIGKILLed). The scheduler sees the
task's heartbeat stop and retries it (WH_TRANSFORM_TASK_RETRIES); the retry runs on the surviving
worker from the run folder the previous step left in the bucket, the run publishes, and its
report says that the step was started again after its worker died. Throughout, a watcher reads ``warehouse/CURRENT`` every
half second: the pointer only ever names a complete version object. The reader then reads
4,966,869 Frontex detections in the newest release.

Needs what tests/test_production_topology.py needs, plus root for ``ip netns``.
"""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import netns
from tests import topology as topo
from tests.conftest import snapshot_root

REPO_ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_IDS = ("frontex_ingest", "warehouse_transform")
RUN_TIMEOUT_S = float(os.environ.get("WH_TOPOLOGY_RUN_TIMEOUT_S", "300"))
# The transform steps after which the worker is killed (the first of them seen running).
KILL_DURING = ("load_raw", "audit_raw", "dbt_build", "audit_marts")
EXPECTED_TOTAL = 4_966_869
HEARTBEAT_TIMEOUT_S = 20

pytestmark = pytest.mark.topology


class Hosts:
    def __init__(self, root: Path):
        self.root = root
        self.net = netns.Network(root / "net")
        self.sched = self.net.add_host("sched")
        self.workers = [self.net.add_host("worker1"), self.net.add_host("worker2")]
        self.reader = self.net.add_host("reader")
        self.db = f"wh_multihost_{os.getpid()}"
        self.components: list[topo.Component] = []
        self.services: list = []
        self.api_port = topo.free_port()
        self.health_port = topo.free_port()
        self.log_port = topo.free_port()
        self.s3 = None
        self.s3_env: dict[str, str] = {}
        self.base_env: dict[str, str] = {}

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self, host: netns.Host) -> dict[str, str]:
        """One host's environment: its own AIRFLOW_HOME, HOME and scratch, everything shared
        reached through the bridge."""
        own = host.folder
        return {**self.base_env,
                "HOME": str(own),
                "AIRFLOW_HOME": str(own / "airflow"),
                "WH_SCRATCH_DIR": str(own / "scratch"),
                # Must stay absent: with WH_STORAGE_URL set nothing is kept locally.
                "WH_WAREHOUSE": str(own / "local" / "warehouse" / "migration.duckdb"),
                "WH_LANDING_DIR": str(own / "local" / "landing"),
                "WH_RUNS_DIR": str(own / "local" / "warehouse" / "runs"),
                "WH_REPORTS_DIR": str(own / "local" / "reports" / "quality"),
                "AIRFLOW__API__HOST": self.sched.address,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": self.sched.address}

    def start(self, host: netns.Host, name: str, *args: str) -> topo.Component:
        comp = topo.Component(name, host.argv([str(AIRFLOW), *args]),
                              self.logs / f"{name}.log")
        self.components.append(comp)
        comp.start(self.env(host), host.folder)
        return comp

    def airflow(self, *args: str, timeout: float = 300) -> None:
        name = "-".join(a for a in args if not a.startswith("-"))[:60]
        log = self.logs / f"cli-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            done = subprocess.run(self.sched.argv([str(AIRFLOW), *args]),
                                  env=self.env(self.sched), stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        if done.returncode:
            raise AssertionError(f"`airflow {' '.join(args)}` on host sched exited "
                                 f"{done.returncode}:\n" + topo.tail(log))

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        return topo.query(self.db, statement, params)

    def wait_for(self, what, predicate, timeout, interval=2.0, components=None):
        return topo.wait_for(what, predicate, timeout, interval,
                             self.components if components is None else components)

    def kill_host(self, host: netns.Host) -> list[int]:
        """The host dies: every process in its network namespace is SIGKILLed at once."""
        pids = [int(p) for p in subprocess.run(["ip", "netns", "pids", host.netns],
                                               capture_output=True, text=True).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def stop(self) -> None:
        order = ("worker1", "worker2", "scheduler", "dag-processor", "api-server")
        for comp in sorted(self.components, key=lambda c: order.index(c.name)
                           if c.name in order else len(order)):
            comp.stop(grace_s=10)

    def diagnostics(self) -> str:
        extra = []
        for host in self.net.hosts.values():
            files = sorted(str(p.relative_to(host.folder)) for p in host.folder.rglob("*")
                           if p.is_file() and "/logs/" not in f"/{p.relative_to(host.folder)}")
            extra.append(f"----- files on host {host.name} ({len(files)}): {files[:40]}")
            for path in sorted((host.folder / "airflow" / "logs").rglob("*.log"),
                               key=lambda p: p.stat().st_mtime)[-4:]:
                extra.append(f"----- host {host.name}: task log {path.relative_to(host.folder)}\n"
                             + topo.tail(path, 50))
        if self.s3 is not None:
            extra.append("----- S3 server\n" + self.s3.tail(20))
        return topo.diagnostics(self.components, self.root / "none", self.sql, task_logs=0,
                                extra=extra)


@pytest.fixture
def hosts(tmp_path: Path):
    from tests.s3server import S3Server

    snapshot = snapshot_root()
    if not (snapshot / "frontex" / "ibc.xlsx").is_file():
        pytest.fail(f"recorded snapshot not found: {snapshot / 'frontex' / 'ibc.xlsx'}")
    try:
        netns.require()
    except netns.NetnsUnavailable as err:
        pytest.fail(f"the multi-host test needs network namespaces: {err}", pytrace=False)
    topo.require_services()
    h = Hosts(tmp_path)
    try:
        pg = h.net.forward(0, (topo.PG_HOST, topo.PG_PORT))
        topo.create_database(h.db)
        redis_port, redis_password = topo.free_port(), secrets.token_urlsafe(32)
        h.services.append(topo.start_redis(tmp_path / "redis", redis_port, redis_password,
                                           h.logs / "redis-server.log", host=h.net.gateway))
        h.s3 = S3Server(host=h.net.gateway).start()
        bucket = h.s3.create_bucket()
        h.s3_env = h.s3.env(bucket)
        pg_url = f"postgres@{h.net.gateway}:{pg.address[1]}/{h.db}"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "WH_", "PYTHONPATH", "AWS_"))}
        base.update(h.s3_env)
        base.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg_url}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg_url}",
            "AIRFLOW__CELERY__BROKER_URL":
                f"redis://:{redis_password}@{h.net.gateway}:{redis_port}/0",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Hosts have no DNS: the hostname they record is their own name.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
                f"http://{h.sched.address}:{h.api_port}/execution/",
            "AIRFLOW__API__PORT": str(h.api_port),
            "AIRFLOW__API__BASE_URL": f"http://{h.sched.address}:{h.api_port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(h.health_port),
            # A dead worker's task is failed after this long without a heartbeat (default 300).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(h.log_port),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": os.pathsep.join((str(AIRFLOW.parent), os.environ.get("PATH", ""))),
            "WH_SNAPSHOT_DIR": str(snapshot),
            "WH_SOURCE_TASK_RETRIES": "0",
            "WH_TRANSFORM_TASK_RETRIES": "1",
            # The killed run's lease: taken over after this long without a step.
            "WH_TRANSFORM_LEASE_IDLE_S": "30",
            "GX_ANALYTICS_ENABLED": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        })
        h.base_env = base
        yield h
    finally:
        try:
            h.stop()
        finally:
            for service in h.services:
                service.stop()
            if h.s3 is not None:
                h.s3.stop()
            try:
                topo.drop_database(h.db)
            finally:
                h.net.close()


class PointerWatch(threading.Thread):
    """Reads warehouse/CURRENT every half second; records every key it named and whether that
    version object was complete (HEAD answers with its full size) when the pointer named it."""

    def __init__(self, store):
        super().__init__(daemon=True)
        self.store = store
        self.seen: list[tuple[float, str, int | None]] = []
        self.problems: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stopped.wait(0.5):
            try:
                got = self.store.get("warehouse/CURRENT")
                if got is None:
                    continue
                key = got[0].decode().strip()
                if key == last:
                    continue
                last = key
                head = self.store.head(key)
                self.seen.append((time.monotonic(), key, head.size if head else None))
                if head is None or head.size == 0:
                    self.problems.append(f"warehouse/CURRENT named {key}, which was "
                                         f"{'missing' if head is None else 'empty'}")
            except Exception as err:  # the watcher must not die silently
                self.problems.append(f"watching warehouse/CURRENT: {err!r}")


def test_two_workers_on_two_hosts_publish_through_object_storage(hosts: Hosts):
    from ingest import storage

    h = hosts
    started = time.monotonic()
    marks: dict[str, float] = {}
    from tests import s3server
    store = storage.Store(h.s3_env["WH_STORAGE_URL"], h.s3.endpoint, s3server.ACCESS_KEY,
                          s3server.SECRET_KEY, s3server.REGION)
    watch = None
    try:
        h.airflow("db", "migrate", timeout=600)
        h.airflow("pools", "set", "warehouse_writer", "1", "the single writer", timeout=120)
        marks["migrated"] = time.monotonic() - started
        h.start(h.sched, "api-server", "api-server", "--host", h.sched.address,
                "--port", str(h.api_port))
        h.start(h.sched, "dag-processor", "dag-processor")
        h.wait_for("the Execution API", lambda: topo.http_ok(
            f"http://{h.sched.address}:{h.api_port}/execution/health"), 180)
        for worker in h.workers:
            h.start(worker, worker.name, "celery", "worker", "--concurrency", "2",
                    "--celery-hostname", f"{worker.name}@%h")
        project = topo.project_dag_ids()

        def parsed():
            errors = h.sql("select filename, stacktrace from import_error")
            assert not errors, f"DAG import errors: {errors}"
            return len(h.sql("select dag_id from dag where not is_stale and dag_id in %s and "
                             "dag_id in (select dag_id from serialized_dag)",
                             (project,))) == len(project)

        h.wait_for(f"the {len(project)} DAGs to be parsed", parsed, 180)
        others = sorted(set(project) - set(DAG_IDS))
        h.airflow("dags", "pause", "--treat-dag-id-as-regex", "--yes",
                  "^(" + "|".join(map(re.escape, others)) + ")$")
        h.airflow("dags", "trigger", "frontex_ingest", "--run-id", "multihost_manual")
        marks["parsed"] = time.monotonic() - started
        h.start(h.sched, "scheduler", "scheduler")
        watch = PointerWatch(store)
        watch.start()

        # The transform, asset-triggered by the landing on one of the workers.
        def transform_middle():
            rows = h.sql("select run_id, task_id, hostname from task_instance "
                         "where dag_id = 'warehouse_transform' and state = 'running' "
                         "and task_id in %s", (KILL_DURING,))
            failed = h.sql("select dag_id, run_id from dag_run where state = 'failed'")
            assert not failed, f"failed runs before the kill: {failed}"
            return rows[0] if rows else None

        run_id, task_id, hostname = h.wait_for(
            f"a transform task of {KILL_DURING} running", transform_middle, RUN_TIMEOUT_S, 1)
        marks["transform_running"] = time.monotonic() - started
        landed_on = h.sql("select hostname from task_instance where dag_id = 'frontex_ingest' "
                          "and state = 'success'")
        print(f"frontex landed on {landed_on}; {task_id} of {run_id} running on {hostname}")
        # The landed workbook is in the bucket, not on the worker that landed it.
        landed = [o.key for o in store.list("landing/") if o.key.startswith("landing/frontex/")]
        assert landed, (
            f"no landing/frontex/ object in {store.url} after frontex_ingest ran on {landed_on}: "
            f"the landing kept it on the worker (files there: "
            f"{sorted(str(p) for w in h.workers for p in (w.folder / 'local').rglob('*.xlsx'))})")
        [victim] = [w for w in h.workers if w.name == hostname]
        [survivor] = [w for w in h.workers if w is not victim]
        killed = h.kill_host(victim)
        assert killed, f"no process found in {victim.netns} to kill"
        victim_comp = next(c for c in h.components if c.name == victim.name)
        alive = [c for c in h.components if c is not victim_comp]

        def killed_run_ended():
            return h.sql("select state from dag_run where dag_id = 'warehouse_transform' "
                         "and run_id = %s and state in ('failed', 'success')", (run_id,))

        [(state,)] = h.wait_for(f"run {run_id} to end after its worker died", killed_run_ended,
                                HEARTBEAT_TIMEOUT_S + RUN_TIMEOUT_S, 2, alive)
        assert state == "success", (
            f"run {run_id}, whose worker died mid-{task_id}, ended {state}: the retry of "
            f"{task_id} on {survivor.name} should have finished it")
        marks["retried_run_published"] = time.monotonic() - started
        [(tries, where)] = h.sql("select try_number, hostname from task_instance where dag_id = "
                                 "'warehouse_transform' and run_id = %s and task_id = %s",
                                 (run_id, task_id))
        assert tries == 2 and where == survivor.name, (
            f"{task_id} should have been retried once on {survivor.name}: try {tries} on {where}")
        from pipeline.warehouse import safe_run_id
        safe = safe_run_id(run_id)
        assert store.get("warehouse/CURRENT")[0].decode().strip().endswith(f"{safe}.duckdb"), \
            f"warehouse/CURRENT does not name run {run_id}'s version"
        # Its report says what happened (later asset events may have added "unchanged" runs:
        # the run's own report, not latest.html).
        pages = {o.key: store.get(o.key)[0].decode(errors="replace")
                 for o in store.list("reports/quality/") if o.key.endswith("/index.html")}
        mine = {k: p for k, p in pages.items() if safe in p}
        assert mine, f"no report under {store.uri('reports/quality/')} names run {safe}: " \
            f"{sorted(pages)}"
        said = f"step {task_id} was started again on {survivor.name}"
        # As a reader sees it: the page marks the step's name as code (<code>load_raw</code>).
        text = {k: html.unescape(re.sub(r"<[^>]+>", "", p)) for k, p in mine.items()}
        assert any(said in t for t in text.values()), (
            f"the report of run {run_id} ({sorted(mine)}) does not say that {task_id} was "
            f"started again after its worker {victim.name} died")
        watch.stopped.set()
        watch.join(5)
        assert not watch.problems, "\n".join(watch.problems)
        assert len(watch.seen) == 1 and safe in watch.seen[0][1], (
            f"warehouse/CURRENT should only ever have named run {run_id}'s version, named "
            f"{watch.seen}")

        # The reader, on a fourth host with an empty folder, runs only what reader-sql prints.
        reader_env = {**h.env(h.reader)}
        sql = subprocess.run(h.reader.argv([sys.executable, "-m", "pipeline.run", "reader-sql"],
                                           cwd=REPO_ROOT),
                             env=reader_env, capture_output=True, text=True, timeout=120)
        assert sql.returncode == 0, f"reader-sql on host reader: {sql.stderr[-2000:]}"
        query = ("select sum(detections) from migration.marts.fct_border_crossings where "
                 "release_date = (select max(release_date) from "
                 "migration.marts.fct_border_crossings)")
        code = ("import duckdb, sys; con = duckdb.connect(); con.execute(sys.argv[1]); "
                "print(con.execute(sys.argv[2]).fetchone()[0])")
        read = subprocess.run(h.reader.argv([sys.executable, "-c", code, sql.stdout, query]),
                              # A BI host: its S3 keys and nothing of the pipeline.
                              env={"PATH": reader_env["PATH"], "HOME": reader_env["HOME"],
                                   "AWS_ACCESS_KEY_ID": reader_env["AWS_ACCESS_KEY_ID"],
                                   "AWS_SECRET_ACCESS_KEY": reader_env["AWS_SECRET_ACCESS_KEY"]},
                              capture_output=True, text=True, timeout=120)
        assert read.returncode == 0, f"the reader's SQL failed on host reader: {read.stderr}"
        assert int(read.stdout.strip()) == EXPECTED_TOTAL, (
            f"the reader read {read.stdout.strip()} detections in the newest release, expected "
            f"{EXPECTED_TOTAL:,}")

        # Nothing kept locally: the data folders never appeared on any host, scratch is empty.
        for host in h.net.hosts.values():
            local = host.folder / "local"
            assert not local.exists(), (
                f"host {host.name} wrote local data with WH_STORAGE_URL set: "
                f"{sorted(str(p) for p in local.rglob('*'))[:20]}")
        marks["done"] = time.monotonic() - started
        print("multi-host test timings (s from start):",
              {k: round(v) for k, v in marks.items()})
    except BaseException:
        if watch is not None:
            watch.stopped.set()
        print(h.diagnostics())
        print("timings so far:", {k: round(v) for k, v in marks.items()})
        raise
