"""Housekeeping at the start of a transform run: build databases of failed runs kept for a
number of runs or days, then removed (their failure.json stays); files staged by killed
processes removed. Real files, real DuckDB."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest

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


# --- Retention of published runs' artefacts (docs/decisions.md 86) ------------------------------

def _aged(run_ids_days: dict[str, float]) -> None:
    """Move the quality history's record of each run back by its days (as os.utime ages the
    failed builds above)."""
    def change(con):
        for run_id, days in run_ids_days.items():
            con.execute("update quality.runs set recorded_at = now() - to_days(?::integer) "
                        "- to_minutes(?::integer) where run_id = ?",
                        [int(days), int(round((days % 1) * 1440)), run_id])
    quality.store._atomically(change)


def _artefacts(run_id: str) -> list[Path]:
    """What a publish leaves: its run folder (dbt target, GX results and Data Docs) and the
    report's copy of its docs."""
    s = settings()
    made = []
    for path, body in ((s.runs_dir / run_id / "dbt" / "target" / "manifest.json", b"{}"),
                       (s.runs_dir / run_id / "data_docs" / "raw" / "index.html", b"<html/>"),
                       (s.runs_dir / run_id / "audit" / "raw" / "audit_raw.json", b"{}"),
                       (s.reports_dir / "runs" / run_id / "data_docs" / "raw" / "index.html",
                        b"<html/>")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        made.append(path)
    return made


def test_published_runs_keep_their_artefacts_for_a_number_of_publishes_or_days(
        wh_env, monkeypatch, tmp_path):
    """Five publishes 40, 30, 20, 5 and 1 days old, keep 2 or 10 days: the newest two (and
    nothing else: the 20-day one is beyond both) keep their run folders and report copies;
    reports written before the oldest kept publish go, later ones and latest.html stay; a failed
    run's folder and the landing (quarantined files included) are not retention's."""
    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "q" / "quality_history.duckdb"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "2")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "10")
    s = settings()
    ages = {"p1": 40, "p2": 30, "p3": 20, "p4": 5, "p5": 1}
    for run_id in ages:
        quality.record_run(run_id, "published")
        _artefacts(run_id)
    _aged(ages)
    failed_run("f1", 60)  # a failed run's build and failure.json: housekeeping's own rule
    quarantined = s.landing_dir / "frontex" / "20200101T000000Z_bad.xlsx"
    quarantined.parent.mkdir(parents=True)
    quarantined.write_bytes(b"quarantined bytes")
    old_report = s.reports_dir / "20250101T000000000000Z" / "index.html"
    new_report = s.reports_dir / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}000000Z" \
        / "index.html"
    for report in (old_report, new_report, s.reports_dir / "latest.html"):
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("<html/>")

    done = warehouse.housekeeping("now")

    left = sorted(p.name for p in s.runs_dir.iterdir() if not p.name.startswith("."))
    assert left == ["f1", "p4", "p5"], f"run folders left: {left}"
    copies = sorted(p.name for p in (s.reports_dir / "runs").iterdir())
    assert copies == ["p4", "p5"], f"report copies left: {copies}"
    assert done["publishes"] == 3 and done["reports"] == 1, done
    assert not old_report.exists() and new_report.exists()
    assert (s.reports_dir / "latest.html").exists()
    assert (s.runs_dir / "f1" / warehouse.FAILURE_FILE).exists() and quarantined.exists()
    # Nothing more to remove at the next run.
    again = warehouse.housekeeping("later")
    assert (again["publishes"], again["reports"]) == (0, 0), again

    # Keep one publish and no days: the newest publish alone.
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "1")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "0")
    done = warehouse.housekeeping("later")
    assert sorted(p.name for p in s.runs_dir.iterdir() if not p.name.startswith(".")) == ["f1", "p5"], \
        "keep 1 publish and 0 days should leave only the newest publish and the failed run"


def test_retention_never_takes_the_publish_that_is_current(wh_env, monkeypatch, tmp_path):
    """The run whose warehouse is published now keeps its artefacts even when it is not among
    the newest recorded publishes (a newer one was set aside as broken and not rebuilt yet)."""
    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "q" / "quality_history.duckdb"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "1")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "0")
    for run_id in ("old", "mid", "new"):
        quality.record_run(run_id, "published")
        _artefacts(run_id)
    _aged({"old": 30, "mid": 20, "new": 10})
    s = settings()
    s.warehouse.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(s.warehouse)).close()
    warehouse._write_record(s.warehouse, "old", warehouse._sha256(s.warehouse))
    warehouse.housekeeping("now")
    assert sorted(p.name for p in s.runs_dir.iterdir() if not p.name.startswith(".")) == ["new", "old"]


def test_retention_on_the_object_store(s3_env, monkeypatch, tmp_path):
    """The same rule on the bucket: runs/<run>/ and reports/quality/runs/<run>/ of expired
    publishes and the reports written before the oldest kept one are deleted; the kept
    publishes' objects, a failed run's and latest.html stay. Real SeaweedFS."""
    from ingest import storage

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "1")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "0")
    store = storage.configured()
    for run_id in ("p1", "p2"):
        quality.record_run(run_id, "published")
        for key in (f"runs/{run_id}/dbt/target/manifest.json",
                    f"runs/{run_id}/data_docs/raw/index.html",
                    f"reports/quality/runs/{run_id}/data_docs/raw/index.html"):
            store.put(key, b"{}")
    _aged({"p1": 3, "p2": 1})
    store.put("runs/f1/failure.json", b"{}")
    store.put("reports/quality/20250101T000000000000Z/index.html", b"<html/>")
    store.put("reports/quality/latest.html", b"<html/>")

    done = warehouse.housekeeping("now")

    keys = sorted(o.key for o in store.list("runs/") + store.list("reports/"))
    assert not [k for k in keys if k.startswith(("runs/p1/", "reports/quality/runs/p1/"))], keys
    assert "reports/quality/20250101T000000000000Z/index.html" not in keys
    for kept in ("runs/p2/dbt/target/manifest.json", "reports/quality/runs/p2/data_docs/raw/"
                 "index.html", "runs/f1/failure.json", "reports/quality/latest.html"):
        assert kept in keys, f"{kept} was removed: {keys}"
    assert (done["publishes"], done["reports"]) == (1, 1), done


def test_publishes_then_retention_keep_the_newest_answering_and_a_rerun_a_no_op(
        built_db, tmp_path, monkeypatch):
    """Four real publishes of the session build (each with the build's dbt artefacts, a Data
    Docs page and its report), then housekeeping with keep 2 publishes and 0 days: the two
    oldest publishes' run folders, report copies and reports are gone, the newest two and
    latest.html stay with every link of latest.html leading to a file; the published warehouse
    is the same file and its as-of macros answer; and a rerun with nothing new is still a no-op
    (recorded unchanged before any Airflow, the published file untouched)."""
    from pipeline import report, steps

    root = built_db.parents[3]  # the installation the fixture landed (read only here)
    monkeypatch.setenv("WH_LANDING_DIR", str(root / "landing"))
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(tmp_path / "wh" / "runs"))
    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "wh" / "quality_history.duckdb"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "2")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "0")
    s = settings()
    stamps = {}
    for run_id in ("p1", "p2", "p3", "p4"):
        build = warehouse.build_db(run_id)
        build.parent.mkdir(parents=True)
        shutil.copyfile(built_db, build)
        shutil.copytree(built_db.parent / "dbt" / "target", build.parent / "dbt" / "target")
        page = build.parent / "data_docs" / "raw" / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html><body>checks</body></html>")
        warehouse.publish(run_id, before_checkpoint=quality.copy_into)
        quality.record_run(run_id, "published")
        stamps[run_id] = report.write(run_id).parent.name
    published = s.warehouse.read_bytes()
    before = sum(p.stat().st_size for p in (s.runs_dir / "p1").rglob("*") if p.is_file())

    done = warehouse.housekeeping("next")

    assert done["publishes"] == 2 and done["bytes"] >= before, done
    assert sorted(p.name for p in s.runs_dir.iterdir() if not p.name.startswith(".")) == \
        ["p3", "p4"]
    assert sorted(p.name for p in (s.reports_dir / "runs").iterdir()) == ["p3", "p4"]
    assert [r for r in stamps if (s.reports_dir / stamps[r]).exists()] == ["p3", "p4"]
    latest = s.reports_dir / "latest.html"
    links = re.findall(r'href="(runs/[^"#]+)"', latest.read_text(encoding="utf-8"))
    assert links and all((s.reports_dir / link).is_file() for link in links), links
    assert s.warehouse.read_bytes() == published, "retention changed the published warehouse"
    with duckdb.connect(str(s.warehouse), read_only=True) as con:
        crossings = con.execute("select count(*) from marts.border_crossings_as_of("
                                "DATE '2025-06-30')").fetchone()[0]
        observations = con.execute("select count(*) from marts.eurostat_observations_as_of("
                                   "current_date)").fetchone()[0]
    assert crossings > 0 and observations > 0, (crossings, observations)

    note = steps.unchanged_before_airflow("rerun")
    assert note is not None and note.startswith("nothing new since"), note
    assert s.warehouse.read_bytes() == published, "the no-op rerun changed the warehouse"
    assert sorted(p.name for p in s.runs_dir.iterdir()
                  if not p.name.startswith(".") and p.name != "rerun") == ["p3", "p4"]


def test_retention_passes_over_what_it_cannot_remove_and_runs_on(wh_env, monkeypatch, tmp_path):
    """Retention is a saving, never a condition of a run: housekeeping runs at the start of
    every transform, so an error there fails every run until someone steps in. A folder in the
    reports named like a report but with no such date (a copy renamed by hand), and an expired
    report a user still holds open on a share that refuses to unlink it (here: a file made
    immutable), are passed over with a warning; the rest is removed, and the next housekeeping
    tries again."""
    import subprocess

    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "q" / "quality_history.duckdb"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("WH_KEEP_PUBLISHES", "1")
    monkeypatch.setenv("WH_KEEP_PUBLISHES_DAYS", "0")
    s = settings()
    for run_id in ("p1", "p2", "p3"):
        quality.record_run(run_id, "published")
        _artefacts(run_id)
    _aged({"p1": 30, "p2": 20, "p3": 10})
    no_date = s.reports_dir / "20241399T000000Z"  # month 13
    held_open = s.reports_dir / "20200101T000000000000Z" / "index.html"
    for report in (no_date / "index.html", held_open):
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("<html/>")
    if subprocess.run(["chattr", "+i", str(held_open)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (needs root on a filesystem with it)")
    try:
        done = warehouse.housekeeping("now")
        assert held_open.exists() and no_date.exists(), "what could not be removed is gone?"
        left = sorted(p.name for p in s.runs_dir.iterdir() if not p.name.startswith("."))
        assert left == ["p3"], f"the expired publishes' run folders were not all removed: {left}"
        assert done["publishes"] == 2, done
    finally:
        subprocess.run(["chattr", "-i", str(held_open)], check=True)
    warehouse.housekeeping("later")  # the report is closed now: it goes
    assert not held_open.exists(), "the report held open was not removed once it was closed"
