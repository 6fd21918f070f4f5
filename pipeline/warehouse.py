"""Build databases and the atomic publish.

A run builds into ``<runs>/<run_id>/build.duckdb``, a byte copy of the published file (so history
in ``raw`` carries over), and only after every audit passes replaces the published file with
``os.replace``. The published file is never opened for writing: BI readers can hold it open
read-only all the while; a new connection sees the new version once none to the old one is
open in its process (docs/bi.md).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import traceback
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest.config import settings
from pipeline.changes import code_fingerprint

log = logging.getLogger(__name__)

FAILURE_FILE = "failure.json"
STALE_LANDING_S = 86400
"""A file staged in landing/ this long ago belongs to a process that did not finish."""


def safe_run_id(airflow_run_id: str) -> str:
    """A folder name from an Airflow run id (``manual__2026-11-21T14:10:45+00:00``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", airflow_run_id).strip("_")


def run_dir(run_id: str) -> Path:
    return settings().runs_dir / run_id


def build_db(run_id: str) -> Path:
    # Same file name as the published database: DuckDB names its catalog after the file stem and
    # dbt-duckdb writes that catalog into view definitions, so a differently named build file
    # would publish views that point at a catalog BI readers do not have.
    return run_dir(run_id) / settings().warehouse.name


def housekeeping(current_run_id: str) -> dict[str, int]:
    """Start of every transform run: remove what earlier runs left behind.

    - Build databases of failed runs (kept in ``runs/<run_id>/`` for diagnosis) beyond the
      newest ``WH_KEEP_FAILED_BUILDS`` (default 3) that are also older than
      ``WH_KEEP_FAILED_BUILDS_DAYS`` (default 7): the database and its WAL go, the run's
      failure.json, audit results and dbt artefacts (small) stay.
    - Files a killed process staged and never renamed: the publish copy beside the published
      file, dbt's link being switched; in landing/ (landed files, parsed forms) those a day old.
    Only one transform runs at a time (max_active_runs=1), so nothing here is in use."""
    s = settings()
    keep = int(os.environ.get("WH_KEEP_FAILED_BUILDS", "3"))
    keep_days = float(os.environ.get("WH_KEEP_FAILED_BUILDS_DAYS", "7"))
    builds = sorted((p for p in s.runs_dir.glob(f"*/{s.warehouse.name}")
                     if p.parent.name != current_run_id), key=lambda p: p.stat().st_mtime,
                    reverse=True) if s.runs_dir.is_dir() else []
    now = datetime.now(timezone.utc).timestamp()
    removed = {"builds": 0, "staged": 0, "bytes": 0}
    for i, db in enumerate(builds):
        if i < keep or now - db.stat().st_mtime < keep_days * 86400:
            continue
        for path in (db, _wal(db)):
            if path.exists():
                removed["bytes"] += path.stat().st_size
                path.unlink()
        removed["builds"] += 1
        log.info("removed the build database of failed run %s (older than the newest %d and "
                 "than %g days; its failure.json and audit results stay)", db.parent.name, keep,
                 keep_days)
    # The transform's own staging (it is the only writer of these): whatever is there is stale.
    staged = [*s.warehouse.parent.glob(f".{s.warehouse.name}.*.tmp"),
              *(s.runs_dir.glob(".dbt-build.*.tmp") if s.runs_dir.is_dir() else [])]
    # Landing's (source DAGs may be landing right now): only what is a day old.
    if s.landing_dir.is_dir():
        staged += [p for p in s.landing_dir.rglob("*.part")
                   if now - p.lstat().st_mtime > STALE_LANDING_S]
    for path in staged:
        removed["bytes"] += path.lstat().st_size
        path.unlink()
        removed["staged"] += 1
        log.info("removed %s, staged by a run that did not finish", path)
    return removed


def prepare_build(run_id: str) -> Path:
    """Create the run folder and its build database from the published one."""
    target = build_db(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    published = settings().warehouse
    for stale in (target, _wal(target)):
        stale.unlink(missing_ok=True)
    if published.exists():
        shutil.copyfile(published, target)
        log.info("build database %s copied from published %s", target, published)
    else:
        duckdb.connect(str(target)).close()
        log.info("no published warehouse yet at %s: building %s from empty", published, target)
    return target


def publish(run_id: str, before_checkpoint=None) -> Path:
    """Checkpoint and close the build database, then atomically replace the published file.
    ``before_checkpoint(con)`` adds last tables to the build database (the quality history)."""
    source = build_db(run_id)
    published = settings().warehouse
    published.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(source)) as con:
        con.execute("create schema if not exists meta")
        con.execute("""create table if not exists meta.publish_log (
                           run_id varchar not null, published_at timestamptz not null)""")
        # The code that built it: a later run with nothing new and the same code is a no-op.
        con.execute("alter table meta.publish_log add column if not exists code_fingerprint varchar")
        con.execute("insert into meta.publish_log (run_id, published_at, code_fingerprint) "
                    "values (?, ?, ?)", [run_id, datetime.now(timezone.utc), code_fingerprint()])
        if before_checkpoint is not None:
            before_checkpoint(con)
        drop_build_internals(con)
        con.execute("checkpoint")
    if _wal(source).exists():
        raise RuntimeError(f"{source}: a WAL file remains after checkpoint; not publishing")
    with source.open("rb") as fh:
        os.fsync(fh.fileno())
    try:
        os.replace(source, published)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        # Runs folder on another filesystem: stage a copy next to the target, then rename.
        staged = published.with_name(f".{published.name}.{run_id}.tmp")
        shutil.copyfile(source, staged)
        os.replace(staged, published)
        source.unlink()
    _fsync_dir(published.parent)
    log.info("published %s (run %s)", published, run_id)
    return published


BUILD_ONLY_SCHEMAS = ("audit_dbt",)
"""Schemas a build writes for diagnosis only: dbt's stored test failures (``store_failures``),
which ``pipeline.dbt`` samples when a build fails (a failed build is never published). They are
dropped from a build database just before it is published, so BI readers never see them."""


def drop_build_internals(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``BUILD_ONLY_SCHEMAS`` (and everything in them) from the build database."""
    for schema in BUILD_ONLY_SCHEMAS:
        con.execute(f"drop schema if exists {schema} cascade")


def _wal(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def record_failure(run_id: str, step: str, err: BaseException) -> Path:
    """Write ``failure.json`` in the run folder: what failed, with the message and the build
    database kept for diagnosis."""
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "step": step,
        "error_type": type(err).__name__,
        "message": str(err),
        "build_db": str(build_db(run_id)) if build_db(run_id).exists() else None,
        "failed_at": datetime.now(timezone.utc).isoformat(),
        "traceback": traceback.format_exception(err),
    }
    path = folder / FAILURE_FILE
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path
