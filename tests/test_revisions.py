"""Revisions and as-of, on a copy of the recorded build with a second Frontex release, a
correction of it, and a Eurostat file re-issued in a later run added to raw by hand: the revisions
marts (first value, previous vintage, size, correction flag), the as-of table macros before and
after each release and correction (from a fresh read-only connection), the quality history's
revision rows and the report's labels, and assert_eurostat_vintages_agree telling a later run's
correction from a same-run disagreement. Every expected number is computed here by hand from the
one cell changed."""
from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from pipeline import dbt, quality, report

RELEASE = date(2025, 6, 3)            # the recorded workbook
SECOND = date(2025, 7, 3)             # added here: the same cells, one revised
SECOND_FILE = "frontex/20250704T080000000000Z_aaaaaaaaaaaa.xlsx"     # landed 2025-07-04
CORRECTION_FILE = "frontex/20250710T080000000000Z_bbbbbbbbbbbb.xlsx"  # landed 2025-07-10
CELL = ("Central Mediterranean Route", "Sea", "Bangladesh", date(2025, 4, 1))
# Eurostat: the recorded SDMX 2.0 file of migr_asyappctza (undated) re-issued in a later run.
EUROSTAT_FIX = "eurostat/migr_asyappctza/20990101T000000000000Z_cccccccccccc.csv"  # landed 2099
SELECT = ["--select", "+path:models/marts/revisions", "fct_border_crossings", "current_revisions",
          "stg_eurostat__asylum_applicants", "assert_eurostat_vintages_agree"]


def add_frontex_release(con, landing_file, sha, release, change):
    """A file of ``release`` stating every cell of the recorded release, CELL changed by
    ``change``, and one month more (May 2025, a first publication)."""
    con.execute("""
        insert into raw.frontex_detections by name
        select * replace (
                   ?::varchar as landing_file, ?::varchar as sha256, ?::date as release_date,
                   detections + case when route = ? and border_type = ? and nationality = ?
                                          and month = ? then ? else 0 end as detections)
        from raw.frontex_detections where release_date = ?""",
                [landing_file, sha, release, *CELL, change, RELEASE])
    con.execute("""
        insert into raw.frontex_detections by name
        select * replace (?::varchar as landing_file, ?::varchar as sha256,
                          ?::date as release_date, date '2025-05-01' as month)
        from raw.frontex_detections
        where release_date = ? and month = date '2025-04-01'""",
                [landing_file, sha, release, RELEASE])


def add_eurostat_reissue(con, run_id, uk_2016):
    """The recorded SDMX 2.0 asylum file again (same format, undated: the same vintage), with
    UK 2016 (citizenship TOTAL, asylum applicants) set to ``uk_2016``, loaded by ``run_id``."""
    [(source_file,)] = con.execute("""select distinct landing_file from raw.eurostat_observations
                                      where dataset = 'migr_asyappctza'
                                        and source_format = 'sdmx_csv2'""").fetchall()
    con.execute("""
        insert into raw.eurostat_observations by name
        select * replace (
                   ?::varchar as landing_file, repeat('c', 64) as sha256,
                   loaded_at + interval 1 day as loaded_at,
                   case when time_period = '2016' and geo = 'UK' and citizen = 'TOTAL'
                             and dimensions = '{"age": "TOTAL", "asyl_app": "ASY_APP", "sex": "T", "unit": "PER"}'
                        then ? else obs_value end as obs_value)
        from raw.eurostat_observations where landing_file = ?""",
                [EUROSTAT_FIX, uk_2016, source_file])
    con.execute("""
        insert into raw.load_log by name
        select * replace (?::varchar as landing_file, repeat('c', 64) as sha256,
                          ?::varchar as run_id, loaded_at + interval 1 day as loaded_at)
        from raw.load_log where landing_file = ?""", [EUROSTAT_FIX, run_id, source_file])


@pytest.fixture(scope="module")
def db(built_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("revisions")
    copy = root / "migration.duckdb"  # the name the staging views were built under
    shutil.copyfile(built_db, copy)
    with duckdb.connect(str(copy)) as con:
        [(original,)] = con.execute("""select detections from raw.frontex_detections
                                       where route = ? and border_type = ? and nationality = ?
                                         and month = ?""", list(CELL)).fetchall()
        add_frontex_release(con, SECOND_FILE, "a" * 64, SECOND, 100)
        add_frontex_release(con, CORRECTION_FILE, "b" * 64, SECOND, 130)
        add_eurostat_reissue(con, "a later run", 40_000)
    dbt.build(copy, root, SELECT)
    return {"path": copy, "original": original, "root": root}


def q(path, sql, *params):
    with duckdb.connect(str(path), read_only=True) as con:  # a fresh read-only reader
        return con.execute(sql, list(params)).fetchall()


def test_frontex_vintages_in_release_then_correction_order(db):
    assert q(db["path"], """select release_date, correction_number, vintage_number, is_correction,
                                   is_current_correction, vintage_label, counts_from
                            from marts.rpt_border_crossings_vintages order by vintage_number""") == [
        (RELEASE, 1, 1, False, True, "2025-06-03", RELEASE),
        (SECOND, 1, 2, False, False, "2025-07-03", SECOND),
        (SECOND, 2, 3, True, True, "2025-07-03 correction 2", date(2025, 7, 10))]


def test_frontex_cell_revisions_against_the_previous_vintage(db):
    x = db["original"]
    rows = q(db["path"], """
        select release_date, correction_number, is_correction, change_type,
               previous_release_date, previous_correction_number, previous_detections,
               detections, revision, revision_number, first_release_date, first_detections,
               landing_file
        from marts.rpt_border_crossings_revisions
        where route = ? and border_type = ? and nationality = ? and month = ?
        order by vintage_number""", *CELL)
    assert rows == [
        (SECOND, 1, False, "revised", RELEASE, 1, x, x + 100, 100, 1, RELEASE, x, SECOND_FILE),
        (SECOND, 2, True, "revised", SECOND, 1, x + 100, x + 130, 30, 2, RELEASE, x,
         CORRECTION_FILE)]
    # Only that cell changed; May 2025 is a first publication in both files, never a revision.
    assert q(db["path"], "select count(*) from marts.rpt_border_crossings_revisions") == [(2,)]


def test_frontex_route_revisions_sum_the_cells(db):
    [(before,)] = q(db["path"], """select sum(detections) from marts.fct_border_crossings
                                   where release_date = ? and route = ? and month = ?""",
                    RELEASE, CELL[0], CELL[3])
    assert q(db["path"], """
        select vintage_label, previous_vintage_label, previous_detections, detections, revision,
               cells_revised, is_correction, first_detections, route_key
        from marts.rpt_border_crossings_route_revisions order by vintage_number""") == [
        ("2025-07-03", "2025-06-03", before, before + 100, 100, 1, False, before,
         "central_mediterranean"),
        ("2025-07-03 correction 2", "2025-07-03", before + 100, before + 130, 30, 1, True, before,
         "central_mediterranean")]


def test_fct_border_crossings_keeps_the_correction(db):
    assert q(db["path"], """select correction_number, detections from marts.fct_border_crossings
                            where release_date = ? and route = ? and border_type = ?
                              and nationality = ? and month = ?""", SECOND, *CELL) == [
        (2, db["original"] + 130)]


def vintage(release, correction) -> str:
    """A Frontex vintage as a failure message names it (as its vintage_label does)."""
    return f"release {release}" + (f" correction {correction}" if correction > 1 else "")


@pytest.mark.parametrize("as_of, release, correction, change", [
    (date(2025, 6, 3), RELEASE, 1, 0),      # the day of the first release
    (date(2025, 6, 30), RELEASE, 1, 0),
    (date(2025, 7, 3), SECOND, 1, 100),     # the second release, on its release date
    (date(2025, 7, 9), SECOND, 1, 100),     # the correction is not landed yet
    (date(2025, 7, 10), SECOND, 2, 130),    # landed that day: it counts
    (date(2030, 1, 1), SECOND, 2, 130),
])
def test_border_crossings_as_of(db, as_of, release, correction, change):
    rows = q(db["path"], """select release_date, correction_number, count(*),
                                   sum(detections) filter (where route = ? and border_type = ?
                                       and nationality = ? and month = ?),
                                   count(*) filter (where route_key is null
                                                      or nationality_country_code is null)
                            from marts.border_crossings_as_of(?::date) group by all""",
             *CELL, as_of)
    expected = vintage(release, correction)
    stood = [vintage(r[0], r[1]) for r in rows]
    assert len(rows) == 1, (
        f"as of {as_of} the warehouse should show {expected} (a vintage counts from its "
        f"counts_from day on), got {stood or 'nothing'} from border_crossings_as_of")
    months = 1 if release == SECOND else 0  # the second release adds May 2025
    [(got_release, got_correction, n, cell, unkeyed)] = rows
    [(april,)] = q(db["path"], """select count(*) from raw.frontex_detections
                                  where release_date = ? and month = date '2025-04-01'""",
                   RELEASE)
    assert (got_release, got_correction) == (release, correction), (
        f"as of {as_of} the warehouse should show {expected}, got {stood[0]}")
    assert cell == db["original"] + change, (
        f"as of {as_of}, {' / '.join(map(str, CELL))} should read {db['original'] + change:,} "
        f"(the recorded {db['original']:,} + {change}), got {cell}")
    assert unkeyed == 0, f"as of {as_of}, {unkeyed} rows have no route_key or nationality code"
    assert n == 173_460 + months * april, (
        f"as of {as_of}, {expected} should have {173_460 + months * april:,} rows (the recorded "
        f"release{' and May 2025' if months else ''}), got {n:,}")


def test_nothing_stood_before_the_first_release(db):
    rows = q(db["path"], """select release_date, correction_number, count(*)
                            from marts.border_crossings_as_of(DATE '2025-06-02') group by all""")
    assert rows == [], (
        f"as of 2025-06-02, the day before the first release, the warehouse should show "
        f"nothing, got {[f'{vintage(r[0], r[1])} ({r[2]:,} rows)' for r in rows]}")


def test_eurostat_reissue_in_a_later_run_is_a_correction(db):
    assert q(db["path"], """select vintage_number, source_format, is_correction, run_id
                            from marts.rpt_eurostat_vintages where dataset = 'migr_asyappctza'
                            order by vintage_number""") == [
        (1, "legacy_export", False, "fixture"), (2, "sdmx_csv2", False, "fixture"),
        (3, "sdmx_csv2", True, "a later run")]
    rows = q(db["path"], """
        select vintage_number, previous_vintage_label, previous_obs_value, obs_value, revision,
               is_correction, is_current_vintage, first_vintage_label, first_obs_value, cell_label
        from marts.rpt_eurostat_revisions
        where dataset = 'migr_asyappctza' and period = '2016' and geo = 'UK'
          and citizen = 'TOTAL' and dimensions like '%"asyl_app": "ASY_APP"%'
        order by vintage_number""")
    label = "2016 UK x TOTAL, age: Total, asyl_app: Asylum applicant, sex: Total, unit: Person"
    assert [(r[0], *r[2:9]) for r in rows] == [
        (2, 38_870, 39_855, 985, False, False, "2017-05-31", 38_870),
        (3, 39_855, 40_000, 145, True, True, "2017-05-31", 38_870)]
    assert rows[0][1] == "2017-05-31"
    assert rows[1][1].startswith("undated sdmx_csv2 file loaded ")
    assert {r[9] for r in rows} == {label}
    # Staging publishes the later run's file.
    assert q(db["path"], """select obs_value from staging.stg_eurostat__asylum_applicants
                            where period = '2016' and geo = 'UK' and citizen = 'TOTAL'
                              and applicant_type = 'ASY_APP'""") == [(40_000,)]


@pytest.mark.parametrize("as_of, expected", [
    (date(2017, 5, 30), None),       # before the legacy export
    (date(2017, 5, 31), 38_870),     # the legacy export's date
    (date(2098, 12, 31), 39_855),    # the undated SDMX file counts from its landing (today)
    (date(2099, 1, 1), 40_000),      # the correction, landed 2099-01-01
])
def test_eurostat_observations_as_of(db, as_of, expected):
    rows = q(db["path"], """select obs_value from marts.eurostat_observations_as_of(?::date)
                            where dataset = 'migr_asyappctza' and period = '2016' and geo = 'UK'
                              and citizen = 'TOTAL'
                              and dimensions = '{"age": "TOTAL", "asyl_app": "ASY_APP", "sex": "T", "unit": "PER"}'
                         """, as_of)
    assert rows == ([] if expected is None else [(expected,)]), (
        f"as of {as_of} the warehouse should show UK 2016 asylum applicants "
        f"{'as not yet published' if expected is None else f'as {expected:,}'}, got "
        f"{[r[0] for r in rows] or 'nothing'}")


def test_quality_revisions_come_from_the_marts_with_labels(db, tmp_path, monkeypatch):
    rows = quality.measure("t", db["path"])["revisions"]
    frontex = [r[1:] for r in rows if r[1] == "frontex"]
    [(before,)] = q(db["path"], """select sum(detections) from marts.fct_border_crossings
                                   where release_date = ? and route = ? and month = ?""",
                    RELEASE, CELL[0], CELL[3])
    assert frontex == [
        ("frontex", CELL[0], "2025-04", before, before + 100, 100, "2025-06-03", "2025-07-03",
         "Apr 2025 (1 of its cells revised)", False, before, "2025-06-03"),
        ("frontex", CELL[0], "2025-04", before + 100, before + 130, 30, "2025-07-03",
         "2025-07-03 correction 2",
         "Apr 2025 (1 of its cells revised, correction of release 2025-07-03)", True, before,
         "2025-06-03")]
    uk = [r for r in rows if r[1] == "eurostat" and r[3].startswith("2016 UK x TOTAL ")
          and '"asyl_app": "ASY_APP"' in r[3]]
    assert [(r[4], r[5], r[6], r[10], r[11]) for r in uk] == [(39_855, 40_000, 145, True, 38_870)]

    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "quality_history.duckdb"))
    quality.write("t", {"revisions": rows})
    with duckdb.connect(str(tmp_path / "quality_history.duckdb"), read_only=True) as con:
        shown = report.revisions(con, "t")
    cells = {r["cell"] for r in shown}
    assert "Apr 2025 (1 of its cells revised, correction of release 2025-07-03)" in cells
    assert "yes, same release re-issued" in {r["correction"] for r in shown}
    assert ("2016 UK x TOTAL, age: Total, asyl_app: Asylum applicant, sex: Total, unit: Person"
            in cells)
    assert not any('{"age"' in c for c in cells)  # no raw JSON keys


def test_same_run_disagreement_fails_but_a_later_run_does_not(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    with duckdb.connect(str(copy)) as con:
        add_eurostat_reissue(con, "fixture", 40_000)  # the same run as the original file
    with pytest.raises(dbt.DbtBuildFailed) as caught:
        dbt.build(copy, tmp_path, ["--select", "assert_eurostat_vintages_agree"])
    assert "assert_eurostat_vintages_agree" in str(caught.value)
    assert q(copy, """select time_period, geo, citizen, run_id
                      from audit_dbt.assert_eurostat_vintages_agree""") == [
        ("2016", "UK", "TOTAL", "fixture")]
