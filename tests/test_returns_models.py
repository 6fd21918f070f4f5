"""The returns marts on the recorded Eurostat files, built once by the real loader and a real
``dbt build``: fct_returns against the recorded extracts cell by cell, the return rate, the
reconciliation with Eurostat's published figures, the EU aggregate check, and dbt failing by
name when two files of one vintage disagree."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from pipeline import dbt
from tests.test_reference_mappings import legacy_export_cells


@pytest.fixture(scope="module")
def con(built_db):
    with duckdb.connect(str(built_db), read_only=True) as connection:
        yield connection


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def recorded_cells(path, measure):
    """(period, geo, citizen, measure) -> (value or None for ':', flag) of a legacy export, read
    with the csv module on its own and labels mapped by a second path, not the loader's reference
    tables (tests.test_reference_mappings.legacy_export_cells)."""
    return {(period, geo, citizen, measure): (value, flag)
            for (period, geo, citizen), (value, flag, _) in legacy_export_cells(path).items()}


@pytest.mark.parametrize("file, measure, published, missing", [
    ("migr_eiord_Data_allcitizens.csv", "ordered_to_leave", 26_235, 2_310),
    ("migr_eirtn_Data_allcitizens.csv", "returned", 25_719, 2_826),
])
def test_fct_returns_reproduces_every_cell_of_the_recorded_extracts(con, snapshot_dir, file,
                                                                    measure, published, missing):
    expected = recorded_cells(snapshot_dir / "eurostat" / "legacy" / file, measure)
    got = {(p, g, c, m): (v, f) for p, g, c, m, v, f in rows(con, """
        select period, geo, citizen, measure, persons, obs_flag from marts.fct_returns
        where measure = ? and period_grain = 'year' and period between '2012' and '2016'
          and geo not in ('EU27_2007')""", measure)}
    assert sum(v is not None for v, _ in expected.values()) == published
    assert sum(v is None for v, _ in expected.values()) == missing
    differing = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
    assert not differing, list(differing.items())[:5]
    assert set(got) == set(expected)


def test_eu28_and_a_member_state_cell(con):
    assert rows(con, """select persons, geo_is_aggregate, citizen_is_aggregate from marts.fct_returns
                        where period = '2015' and geo = 'EU28' and citizen = 'TOTAL'
                          and measure = 'ordered_to_leave'""") == [(533_395, True, True)]
    assert rows(con, """select measure, persons from marts.fct_returns
                        where period = '2016' and geo = 'DE' and citizen = 'AF'
                        order by 1""") == [("ordered_to_leave", 2_825), ("returned", 3_440)]


def test_missing_is_null_with_its_flag_never_zero(con):
    # Cell by cell above: every ':' of the extracts is a row with persons NULL (and its flag,
    # empty in these files). Here: NULL exactly where the source said missing, nowhere else.
    assert rows(con, """select count(*) from marts.fct_returns
                        where (persons is null) <> is_missing""") == [(0,)]
    assert rows(con, """select count(*) from marts.fct_returns where is_missing""")[0][0] > 5_000


def test_fact_types_and_keys(con):
    types = dict(rows(con, """select column_name, data_type from information_schema.columns
                              where table_schema = 'marts' and table_name = 'fct_returns'"""))
    assert {k: types[k] for k in ("period", "period_start", "period_grain", "geo", "citizen",
                                  "measure", "persons", "obs_flag")} == {
        "period": "VARCHAR", "period_start": "DATE", "period_grain": "VARCHAR",
        "geo": "VARCHAR", "citizen": "VARCHAR", "measure": "VARCHAR", "persons": "BIGINT",
        "obs_flag": "VARCHAR"}
    assert rows(con, """select geo_country_code, citizen_country_code from marts.fct_returns
                        where geo = 'EL' and citizen = 'MK' limit 1""") == [("GR", "MK")]


def test_return_rate_where_both_flows_exist(con):
    both = rows(con, """
        select count(*) from (
            select period, geo, citizen from marts.fct_returns
            where measure = 'ordered_to_leave' and persons is not null
            intersect
            select period, geo, citizen from marts.fct_returns
            where measure in ('returned', 'returned_to_third_country') and persons is not null)""")
    assert rows(con, "select count(*) from marts.rpt_return_rates") == both
    assert rows(con, """select ordered_to_leave, returned, return_rate from marts.rpt_return_rates
                        where period = '2016' and geo = 'DE' and citizen = 'AF'""") == [
        (2_825, 3_440, 1.2177)]
    assert rows(con, """select ordered_to_leave, returned, returned_to_third_country,
                               return_rate, return_rate_third_country
                        from marts.rpt_return_rates
                        where period = '2015' and geo = 'EU28' and citizen = 'TOTAL'""") == [
        (533_395, 227_975, 196_190, 0.4274, 0.3678)]


def test_reconciliation_lists_every_published_figure_newest_first(con):
    listed = rows(con, """select listing_order, period, indicator, published_on, status
                          from marts.rpt_returns_reconciliation order by listing_order""")
    assert len(listed) == 193
    assert {status for *_, status in listed} == {"not_in_warehouse", "not_reconciled"}
    dated = [r[3] for r in listed if r[3] is not None]
    assert dated == sorted(dated, reverse=True)
    assert listed[0][3].isoformat() == "2025-12-22"  # republished 22 December 2025 (2025-Q3)
    shares = rows(con, """select count(*) from marts.rpt_returns_reconciliation
                          where indicator like '%share%'""")
    assert shares == [(19,)]


def test_eu_aggregates_equal_their_members_within_rounding(con):
    statuses = dict(rows(con, """select status, count(*) from marts.rpt_returns_aggregate_check
                                 group by 1"""))
    assert "beyond_rounding" not in statuses
    assert statuses["match"] > 0 and statuses["within_rounding"] > 0
    assert rows(con, """select aggregate_persons, members_sum, members_reported, status
                        from marts.rpt_returns_aggregate_check
                        where period = '2015' and aggregate = 'EU28' and citizen = 'TOTAL'
                          and measure = 'ordered_to_leave'""") == [
        (533_395, 533_400, 28, "within_rounding")]  # 28 members rounded to 5 each


def test_dim_country_marks_aggregates_and_keeps_eurostat_codes(con):
    assert rows(con, """select country_code, eurostat_code, category, is_aggregate, is_country
                        from marts.dim_country where country_code in ('EU28', 'EU27_2020', 'TOTAL')
                        order by 1""") == [
        ("EU27_2020", "EU27_2020", "aggregate", True, False),
        ("EU28", "EU28", "aggregate", True, False),
        ("TOTAL", "TOTAL", "aggregate", True, False)]
    assert rows(con, """select country_code, is_aggregate from marts.dim_country
                        where eurostat_code in ('UNK', 'STLS') order by 1""") == [
        ("STLS", False), ("UNK", False)]


def test_context_datasets_are_staged(con):
    assert rows(con, """select obs_value from staging.stg_eurostat__asylum_applicants
                        where period = '2015' and geo = 'AT' and citizen = 'TOTAL'
                          and applicant_type = 'ASY_APP'""") == [(88_180,)]
    assert rows(con, """select obs_value, obs_flag from staging.stg_eurostat__illegally_present
                        where period = '2021' and geo = 'EU27_2020' and reason = 'WH_ILLEGAL_ENTRY'
                          and apprehension = 'WH_BETWEEN_BCP_SEA'""") == [(72_285, "bd")]


def test_files_of_one_vintage_that_disagree_fail_dbt_build_by_name(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    with duckdb.connect(str(copy)) as c:
        # The two legacy migr_eiord exports overlap on 165 cells with equal values; break one.
        c.execute("""update raw.eurostat_observations set obs_value = obs_value + 5
                     where dataset = 'migr_eiord' and time_period = '2012' and geo = 'BE'
                       and citizen = 'TOTAL'
                       and sha256 = (select min(sha256) from raw.eurostat_observations
                                     where dataset = 'migr_eiord')""")
    with pytest.raises(dbt.DbtBuildFailed) as caught:
        dbt.build(copy, tmp_path)
    assert "assert_eurostat_vintages_agree" in str(caught.value)
    with duckdb.connect(str(copy), read_only=True) as c:
        stored = c.execute("""select time_period, geo, citizen from
                              audit_dbt.assert_eurostat_vintages_agree""").fetchall()
    assert stored == [("2012", "BE", "TOTAL")]
