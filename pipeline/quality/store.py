"""The quality store: every transform run's outcome and measures, published or not.

A failed run cannot write into the published warehouse (it must stay byte-identical), so the
history lives in its own file (``WH_QUALITY_DB``, default ``quality_history.duckdb`` beside the
published warehouse), rewritten atomically (copy, write, ``os.replace``) so that a report reading
it never blocks a run writing it. ``copy_into`` puts the whole history into schema ``quality`` of
a build database just before it is published, so BI tools find it in the published warehouse
too. What goes in: ``pipeline.quality.record``; how fresh each source is:
``pipeline.quality.freshness``; what changed between two runs: ``pipeline.quality.compare``.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest import duck
from ingest import storage
from ingest.config import REPO_ROOT, settings

log = logging.getLogger(__name__)


DDL = """
create schema if not exists quality;
create table if not exists quality.runs (
    run_id varchar primary key,
    recorded_at timestamptz not null,
    state varchar not null,            -- published, failed, unchanged (nothing new: not built)
    failed_step varchar,
    failure_message varchar,
    measured_db varchar,               -- the database the measures below were taken from
    report_path varchar
);
create table if not exists quality.checks (
    run_id varchar not null,
    stage varchar not null,            -- raw, marts (Great Expectations), dbt
    suite varchar not null,
    subject varchar,
    rows_validated bigint,
    evaluated integer not null,
    passed integer not null,
    failed integer not null,
    warned integer not null
);
create table if not exists quality.results (
    run_id varchar not null,
    stage varchar not null,
    suite varchar not null,
    rule varchar not null,
    expectation varchar not null,
    success boolean not null,
    severity varchar not null,         -- error, warn
    unexpected_count bigint,
    examples varchar                   -- failing rows or values, as JSON
);
create table if not exists quality.freshness (
    run_id varchar not null,
    source varchar not null,
    last_release date,
    last_fetched_at timestamptz,
    age_days integer,
    expected_cadence varchar,
    status varchar not null,           -- fresh, late, stale, curated, none landed
    files_landed integer not null,
    rows_latest_load bigint,
    rows_previous_load bigint,
    completeness varchar
);
create table if not exists quality.completeness (
    run_id varchar not null,
    source varchar not null,
    subject varchar not null,
    present bigint,
    expected bigint,
    note varchar
);
create table if not exists quality.flags (
    run_id varchar not null,
    dataset varchar not null,
    observations bigint not null,
    provisional bigint not null,
    estimated bigint not null,
    confidential bigint not null,
    missing bigint not null
);
create table if not exists quality.revisions (
    run_id varchar not null,
    source varchar not null,
    subject varchar not null,          -- dataset or route
    cell varchar not null,             -- the period and keys that changed
    previous_value double,
    current_value double,
    change double,
    previous_release varchar,
    current_release varchar
);
-- Added with no-op runs: what an "unchanged" run found (nothing new since which publish).
alter table quality.runs add column if not exists note varchar;
-- Added with the revisions marts (a store written before gets the columns, NULL in old rows).
alter table quality.revisions add column if not exists cell_label varchar;   -- for people
alter table quality.revisions add column if not exists is_correction boolean; -- same release re-issued
alter table quality.revisions add column if not exists first_value double;    -- first published
alter table quality.revisions add column if not exists first_release varchar;
-- Added with the report's "what changed" (dbt models quality.current_coverage and
-- rpt_headline_indicators, then named report_headlines).
alter table quality.results add column if not exists description varchar;    -- what the rule means
create table if not exists quality.coverage (
    run_id varchar not null,
    source varchar not null,
    subject varchar not null,
    first_period varchar,
    last_period varchar,
    observations bigint,
    total double,
    unit varchar,
    release varchar
);
create table if not exists quality.revision_counts (
    run_id varchar not null,
    source varchar not null,
    subject varchar not null,
    current_release varchar,
    cells bigint not null,
    corrections bigint not null,
    total_abs_change double,
    biggest_cell varchar,
    biggest_change double
);
-- Added with the report's cell-level "what changed" (dbt model quality.current_cell_changes).
create table if not exists quality.cell_changes (
    run_id varchar not null,
    source varchar not null,
    subject varchar,
    cell_label varchar,
    period varchar,
    route varchar,
    border_type varchar,
    nationality varchar,
    change_type varchar,
    previous_value double,
    current_value double,
    change double,
    previous_release varchar,
    current_release varchar,
    is_correction boolean,
    newest_rank bigint,
    source_cells bigint
);
create table if not exists quality.headlines (
    run_id varchar not null,
    position integer,
    indicator varchar not null,
    label varchar,
    definition varchar,
    unit varchar,
    period varchar,
    value double,
    previous_period varchar,
    previous_value double,
    basis varchar,
    source_model varchar,
    change_pct double
);
"""
DESCRIPTIONS = REPO_ROOT / "dbt_project" / "models" / "quality" / "_quality__sources.yml"
TABLES = ("runs", "checks", "results", "freshness", "completeness", "flags", "revisions",
          "coverage", "revision_counts", "headlines", "cell_changes")


OBJECT_KEY = "quality/quality_history.duckdb"
"""The history in the object store (``WH_STORAGE_URL``); ``WH_QUALITY_DB`` is then its local
copy in scratch space, refreshed whenever the object changed."""


def store_path() -> Path:
    path = settings().quality_db
    remote = storage.configured()
    if remote is not None:
        _refresh(remote, path)
    return path


def _etag_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.etag")


def _refresh(remote: storage.Store, path: Path) -> None:
    """Make ``path`` the object's current content (or absent when there is none)."""
    found = remote.head(OBJECT_KEY)
    mark = _etag_file(path)
    if found is None:
        path.unlink(missing_ok=True)
        mark.unlink(missing_ok=True)
        return
    if path.exists() and mark.exists() and mark.read_text() == found.etag:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    etag = remote.download(OBJECT_KEY, path)
    mark.write_text(etag or "")


# --- the store --------------------------------------------------------------------------------

def write(run_id: str, rows: dict[str, list[tuple]]) -> None:
    def change(con: duckdb.DuckDBPyConnection) -> None:
        for table in TABLES:
            con.execute(f"delete from quality.{table} where run_id = ?", [run_id])
            duck.insert_rows(con, f"quality.{table}", rows.get(table) or [])
    _atomically(change)


def _atomically(change) -> None:
    """Copy the store, change the copy, replace the store: readers never block the writer, and
    a lock keeps two writers (a failed source DAG, the transform) from losing each other's rows.
    On the object store the lock is a compare-and-swap: the change is made again on the newer
    history when another task wrote it in between."""
    remote = storage.configured()
    if remote is not None:
        _atomically_object(remote, change)
        return
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A staged copy exists only while its writer holds this lock: any found now was left by
        # a process killed before its rename.
        for stale in path.parent.glob(f"{path.stem}_*_staged.duckdb*"):
            log.info("removed %s, staged by a process that did not finish", stale)
            stale.unlink()
        staged = path.with_name(f"{path.stem}_{os.getpid()}_staged.duckdb")
        if path.exists():
            shutil.copyfile(path, staged)
        else:
            staged.unlink(missing_ok=True)
        with duck.connect(str(staged)) as con:
            con.execute(DDL)
            change(con)
            con.execute("checkpoint")
        os.replace(staged, path)


CAS_ATTEMPTS = 20


def _atomically_object(remote: storage.Store, change) -> None:
    path = settings().quality_db
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f"{path.stem}_{os.getpid()}_staged.duckdb")
    for _ in range(CAS_ATTEMPTS):
        staged.unlink(missing_ok=True)
        etag = remote.download(OBJECT_KEY, staged)
        with duck.connect(str(staged)) as con:
            con.execute(DDL)
            change(con)
            con.execute("checkpoint")
        try:
            new = remote.put(OBJECT_KEY, staged, if_match=etag, if_none_match=etag is None)
        except storage.PreconditionFailed:
            log.info("quality history changed by another task meanwhile: changing it again")
            continue
        os.replace(staged, path)
        _etag_file(path).write_text(new)
        return
    staged.unlink(missing_ok=True)
    raise storage.StorageError("update", remote.uri(OBJECT_KEY), None, "",
                               f"changed by other tasks under every one of {CAS_ATTEMPTS} "
                               "attempts")


def copy_into(con: duckdb.DuckDBPyConnection) -> None:
    """Schema ``quality`` of a build database: the whole history, for BI tools."""
    path = store_path()
    con.execute(DDL)
    if not path.exists():
        describe(con)
        return
    con.execute(f"attach '{path}' as quality_store (read_only)")
    try:
        for table in TABLES:
            con.execute(f"delete from quality.{table}")
            con.execute(f"insert into quality.{table} select * from quality_store.quality.{table}")
    finally:
        con.execute("detach quality_store")
    describe(con)


def shape_into(con: duckdb.DuckDBPyConnection) -> None:
    """Schema ``quality`` of a build database, its tables and descriptions without rows: what
    the dbt docs of the build show of it before ``copy_into`` fills it at publish (else the
    first publish's docs lack the history's columns and the next publish makes them again)."""
    con.execute(DDL)
    describe(con)


def describe(con: duckdb.DuckDBPyConnection) -> None:
    """The descriptions of the history tables and their columns, from the dbt sources YAML that
    documents them (their one place), as DuckDB comments: BI tools list them."""
    import yaml

    with DESCRIPTIONS.open(encoding="utf-8") as fh:
        [source] = yaml.safe_load(fh)["sources"]
    for table in source["tables"]:
        if table["name"] not in TABLES:
            continue
        con.execute(f"comment on table quality.{table['name']} is "
                    f"{_literal(table.get('description', ''))}")
        for column in table.get("columns", []):
            con.execute(f"comment on column quality.{table['name']}.{column['name']} is "
                        f"{_literal(column.get('description', ''))}")


def _literal(text: str) -> str:
    return "'" + " ".join(str(text).split()).replace("'", "''") + "'"


def latest_run_id() -> str | None:
    path = store_path()
    if not path.exists():
        return None
    with duck.connect(str(path), read_only=True) as con:
        found = con.execute("""select run_id from quality.runs
                               order by recorded_at desc limit 1""").fetchone()
    return found[0] if found else None



def upgrade() -> None:
    """Bring a store written by older code to this code's tables and columns (the DDL only
    adds), so that readers (the report opens it read-only) find what they select."""
    if store_path().exists():
        _atomically(lambda con: None)


STOPPED_BEFORE_PUBLISH = ("recorded as published, but its process was stopped before the "
                          "published file was replaced: nothing of this run was published")


def correct_unpublished(published: Path) -> list[str]:
    """Runs the history records as published that the published warehouse never got: the
    publish step records its run first (the history is copied into the file it publishes), so a
    process killed between that and the rename leaves a claim no file backs. Such runs, recorded
    after the warehouse's last publish and absent from its ``meta.publish_log``, become failed
    at step publish with a note; their ids are returned. Nothing is judged without a readable
    published file to compare with."""
    path = store_path()
    if not path.exists():
        return []
    if published.exists():
        with duck.connect(str(published), read_only=True) as con:
            if not has(con, "meta", "publish_log"):
                return []
            done = {r for (r,) in con.execute("select run_id from meta.publish_log").fetchall()}
            last = con.execute("select max(published_at) from meta.publish_log").fetchone()[0]
    elif _never_published():
        done, last = set(), datetime.min.replace(tzinfo=timezone.utc)
    else:
        return []
    with duck.connect(str(path), read_only=True) as con:
        claimed = con.execute("""select run_id from quality.runs
                                 where state = 'published' and recorded_at > ?""",
                              [last]).fetchall()
    stray = [r for (r,) in claimed if r not in done]
    if stray:
        def change(con: duckdb.DuckDBPyConnection) -> None:
            con.executemany("""update quality.runs
                               set state = 'failed', failed_step = 'publish',
                                   failure_message = ?, note = ?
                               where run_id = ?""",
                            [(STOPPED_BEFORE_PUBLISH, STOPPED_BEFORE_PUBLISH, r) for r in stray])
        _atomically(change)
        log.warning("quality history: run(s) %s %s", ", ".join(stray), STOPPED_BEFORE_PUBLISH)
    return stray


def _never_published() -> bool:
    """On the object store: no pointer was ever written (neither ``warehouse/CURRENT`` nor a
    pointer set aside as broken), so no run ever published and every claim is stray (a first
    publish killed between its record and its pointer). On local files a missing published file
    may have been deleted by hand after genuine publishes: nothing is judged."""
    remote = storage.configured()
    return remote is not None and not remote.list("warehouse/CURRENT")


def set_report_path(run_id: str, report: Path | str) -> None:
    def change(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("update quality.runs set report_path = ? where run_id = ?",
                    [str(report), run_id])
    _atomically(change)


def has(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    """The rows of a query as dicts (column name -> value)."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
