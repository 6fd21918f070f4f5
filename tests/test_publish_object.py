"""The published warehouse on object storage (issue 20, design (a)): a real SeaweedFS S3 server,
real DuckDB files, real reader processes; no dbt (fast).

What the publish promises there (pipeline.published): a version object per publish, named by the
pointer ``warehouse/CURRENT`` only once it is complete; a reader attached to a version keeps
reading it while later versions are published; two builds prepared from one pointer cannot both
publish; a failed build changes nothing readers see; old versions go, never the current one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingest import storage
from ingest.config import settings
from pipeline import published, warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def obj_env(wh_env, s3_env, monkeypatch, tmp_path) -> dict[str, str]:
    """The installation of ``wh_env`` with WH_STORAGE_URL set (a fresh bucket), scratch under
    tmp, replaced versions removable at once."""
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("WH_KEEP_REPLACED_VERSIONS_DAYS", "0")
    return s3_env


def build(run_id: str, value: int, rows: int = 1000) -> Path:
    """A real build prepared from the pointer, whose table ``t`` is ``rows`` rows of ``value``."""
    db = warehouse.prepare_build(run_id)
    with duckdb.connect(str(db)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create or replace table marts.t as select ? as v, i, hash(i, ?) as h "
                    "from range(?) r(i)", [value, value, rows])
    return db


def pointer(st) -> str | None:
    got = st.get(published.POINTER)
    return got[0].decode() if got else None


def versions(st) -> list[str]:
    return [o.key for o in st.list(published.VERSIONS)]


def reader_sql(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.run", "reader-sql", *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def reader_env(s3_env: dict[str, str]) -> dict[str, str]:
    """What a reader on another machine has: the S3 credentials, no WH_* setting."""
    keep = ("PATH", "LANG", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({k: v for k, v in s3_env.items() if k.startswith("AWS_")})
    return env


READER = r'''
import duckdb, json, sys
con = duckdb.connect()
con.execute(sys.stdin.read())
print(json.dumps(con.execute(sys.argv[1]).fetchall()))
'''


def read_as_reader(sql: str, query: str, s3_env: dict[str, str], tmp_path: Path):
    """Run ``sql`` then ``query`` in a fresh Python process in an empty folder, with only the
    S3 credentials in its environment."""
    empty = tmp_path / f"reader-{time.monotonic_ns()}"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-c", READER, query], input=sql, cwd=empty,
                          env=reader_env(s3_env), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the reader failed:\n{sql}\n{done.stderr[-3000:]}"
    assert list(empty.iterdir()) == [], "the reader wrote files in its folder"
    return json.loads(done.stdout)


def test_publish_uploads_a_version_and_moves_the_pointer(obj_env, tmp_path):
    st = storage.configured()
    build("r1", 1)
    url = warehouse.publish("r1")

    assert url == st.uri("warehouse/versions/r1.duckdb")
    assert pointer(st) == "warehouse/versions/r1.duckdb"
    assert versions(st) == ["warehouse/versions/r1.duckdb"]
    assert not settings().warehouse.exists(), "a local published file was written"
    assert not warehouse.build_db("r1").exists(), "the build stayed in scratch after its upload"
    assert warehouse.published_by("r1") and not warehouse.published_by("r2")
    # The pipeline's own readers get a local read-only copy of that version.
    copy = warehouse.published_path()
    assert copy.exists() and not copy.stat().st_mode & 0o222, f"{copy}: not read-only"
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("select run_id from meta.publish_log").fetchall() == [("r1",)]

    # The next build starts from the published version and names its pointer etag.
    build("r2", 2)
    base = json.loads((warehouse.run_dir("r2") / published.BASE_FILE).read_text())
    assert base["key"] == "warehouse/versions/r1.duckdb"
    assert base["etag"] == st.get(published.POINTER)[1]
    warehouse.publish("r2")
    with duckdb.connect(str(warehouse.published_path()), read_only=True) as con:
        assert con.execute("select run_id from meta.publish_log order by published_at"
                           ).fetchall() == [("r1",), ("r2",)]


def test_reader_sql_attaches_the_current_version_from_an_empty_folder(obj_env, tmp_path):
    env = {**os.environ}
    nothing = reader_sql(env)
    assert nothing.returncode == 1 and "nothing is published yet" in nothing.stderr, nothing.stderr
    build("r1", 7)
    warehouse.publish("r1")

    done = reader_sql({**os.environ})
    assert done.returncode == 0, done.stderr
    sql = done.stdout
    st = storage.configured()
    assert f"ATTACH '{st.uri('warehouse/versions/r1.duckdb')}' AS \"migration\" (READ_ONLY);" \
        in sql, sql
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in sql, "a credential printed unasked"
    assert "SET autoinstall_known_extensions = false" in sql
    assert read_as_reader(sql, "select count(*), min(v) from marts.t", obj_env, tmp_path) \
        == [[1000, 7]]

    # With the credentials in the SQL, the reader needs none in its environment.
    with_keys = reader_sql({**os.environ}, "--with-credentials").stdout
    assert os.environ["AWS_SECRET_ACCESS_KEY"] in with_keys
    bare = {k: v for k, v in obj_env.items() if k not in ("AWS_ACCESS_KEY_ID",
                                                          "AWS_SECRET_ACCESS_KEY")}
    assert read_as_reader(with_keys, "select count(*) from marts.t", bare, tmp_path) == [[1000]]
    # Without credentials DuckDB 1.5.5 reports the refused HEAD as a missing database
    # (docs/bi.md says so: the message a reader without AWS_* variables gets).
    empty = tmp_path / "no-credentials"
    empty.mkdir()
    refused = subprocess.run([sys.executable, "-c", READER, "select 1"], input=sql, cwd=empty,
                             env=reader_env(bare), capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "database does not exist" in refused.stderr, \
        refused.stderr[-2000:]

    # --no-secret leaves the secret out; --as names the catalog.
    other = reader_sql({**os.environ}, "--no-secret", "--as", "wh").stdout
    assert "CREATE" not in other and 'AS "wh" (READ_ONLY)' in other, other


def test_reader_sql_local_files(wh_env, tmp_path, monkeypatch):
    monkeypatch.delenv("WH_STORAGE_URL", raising=False)
    build("r1", 3)
    path = warehouse.publish("r1")
    done = reader_sql({**os.environ})
    assert done.returncode == 0, done.stderr
    assert f"ATTACH '{path}' AS \"migration\" (READ_ONLY);" in done.stdout, done.stdout
    assert read_as_reader(done.stdout, "select count(*), min(v) from marts.t", {}, tmp_path) \
        == [[1000, 3]]


ATTACHED_READER = r'''
import duckdb, json, sys, time
from pathlib import Path
sql, stop = sys.stdin.read(), Path(sys.argv[1])
con = duckdb.connect()
# Below the table's size, and no cache of remote blocks: every poll reads the object again.
con.execute("set memory_limit = '8MB'")
con.execute("set enable_external_file_cache = false")
con.execute(sql)
while not stop.exists():
    try:
        row = con.execute("select min(v), max(v), count(*), bit_xor(h) from marts.t").fetchone()
        print(json.dumps(list(row)), flush=True)
    except Exception as err:
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
    time.sleep(0.05)
'''


def test_an_attached_reader_keeps_its_version_while_others_are_published(obj_env, tmp_path):
    """The spike saw stale then torn reads when one key was overwritten under an attached
    reader; with one immutable object per version the reader reads its version throughout.
    (Measured: publish changed to overwrite one key fails here with the reader's
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xbf".)"""
    rows = 1_500_000  # ~25 MB: more than the reader's memory limit
    build("r1", 1, rows)
    warehouse.publish("r1")
    sql = reader_sql({**os.environ}).stdout
    stop = tmp_path / "stop"
    empty = tmp_path / "attached"
    empty.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", ATTACHED_READER, str(stop)], cwd=empty,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=reader_env(obj_env), text=True)
    proc.stdin.write(sql)
    proc.stdin.close()
    first = proc.stdout.readline()
    assert first, f"the reader printed nothing: {proc.stderr.read()[-2000:]}"
    with duckdb.connect() as con:
        v1 = [1, 1, rows, con.execute("select bit_xor(hash(i, 1)) from range(?) r(i)",
                                      [rows]).fetchone()[0]]
    assert json.loads(first) == v1
    for i in (2, 3):
        build(f"r{i}", i, rows)
        warehouse.publish(f"r{i}")
    time.sleep(0.5)
    stop.touch()
    proc.wait(timeout=30)
    out, err = proc.stdout.read(), proc.stderr.read()
    polls = [json.loads(line) for line in out.splitlines()]
    assert len(polls) >= 5, (polls, err[-2000:])
    assert all(p == v1 for p in polls), \
        f"the attached reader saw something else than v1: {[p for p in polls if p != v1][:3]}"
    # A new reader-sql names the newest version.
    assert read_as_reader(reader_sql({**os.environ}).stdout,
                          "select min(v), max(v), count(*) from marts.t", obj_env, tmp_path) \
        == [[3, 3, rows]]


def test_two_builds_from_one_pointer_only_the_first_publishes(obj_env):
    st = storage.configured()
    build("r0", 0)
    warehouse.publish("r0")
    build("first", 1)
    build("second", 2)  # prepared from the same pointer as "first"
    warehouse.publish("first")
    with pytest.raises(published.PublishConflict) as caught:
        warehouse.publish("second")

    message = str(caught.value)
    assert "run second was not published" in message, message
    assert "warehouse/versions/r0.duckdb" in message, "the version the build started from"
    assert "published by run first" in message, message
    assert st.uri("warehouse/versions/second.duckdb") in message, "where the build stays"
    assert pointer(st) == "warehouse/versions/first.duckdb"
    assert "warehouse/versions/second.duckdb" in versions(st), "kept for diagnosis"
    with duckdb.connect(str(warehouse.published_path()), read_only=True) as con:
        assert con.execute("select min(v) from marts.t").fetchone() == (1,)


def test_the_first_publish_of_two_fresh_builds_wins(obj_env):
    st = storage.configured()
    build("a", 1)
    build("b", 2)  # both found no pointer: both want If-None-Match
    warehouse.publish("a")
    with pytest.raises(published.PublishConflict, match="no published warehouse"):
        warehouse.publish("b")
    assert pointer(st) == "warehouse/versions/a.duckdb"


def test_a_failed_build_changes_nothing_readers_see(obj_env):
    st = storage.configured()
    build("good", 1)
    warehouse.publish("good")
    before = (st.get(published.POINTER), versions(st))
    build("bad", 2)

    def fails(con):
        raise RuntimeError("the quality history could not be copied")

    with pytest.raises(RuntimeError, match="quality history"):
        warehouse.publish("bad", before_checkpoint=fails)
    assert (st.get(published.POINTER), versions(st)) == before


def test_a_retried_publish_replaces_its_own_unpublished_upload(obj_env):
    """An attempt stopped after its upload and before the swap: the retry publishes."""
    st = storage.configured()
    db = build("r1", 1)
    st.put(published.version_key("r1"), b"half of an earlier attempt", if_none_match=True)
    warehouse.publish("r1")
    assert pointer(st) == "warehouse/versions/r1.duckdb"
    with duckdb.connect(str(warehouse.published_path()), read_only=True) as con:
        assert con.execute("select min(v) from marts.t").fetchone() == (1,)
    assert not db.exists()


def test_old_versions_go_but_never_the_current_one(obj_env, monkeypatch):
    st = storage.configured()
    monkeypatch.setenv("WH_KEEP_PUBLISHED_VERSIONS", "2")
    for i in range(1, 5):
        build(f"r{i}", i)
        warehouse.publish(f"r{i}")
        time.sleep(1.1)  # S3 modification times are to the second
    assert versions(st) == ["warehouse/versions/r3.duckdb", "warehouse/versions/r4.duckdb"]

    # Versions replaced less than WH_KEEP_REPLACED_VERSIONS_DAYS ago stay, whatever their number.
    monkeypatch.setenv("WH_KEEP_REPLACED_VERSIONS_DAYS", "1")
    build("r5", 5)
    warehouse.publish("r5")
    assert len(versions(st)) == 3

    # The version the pointer names is never removed, however old (a rollback by hand).
    monkeypatch.setenv("WH_KEEP_REPLACED_VERSIONS_DAYS", "0")
    monkeypatch.setenv("WH_KEEP_PUBLISHED_VERSIONS", "1")
    st.put(published.POINTER, b"warehouse/versions/r3.duckdb")
    deleted = published.prune_versions(st)
    assert sorted(deleted) == ["warehouse/versions/r4.duckdb"]
    assert versions(st) == ["warehouse/versions/r3.duckdb", "warehouse/versions/r5.duckdb"]


def test_a_pointer_naming_a_missing_version_is_set_aside(obj_env):
    st = storage.configured()
    build("r1", 1)
    warehouse.publish("r1")
    st.delete("warehouse/versions/r1.duckdb")  # removed by hand or by a lifecycle rule

    problem = warehouse.published_problem()
    assert problem and st.uri("warehouse/versions/r1.duckdb") in problem and "not there" in \
        problem, problem
    line = warehouse.set_aside_if_broken()
    assert "rebuilding it from landing/" in line and "CURRENT.broken-" in line, line
    assert pointer(st) is None
    assert [o.key for o in st.list("warehouse/") if "broken" in o.key], "the pointer kept"
    build("r2", 2)  # from empty
    warehouse.publish("r2")
    assert pointer(st) == "warehouse/versions/r2.duckdb"


def test_a_pointer_holding_garbage_is_named(obj_env):
    st = storage.configured()
    st.put(published.POINTER, b"not a key")
    problem = warehouse.published_problem()
    assert problem and st.uri("warehouse/CURRENT") in problem and "not a key" in problem


def test_a_run_cleared_and_run_again_publishes_its_new_build(obj_env):
    """Airflow keeps the run id when a DAG run is cleared and runs again: the second build gets
    a key of its own, is published, and the first version is never written over."""
    st = storage.configured()
    build("r1", 1)
    warehouse.publish("r1")
    first = st.head("warehouse/versions/r1.duckdb")
    build("r1", 2)
    warehouse.publish("r1")
    assert pointer(st) == "warehouse/versions/r1--2.duckdb"
    with duckdb.connect(str(warehouse.published_path()), read_only=True) as con:
        assert con.execute("select min(v) from marts.t").fetchone() == (2,), \
            "the published copy is not the second build"
    assert st.head("warehouse/versions/r1.duckdb").etag == first.etag, \
        "the first version's bytes were rewritten under its readers"
    assert published.run_of(pointer(st)) == "r1"


def test_a_cleared_run_never_rewrites_a_version_that_was_published(obj_env):
    st = storage.configured()
    build("r1", 1)
    warehouse.publish("r1")
    first = st.head("warehouse/versions/r1.duckdb")
    build("r2", 2)
    warehouse.publish("r2")
    build("r1", 3)
    warehouse.publish("r1")
    assert pointer(st) == "warehouse/versions/r1--2.duckdb"
    assert st.head("warehouse/versions/r1.duckdb").etag == first.etag


def test_a_retried_publish_after_another_run_published_leaves_the_version_alone(obj_env):
    """r1's publish swapped the pointer and its worker died before the task ended; r2 published
    meanwhile; then Airflow retries r1's publish: it fails with PublishConflict and deletes or
    rewrites nothing (the pointer named r1's version for a while: readers may hold it)."""
    st = storage.configured()
    db = build("r1", 1)
    saved = db.read_bytes()
    base = (db.parent / published.BASE_FILE).read_text()
    warehouse.publish("r1")  # the attempt that died after its swap
    first = st.head("warehouse/versions/r1.duckdb")
    build("r2", 2)
    warehouse.publish("r2")
    db.write_bytes(saved)  # the retry: the run folder as the previous step left it
    (db.parent / published.BASE_FILE).write_text(base)
    with pytest.raises(published.PublishConflict):
        warehouse.publish("r1")
    assert pointer(st) == "warehouse/versions/r2.duckdb"
    assert st.head("warehouse/versions/r1.duckdb").etag == first.etag
