"""Load landed files into the raw schema of a build database.

Each source release becomes rows of one ``raw.<source>_*`` table with lineage columns
(``landing_file``, ``sha256``, ``release_date``, ``loaded_at``), inserted in one statement from
the parsed frame, never row by row. ``raw.load_log`` keeps one row per loaded file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from ingest import catalog, parsed
from ingest.catalog import SourceSpec
from ingest.errors import DataError
from ingest.landing import Landing, ManifestEntry
from ingest.source import Parsed

log = logging.getLogger(__name__)

LOAD_LOG_DDL = """
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
-- Warehouses published before the second source was added: releases without a date, datasets per file.
alter table raw.load_log alter column release_date drop not null;
alter table raw.load_log add column if not exists dataset varchar;
"""


def ddl() -> str:
    """The raw schema: one table per declared source (``ingest.catalog``) and the load log."""
    return "\n".join(["create schema if not exists raw;",
                      *(s.ddl() for s in catalog.SOURCES), LOAD_LOG_DDL])


@dataclass(frozen=True)
class LoadResult:
    source: str
    landing_file: str
    sha256: str
    release_date: date | None
    rows_loaded: int


class LoadFailed(DataError):
    """A landed file that could not be loaded; ``entry`` names it so the run can reject it."""

    def __init__(self, entry: ManifestEntry, err: DataError):
        self.entry = entry
        super().__init__(err.file, err.rule,
                         f"{err.detail} (landing file {entry.path}, release "
                         f"{entry.release_date or entry.version or 'undated'})", err.row)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ddl())


def unload_rejected(con: duckdb.DuckDBPyConnection, landing: Landing) -> list[ManifestEntry]:
    """Remove from the build every file rejected since it was loaded (by hand, after it was
    published): the build starts as a copy of the published file, so without this a rejected
    file would stay published."""
    ensure_raw_schema(con)
    loaded = {sha: table for sha, table in con.execute(
        "select sha256, raw_table from raw.load_log").fetchall()}
    removed = []
    for entry in landing.rejected():
        table = loaded.get(entry.sha256)
        if table is None:
            continue
        con.execute("begin")
        con.execute(f"delete from {table} where sha256 = ?", [entry.sha256])
        con.execute("delete from raw.load_log where sha256 = ?", [entry.sha256])
        con.execute("commit")
        log.warning("unloaded rejected %s from %s (%s)", entry.path, table,
                    landing.rejection(entry))
        removed.append(entry)
    return removed


def load_source(con: duckdb.DuckDBPyConnection, landing: Landing, spec: SourceSpec,
                run_id: str) -> list[LoadResult]:
    """Insert every landed, not rejected file of ``spec`` whose sha256 is not loaded yet, oldest
    landed first. Every file is kept (every release, every correction, every vintage); staging
    decides what is current. The rows come from the file's parsed form (``ingest.parsed``,
    written when it was landed), read by DuckDB; a file without a current parsed form is parsed
    here (and its parsed form written). A file that fails to parse raises ``LoadFailed``
    naming it."""
    ensure_raw_schema(con)
    loaded = {sha for (sha,) in con.execute(
        "select sha256 from raw.load_log where raw_table = ?", [spec.raw_table]).fetchall()}
    enrich = spec.enricher()
    results = []
    for entry in landing.loadable(spec.name):
        if entry.sha256 in loaded:
            continue
        path, release, dataset = parsed_form(landing, entry, spec, con)
        if enrich is None:
            results.append(_insert(con, spec.raw_table, entry, release, path, run_id, dataset))
        else:
            frame = con.execute("select * from read_parquet(?)", [str(path)]).df()
            enrich(entry, Parsed(release, frame, dataset))
            results.append(_insert(con, spec.raw_table, entry, release, frame, run_id, dataset))
        loaded.add(entry.sha256)
    if not results:
        log.info("%s: every landed file is loaded already", spec.name)
    return results


def parsed_form(landing: Landing, entry: ManifestEntry, spec: SourceSpec,
                con: duckdb.DuckDBPyConnection | None = None
                ) -> tuple[Path, date | None, str | None]:
    """The Parquet of ``entry``'s parsed rows with its release date and dataset: the one kept
    at landing when it is current, else parsed now from the landed bytes (and kept)."""
    found = parsed.lookup(landing, entry, con)
    if found is not None:
        path, meta = found
        release = date.fromisoformat(meta["release_date"]) if meta.get("release_date") else None
        return path, release or entry.release, meta.get("dataset") or entry.dataset
    try:
        result = spec.source().parse(landing.file(entry).read_bytes(), entry.path, entry.dataset)
    except DataError as err:
        raise LoadFailed(entry, err) from err
    release, dataset = result.release_date or entry.release, result.dataset or entry.dataset
    return parsed.write(landing, entry, result.rows, release, dataset), release, dataset


def load_all(con: duckdb.DuckDBPyConnection, landing: Landing, run_id: str,
             on_loaded=None) -> list[LoadResult]:
    """Load every declared source, in declaration order; ``on_loaded(results)`` after each."""
    results = []
    for spec in catalog.SOURCES:
        done = load_source(con, landing, spec, run_id)
        if on_loaded is not None:
            on_loaded(done)
        results += done
    return results


LOAD_COLUMNS = ("landing_file", "sha256", "release_date", "loaded_at")
"""Lineage columns the load adds; ``source_row`` comes with the parsed rows."""


def _check_columns(con: duckdb.DuckDBPyConnection, table: str, entry: ManifestEntry,
                   names: list[str]) -> None:
    """The parsed rows have every column the raw table requires and none it lacks (a parser
    out of step with its spec), else ``LoadFailed`` naming the file and the columns."""
    schema, name = table.split(".")
    declared = dict(con.execute(
        """select column_name, is_nullable from information_schema.columns
           where table_schema = ? and table_name = ?""", [schema, name]).fetchall())
    missing = [c for c, nullable in declared.items()
               if nullable == "NO" and c not in LOAD_COLUMNS and c not in names]
    unknown = [c for c in names if c not in declared or c in LOAD_COLUMNS]
    if missing or unknown:
        raise LoadFailed(entry, DataError(entry.path, f"{table} columns", (
            f"the parsed rows lack required column(s) {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"the parsed rows have column(s) {unknown} the raw table does not declare"
               if unknown else "")
            + " (the parser and its source's SPECS columns disagree; source_row is the "
              "parser's too)"))


def _insert(con: duckdb.DuckDBPyConnection, table: str, entry: ManifestEntry,
            release: date | None, rows, run_id: str, dataset: str | None = None) -> LoadResult:
    """Insert ``rows`` (a Parquet path, read by DuckDB, or a DataFrame) with their lineage, and
    the file's row of ``raw.load_log``, in one transaction."""
    loaded_at = datetime.now(timezone.utc)
    if isinstance(rows, Path):
        relation, params = "read_parquet(?)", [str(rows)]
    else:
        con.register("incoming_rows", rows)
        relation, params = "incoming_rows", []
    try:
        names = [d[0] for d in con.execute(f"select * from {relation} limit 0", params).description]
        _check_columns(con, table, entry, names)
        columns = ", ".join(f'"{c}"' for c in names)
        con.execute("begin")
        try:
            con.execute(f"delete from {table} where sha256 = ?", [entry.sha256])
            (count,) = con.execute(
                f"""insert into {table} ({columns}, landing_file, sha256, release_date, loaded_at)
                    select {columns}, ?, ?, ?, ? from {relation}""",
                [entry.path, entry.sha256, release, loaded_at, *params]).fetchone()
            con.execute("""insert into raw.load_log (source, raw_table, landing_file, sha256,
                               release_date, rows_loaded, run_id, loaded_at, dataset)
                           values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        [entry.source, table, entry.path, entry.sha256, release, count, run_id,
                         loaded_at, dataset])
            con.execute("commit")
        except (duckdb.ConstraintException, duckdb.ConversionException) as err:
            con.execute("rollback")
            raise LoadFailed(entry, DataError(entry.path, f"{table} constraints",
                                              f"{type(err).__name__}: {err}")) from err
        except Exception:
            con.execute("rollback")
            raise
    finally:
        if relation == "incoming_rows":
            con.unregister("incoming_rows")
    log.info("loaded %s rows of %s%s (release %s, %s) into %s", f"{count:,}", entry.source,
             f" {dataset}" if dataset else "", release or "undated", entry.path, table)
    return LoadResult(entry.source, entry.path, entry.sha256, release, count)
