"""Which frames the Frontex suites validate, and with which parameters.

The files under audit are those the run loaded (one new release, every release of an archive,
a correction), or, when nothing new was landed, the newest release already published (re-audited,
so a rerun proves the same). "Not collapsing" compares a file's row count with the nearest
earlier release (or the other file of its own release).

Completeness (issue 18), per file under audit:

- ``frontex_raw_release``: the release date is not after today, nor more than
  ``WH_FRONTEX_RELEASE_LAG_DAYS`` (150) after the first day of the newest month;
- ``frontex_raw_newest_month``: the newest month has a count for every row (route x border type
  x nationality) that had one the month before, or in that month of the previous release; the
  recorded workbook has no empty cell at all (0 of 173,460), so at most one row, or 0.5 % of
  them, may lack it;
- against the previous release (the nearest earlier file, when it is at most
  ``COMPARABLE_DAYS`` away: consecutive monthly releases, or a correction):
  ``frontex_raw_keys``, the rows (keys) of the previous release are kept, at most 1.5 % lost
  (one nationality renamed across every route and border type: 11 of the recorded 885 rows);
  ``frontex_raw_changes``, total detections over the months both cover move at most
  ``WH_SUSPICIOUS_CHANGE_SHARE`` (0.05), else the file is held as suspicious until accepted by
  hand (``python -m pipeline.run readmit FILE --accept-suspicious``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from expectations import audit
from expectations.audit import Check
from ingest import duck
from ingest.config import SEEDS_DIR, settings

# Frontex's series starts in January 2009; an earlier month means a misread header.
FIRST_MONTH = date(2009, 1, 1)
# A release may drop a few rows (nationalities regrouped), never a tenth of them.
COLLAPSE_RATIO = 0.9
# Releases compared cell by cell (keys kept, totals moved) when at most this many days apart:
# Frontex publishes monthly, so this is consecutive releases (one or two missed) and corrections.
# Releases further apart (an archive of yearly snapshots) are compared by row count only.
COMPARABLE_DAYS = 120
# Rows (route x border type x nationality) of the previous release that a release may lose: one
# nationality renamed (Turkey -> Türkiye) loses one row per route and border type, at most 11
# of the recorded release's 885 (Somalia, Sudan, Syria ... appear in 11): 1.5 % allows that.
KEYS_LOST_SHARE = 0.015
# The newest month may lack a count in at most one row, or this share of the rows expected to
# have one: the recorded release has no empty cell in any month (zeros are written as 0).
NEWEST_MONTH_GAP_SHARE = 0.005
NEWEST_MONTH_GAP_ROWS = 1
# Days from the first day of the newest month to the release date (WH_FRONTEX_RELEASE_LAG_DAYS,
# declared in this folder's __init__): the recorded release is 63 days after April 2025; a release
# much later than its data is a misread date (or stale data). The share of total detections
# (months both releases cover) a release may move against the previous one before it is held as
# suspicious is WH_SUSPICIOUS_CHANGE_SHARE (ingest.config).
BIGGEST_CELLS = 3
ROUTES_SEED = SEEDS_DIR / "frontex_routes.csv"


# GX compares dates element by element in Python (12 s for 5M rows, see ``make bench``);
# months are checked as an integer index that DuckDB computes and GX compares vectorised.
MONTH_INDEX = "year(month) * 12 + month(month) - 1"


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def known_routes() -> list[str]:
    """The routes of dim_route (the seed), the one list of routes in the project."""
    with ROUTES_SEED.open(encoding="utf-8") as fh:
        return [row["route"] for row in csv.DictReader(fh)]


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


def _nearest(con: duckdb.DuckDBPyConnection, sha: str, release_date: str) -> tuple | None:
    """(sha256, release date, landing file, rows) of the nearest earlier file, by release date:
    the other file of the same release (a correction) or the latest earlier release. Never a
    later release: a release covers the months up to its own, so an archive release backfilled
    beside (or after) a newer one would always look collapsed against it (a July 2018 release has
    113 months, the June 2025 one 196). The oldest release loaded has nothing to compare with."""
    return con.execute("""
        with files as (
            select sha256, release_date, any_value(landing_file) as landing_file,
                   max(loaded_at) as loaded_at, count(*) as n
            from raw.frontex_detections group by sha256, release_date)
        select sha256, release_date::varchar, landing_file, n from files
        where sha256 <> ? and release_date <= ?::date
        order by release_date desc, loaded_at desc
        limit 1""", [sha, release_date]).fetchone()


@dataclass(frozen=True)
class AuditedFile:
    sha: str
    release_date: str
    landing_file: str
    rows: int
    min_rows: int
    """The row count below which the file counts as collapsed: 90 % of the nearest earlier file."""
    previous: tuple | None
    """(sha256, release date, landing file) of the release it is compared with cell by cell:
    the nearest earlier file when at most COMPARABLE_DAYS away, else None."""


def _files(db: Path, run_id: str | None) -> list[AuditedFile]:
    with duck.connect(str(db), read_only=True) as con:
        if not con.execute("""select count(*) from information_schema.tables
                              where table_schema = 'raw'
                                and table_name = 'frontex_detections'""").fetchone()[0]:
            return []
        out = []
        for sha, release, landing_file in _audited_files(con, run_id):
            nearest = _nearest(con, sha, release)
            rows = con.execute("select count(*) from raw.frontex_detections where sha256 = ?",
                               [sha]).fetchone()[0]
            comparable = nearest is not None and abs(
                (date.fromisoformat(nearest[1]) - date.fromisoformat(release)).days
            ) <= COMPARABLE_DAYS
            out.append(AuditedFile(sha, release, landing_file, rows,
                                   int(nearest[3] * COLLAPSE_RATIO) if nearest else 1,
                                   nearest[:3] if comparable else None))
        return out


def _params(release_date: str) -> dict:
    return {"known_routes": known_routes(),
            "first_month_index": month_index(FIRST_MONTH),
            "release_month_index": month_index(date.fromisoformat(release_date))}


def _parts(rows: int) -> list[tuple[str, str, str]]:
    return audit.parts(rows, "route, border_type, nationality", "route, border type and nationality")


def _newest_month_sql(f: AuditedFile) -> str:
    """One row per key (route x border type x nationality) of the file expected to have a count
    in its newest month: it had one the month before, or in that month of the previous release;
    ``newest_detections`` is NULL where the newest month's cell is empty."""
    from_previous = ""
    if f.previous is not None:
        from_previous = f"""
            union all
            select p.route, p.border_type, p.nationality, 'release {f.previous[1]}'
            from raw.frontex_detections p
            semi join keys using (route, border_type, nationality)
            cross join newest
            where p.sha256 = '{f.previous[0]}' and p.month = newest.m"""
    return f"""
        with f as (select route, border_type, nationality, month, detections
                   from raw.frontex_detections where sha256 = '{f.sha}'),
        newest as (select max(month) as m from f),
        keys as (select distinct route, border_type, nationality from f),
        expected as (
            select route, border_type, nationality, 'the month before' as had_a_count_in
            from f cross join newest where f.month = newest.m - interval 1 month{from_previous})
        select e.route, e.border_type, e.nationality, strftime(newest.m, '%Y-%m') as month,
               string_agg(distinct e.had_a_count_in, ' and ' order by e.had_a_count_in desc)
                   as had_a_count_in,
               any_value(f.detections) as newest_detections
        from expected e cross join newest
        left join f on f.route = e.route and f.border_type = e.border_type
                   and f.nationality = e.nationality and f.month = newest.m
        group by all"""


def _keys_sql(f: AuditedFile) -> str:
    """One row per key of the previous release, with the file's detections for it (NULL: the
    file lost that row)."""
    psha, prelease, _ = f.previous
    return f"""
        with f as (select route, border_type, nationality, sum(detections) as detections
                   from raw.frontex_detections where sha256 = '{f.sha}' group by all),
        p as (select route, border_type, nationality, sum(detections) as previous_detections
              from raw.frontex_detections where sha256 = '{psha}' group by all)
        select p.route, p.border_type, p.nationality, '{prelease}' as previous_release,
               p.previous_detections::bigint as previous_detections,
               f.detections::bigint as detections_in_release
        from p left join f on f.route = p.route and f.border_type = p.border_type
                          and f.nationality = p.nationality"""


def _changes_sql(f: AuditedFile, accepted: bool) -> str:
    """One row: total detections of the file and of the previous release over the months both
    cover, the share it moved, and the cells that moved most (a cell missing on one side counts
    as no detections, as in the revision marts). ``held_share`` is 0 once accepted by hand."""
    psha, prelease, _ = f.previous
    change = "(after_total - before_total) / nullif(before_total, 0)"
    flag = str(accepted).lower()
    return f"""
        with cur as (select route, border_type, nationality, month, detections
                     from raw.frontex_detections where sha256 = '{f.sha}'),
        prev as (select route, border_type, nationality, month, detections
                 from raw.frontex_detections where sha256 = '{psha}'),
        common as (select distinct month from cur intersect select distinct month from prev),
        cells as (
            select route, border_type, nationality, month,
                   coalesce(prev.detections, 0) as before, coalesce(cur.detections, 0) as after
            from (select * from cur where month in (select month from common)) cur
            full join (select * from prev where month in (select month from common)) prev
                using (route, border_type, nationality, month)),
        totals as (
            select min(month) as first_month, max(month) as last_month,
                   sum(before)::bigint as before_total, sum(after)::bigint as after_total
            from cells),
        biggest as (
            select format('{{}} / {{}} / {{}} {{}}: {{:,}} -> {{:,}}', route, border_type,
                          nationality, strftime(month, '%b %Y'), before, after) as cell,
                   row_number() over (order by abs(after - before) desc, route, border_type,
                                      nationality, month) as rank
            from cells where after <> before
            order by rank limit {BIGGEST_CELLS})
        select '{f.release_date}' as release_date, '{prelease}' as previous_release_date,
               strftime(first_month, '%Y-%m') || ' to ' || strftime(last_month, '%Y-%m')
                   as months_compared,
               before_total as previous_total, after_total as new_total,
               round({change}, 4) as change_share,
               {flag} as accepted_by_hand,
               case when {flag} then 0
                    else round(abs(coalesce({change},
                                            case when after_total > 0 then 1 else 0 end)), 4)
               end as held_share,
               coalesce((select string_agg(cell, '; ' order by rank) from biggest), 'none')
                   as biggest_cells
        from totals"""


def _sql_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _computed_once(db: Path, sql: str) -> tuple[str, dict]:
    """``sql``'s one row, computed now, as a literal query (the frame the check validates) and as
    a dict: a comparison of two whole releases is run once, not once per column GX reads."""
    with duck.connect(str(db), read_only=True) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone()))
    return ("select " + ", ".join(f"{_sql_value(v)} as {k}" for k, v in row.items()), row)


def _changes_subject(row: dict, f: AuditedFile) -> str:
    """What the suspicious check is about, with its evidence (the error's first line, and the
    reason the file is rejected with, start with it)."""
    months, before, after = row["months_compared"], row["previous_total"], row["new_total"]
    share = row["change_share"]
    moved = (f"{after or 0:,} detections against {before or 0:,}"
             + (f" ({share:+.1%})" if share is not None else "") + f" over {months}"
             if months else "no month in common")
    return (f"Frontex release {f.release_date} ({f.landing_file}) against release "
            f"{f.previous[1]} ({f.previous[2]}): {moved}")


def _mostly(expected: int, allowed: int) -> float:
    """GX's ``mostly`` for at most ``allowed`` failing rows of ``expected``."""
    return 1.0 if expected <= 0 else max(0.0, 1.0 - allowed / expected)


def _count(db: Path, sql: str) -> int:
    with duck.connect(str(db), read_only=True) as con:
        return con.execute(f"select count(*) from ({sql})").fetchone()[0]


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw load of each file under audit (suffixed by its release when a run
    loaded several, so each has its own result). A file of more than ``CHUNK_ROWS`` rows is
    validated in parts, split by route, border type and nationality (so that a duplicated grain
    falls into one part), each part a validation of its own: memory stays bounded whatever the
    size of the file. Completeness (the newest month, the rows and totals of the previous
    release, the release date) is computed in DuckDB into a few rows per file."""
    audited = _files(db, run_id)
    checks = []
    accepted = audit.accepted_suspicious() if any(f.previous for f in audited) else set()
    today = date.today().isoformat()
    for f in audited:
        sha, release_date, landing_file = f.sha, f.release_date, f.landing_file
        subject = f"raw.frontex_detections release {release_date} ({landing_file})"
        suffix = f"@{release_date}_{sha[:8]}" if len(audited) > 1 else ""
        for where, part_subject, part_suffix in _parts(f.rows):
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
                       count(distinct route) as routes,
                       strftime(max(month), '%Y-%m') as newest_month,
                       date_diff('day', date '{today}', release_date) as days_after_today,
                       date_diff('day', max(month), release_date) as days_after_newest_month
                from raw.frontex_detections where sha256 = '{sha}' group by release_date""",
            subject, {"min_rows": f.min_rows,
                      "max_release_lag_days": settings().frontex_release_lag_days},
            ("release_date", "newest_month", "days_after_newest_month"),
            files=(landing_file,), name_suffix=suffix))
        sql = _newest_month_sql(f)
        expected = _count(db, sql)
        checks.append(Check(
            "frontex_raw_newest_month", sql,
            f"{subject}, newest month", {"newest_month_mostly": _mostly(
                expected, max(NEWEST_MONTH_GAP_ROWS, int(expected * NEWEST_MONTH_GAP_SHARE)))},
            ("route", "border_type", "nationality", "month", "had_a_count_in"),
            files=(landing_file,), name_suffix=suffix))
        if f.previous is None:
            continue
        against = f"{subject} against release {f.previous[1]} ({f.previous[2]})"
        sql = _keys_sql(f)
        previous_keys = _count(db, sql)
        checks.append(Check(
            "frontex_raw_keys", sql, against,
            {"keys_kept_mostly": _mostly(previous_keys, int(previous_keys * KEYS_LOST_SHARE))},
            ("route", "border_type", "nationality", "previous_release", "previous_detections"),
            files=(landing_file,), name_suffix=suffix))
        sql, row = _computed_once(db, _changes_sql(f, sha in accepted))
        checks.append(Check(
            "frontex_raw_changes", sql, _changes_subject(row, f),
            {"max_change_share": settings().suspicious_change_share},
            ("release_date", "previous_release_date", "months_compared", "previous_total",
             "new_total", "change_share", "biggest_cells"),
            files=(landing_file,), name_suffix=suffix, suspicious=True))
    return checks


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on marts.fct_border_crossings after dbt build: the rows of each file under audit
    that is its release's current file (a superseded original has no rows there), and raw
    against the fact for every release."""
    audited = _files(db, run_id)
    if not audited:
        return []
    checks = []
    for f in audited:
        sha, release_date, landing_file = f.sha, f.release_date, f.landing_file
        suffix = f"@{release_date}_{sha[:8]}" if len(audited) > 1 else ""
        for where, part_subject, part_suffix in _parts(f.rows):
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
