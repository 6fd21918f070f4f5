"""Which frames the Eurostat suites validate, and with which parameters.

The files under audit are those of the latest load of each dataset (``raw.load_log``): the ones
this run loaded or, when nothing new was landed, the ones loaded last (re-audited, so a rerun
proves the same). Older files were audited when they were loaded.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import duckdb

from expectations import audit
from expectations.audit import Check, sql_list
from ingest import duck
from ingest.sources.eurostat import codes as eurostat_codes

# A new vintage of a file restates every period and adds the newest: it may lose a few
# observations (a confidential cell, a discontinued aggregate), never a twentieth of them.
# Compared file by file with the previous vintage of the same extract (issue 18): comparing a
# run's load with the dataset's previous load, as before, set a re-issued small extract against
# the big one (a false alarm) and a big file against a small extract loaded in between (half
# its rows passed).
COLLAPSE_RATIO = 0.95
# The datasets whose every observation must reach fct_returns (the others are context).
RETURNS_DATASETS = ("migr_eiord", "migr_eiord1", "migr_eirtn", "migr_eirtn1")
FACT_MEASURES = ("ordered_to_leave", "returned", "returned_to_third_country",
                 "returned_voluntarily", "returned_enforced", "returned_assisted",
                 "returned_not_assisted")

def _latest_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """sha256 of every Eurostat file of the latest load of its dataset."""
    return [sha for (sha,) in con.execute("""
        with loads as (
            select dataset, sha256, run_id, loaded_at from raw.load_log
            where raw_table = 'raw.eurostat_observations'),
        latest as (select dataset, arg_max(run_id, loaded_at) as run_id from loads group by all)
        select sha256 from loads join latest using (dataset, run_id) order by 1""").fetchall()]


def _extracts() -> dict[str, str]:
    """Landing file -> the extract it is a vintage of: the last part of the address it was
    fetched from (the API's dataset code live; the file name of a replayed export). A file the
    manifest does not list is its own extract."""
    from ingest.config import settings
    from ingest.landing import Landing

    try:
        entries = Landing(settings().landing_dir).entries("eurostat")
    except (OSError, ValueError):
        return {}
    return {e.path: PurePosixPath(urlparse(e.url).path).name or e.url for e in entries}


def _loads_sql() -> str:
    """One row per file of the latest load of each dataset, with the previous vintage of the
    same extract (the newest file of it loaded in an earlier run) and its row count."""
    pairs = ", ".join(f"('{k.replace(chr(39), chr(39) * 2)}', '{v.replace(chr(39), chr(39) * 2)}')"
                      for k, v in sorted(_extracts().items()))
    extracts = (f"select * from (values {pairs}) t(landing_file, extract)" if pairs else
                "select null::varchar as landing_file, null::varchar as extract where false")
    return f"""
        with extracts as ({extracts}),
        files as (
            select l.dataset, l.landing_file, coalesce(x.extract, l.landing_file) as extract,
                   l.run_id, l.loaded_at, l.rows_loaded
            from raw.load_log l left join extracts x using (landing_file)
            where l.raw_table = 'raw.eurostat_observations'),
        latest_run as (select dataset, arg_max(run_id, loaded_at) as run_id
                       from files group by all),
        latest as (select files.* from files join latest_run using (dataset, run_id)),
        previous as (
            select l.dataset, l.landing_file, arg_max(p.landing_file, p.loaded_at) as previous_file,
                   arg_max(p.rows_loaded, p.loaded_at) as rows_previous
            from latest l join files p
              on p.dataset = l.dataset and p.extract = l.extract and p.run_id <> l.run_id
             and p.loaded_at < l.loaded_at
            group by all)
        select l.dataset, l.extract, l.landing_file, l.rows_loaded as rows_latest,
               p.previous_file, p.rows_previous,
               coalesce(ceil(p.rows_previous * {COLLAPSE_RATIO}), 0)::bigint as min_rows
        from latest l left join previous p using (dataset, landing_file)
        order by l.dataset, l.extract"""


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def _scope(db: Path) -> tuple[list[str], bool]:
    with duck.connect(str(db), read_only=True) as con:
        if not _has_table(con, "raw", "eurostat_observations"):
            return [], False
        return _latest_files(con), bool(con.execute(
            "select count(*) from raw.eurostat_published_figures").fetchone()[0])


def _code_parameters() -> dict:
    flags = "".join(sorted(eurostat_codes.known_flags()))
    return {"known_country_codes": sorted(eurostat_codes.known_country_codes()),
            "known_datasets": sorted(eurostat_codes.datasets()),
            "flag_regex": f"^[{flags}]+$",
            "known_conf_status": sorted(eurostat_codes.known_conf_status())}


def _rows(db: Path, files: list[str]) -> int:
    with duck.connect(str(db), read_only=True) as con:
        return con.execute(f"""select count(*) from raw.eurostat_observations
                               where sha256 in ({sql_list(files)})""").fetchone()[0]


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw Eurostat loads under audit (none when nothing is loaded)."""
    files, published = _scope(db)
    checks = []
    params = _code_parameters()
    if files:
        # Over CHUNK_ROWS rows, validated in parts split by the suite's grain (memory bounded).
        for where, part_subject, part_suffix in audit.parts(
                _rows(db, files), "landing_file, dataset, freq, time_period, geo, citizen, dimensions",
                "the observation's key"):
            checks.append(Check(
                "eurostat_raw_observations",
                f"""select dataset, freq, time_period, geo, citizen, dimensions, obs_value,
                           obs_flag, conf_status, landing_file, source_row
                    from raw.eurostat_observations where sha256 in ({sql_list(files)}){where}""",
                f"raw.eurostat_observations, latest load of each dataset ({len(files)} files)"
                + part_subject, params,
                ("landing_file", "source_row", "dataset", "time_period", "geo", "citizen"),
                name_suffix=part_suffix))
    if files:
        checks.append(Check(
            "eurostat_raw_loads", _loads_sql(),
            "raw.load_log, each file of the latest load of a Eurostat dataset against the "
            "previous vintage of the same extract", {},
            ("dataset", "landing_file", "rows_latest", "previous_file", "rows_previous")))
    if published:
        checks.append(Check(
            "eurostat_raw_published_figures",
            """select period, geo, citizen, indicator, value, source_url,
                      case when indicator in ('ordered_to_leave', 'returned',
                                              'returned_to_third_country') then value end
                          as level_value,
                      landing_file, source_row
               from raw.eurostat_published_figures
               where sha256 = (select arg_max(sha256, loaded_at)
                               from raw.eurostat_published_figures)""",
            "raw.eurostat_published_figures (newest file)", params,
            ("landing_file", "source_row", "period", "geo", "indicator")))
    return checks


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on marts.fct_returns after dbt build (none when no Eurostat data is loaded)."""
    files, _ = _scope(db)
    with duck.connect(str(db), read_only=True) as con:
        if not files or not _has_table(con, "marts", "fct_returns"):
            return []
    return [
        Check("fct_returns_rows",
              r"""select period, period_grain, geo, citizen, measure, persons, geo_country_code,
                        citizen_country_code, (persons is null) = is_missing as missing_consistent,
                        coalesce(case period_grain
                            when 'year' then regexp_matches(period, '^\d{4}$')
                                and period_start = make_date(try_cast(period as integer), 1, 1)
                            when 'quarter' then regexp_matches(period, '^\d{4}-Q[1-4]$')
                                and period_start = make_date(try_cast(left(period, 4) as integer),
                                                             3 * try_cast(right(period, 1) as integer)
                                                             - 2, 1)
                        end, false) as grain_consistent,
                        dataset, source_row
                 from marts.fct_returns""",
              "marts.fct_returns", {"known_measures": list(FACT_MEASURES)},
              ("period", "geo", "citizen", "measure", "dataset", "source_row")),
        # The rule (staging's filters and the measure mapping) lives in dbt:
        # models/quality/current_returns_totals.sql; the suite expects its two sides equal.
        Check("fct_returns_totals",
              """select dataset, raw_cells, cells_in_fact, raw_persons, fact_persons
                 from quality.current_returns_totals order by dataset""",
              "staging's current Eurostat return observations against marts.fct_returns "
              "(quality.current_returns_totals)", {},
              ("dataset",)),
    ]
