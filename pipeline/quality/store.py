"""The quality history: what every transform run checked and found, published or not.

``record_run`` gathers one run's outcome into the quality store (``WH_QUALITY_DB``, default
``quality_history.duckdb`` beside the published warehouse): the run's state and failure
(``failure.json``), every Great Expectations result and dbt test of the run folder, and measures
of the data the run built (freshness of each source, completeness, flags, revisions). A failed
run cannot write into the published warehouse (it must stay byte-identical), so the history
lives in its own file, rewritten atomically (copy, write, ``os.replace``) so that a report
reading it never blocks a run writing it. ``copy_into`` puts the whole history into schema
``quality`` of a build database just before it is published, so BI tools find it in the
published warehouse too.
"""
from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest.config import SEEDS_DIR, settings
from ingest.landing import LANDED, Landing
from pipeline import warehouse

log = logging.getLogger(__name__)

CADENCE_SEED = SEEDS_DIR / "source_cadence.csv"
SAMPLE_ROWS = 5
TOP_REVISIONS = 25

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
"""
TABLES = ("runs", "checks", "results", "freshness", "completeness", "flags", "revisions")


def store_path() -> Path:
    configured = os.environ.get("WH_QUALITY_DB")
    # Not "quality.duckdb": DuckDB names a file's catalog after its stem, and a catalog named
    # like the schema "quality" makes every "quality.<table>" ambiguous.
    return Path(configured).resolve() if configured else settings().warehouse.with_name(
        "quality_history.duckdb")


@dataclass(frozen=True)
class Cadence:
    source: str
    expected: str
    late_after: int | None
    stale_after: int | None


def cadences() -> dict[str, Cadence]:
    with CADENCE_SEED.open(encoding="utf-8", newline="") as fh:
        return {r["source"]: Cadence(r["source"], r["expected_cadence"],
                                     int(r["late_after_days"]) if r["late_after_days"] else None,
                                     int(r["stale_after_days"]) if r["stale_after_days"] else None)
                for r in csv.DictReader(fh)}


# --- recording a run ----------------------------------------------------------------------------

def record_run(run_id: str, state: str, measured_db: Path | None = None,
               measured_label: str | None = None, note: str | None = None) -> None:
    """Gather run ``run_id`` into the quality store (replacing what it held for that run).
    ``measured_db`` is the database whose data the measures describe: the build database of a
    run that got that far, else the published warehouse; ``measured_label`` names it in the
    record (the published path, for a build database about to be published)."""
    folder = warehouse.run_dir(run_id)
    failure = _read_json(folder / warehouse.FAILURE_FILE) or {}
    measured = measured_db if measured_db and measured_db.exists() else (
        settings().warehouse if settings().warehouse.exists() else None)
    rows = {
        "runs": [(run_id, datetime.now(timezone.utc), state, failure.get("step"),
                  failure.get("message"), measured_label or (str(measured) if measured else None),
                  None, note)],
        "checks": [], "results": [],
    }
    for stage in ("raw", "marts"):
        _gx_rows(run_id, stage, folder / "audit" / stage, rows)
    _dbt_rows(run_id, folder / "dbt" / "target" / "run_results.json", rows)
    measures = measure(run_id, measured) if measured else {}
    rows.update(measures)
    _write(run_id, rows)
    log.info("quality store %s: run %s recorded as %s (%d checks)", store_path(), run_id, state,
             len(rows["checks"]))


def set_report_path(run_id: str, report: Path) -> None:
    def change(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("update quality.runs set report_path = ? where run_id = ?",
                    [str(report), run_id])
    _atomically(change)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _gx_rows(run_id: str, stage: str, folder: Path, rows: dict) -> None:
    summary = _read_json(folder / f"audit_{stage}.json")
    if not summary:
        return
    for check in summary.get("checks", []):
        suite = check["suite"]
        rows["checks"].append((run_id, stage, suite, check.get("subject"), check.get("rows"),
                               check["evaluated"], check["evaluated"] - check["failed"],
                               check["failed"], 0))
        detail = _read_json(folder / f"{suite}.json") or {}
        for result in detail.get("results", []):
            config = result.get("expectation_config") or {}
            outcome = result.get("result") or {}
            examples = (outcome.get("partial_unexpected_index_list")
                        or outcome.get("partial_unexpected_list"))
            if examples is None and not result.get("success"):
                examples = {"observed_value": outcome.get("observed_value")}
            rows["results"].append((
                run_id, stage, suite, (config.get("meta") or {}).get("rule") or config.get("type"),
                config.get("type"), bool(result.get("success")), "error",
                outcome.get("unexpected_count"),
                json.dumps(examples[:SAMPLE_ROWS] if isinstance(examples, list) else examples,
                           default=str) if examples else None))


def _dbt_rows(run_id: str, path: Path, rows: dict) -> None:
    results = (_read_json(path) or {}).get("results", [])
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    if not tests:
        return
    failed = [r for r in tests if r["status"] in ("fail", "error")]
    warned = [r for r in tests if r["status"] == "warn"]
    rows["checks"].append((run_id, "dbt", "dbt build tests", "dbt_project", None, len(tests),
                           len(tests) - len(failed) - len(warned), len(failed), len(warned)))
    for r in failed + warned:
        rows["results"].append((
            run_id, "dbt", "dbt build tests", r["unique_id"].split(".")[-1], r["unique_id"],
            False, "warn" if r["status"] == "warn" else "error", r.get("failures"),
            json.dumps((r.get("message") or "")[:500])))


# --- measures of the data --------------------------------------------------------------------------

def measure(run_id: str, db: Path) -> dict[str, list[tuple]]:
    """Freshness, completeness, flags and revisions of the data in ``db`` (read-only)."""
    out: dict[str, list[tuple]] = {"freshness": [], "completeness": [], "flags": [],
                                   "revisions": []}
    with duckdb.connect(str(db), read_only=True) as con:
        out["freshness"] = freshness(run_id, con)
        out["completeness"] = _completeness(run_id, con)
        out["flags"] = _flags(run_id, con)
        out["revisions"] = _revisions(run_id, con)
    return out


def _has(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def freshness(run_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    landing = Landing(settings().landing_dir)
    today = datetime.now(timezone.utc).date()
    loads = {}
    if _has(con, "raw", "load_log"):
        for source, latest, previous in con.execute("""
                with runs as (
                    select source, run_id, max(loaded_at) as loaded_at, sum(rows_loaded) as rows
                    from raw.load_log group by all),
                ranked as (
                    select *, row_number() over (partition by source order by loaded_at desc) as n
                    from runs)
                select source, max(rows) filter (where n = 1), max(rows) filter (where n = 2)
                from ranked group by source""").fetchall():
            loads[source] = (latest, previous)
    completeness = {"cohesion": None}
    if _has(con, "raw", "cohesion_records"):
        partial = con.execute("""select any_value(completeness_note) from raw.cohesion_records
                                 where not is_complete_snapshot
                                   and loaded_at = (select max(loaded_at)
                                                    from raw.cohesion_records)""").fetchone()[0]
        completeness["cohesion"] = f"PARTIAL: {partial}" if partial else "complete"
    # Where the data say their own date, it beats the manifest's (a replayed file has none).
    stated = {}
    if _has(con, "raw", "cohesion_records"):
        stated["cohesion"] = con.execute(
            "select max(snapshot_date) from raw.cohesion_records").fetchone()[0]
    if _has(con, "raw", "eurostat_observations"):
        stated["eurostat"] = con.execute("""select max(coalesce(last_update::date, release_date))
                                            from raw.eurostat_observations""").fetchone()[0]
    rows = []
    for source, cadence in cadences().items():
        entries = [e for e in landing.entries(source) if e.status == LANDED]
        newest = max(entries, key=lambda e: (e.release_date or "", e.fetched_at), default=None)
        fetched = max((datetime.fromisoformat(e.fetched_at) for e in entries), default=None)
        release = (newest.release if newest else None) or stated.get(source)
        basis = release or (fetched.date() if fetched else None)
        age = (today - basis).days if basis else None
        if not entries:
            status = "none landed"
        elif cadence.late_after is None:
            status = "curated"
        elif age is not None and cadence.stale_after is not None and age > cadence.stale_after:
            status = "stale"
        elif age is not None and age > cadence.late_after:
            status = "late"
        else:
            status = "fresh"
        latest, previous = loads.get(source, (None, None))
        rows.append((run_id, source, release, fetched, age, cadence.expected, status,
                     len(entries), latest, previous, completeness.get(source)))
    return rows


def _completeness(run_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    rows = []
    if _has(con, "marts", "fct_border_crossings"):
        rows += [(run_id, "frontex", route, present, spanned,
                  f"months present in release {release}, of the months from its first to its last")
                 for route, present, spanned, release in con.execute("""
                    with latest as (
                        select * from marts.fct_border_crossings
                        where release_date = (select max(release_date)
                                              from marts.fct_border_crossings))
                    select route, count(distinct month),
                           date_diff('month', (select min(month) from latest),
                                     (select max(month) from latest)) + 1,
                           any_value(release_date)::varchar
                    from latest group by route order by route""").fetchall()]
    if _has(con, "marts", "fct_returns"):
        rows += [(run_id, "eurostat", f"{measure_} {period}", present, expected,
                  f"member states reporting (citizenship TOTAL) of the {aggregate} members")
                 for measure_, period, aggregate, present, expected in con.execute("""
                    with members as (select * from reference.eurostat_aggregate_members),
                    periods as (
                        select distinct measure, period, geo as aggregate from marts.fct_returns
                        where geo in ('EU27_2020', 'EU28') and citizen = 'TOTAL'
                          and period_grain = 'year'),
                    reported as (
                        select periods.measure, periods.period, periods.aggregate,
                               count(distinct f.geo) filter (where f.persons is not null) as present,
                               count(distinct members.member) as expected
                        from periods
                        join members on members.aggregate = periods.aggregate
                        left join marts.fct_returns f
                          on f.geo = members.member and f.period = periods.period
                         and f.measure = periods.measure and f.citizen = 'TOTAL'
                        group by all)
                    select measure, period, aggregate, present, expected from reported
                    qualify row_number() over (partition by measure order by period desc) <= 3
                    order by measure, period desc""").fetchall()]
    if _has(con, "marts", "fct_funding_disbursements"):
        rows += [(run_id, "cohesion", source, rows_, None, note or "complete")
                 for source, rows_, note in con.execute("""
                    select source, count(*),
                           any_value(completeness_note) filter (where not is_complete_snapshot)
                    from marts.fct_funding_disbursements
                    where source like 'cohesion_open_data:%' group by source""").fetchall()]
    return rows


FLAG_SOURCES = {
    "fct_returns": "marts.fct_returns",
    "stg_eurostat__asylum_applicants": "staging.stg_eurostat__asylum_applicants",
    "stg_eurostat__illegally_present": "staging.stg_eurostat__illegally_present",
}


def _flags(run_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    rows = []
    for name, relation in FLAG_SOURCES.items():
        schema, table = relation.split(".")
        if not _has(con, schema, table):
            continue
        for dataset, n, p, e, c, m in con.execute(f"""
                select dataset, count(*), count(*) filter (where is_provisional),
                       count(*) filter (where is_estimated), count(*) filter (where is_confidential),
                       count(*) filter (where is_missing)
                from {relation} group by dataset order by dataset""").fetchall():
            rows.append((run_id, dataset, n, p, e, c, m))
    return rows


def _revisions(run_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The revisions the newest vintages made, read from the revisions marts: Frontex route totals
    per month changed by the newest release (its first file and any correction of it,
    ``marts.rpt_border_crossings_route_revisions``), and Eurostat observations changed by the
    vintage staging now uses (``marts.rpt_eurostat_revisions``); the biggest of each source.
    Rows carry labels, whether the change is a correction of the same release, and the first
    published value. A database dbt never built (no marts) has none: the rule of what a revision
    is lives in those models only."""
    if not (_has(con, "marts", "rpt_border_crossings_route_revisions")
            and _has(con, "marts", "rpt_eurostat_revisions")):
        return []
    rows = [(run_id, "frontex", *r) for r in con.execute(f"""
        select route, strftime(month, '%Y-%m'), previous_detections, detections, revision,
               previous_vintage_label, vintage_label,
               strftime(month, '%b %Y') || ' (' || cells_revised::varchar || ' of its cells revised'
                   || case when is_correction
                           then ', correction of release ' || release_date::varchar else '' end
                   || ')',
               is_correction, first_detections, first_release_date::varchar
        from marts.rpt_border_crossings_route_revisions
        where release_date = (select max(release_date) from marts.rpt_border_crossings_vintages)
        order by abs(revision) desc, route, month, vintage_number
        limit {TOP_REVISIONS}""").fetchall()]
    rows += [(run_id, "eurostat", *r) for r in con.execute(f"""
        select dataset, period || ' ' || geo || ' x ' || citizen || ' ' || dimensions,
               previous_obs_value, obs_value, revision, previous_vintage_label, vintage_label,
               cell_label, is_correction, first_obs_value, first_vintage_label
        from marts.rpt_eurostat_revisions
        where is_current_vintage
        order by abs(revision) desc nulls last, dataset, cell_label
        limit {TOP_REVISIONS}""").fetchall()]
    return rows


# --- the store --------------------------------------------------------------------------------

def _write(run_id: str, rows: dict[str, list[tuple]]) -> None:
    def change(con: duckdb.DuckDBPyConnection) -> None:
        for table in TABLES:
            con.execute(f"delete from quality.{table} where run_id = ?", [run_id])
            if rows.get(table):
                width = len(rows[table][0])
                con.executemany(f"insert into quality.{table} values "
                                f"({', '.join('?' * width)})", rows[table])
    _atomically(change)


def _atomically(change) -> None:
    """Copy the store, change the copy, replace the store: readers never block the writer, and
    a lock keeps two writers (a failed source DAG, the transform) from losing each other's rows."""
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
        with duckdb.connect(str(staged)) as con:
            con.execute(DDL)
            change(con)
            con.execute("checkpoint")
        os.replace(staged, path)


def copy_into(con: duckdb.DuckDBPyConnection) -> None:
    """Schema ``quality`` of a build database: the whole history, for BI tools."""
    path = store_path()
    con.execute(DDL)
    if not path.exists():
        return
    con.execute(f"attach '{path}' as quality_store (read_only)")
    try:
        for table in TABLES:
            con.execute(f"delete from quality.{table}")
            con.execute(f"insert into quality.{table} select * from quality_store.quality.{table}")
    finally:
        con.execute("detach quality_store")


def latest_run_id() -> str | None:
    path = store_path()
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute("""select run_id from quality.runs
                               order by recorded_at desc limit 1""").fetchone()
    return found[0] if found else None

