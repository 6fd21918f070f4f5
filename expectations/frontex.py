"""Which frames the Frontex suites validate, and with which parameters.

The files under audit are those the run loaded (one new release, every release of an archive,
a correction), or, when nothing new was landed, the newest release already published (re-audited,
so a rerun proves the same). "Not collapsing" compares a file's row count with the nearest other
release.
"""
from __future__ import annotations

import csv
from pathlib import Path

from datetime import date

import duckdb

from expectations import audit
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


SOURCES = ("frontex",)
"""The sources (ingest.catalog) these checks are about."""


def _audited_files(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[tuple]:
    """(sha256, release date, landing file) of every Frontex file run ``run_id`` loaded (every
    release of an archive, a correction), oldest release first; when it loaded none, the newest
    release already loaded (re-audited, so a rerun proves the same)."""
    loaded = con.execute("""
        select sha256, any_value(release_date)::varchar, any_value(landing_file)
        from raw.load_log where source = 'frontex' and run_id = ?
        group by sha256 order by 2, max(loaded_at)""", [run_id or ""]).fetchall()
    if loaded:
        return loaded
    return con.execute("""
        select sha256, release_date::varchar, any_value(landing_file)
        from raw.frontex_detections
        group by sha256, release_date
        order by release_date desc, max(loaded_at) desc
        limit 1""").fetchall()


def _min_rows(con: duckdb.DuckDBPyConnection, sha: str, release_date: str) -> int:
    """The row count below which a file counts as collapsed: 90 % of the nearest other file,
    by release date (an earlier release first, else a later one: an archive landed out of
    order)."""
    nearest = con.execute("""
        with files as (
            select sha256, release_date, max(loaded_at) as loaded_at, count(*) as n
            from raw.frontex_detections group by all)
        select n from files where sha256 <> ?
        order by release_date > ?::date, abs(date_diff('day', release_date, ?::date)),
                 loaded_at desc
        limit 1""", [sha, release_date, release_date]).fetchone()
    return int(nearest[0] * COLLAPSE_RATIO) if nearest else 1


def _files(db: Path, run_id: str | None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        if not con.execute("""select count(*) from information_schema.tables
                              where table_schema = 'raw'
                                and table_name = 'frontex_detections'""").fetchone()[0]:
            return []
        return [(sha, release, landing_file, _min_rows(con, sha, release),
                 con.execute("select count(*) from raw.frontex_detections where sha256 = ?",
                             [sha]).fetchone()[0])
                for sha, release, landing_file in _audited_files(con, run_id)]


def _params(release_date: str) -> dict:
    return {"known_routes": known_routes(),
            "first_month_index": month_index(FIRST_MONTH),
            "release_month_index": month_index(date.fromisoformat(release_date))}


def _parts(rows: int) -> list[tuple[str, str, str]]:
    return audit.parts(rows, "route, border_type, nationality", "route, border type and nationality")


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw load of each file under audit (suffixed by its release when a run
    loaded several, so each has its own result). A file of more than ``CHUNK_ROWS`` rows is
    validated in parts, split by route, border type and nationality (so that a duplicated grain
    falls into one part), each part a validation of its own: memory stays bounded whatever the
    size of the file."""
    audited = _files(db, run_id)
    checks = []
    for sha, release_date, landing_file, min_rows, rows in audited:
        subject = f"raw.frontex_detections release {release_date} ({landing_file})"
        suffix = f"@{release_date}_{sha[:8]}" if len(audited) > 1 else ""
        for where, part_subject, part_suffix in _parts(rows):
            checks.append(Check(
                "frontex_raw_rows",
                f"""select route, border_type, nationality, month::timestamp as month,
                           {MONTH_INDEX} as month_index, detections, source_row
                    from raw.frontex_detections where sha256 = '{sha}'{where}""",
                subject + part_subject, _params(release_date),
                ("route", "border_type", "nationality", "month", "source_row"),
                files=(landing_file,), name_suffix=suffix + part_suffix))
        checks.append(Check(
            "frontex_raw_release",
            f"""select release_date, count(*) as rows, count(distinct month) as months_present,
                       date_diff('month', min(month), max(month)) + 1 as months_spanned,
                       count(distinct route) as routes
                from raw.frontex_detections where sha256 = '{sha}' group by release_date""",
            subject, {"min_rows": min_rows}, ("release_date",), files=(landing_file,),
            name_suffix=suffix))
    return checks


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on marts.fct_border_crossings after dbt build: the rows of each file under audit
    that is its release's current file (a superseded original has no rows there), and raw
    against the fact for every release."""
    audited = _files(db, run_id)
    if not audited:
        return []
    checks = []
    for sha, release_date, landing_file, _, rows in audited:
        suffix = f"@{release_date}_{sha[:8]}" if len(audited) > 1 else ""
        for where, part_subject, part_suffix in _parts(rows):
            checks.append(Check(
                "fct_border_crossings_rows",
                f"""select month::timestamp as month, {MONTH_INDEX} as month_index, route,
                           border_type, nationality,
                           release_date::timestamp as release_date, detections, route_key,
                           nationality_country_code, source_row
                    from marts.fct_border_crossings where sha256 = '{sha}'{where}""",
                f"marts.fct_border_crossings release {release_date} ({landing_file})"
                + part_subject, _params(release_date),
                ("month", "route", "border_type", "nationality", "source_row"),
                files=(landing_file,), name_suffix=suffix + part_suffix))
    return checks + [
        Check("fct_border_crossings_totals",
              """with raw as (
                     select release_date, sha256, count(*) as raw_rows,
                            sum(detections) as raw_detections
                     from raw.frontex_detections group by all),
                 fact as (
                     select release_date, sha256, count(*) as fact_rows,
                            sum(detections) as fact_detections
                     from marts.fct_border_crossings group by all),
                 releases as (select distinct release_date from raw)
                 select releases.release_date::varchar as release_date,
                        raw.raw_rows, raw.raw_detections, fact.fact_rows, fact.fact_detections
                 from releases
                 left join fact using (release_date)
                 left join raw on raw.sha256 = fact.sha256""",
              "raw.frontex_detections (each release's current file) against "
              "marts.fct_border_crossings, every release", {}, ("release_date",)),
    ]
