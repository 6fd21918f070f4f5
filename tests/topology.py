"""Helpers for the production-topology test (tests/test_production_topology.py).

The docker-compose.yml topology run natively, as separate processes on this host: a throwaway
Postgres database as the Airflow metadata DB and Celery result backend, a Redis server of its
own (with a password, as docker-compose.yml requires one) as the Celery broker, and one process
per Airflow component, each with the checkout mounted read-only (as docker-compose.yml mounts
the code). Everything made here is removed again: process groups are terminated, the database is
dropped, the Redis server stopped.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_HOST = os.environ.get("WH_TOPOLOGY_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WH_TOPOLOGY_PG_PORT", "5432"))
PG_USER = os.environ.get("WH_TOPOLOGY_PG_USER", "postgres")
REDIS_SERVER = os.environ.get("WH_TOPOLOGY_REDIS_SERVER", "redis-server")


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
    """Fail with what to do when PostgreSQL is not reachable (``.ci/run`` starts it when it is
    installed but stopped) or there is no ``redis-server`` to start."""
    missing = []
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=5).close()
    except OSError as err:
        missing.append(f"PostgreSQL on {PG_HOST}:{PG_PORT} ({err}); start it with: "
                       "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    if shutil.which(REDIS_SERVER) is None:
        missing.append(f"{REDIS_SERVER!r} to start a Redis server of its own (not found on PATH; "
                       "install Redis, or set WH_TOPOLOGY_REDIS_SERVER)")
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

def start_redis(folder: Path, port: int, password: str, log: Path,
                host: str = "127.0.0.1") -> "Component":
    """A Redis server of the test's own on ``host``:``port`` that, like docker-compose.yml's,
    requires ``password`` (``--requirepass``), keeps nothing on disk, and is stopped with the
    other components. The shared Redis of this machine is never reconfigured. Returns once an
    authenticated PING answers and an unauthenticated one is refused."""
    import redis

    folder.mkdir(parents=True, exist_ok=True)
    server = Component("redis-server", [
        shutil.which(REDIS_SERVER) or REDIS_SERVER, "--bind", host, "--port", str(port),
        "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", str(folder)], log)
    server.start(dict(os.environ), folder)

    def answers() -> bool:
        try:
            return redis.Redis(host=host, port=port, password=password,
                               socket_timeout=5).ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(f"the Redis server on {host}:{port}", answers, 30, 0.2, [server])
        try:
            redis.Redis(host=host, port=port, socket_timeout=5).ping()
        except redis.AuthenticationError:
            pass  # NOAUTH: the password is required
        else:
            raise AssertionError(f"the Redis server on {host}:{port} answers without a password")
    except BaseException:
        server.stop()
        raise
    return server


# --- The checkout, read-only ----------------------------------------------------------------

def read_only_checkout(argv: list[str]) -> list[str]:
    """``argv`` run with the checkout bind-mounted read-only over itself, in a mount namespace of
    its own (util-linux ``unshare``; with a user namespace unless root), as docker-compose.yml
    mounts the code read-only: a write into the checkout fails with EROFS. The rest of this
    machine, other processes and the checkout itself are untouched."""
    namespace = ["--mount"] if os.geteuid() == 0 else ["--map-root-user", "--mount"]
    # A working directory inside the checkout would still be the writable one under the new
    # mount: enter it again by its path, which now leads through the read-only mount.
    return ["unshare", *namespace, "--", "sh", "-c",
            'mount --bind -o ro "$0" "$0" && cd "$(pwd -P)" && exec "$@"', str(REPO_ROOT), *argv]


def require_read_only_checkout() -> None:
    """Fail, saying why, unless a process started through ``read_only_checkout`` really cannot
    write into the checkout."""
    import pytest

    probe = REPO_ROOT / f".read-only-probe-{os.getpid()}"
    try:
        # Relative to a working directory in the checkout: the harder case (see above).
        done = subprocess.run(read_only_checkout(["touch", probe.name]), cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=30)
    except OSError as err:
        pytest.fail(f"cannot run the components with the checkout read-only: {err}",
                    pytrace=False)
    if done.returncode == 0:
        probe.unlink(missing_ok=True)
        pytest.fail(f"{probe} was written through the read-only mount", pytrace=False)
    if "Read-only file system" not in done.stderr:
        pytest.fail("cannot run the components with the checkout read-only (mount namespaces: "
                    f"unshare exited {done.returncode}): {done.stderr.strip()}", pytrace=False)


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
    """The project's DAG ids: one per source folder (``dags/source_ingest.py`` builds them from
    ``ingest.catalog``), the transform and the report (one file each, named like the DAG)."""
    from ingest import catalog
    single = [p.stem for p in (REPO_ROOT / "dags").glob("*.py")
              if not p.name.startswith("_") and p.name != "source_ingest.py"]
    return tuple(sorted([*catalog.dag_ids(), *single]))


def compose_common_environment() -> dict[str, str]:
    """The environment every Airflow service of docker-compose.yml shares (``x-airflow-common``),
    as written in the file (``${...}`` interpolations are not resolved)."""
    import yaml

    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = compose["x-airflow-common"]["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# Compose's interpolation (compose-spec, "Interpolation"): $$ is a literal $; ${NAME}, $NAME;
# ${NAME:-default} / ${NAME-default} (unset or empty / unset); ${NAME:?error} / ${NAME?error}
# (refuse to start); ${NAME:+other} / ${NAME+other}.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


@dataclass(frozen=True)
class Interpolation:
    """One ``${...}`` (or ``$NAME``) of a compose file: ``op`` is "", ":-", "-", ":?", "?", ":+"
    or "+"."""

    name: str
    op: str
    arg: str
    text: str

    @property
    def required(self) -> bool:
        return self.op in (":?", "?")


class MissingVariable(ValueError):
    """What ``docker compose`` says when a required variable is unset or empty."""


def interpolations(text: str) -> list[Interpolation]:
    """Every interpolation in ``text`` (escaped ``$$`` aside). A ``${...}`` compose would not
    accept, or one nested in another's default, raises ValueError: this parser does not follow
    nesting, and a check must not pass on something it did not read."""
    found = []
    for m in _INTERPOLATION.finditer(text):
        if m["escaped"]:
            continue
        if m["named"]:
            found.append(Interpolation(m["named"], "", "", m[0]))
            continue
        braced = _BRACED.fullmatch(m["braced"])
        if not braced or "${" in (braced["arg"] or ""):
            raise ValueError(f"interpolation not understood here: {m[0]!r}")
        found.append(Interpolation(braced["name"], braced["op"] or "", braced["arg"] or "", m[0]))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    """``text`` with its interpolations resolved from ``env`` as ``docker compose`` does;
    raises MissingVariable for a required variable ``env`` lacks (or has empty, for ``:?``)."""
    def resolve(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        (i,) = interpolations(m[0])
        value = env.get(i.name)
        unset, empty = value is None, not value
        if i.op in (":-", "-"):
            return i.arg if (empty if i.op == ":-" else unset) else value
        if i.op in (":?", "?"):
            if empty if i.op == ":?" else unset:
                raise MissingVariable(f"required variable {i.name} is missing a value: {i.arg}")
            return value
        if i.op in (":+", "+"):
            return "" if (empty if i.op == ":+" else unset) else i.arg
        return value or ""

    return _INTERPOLATION.sub(resolve, text)


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


def parent_pid(pid: int) -> int | None:
    """The parent of process ``pid`` (Linux /proc), or None when it is gone."""
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


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
