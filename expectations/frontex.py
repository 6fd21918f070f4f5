"""Which frames the Frontex suites validate, and with which parameters.

The release under audit is the newest one in ``raw.frontex_detections``: the one this run loaded,
or, when nothing new was landed, the one already published (re-audited, so a rerun proves the
same). "Not collapsing" compares its row count with the release loaded before it.
"""
from __future__ import annotations

import csv
from pathlib import Path

from datetime import date

import duckdb

from expectations.audit import Check
from ingest.config import REPO_ROOT

# Frontex's series starts in January 2009; an earlier month means a misread header.
FIRST_MONTH = date(2009, 1, 1)
# A release may drop a few rows (nationalities regrouped), never a tenth of them.
COLLAPSE_RATIO = 0.9
ROUTES_SEED = REPO_ROOT / "dbt_project" / "seeds" / "frontex_routes.csv"


# GX compares dates element by element in Python (12 s for 5M rows, see ``make bench``);
# months are checked as an integer index that DuckDB computes and GX compares vectorised.
MONTH_INDEX = "year(month) * 12 + month(month) - 1"


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def known_routes() -> list[str]:
    """The routes of dim_route (the seed), the one list of routes in the project."""
    with ROUTES_SEED.open(encoding="utf-8") as fh:
        return [row["route"] for row in csv.DictReader(fh)]


def _audited_release(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str] | None:
    return con.execute("""
        select sha256, release_date::varchar, any_value(landing_file)
        from raw.frontex_detections
        group by sha256, release_date
        order by release_date desc, max(loaded_at) desc
        limit 1""").fetchone()


def _min_rows(con: duckdb.DuckDBPyConnection, sha: str) -> int:
    """The row count below which the release under audit counts as collapsed."""
    previous = con.execute("""
        with releases as (
            select sha256, release_date, max(loaded_at) as loaded_at, count(*) as n
            from raw.frontex_detections group by all)
        select n from releases
        where sha256 <> ? order by release_date desc, loaded_at desc limit 1""", [sha]).fetchone()
    return int(previous[0] * COLLAPSE_RATIO) if previous else 1


def _release(db: Path):
    with duckdb.connect(str(db), read_only=True) as con:
        found = _audited_release(con)
        if found is None:
            return None
        sha, release_date, landing_file = found
        return sha, release_date, landing_file, _min_rows(con, sha)


def raw_checks(db: Path) -> list[Check]:
    """Checks on the raw load of the release under audit."""
    release = _release(db)
    if release is None:
        return []
    sha, release_date, landing_file, min_rows = release
    subject = f"raw.frontex_detections release {release_date} ({landing_file})"
    params = {"min_rows": min_rows, "known_routes": known_routes(),
              "first_month_index": month_index(FIRST_MONTH),
              "release_month_index": month_index(date.fromisoformat(release_date))}
    return [
        Check("frontex_raw_rows",
              f"""select route, border_type, nationality, month::timestamp as month,
                         {MONTH_INDEX} as month_index, detections, source_row
                  from raw.frontex_detections where sha256 = '{sha}'""",
              subject, params, ("route", "border_type", "nationality", "month", "source_row")),
        Check("frontex_raw_release",
              f"""select release_date, count(distinct month) as months_present,
                         date_diff('month', min(month), max(month)) + 1 as months_spanned,
                         count(distinct route) as routes
                  from raw.frontex_detections where sha256 = '{sha}' group by release_date""",
              subject, {}, ("release_date",)),
    ]


def mart_checks(db: Path) -> list[Check]:
    """Checks on marts.fct_border_crossings after dbt build."""
    release = _release(db)
    if release is None:
        return []
    sha, release_date, landing_file, min_rows = release
    params = {"min_rows": min_rows, "known_routes": known_routes(),
              "first_month_index": month_index(FIRST_MONTH),
              "release_month_index": month_index(date.fromisoformat(release_date))}
    return [
        Check("fct_border_crossings_rows",
              f"""select month::timestamp as month, {MONTH_INDEX} as month_index, route,
                         border_type, nationality,
                         release_date::timestamp as release_date, detections, route_key,
                         nationality_country_key, source_row
                  from marts.fct_border_crossings where sha256 = '{sha}'""",
              f"marts.fct_border_crossings release {release_date} ({landing_file})", params,
              ("month", "route", "border_type", "nationality", "source_row")),
        Check("fct_border_crossings_totals",
              """with raw as (
                     select release_date, count(*) as raw_rows, sum(detections) as raw_detections
                     from raw.frontex_detections group by release_date),
                 fact as (
                     select release_date, count(*) as fact_rows, sum(detections) as fact_detections
                     from marts.fct_border_crossings group by release_date)
                 select coalesce(raw.release_date, fact.release_date)::varchar as release_date,
                        raw_rows, raw_detections, fact_rows, fact_detections
                 from raw full outer join fact using (release_date)""",
              "raw.frontex_detections against marts.fct_border_crossings, every release", {},
              ("release_date",)),
    ]
