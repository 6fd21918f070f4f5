"""Housekeeping at the start of a transform run: build databases of failed runs kept for a
number of runs or days, then removed (their failure.json stays); files staged by killed
processes removed. Real files, real DuckDB."""
from __future__ import annotations

import os
import time

import duckdb

from ingest.config import settings
from pipeline import quality, warehouse


def failed_run(run_id: str, age_days: float) -> None:
    db = warehouse.build_db(run_id)
    db.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(db)).close()
    (db.parent / warehouse.FAILURE_FILE).write_text("{}")
    stamp = time.time() - age_days * 86400
    os.utime(db, (stamp, stamp))


def test_failed_builds_are_kept_for_a_number_of_runs_or_days(wh_env, monkeypatch):
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "2")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "7")
    for run_id, age in (("r1", 30), ("r2", 20), ("r3", 10), ("r4", 3), ("r5", 1)):
        failed_run(run_id, age)
    done = warehouse.housekeeping("r6")
    kept = sorted(p.parent.name for p in settings().runs_dir.glob("*/migration.duckdb"))
    # r5, r4: the newest two; both also within 7 days. r3, r2, r1: older than both limits.
    assert kept == ["r4", "r5"] and done["builds"] == 3
    assert all((settings().runs_dir / r / warehouse.FAILURE_FILE).exists()
               for r in ("r1", "r2", "r3"))
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "0")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "2")
    warehouse.housekeeping("r6")  # r4 (3 days) goes, r5 (1 day) stays
    assert [p.parent.name for p in settings().runs_dir.glob("*/migration.duckdb")] == ["r5"]


def test_the_running_build_is_never_removed(wh_env, monkeypatch):
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "0")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "0")
    failed_run("now", 30)
    warehouse.housekeeping("now")
    assert warehouse.build_db("now").exists()


def test_files_staged_by_killed_processes_are_removed(wh_env, monkeypatch):
    s = settings()
    s.warehouse.parent.mkdir(parents=True, exist_ok=True)
    s.runs_dir.mkdir(parents=True, exist_ok=True)
    publish_copy = s.warehouse.parent / f".{s.warehouse.name}.run9.tmp"
    publish_copy.write_bytes(b"half a warehouse")
    (s.runs_dir / ".dbt-build.4242.tmp").symlink_to(s.runs_dir)
    old_part = s.landing_dir / "parsed" / "frontex" / ".x.xlsx.parquet.77.part"
    new_part = s.landing_dir / "frontex" / "y.xlsx.part"  # a lander may be writing it now
    for part in (old_part, new_part):
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"partial")
    stamp = time.time() - 2 * 86400
    os.utime(old_part, (stamp, stamp))
    done = warehouse.housekeeping("r1")
    assert not publish_copy.exists() and not (s.runs_dir / ".dbt-build.4242.tmp").is_symlink()
    assert not old_part.exists() and new_part.exists()
    assert done["staged"] == 3


def test_a_quality_store_staged_by_a_killed_publish_is_removed_by_the_next_writer(
        wh_env, monkeypatch, tmp_path):
    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "q" / "quality_history.duckdb"))
    store = quality.store_path()
    store.parent.mkdir(parents=True)
    left = store.with_name(f"{store.stem}_31337_staged.duckdb")
    left.write_bytes(b"a copy a killed process never renamed")
    quality.set_report_path("some run", tmp_path / "report.html")
    assert not left.exists() and store.exists()
    assert [p.name for p in store.parent.iterdir() if "staged" in p.name] == []
