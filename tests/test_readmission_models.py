"""Readmission cooperation on the recorded registry, Frontex release and Eurostat extracts,
built once by the real loader and a real ``dbt build`` (whose unit tests cover the interval
logic on small registries: agreement signed then in force, a measure adopted then lifted,
month-precision dates), and the snapshot keeping an edited event's history."""
from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from pipeline import dbt


@pytest.fixture(scope="module")
def con(built_db):
    with duckdb.connect(str(built_db), read_only=True) as connection:
        yield connection


def fact(con, iso2, year):
    cur = con.execute("""select * from marts.fct_readmission_cooperation
                         where country_code = ? and year = ?""", [iso2, year])
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    assert len(rows) == 1, rows
    return rows[0]


def test_georgia_agreement_in_force_in_2012(con):
    row = fact(con, "GE", 2012)
    assert (row["readmission_instrument"], row["instrument_since"]) == ("agreement",
                                                                         date(2011, 3, 1))
    # Its citizens, EU28 total (legacy extracts): 5,645 ordered to leave, 2,815 returned.
    assert (row["orders_to_leave"], row["returned"], row["return_rate"], row["returns_geo"]) == (
        5_645, 2_815, 0.4987, "EU28")
    assert fact(con, "GE", 2010)["readmission_instrument"] == "none"  # signed Nov 2010 only


def test_ethiopia_measures_in_force_in_2024(con):
    row = fact(con, "ET", 2024)
    assert (row["art25a_status"], row["readmission_instrument"]) == ("measures_in_force",
                                                                      "arrangement")
    assert fact(con, "ET", 2023)["art25a_status"] == "proposed"  # proposal of 27 Sept 2023


def test_gambia_fee_measure_lifted_in_2024(con):
    row = fact(con, "GM", 2024)
    assert row["art25a_lifted_in_year"] is True
    assert "art25a_measure_lifted: Council decision repealing the increased visa fee" in row[
        "events_in_year"]
    assert "2024-04-01 (month)" in row["events_in_year"]  # the repeal is known to the month
    # The 2021 suspension is still in force: the status says measures in force.
    assert row["art25a_status"] == "measures_in_force"
    assert row["registry_has_caveat"] is True  # the repeal's day is not confirmed


def test_a_country_with_detections_and_no_instrument_shows_none(con):
    row = fact(con, "SY", 2024)
    assert row["readmission_instrument"] == "none"
    assert row["detections"] == 46_254  # Syrian nationals, all routes, 2024 (recorded release)
    assert row["art25a_status"] == "assessed"  # the fifth assessment, 23 July 2024


def test_every_third_country_and_year_with_data_has_one_row(con):
    assert con.execute("""select count(*) from (select country_code, year
                          from marts.fct_readmission_cooperation group by all
                          having count(*) > 1)""").fetchone() == (0,)
    missing = con.execute("""
        select count(*) from (
            select nationality_country_code, year(month) from marts.fct_border_crossings f
            join marts.dim_country c on c.country_code = f.nationality_country_code
            where c.is_country and not c.is_eu_member
            group by all
            except
            select country_code, year from marts.fct_readmission_cooperation)""").fetchone()
    assert missing == (0,)
    assert con.execute("""select count(*) from marts.fct_readmission_cooperation
                          where readmission_instrument is null""").fetchone() == (0,)


def test_profile_ranks_by_detections_with_return_rates(con):
    top = con.execute("""select detections_rank, country_code, detections, detections_year,
                                returns_year, return_rate, readmission_instrument
                         from marts.rpt_third_country_profile order by detections_rank
                         limit 3""").fetchall()
    assert [r[1] for r in top] == ["SY", "ML", "AF"]
    assert top[0][2:5] == (46_254, 2024, 2016)
    assert top[2][5:] == (0.312, "arrangement")  # Afghanistan 2016: 9,460 / 30,325
    ranks = [r[0] for r in con.execute(
        "select detections_rank from marts.rpt_third_country_profile").fetchall()]
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
    events = con.execute("""select art25a_events from marts.rpt_third_country_profile
                            where country_code = 'GM'""").fetchone()[0]
    assert events.startswith("2021-07-15 art25a_proposed")


def test_an_edited_registry_event_keeps_its_history_in_the_snapshot(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    with duckdb.connect(str(copy)) as c:
        # A later registry version corrects Armenia's entry into force to the day.
        c.execute("""insert into raw.readmission_events
                     select * replace (
                         case when iso2 = 'AM' and status = 'in_force'
                              then date '2014-01-01' else event_date_last end as event_date_last,
                         case when iso2 = 'AM' and status = 'in_force'
                              then 'day' else event_date_precision end as event_date_precision,
                         'v2' || sha256 as sha256,
                         loaded_at + interval 1 day as loaded_at)
                     from raw.readmission_events""")
    dbt.build(copy, tmp_path)
    with duckdb.connect(str(copy), read_only=True) as c:
        history = c.execute("""
            select event_date, event_date_precision, dbt_valid_to is null as is_current
            from snapshots.snp_readmission_events
            where country_code = 'AM' and status = 'in_force'
            order by dbt_valid_from""").fetchall()
        unchanged = c.execute("""select count(*) from snapshots.snp_readmission_events
                                 where country_code = 'GE'""").fetchone()
    assert history == [(date(2014, 1, 1), "month", False), (date(2014, 1, 1), "day", True)]
    assert unchanged == (2,)  # events that did not change keep one version
