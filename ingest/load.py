"""Load landed files into the raw schema of a build database.

Each source release becomes rows of one ``raw.<source>_*`` table with lineage columns
(``landing_file``, ``sha256``, ``release_date``, ``loaded_at``), inserted in one statement from
the parsed frame, never row by row. ``raw.load_log`` keeps one row per loaded file.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone

import duckdb
import pandas as pd

from ingest import cohesion, eurostat, frontex, fts, registries
from ingest.landing import LANDED, Landing, ManifestEntry
from ingest.source import Parsed

log = logging.getLogger(__name__)

FRONTEX_TABLE = "raw.frontex_detections"

EUROSTAT_TABLE = "raw.eurostat_observations"
PUBLISHED_TABLE = "raw.eurostat_published_figures"
COHESION_TABLE = "raw.cohesion_records"
FTS_TABLE = "raw.fts_commitments"
FUNDING_REGISTRY_TABLE = "raw.funding_commitments"
READMISSION_TABLE = "raw.readmission_events"

DDL = f"""
create schema if not exists raw;
create table if not exists {FRONTEX_TABLE} (
    route varchar not null,
    border_type varchar not null,
    nationality varchar not null,
    month date not null,
    detections bigint not null,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date not null,
    loaded_at timestamptz not null
);
create table if not exists {EUROSTAT_TABLE} (
    dataset varchar not null,
    source_format varchar not null,
    freq varchar not null,
    time_period varchar not null,
    geo varchar,
    geo_label varchar,
    citizen varchar,
    citizen_label varchar,
    dimensions varchar not null,
    dimension_labels varchar,
    obs_value double,
    obs_flag varchar,
    conf_status varchar,
    last_update timestamp,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists {PUBLISHED_TABLE} (
    period varchar not null,
    geo varchar not null,
    citizen varchar not null,
    indicator varchar not null,
    value double not null,
    source_url varchar not null,
    source_title varchar,
    extracted_date_or_data_date varchar,
    note varchar,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists {COHESION_TABLE} (
    dataset_id varchar not null,
    ms varchar,
    cci varchar,
    fund varchar not null,
    record varchar not null,
    source_row integer not null,
    is_complete_snapshot boolean not null,
    completeness_note varchar not null,
    snapshot_date date,
    snapshot_date_basis varchar not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists {FTS_TABLE} (
    fts_year integer not null,
    year integer,
    beneficiary_name varchar,
    amount_eur double,
    budget_line_number varchar,
    budget_line_name varchar,
    programme_name varchar,
    subject varchar,
    beneficiary_country varchar,
    action_location varchar,
    commitment_total_eur double,
    commitment_reference varchar,
    responsible_department varchar,
    management_type varchar,
    funding_type varchar,
    fund varchar not null,
    matched_by varchar not null,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists {FUNDING_REGISTRY_TABLE} (
    as_of_date date not null,
    as_of_precision varchar not null,
    instrument varchar not null,
    fund_code varchar not null,
    action_title varchar not null,
    beneficiary_or_partner varchar,
    direction varchar not null,
    stage varchar not null,
    amount_eur double,
    period varchar,
    source varchar not null,
    quote varchar not null,
    note varchar,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists {READMISSION_TABLE} (
    third_country varchar,
    iso2 varchar,
    instrument_type varchar not null,
    title varchar not null,
    status varchar not null,
    event_date date not null,
    event_date_precision varchar not null,
    event_date_last date not null,
    scope varchar not null,
    effect varchar not null,
    legal_reference varchar,
    source varchar not null,
    note varchar,
    has_caveat boolean not null,
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null
);
create table if not exists raw.load_log (
    source varchar not null,
    raw_table varchar not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    rows_loaded bigint not null,
    run_id varchar not null,
    loaded_at timestamptz not null,
    dataset varchar
);
-- Warehouses published before Eurostat was added: releases without a date, datasets per file.
alter table raw.load_log alter column release_date drop not null;
alter table raw.load_log add column if not exists dataset varchar;
"""


@dataclass(frozen=True)
class LoadResult:
    source: str
    landing_file: str
    sha256: str
    release_date: date | None
    rows_loaded: int
    """0 when the newest release was already loaded."""


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def load_frontex(con: duckdb.DuckDBPyConnection, landing: Landing, run_id: str) -> LoadResult | None:
    """Load the newest landed Frontex release if it is not loaded yet.

    Frontex releases are cumulative (each restates the whole series since 2009), so only the
    newest one is loaded; older releases landed but never loaded are superseded by it.
    """
    ensure_raw_schema(con)
    entry = landing.newest(frontex.NAME)
    if entry is None:
        log.warning("no landed Frontex release: nothing to load")
        return None
    already = con.execute(f"select count(*) from {FRONTEX_TABLE} where sha256 = ?",
                          [entry.sha256]).fetchall()[0][0]
    if already:
        log.info("newest Frontex release %s (%s) already loaded (%d rows)",
                 entry.release_date, entry.path, already)
        return LoadResult(frontex.NAME, entry.path, entry.sha256, entry.release, 0)
    parsed = frontex.parse_workbook(landing.file(entry).read_bytes(), entry.path)
    return _insert(con, FRONTEX_TABLE, entry, parsed.release_date, parsed.rows, run_id)


def load_eurostat(con: duckdb.DuckDBPyConnection, landing: Landing,
                  run_id: str) -> list[LoadResult]:
    """Load every landed Eurostat file (datasets and published figures) not loaded yet, oldest
    first. Unlike Frontex releases, each file holds one dataset or one part of one, so all are
    kept; staging takes the newest value of each observation."""
    return (load_new(con, landing, eurostat.EurostatSource(), EUROSTAT_TABLE, run_id)
            + load_new(con, landing, eurostat.EurostatPublishedSource(), PUBLISHED_TABLE,
                       run_id))


def load_funding(con: duckdb.DuckDBPyConnection, landing: Landing,
                 run_id: str) -> list[LoadResult]:
    """Load every landed funding file not loaded yet: Cohesion Open Data snapshots (with their
    completeness and date) and FTS years."""
    return (load_new(con, landing, cohesion.CohesionSource(), COHESION_TABLE, run_id,
                     _cohesion_snapshot)
            + load_new(con, landing, fts.FtsSource(), FTS_TABLE, run_id, _fts_year))


def load_registries(con: duckdb.DuckDBPyConnection, landing: Landing,
                    run_id: str) -> list[LoadResult]:
    """Load every landed version of the curated registries not loaded yet (each version is
    kept: staging reads the newest, the dbt snapshot keeps the history of each event)."""
    return (load_new(con, landing, registries.FundingRegistrySource(), FUNDING_REGISTRY_TABLE,
                     run_id)
            + load_new(con, landing, registries.ReadmissionRegistrySource(), READMISSION_TABLE,
                       run_id))


def load_new(con: duckdb.DuckDBPyConnection, landing: Landing, source, table: str, run_id: str,
             enrich: Callable[[ManifestEntry, Parsed], None] | None = None) -> list[LoadResult]:
    """Parse and insert every landed file of ``source`` whose sha256 is not in ``table`` yet,
    oldest first; ``enrich`` adds columns the file alone does not give (from its manifest
    entry)."""
    ensure_raw_schema(con)
    loaded = {sha for (sha,) in con.execute(
        "select sha256 from raw.load_log where raw_table = ?", [table]).fetchall()}
    results = []
    for entry in sorted(landing.entries(source.name), key=lambda e: e.fetched_at):
        if entry.status != LANDED or entry.sha256 in loaded:
            continue
        parsed = source.parse(landing.file(entry).read_bytes(), entry.path, entry.dataset)
        if enrich is not None:
            enrich(entry, parsed)
        results.append(_insert(con, table, entry, parsed.release_date or entry.release,
                               parsed.rows, run_id, dataset=parsed.dataset or entry.dataset))
        loaded.add(entry.sha256)
    if not results:
        log.info("%s: every landed file is loaded already", source.name)
    return results


def _cohesion_snapshot(entry: ManifestEntry, parsed: Parsed) -> None:
    """Each download is a snapshot of cumulative figures: keep whether it is whole, and its
    date (the platform's update date; a replayed file without one: the latest programme
    adoption date it holds)."""
    frame = parsed.rows
    complete, note = cohesion.completeness(entry.url, len(frame))
    if not complete:
        log.warning("%s: partial snapshot: %s", entry.path, note)
    frame["is_complete_snapshot"] = complete
    frame["completeness_note"] = note
    if entry.release is not None:
        frame["snapshot_date"], basis = entry.release, "the platform's last update of the rows"
    else:
        adopted = pd.to_datetime(frame["record"].map(
            lambda r: json.loads(r).get("last_adoption_date_ecms")), errors="coerce")
        frame["snapshot_date"] = adopted.max().date() if adopted.notna().any() else None
        basis = ("the latest programme adoption date in the file (the file states no date)"
                 if adopted.notna().any() else "unknown")
    frame["snapshot_date_basis"] = basis


def _fts_year(entry: ManifestEntry, parsed: Parsed) -> None:
    parsed.rows.insert(0, "fts_year", int(parsed.dataset))


def _insert(con: duckdb.DuckDBPyConnection, table: str, entry: ManifestEntry,
            release: date | None, frame, run_id: str, dataset: str | None = None) -> LoadResult:
    loaded_at = datetime.now(timezone.utc)
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    con.register("incoming_rows", frame)
    try:
        con.execute("begin")
        con.execute(f"delete from {table} where sha256 = ?", [entry.sha256])
        con.execute(
            f"""insert into {table} ({columns}, landing_file, sha256, release_date, loaded_at)
                select {columns}, ?, ?, ?, ? from incoming_rows""",
            [entry.path, entry.sha256, release, loaded_at])
        con.execute("""insert into raw.load_log (source, raw_table, landing_file, sha256,
                           release_date, rows_loaded, run_id, loaded_at, dataset)
                       values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [entry.source, table, entry.path, entry.sha256, release, len(frame), run_id,
                     loaded_at, dataset])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("incoming_rows")
    log.info("loaded %s rows of %s%s (release %s, %s) into %s", f"{len(frame):,}", entry.source,
             f" {dataset}" if dataset else "", release or "undated", entry.path, table)
    return LoadResult(entry.source, entry.path, entry.sha256, release, len(frame))
