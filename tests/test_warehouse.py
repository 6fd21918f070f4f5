"""Build and publish mechanics without dbt: copy of the published file, atomic replace, WAL
checkpointed, failure record; and the same across filesystems (runs folder on tmpfs)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import duckdb
import pytest

from pipeline import warehouse


def _publish_twice(wh_env) -> Path:
    warehouse.prepare_build("one")
    with duckdb.connect(str(warehouse.build_db("one"))) as con:
        con.execute("create table t as select 1 as v")
    published = warehouse.publish("one")
    assert not warehouse.build_db("one").exists()

    build = warehouse.prepare_build("two")
    assert build.read_bytes() == published.read_bytes()  # starts from the published file
    with duckdb.connect(str(build)) as con:
        con.execute("insert into t values (2)")
    warehouse.publish("two")
    return published


def test_publish_replaces_the_file_and_logs_each_publish(wh_env):
    published = _publish_twice(wh_env)
    assert not Path(str(published) + ".wal").exists()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select sum(v) from t").fetchone() == (3,)
        assert [r[0] for r in con.execute(
            "select run_id from meta.publish_log order by published_at").fetchall()] == ["one", "two"]
    assert sorted(p.name for p in published.parent.iterdir() if p.is_file()) == [published.name]


def test_publish_across_filesystems(wh_env, monkeypatch):
    shm = Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(wh_env).st_dev:
        pytest.fail("/dev/shm is not a separate filesystem here; this test needs one")
    with tempfile.TemporaryDirectory(dir=shm) as runs:
        monkeypatch.setenv("WH_RUNS_DIR", runs)
        published = _publish_twice(wh_env)
        with duckdb.connect(str(published), read_only=True) as con:
            assert con.execute("select sum(v) from t").fetchone() == (3,)
        assert sorted(p.name for p in published.parent.iterdir() if p.is_file()) == [published.name]


def test_failure_record_names_step_and_keeps_build(wh_env):
    warehouse.prepare_build("bad")
    path = warehouse.record_failure("bad", "audit_raw", ValueError("rule X broken in file Y"))
    record = json.loads(path.read_text())
    assert (record["step"], record["message"], record["error_type"]) == (
        "audit_raw", "rule X broken in file Y", "ValueError")
    assert Path(record["build_db"]).exists()
