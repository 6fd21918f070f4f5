"""Which frames the Cohesion Open Data suites validate: the files of the latest load of each
dataset (home-affairs funds only), and each dataset's latest snapshot against the previous one.
The funding mart's checks are ``expectations.funding``'s."""
from __future__ import annotations

from pathlib import Path

import duckdb

from ingest import duck

from expectations.audit import Check, count_rows, seed_parameters, sql_list

# A Cohesion Open Data snapshot restates every programme of the dataset (amounts are cumulative):
# a snapshot with less than nine tenths of the rows of the previous one of the same dataset is a
# short download (a page lost), not the data (issue 18).
SNAPSHOT_RATIO = 0.9


def _latest_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [sha for (sha,) in con.execute("""
        with loads as (
            select dataset, sha256, run_id, loaded_at from raw.load_log
            where raw_table = 'raw.cohesion_records'),
        latest as (select dataset, arg_max(run_id, loaded_at) as run_id from loads group by all)
        select sha256 from loads join latest using (dataset, run_id) order by 1""").fetchall()]


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw Cohesion Open Data loads (none when nothing is loaded)."""
    with duck.connect(str(db), read_only=True) as con:
        files = _latest_files(con) if count_rows(
            con, "select count(*) from raw.cohesion_records") else []
    if not files:
        return []
    return [
        Check(
            "cohesion_raw_records",
            f"""select dataset_id, ms, cci, fund,
                       try_cast(json_extract_string(record, '$.eu_amount') as double)
                           as eu_amount_eur,
                       landing_file, source_row
                from raw.cohesion_records
                where sha256 in ({sql_list(files)}) and fund in ('AMIF', 'BMVI', 'ISF')""",
            f"raw.cohesion_records, home-affairs funds, latest load ({len(files)} files)",
            seed_parameters(), ("landing_file", "source_row", "dataset_id", "ms", "fund")),
        Check(
            "cohesion_raw_snapshots",
            f"""with snapshots as (
                    select dataset, run_id, max(loaded_at) as loaded_at,
                           string_agg(landing_file, ', ' order by landing_file) as landing_files,
                           sum(rows_loaded) as rows_loaded
                    from raw.load_log where raw_table = 'raw.cohesion_records' group by all),
                ranked as (
                    select *, row_number() over (partition by dataset order by loaded_at desc)
                        as recency
                    from snapshots)
                select latest.dataset, latest.landing_files as landing_file,
                       latest.rows_loaded::bigint as rows_latest,
                       previous.landing_files as previous_file,
                       previous.rows_loaded::bigint as rows_previous,
                       coalesce(ceil(previous.rows_loaded * {SNAPSHOT_RATIO}), 0)::bigint
                           as min_rows
                from ranked as latest
                left join ranked as previous
                    on previous.dataset = latest.dataset and previous.recency = 2
                where latest.recency = 1 order by 1""",
            "raw.load_log, the latest snapshot of each Cohesion Open Data dataset against the "
            "previous one", {},
            ("dataset", "landing_file", "rows_latest", "previous_file", "rows_previous")),
    ]


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    return []
