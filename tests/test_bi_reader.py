"""A long-lived BI reader process sees each publish without a restart (docs/bi.md).

The reader is a real process, as a BI server is: SQLAlchemy + duckdb-engine with the settings of
docs/bi.md, polling ``meta.publish_log`` every 100 ms while the test publishes through
pipeline.warehouse. The trap tests keep the recipes honest: with the default pool, or with
a connection held open in the reader's process, the reader stays on the replaced file.
"""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipeline import warehouse

READER = r'''
import json, os, sys, time
from pathlib import Path
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.pool import NullPool, QueuePool

path, recipe, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
hold = "--hold" in sys.argv

if recipe == "nullpool":        # docs/bi.md, the one-line recipe
    engine = create_engine(f"duckdb:///{path}", poolclass=NullPool,
                           connect_args={"read_only": True})
elif recipe == "queuepool":     # the default pool: the trap
    engine = create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
elif recipe == "attach":        # docs/bi.md, pooled connections that move to each publish
    engine = create_engine("duckdb:///:memory:", poolclass=QueuePool)

    @event.listens_for(engine, "connect")
    def attach(dbapi_con, record):
        record.info["inode"] = os.stat(path).st_ino
        dbapi_con.execute("ATTACH '{}' (READ_ONLY)".format(path.replace("'", "''")))
        dbapi_con.execute('USE "{}"'.format(Path(path).stem))

    @event.listens_for(engine, "checkout")
    def check(dbapi_con, record, proxy):
        if os.stat(path).st_ino != record.info["inode"]:
            raise exc.DisconnectionError("the warehouse file was replaced")
else:
    raise SystemExit(f"unknown recipe {recipe}")

# A connection kept checked out for the reader's whole life (a dashboard's session, a long query).
held = engine.connect() if hold else None
query = text("select max(run_id), count(*), "
             "(select count(*) from duckdb_tables() where schema_name = 'bi_probe') "
             "from meta.publish_log")
poll = 0
while not stop.exists():
    with engine.connect() as con:
        run_id, publishes, probes = con.execute(query).one()
    poll += 1
    print(json.dumps({"pid": os.getpid(), "poll": poll, "run_id": run_id,
                      "publishes": publishes, "probes": probes}), flush=True)
    time.sleep(0.1)
if held is not None:
    held.close()
'''


class Reader:
    """The reader process and the lines it printed, read as they come."""

    def __init__(self, tmp_path: Path, recipe: str, hold: bool):
        script = tmp_path / "bi_reader.py"
        script.write_text(READER, encoding="utf-8")
        self.stop_file = tmp_path / f"stop-{recipe}"
        args = [sys.executable, str(script), str(_published()), recipe, str(self.stop_file)]
        self.proc = subprocess.Popen(args + (["--hold"] if hold else []),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.polls: list[dict] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, condition, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.polls):
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
            if line is None or left <= 0:
                stderr = self.close()
                pytest.fail(f"reader: {what} not seen (exit {self.proc.returncode}); last polls "
                            f"{self.polls[-2:]}; stderr {stderr[-2000:]}")
            if line:
                self.polls.append(json.loads(line))

    def drain(self) -> None:
        """Take in the lines printed so far."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line:
                self.polls.append(json.loads(line))

    def seen(self) -> list[tuple[str, int, int]]:
        """The distinct values the reader saw, in order."""
        values: list[tuple[str, int, int]] = []
        for poll in self.polls:
            value = (poll["run_id"], poll["publishes"], poll["probes"])
            if not values or values[-1] != value:
                values.append(value)
        return values

    def close(self) -> str:
        self.stop_file.touch()
        try:
            _, stderr = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return stderr


def _published() -> Path:
    return warehouse.settings().warehouse


def _publish(run_id: str) -> None:
    """A real build and publish, whose build adds a table of its own (``bi_probe.<run_id>``)."""
    build = warehouse.prepare_build(run_id)
    with duckdb.connect(str(build)) as con:
        con.execute("create schema if not exists bi_probe")
        con.execute(f"create table bi_probe.{run_id} as select ? as run_id", [run_id])
    warehouse.publish(run_id)


def _start(tmp_path: Path, recipe: str, hold: bool) -> Reader:
    _publish("r0")
    reader = Reader(tmp_path, recipe, hold)
    reader.wait_for(lambda polls: polls, "a first poll")
    assert reader.seen() == [("r0", 1, 1)]
    return reader


@pytest.mark.parametrize("recipe, hold", [("nullpool", False), ("attach", True)],
                         ids=["nullpool", "attach-with-a-held-connection"])
def test_long_lived_reader_sees_each_publish(wh_env, tmp_path, recipe, hold):
    reader = _start(tmp_path, recipe, hold)
    for i in (1, 2, 3):
        _publish(f"r{i}")
        reader.wait_for(lambda polls, i=i: polls[-1]["run_id"] == f"r{i}", f"publish r{i}")
    assert reader.proc.poll() is None, "the reader stopped"
    stderr = reader.close()

    assert reader.seen() == [("r0", 1, 1), ("r1", 2, 2), ("r2", 3, 3), ("r3", 4, 4)]
    assert {poll["pid"] for poll in reader.polls} == {reader.proc.pid}, "one process, no restart"
    assert reader.proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


@pytest.mark.parametrize("recipe, hold", [("queuepool", False), ("nullpool", True)],
                         ids=["default-queuepool", "nullpool-with-a-held-connection"])
def test_trap_reader_keeps_reading_the_replaced_file(wh_env, tmp_path, recipe, hold):
    """The default pool keeps its idle connection, and a new DuckDB connection in a process
    that still holds one to the same path reuses that open database: the old file."""
    reader = _start(tmp_path, recipe, hold)
    _publish("r1")
    _publish("r2")  # read-only readers do not block the publish: it replaces the file
    reader.drain()
    polled = len(reader.polls)
    reader.wait_for(lambda polls: len(polls) >= polled + 5, "five polls after the publishes")
    with duckdb.connect(str(_published()), read_only=True) as con:
        assert con.execute("select max(run_id), count(*) from meta.publish_log").fetchone() \
            == ("r2", 3)
    stderr = reader.close()

    assert reader.seen() == [("r0", 1, 1)], "the reader moved on: the trap is gone?"
    assert reader.proc.returncode == 0, stderr


def test_descriptions_through_sqlalchemy(wh_env):
    """What docs/bi.md says of comments through duckdb-engine: the table comment comes through
    the inspector, the column comments through duckdb_columns(), and column reflection fails on
    SQLAlchemy 2.1 (if it starts working, docs/bi.md's inspector section is out of date)."""
    from sqlalchemy import create_engine, exc, inspect, text
    from sqlalchemy.pool import NullPool

    build = warehouse.prepare_build("r1")
    with duckdb.connect(str(build)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_returns (geo varchar, returned bigint)")
        con.execute("comment on table marts.fct_returns is 'Returns per country'")
        con.execute("comment on column marts.fct_returns.geo is 'Eurostat geo code'")
    warehouse.publish("r1")
    engine = create_engine(f"duckdb:///{_published()}", poolclass=NullPool,
                           connect_args={"read_only": True})
    inspector = inspect(engine)

    assert inspector.get_table_comment("fct_returns", schema="marts") == {
        "text": "Returns per country"}
    with engine.connect() as con:
        assert con.execute(text(
            "select table_name, column_name, comment from duckdb_columns() "
            "where schema_name = 'marts' order by column_index")).all() == [
            ("fct_returns", "geo", "Eurostat geo code"), ("fct_returns", "returned", None)]
    with pytest.raises(exc.ProgrammingError, match="pg_collation"):
        inspector.get_columns("fct_returns", schema="marts")


REAL_READER = r'''
import duckdb, json, sys
con = duckdb.connect()
con.execute(sys.stdin.read())
print(json.dumps(con.execute("""select release_date::varchar, count(*), sum(detections)
                                from marts.fct_border_crossings_current group by 1""").fetchall()))
'''


def test_reader_sql_reads_the_real_figure_from_object_storage(built_db, wh_env, s3_env,
                                                              monkeypatch, tmp_path):
    """The recorded build published through object storage (a real SeaweedFS): the SQL printed
    by reader-sql, run by a fresh process in an empty folder with nothing but the S3
    credentials, reads the newest Frontex release's total through the warehouse's views; the
    SQLAlchemy recipe of docs/bi.md reads it too."""
    import os
    import shutil

    from sqlalchemy import create_engine, event, text

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    build = warehouse.prepare_build("recorded")  # nothing published: from empty, pointer noted
    shutil.copyfile(built_db, build)
    url = warehouse.publish("recorded")
    assert url.endswith("/warehouse/versions/recorded.duckdb"), url
    assert not warehouse.settings().warehouse.exists(), "a local published file was written"

    root = Path(__file__).resolve().parents[1]
    printed = subprocess.run([sys.executable, "-m", "pipeline.run", "reader-sql"], cwd=root,
                             capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    empty = tmp_path / "reader"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k in ("PATH", "LANG")}
    env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}  # the SQL carries it
    done = subprocess.run([sys.executable, "-c", REAL_READER], input=printed.stdout, cwd=empty,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{printed.stdout}\n{done.stderr[-3000:]}"
    assert json.loads(done.stdout) == [["2025-06-03", 173_460, 4_966_869]]
    assert list(empty.iterdir()) == []

    engine = create_engine("duckdb:///:memory:")

    @event.listens_for(engine, "connect")
    def attach(dbapi_con, record):
        dbapi_con.execute(printed.stdout)

    with engine.connect() as con:
        assert con.execute(text("select sum(detections) from marts.fct_border_crossings_current")
                           ).scalar() == 4_966_869
    engine.dispose()
