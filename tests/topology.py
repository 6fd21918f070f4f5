"""Helpers for the production-topology test (tests/test_production_topology.py).

The docker-compose.yml topology run natively, as separate processes on this host: a throwaway
Postgres database as the Airflow metadata DB and Celery result backend, a Redis database of its
own as the Celery broker, and one process per Airflow component. Everything made here is
removed again: process groups are terminated, the database is dropped, the Redis DB flushed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_HOST = os.environ.get("WH_TOPOLOGY_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WH_TOPOLOGY_PG_PORT", "5432"))
PG_USER = os.environ.get("WH_TOPOLOGY_PG_USER", "postgres")
REDIS_HOST = os.environ.get("WH_TOPOLOGY_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("WH_TOPOLOGY_REDIS_PORT", "6379"))

REDIS_CLAIM_KEY = "wh_topology_claim"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"(no file {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def require_services() -> None:
    """Fail with what to do when PostgreSQL or Redis is not reachable (``.ci/run`` starts them
    when they are installed but stopped)."""
    missing = []
    for name, host, port, start in (
            ("PostgreSQL", PG_HOST, PG_PORT,
             "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
            ("Redis", REDIS_HOST, REDIS_PORT,
             'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" '
             "--appendonly no")):
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as err:
            missing.append(f"{name} on {host}:{port} ({err}); start it with: {start}")
    if missing:
        import pytest

        pytest.fail("the production-topology test needs " + "; ".join(missing), pytrace=False)


# --- Postgres -------------------------------------------------------------------------------

def pg_admin_connect():
    import psycopg2

    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres",
                           connect_timeout=10)
    con.autocommit = True
    return con


def create_database(name: str) -> None:
    con = pg_admin_connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()


def drop_database(name: str) -> None:
    """WITH (FORCE) (Postgres 13+) also ends connections a killed component may have left."""
    con = pg_admin_connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        con.close()


def query(dbname: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname,
                           connect_timeout=10)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        con.close()


# --- Redis ----------------------------------------------------------------------------------

def claim_redis_db(owner: str) -> int:
    """An empty Redis DB number (1..15, never 0), claimed with a marker key so that a parallel
    run does not take the same one. Only this DB is flushed afterwards."""
    import redis

    count = int(redis.Redis(host=REDIS_HOST, port=REDIS_PORT).config_get("databases")
                .get("databases", 16))
    start = os.getpid() % (count - 1)
    for i in range(count - 1):
        n = 1 + (start + i) % (count - 1)
        r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=n)
        if r.dbsize() == 0 and r.set(REDIS_CLAIM_KEY, owner, nx=True):
            if r.dbsize() == 1:
                return n
            r.delete(REDIS_CLAIM_KEY)  # someone else wrote meanwhile: leave it to them
    raise RuntimeError(f"no empty Redis DB on {REDIS_HOST}:{REDIS_PORT} to use as the broker")


def release_redis_db(n: int, owner: str) -> None:
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=n)
    claim = r.get(REDIS_CLAIM_KEY)
    if claim is not None and claim.decode() == owner:
        r.flushdb()


# --- Processes ------------------------------------------------------------------------------

@dataclass
class Component:
    """One long-running Airflow component in its own process group (session)."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=env, cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM the process group, then SIGKILL what is left of it."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                self.proc.poll()
                if not _group_alive(pgid):
                    break
                time.sleep(0.2)
            else:
                continue
            break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Shared by the deployment tests (production topology, local deployment) ---------------

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def project_dag_ids() -> tuple[str, ...]:
    """The project's DAG ids: one DAG per file of dags/ named like it, helper modules (``_*.py``,
    excluded by dags/.airflowignore) aside."""
    return tuple(sorted(p.stem for p in (REPO_ROOT / "dags").glob("*.py")
                        if not p.name.startswith("_")))


def compose_common_environment() -> dict[str, str]:
    """The environment every Airflow service of docker-compose.yml shares (``x-airflow-common``),
    as written in the file (``${...}`` interpolations are not resolved)."""
    import yaml

    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = compose["x-airflow-common"]["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def wait_for(what: str, predicate, timeout: float, interval: float = 2,
             components: list[Component] = ()):
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``
    seconds, or at once when one of ``components`` has exited (with the tail of its log)."""
    deadline = time.monotonic() + timeout
    while True:
        for comp in components:
            if (rc := comp.exited()) is not None:
                raise AssertionError(f"{comp.name} exited with {rc} while waiting for {what}:\n"
                                     + tail(comp.log))
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def sqlite_query(path: Path, sql: str, params: tuple = (), attempts: int = 10) -> list[tuple]:
    """Read an Airflow SQLite metadata DB another process is writing: read-only, and retried
    while a writer holds the lock."""
    import sqlite3

    for attempt in range(attempts):
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError as err:
            if attempt == attempts - 1 or "locked" not in str(err):
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def group_processes(pgid: int) -> dict[int, str]:
    """The live processes of process group ``pgid``: pid -> command line (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or fields[0] == "Z":  # pgrp; zombies are already gone
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = cmdline
    return found


def diagnostics(components, home: Path, sql, task_logs: int = 3, task_log_lines: int = 40,
                extra: list[str] | None = None) -> str:
    """What to read when a deployment test fails: each component's log tail, the newest task
    logs, ``extra`` parts, and the metadata database's DAGs, runs, task instances and import
    errors (through ``sql``: the database may itself be the problem)."""
    parts = [f"----- {c.name} (exit {c.exited()}): {c.log}\n" + tail(c.log, 80)
             for c in components]
    logs = sorted((home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    for path in logs[-task_logs:]:
        parts.append(f"----- task log {path.relative_to(home)}\n" + tail(path, task_log_lines))
    parts += extra or []
    try:
        for title, statement in (
                ("dags", "select dag_id, is_paused, is_stale from dag order by dag_id"),
                ("dag runs", "select dag_id, run_id, run_type, state from dag_run order by id"),
                ("task instances", "select dag_id, run_id, task_id, state, try_number "
                                   "from task_instance order by start_date nulls last"),
                ("import errors", "select filename, stacktrace from import_error")):
            parts.append(f"----- {title}\n" + "\n".join(map(str, sql(statement))))
    except Exception as err:  # the DB may be the problem
        parts.append(f"----- metadata DB not readable: {err!r}")
    return "\n".join(parts)
