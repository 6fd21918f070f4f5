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
    assert sorted(p.name for p in published.parent.iterdir() if p.is_file()) == sorted(
        [published.name, warehouse.record_path(published).name]), "something staged is left"


def test_publish_across_filesystems(wh_env, monkeypatch):
    shm = Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(wh_env).st_dev:
        pytest.fail("/dev/shm is not a separate filesystem here; this test needs one")
    with tempfile.TemporaryDirectory(dir=shm) as runs:
        monkeypatch.setenv("WH_RUNS_DIR", runs)
        published = _publish_twice(wh_env)
        with duckdb.connect(str(published), read_only=True) as con:
            assert con.execute("select sum(v) from t").fetchone() == (3,)
        assert sorted(p.name for p in published.parent.iterdir() if p.is_file()) == sorted(
        [published.name, warehouse.record_path(published).name]), "something staged is left"


def test_failure_record_names_step_and_keeps_build(wh_env):
    warehouse.prepare_build("bad")
    path = warehouse.record_failure("bad", "audit_raw", ValueError("rule X broken in file Y"))
    record = json.loads(path.read_text())
    assert (record["step"], record["message"], record["error_type"]) == (
        "audit_raw", "rule X broken in file Y", "ValueError")
    assert Path(record["build_db"]).exists()


# --- a published file found missing or broken at the start of the next run ---------------------

def test_an_intact_published_file_is_left_alone(wh_env):
    published = _publish_twice(wh_env)
    record = json.loads(warehouse.record_path(published).read_text())
    assert record["run_id"] == "two" and record["bytes"] == published.stat().st_size
    assert warehouse.published_problem() is None
    os.utime(published)  # touched, same bytes: hashed once, still fine, record refreshed
    assert warehouse.set_aside_if_broken() is None and published.exists()
    assert json.loads(warehouse.record_path(published).read_text())["mtime_ns"] == \
        published.stat().st_mtime_ns


def test_a_truncated_published_file_is_set_aside_for_diagnosis(wh_env):
    published = _publish_twice(wh_env)
    size = published.stat().st_size
    with published.open("r+b") as fh:
        fh.truncate(size // 2)
    line = warehouse.set_aside_if_broken()
    assert line is not None and "cannot be opened as DuckDB" in line, line
    assert "rebuilding it from landing/" in line, line
    [aside] = published.parent.glob(f"{published.name}.broken-*")
    assert aside.stat().st_size == size // 2, "the broken file was not kept as it was"
    assert aside.name in line, f"the line does not say where the broken file went: {line}"
    assert not published.exists() and not warehouse.record_path(published).exists()
    assert warehouse.published_problem() is None, "after setting aside, nothing is left to fix"


def test_a_published_file_changed_in_place_is_found_by_its_checksum(wh_env):
    published = _publish_twice(wh_env)
    with duckdb.connect(str(published)) as con:  # someone wrote into the published file
        con.execute("insert into t values (40)")
    problem = warehouse.published_problem()
    assert problem is not None and "changed after run two published it" in problem, problem


def test_a_missing_published_file_is_named_with_its_publish(wh_env):
    published = _publish_twice(wh_env)
    published.unlink()
    problem = warehouse.published_problem()
    assert problem is not None and "is missing (published by run two" in problem, problem
    assert "rebuilding it from landing/" in warehouse.set_aside_if_broken()


def test_a_publish_stopped_before_its_record_is_not_taken_for_corruption(wh_env):
    """Killed between the rename and writing the record: the file is the newer publish."""
    published = _publish_twice(wh_env)
    record = warehouse.record_path(published)
    stale = json.loads(record.read_text())
    warehouse.prepare_build("three")
    with duckdb.connect(str(warehouse.build_db("three"))) as con:
        con.execute("insert into t values (3)")
    warehouse.publish("three")
    record.write_text(json.dumps(stale))  # the record of run two, as if three never wrote one
    assert warehouse.published_problem() is None
    assert json.loads(record.read_text())["run_id"] == "three"


def test_a_run_killed_between_its_record_and_its_publish_is_corrected_in_the_history(wh_env):
    """Publish records its run in the quality history before the rename; killed in between,
    the history claims a publish no file has. The next run's first step corrects it, and only
    it (a run recorded before the warehouse's last publish is left alone: after a rebuild,
    older publishes are not in the new file's log)."""
    from datetime import datetime, timedelta, timezone

    from pipeline import quality
    from pipeline.quality import store

    def recorded(run_id, state, at):
        store.write(run_id, {"runs": [(run_id, at, state, None, None, None, None, None)]})

    before = datetime.now(timezone.utc) - timedelta(hours=1)
    recorded("older", "published", before)  # published into a file since set aside
    published = _publish_twice(wh_env)
    recorded("two", "published", datetime.now(timezone.utc) - timedelta(seconds=1))
    recorded("killed", "published", datetime.now(timezone.utc) + timedelta(seconds=1))
    assert quality.correct_unpublished(published) == ["killed"]
    with duckdb.connect(str(store.store_path()), read_only=True) as con:
        states = dict(con.execute("select run_id, state from quality.runs").fetchall())
        note = con.execute("select note from quality.runs where run_id = 'killed'").fetchone()[0]
    assert states == {"older": "published", "two": "published", "killed": "failed"}, states
    assert "stopped before the published file was replaced" in note
    assert quality.correct_unpublished(published) == [], "corrected twice"
