"""Which frames the funding suites validate, and with which parameters.

Raw: the Cohesion Open Data files of the latest load of each dataset (home-affairs funds only)
and the newest version of the commitments registry. Marts: the whole of
marts.fct_funding_disbursements (small: programmes and actions, not transactions).
"""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import duckdb

from expectations.audit import Check
from ingest.config import SEEDS_DIR

FUNDS_SEED = SEEDS_DIR / "funds.csv"
STAGES_SEED = SEEDS_DIR / "funding_stages.csv"
COUNTRIES_SEED = SEEDS_DIR / "country_codes.csv"

# A Cohesion Open Data snapshot restates every programme of the dataset (amounts are cumulative):
# a snapshot with less than nine tenths of the rows of the previous one of the same dataset is a
# short download (a page lost), not the data (issue 18).
SNAPSHOT_RATIO = 0.9

SOURCES = ("cohesion", "fts", "funding_registry")
"""The sources (ingest.catalog) these checks are about."""


def _seed_column(path: Path, column: str, where=lambda row: True) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return sorted(row[column] for row in csv.DictReader(fh) if where(row))


def _parameters() -> dict:
    return {"known_funds": _seed_column(FUNDS_SEED, "fund_code"),
            "known_stages": _seed_column(STAGES_SEED, "stage"),
            "member_states": _seed_column(COUNTRIES_SEED, "eurostat_code",
                                          lambda r: r["is_eu_member"] == "true")}


def _sql_list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    try:
        return con.execute(sql).fetchone()[0]
    except duckdb.CatalogException:  # the table does not exist yet
        return 0


def _latest_cohesion_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [sha for (sha,) in con.execute("""
        with loads as (
            select dataset, sha256, run_id, loaded_at from raw.load_log
            where raw_table = 'raw.cohesion_records'),
        latest as (select dataset, arg_max(run_id, loaded_at) as run_id from loads group by all)
        select sha256 from loads join latest using (dataset, run_id) order by 1""").fetchall()]


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw funding loads under audit (none when nothing is loaded)."""
    params = _parameters()
    checks = []
    with duckdb.connect(str(db), read_only=True) as con:
        files = _latest_cohesion_files(con) if _count(
            con, "select count(*) from raw.cohesion_records") else []
        registry = _count(con, "select count(*) from raw.funding_commitments")
        fts_files = [sha for (sha,) in con.execute("""
            select sha256 from raw.load_log where raw_table = 'raw.fts_commitments'
              and run_id = (select arg_max(run_id, loaded_at) from raw.load_log
                            where raw_table = 'raw.fts_commitments')""").fetchall()] if _count(
            con, "select count(*) from raw.fts_commitments") else []
    if files:
        checks.append(Check(
            "cohesion_raw_records",
            f"""select dataset_id, ms, cci, fund,
                       try_cast(json_extract_string(record, '$.eu_amount') as double)
                           as eu_amount_eur,
                       landing_file, source_row
                from raw.cohesion_records
                where sha256 in ({_sql_list(files)}) and fund in ('AMIF', 'BMVI', 'ISF')""",
            f"raw.cohesion_records, home-affairs funds, latest load ({len(files)} files)",
            params, ("landing_file", "source_row", "dataset_id", "ms", "fund")))
    if files:
        checks.append(Check(
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
            ("dataset", "landing_file", "rows_latest", "previous_file", "rows_previous"),
            sources=("cohesion",)))
    if fts_files:
        checks.append(Check(
            "fts_raw_commitments",
            f"""select fts_year, year, fund, beneficiary_name, budget_line_number, amount_eur,
                       landing_file, source_row
                from raw.fts_commitments where sha256 in ({_sql_list(fts_files)})""",
            f"raw.fts_commitments, latest load ({len(fts_files)} workbooks)",
            {**params, "first_fts_year": 2000, "last_fts_year": date.today().year},
            ("landing_file", "source_row", "fts_year", "beneficiary_name")))
    if registry:
        checks.append(Check(
            "funding_registry_raw",
            """select as_of_date, fund_code, action_title, stage, amount_eur, source, quote,
                      landing_file, source_row
               from raw.funding_commitments
               where sha256 = (select arg_max(sha256, loaded_at) from raw.funding_commitments)""",
            "raw.funding_commitments (newest version)", params,
            ("landing_file", "source_row", "action_title")))
    return checks


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on marts.fct_funding_disbursements (none when it is empty)."""
    with duckdb.connect(str(db), read_only=True) as con:
        if not _count(con, "select count(*) from marts.fct_funding_disbursements"):
            return []
    return [
        Check("fct_funding_disbursements_rows",
              """select fund_code, programme_or_action_key, country_label, stage, as_of_date,
                        source, amount_eur, is_complete_snapshot,
                        source not like 'registry:%'
                            or (citation_source is not null and citation_quote is not null)
                            as citation_present
                 from marts.fct_funding_disbursements""",
              "marts.fct_funding_disbursements", _parameters(),
              ("source", "fund_code", "programme_or_action_key", "stage", "as_of_date")),
        Check("fct_funding_paid_within_committed",
              """with latest as (
                     select fund_code, programme_or_action_key, country_label, stage, stage_group,
                            arg_max(amount_eur, as_of_date) as amount_eur
                     from marts.fct_funding_disbursements group by all)
                 select fund_code, programme_or_action_key, country_label,
                        max(amount_eur) filter (where stage = 'paid') as paid_eur,
                        max(amount_eur) filter (where stage_group = 'commitment')
                            as committed_eur
                 from latest group by all
                 having max(amount_eur) filter (where stage = 'paid') is not null""",
              "marts.fct_funding_disbursements, paid against committed per action", {},
              ("fund_code", "programme_or_action_key", "country_label")),
    ]
