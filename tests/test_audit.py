"""The Great Expectations suites pass on the recorded release and fail, by rule and with sample
rows, on each kind of bad data. Built once with the real loader and a real ``dbt build``; each
test breaks a copy of that database."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from expectations import audit
from expectations import suites_by_stage as checks

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    return copy


def _sql(db, *statements):
    with duckdb.connect(str(db)) as con:
        for statement in statements:
            con.execute(statement)


def _raw(db, tmp_path):
    return audit.run_checks(db, checks.raw_checks(db), tmp_path / "results", "raw")


def _marts(db, tmp_path):
    return audit.run_checks(db, checks.mart_checks(db), tmp_path / "results", "marts")


def _fails(run, db, tmp_path, *expected):
    with pytest.raises(audit.AuditFailed) as caught:
        run(db, tmp_path)
    message = str(caught.value)
    for text in expected:
        assert text in message, message
    return message


def test_recorded_release_passes_and_results_are_saved(db, tmp_path):
    raw = _raw(db, tmp_path)
    marts = _marts(db, tmp_path)
    assert raw["success"] and marts["success"]
    rows = {c["suite"]: c["rows"] for c in raw["checks"] + marts["checks"]}
    assert rows["frontex_raw_rows"] == rows["fct_border_crossings_rows"] == 173_460
    saved = json.loads((tmp_path / "results" / "frontex_raw_rows.json").read_text())
    assert saved["success"] is True
    # Not the count the same run reports (raw["checks"] is built from the very result saved):
    # the suite file ingest/sources/frontex/suites/frontex_raw_rows.json lists 12 expectations,
    # counted by hand (column set, 5 not-null, type, 2 between, 2 in-set, compound unique), each
    # saved.
    suite = json.loads((REPO_ROOT / "ingest" / "sources" / "frontex" / "suites"
                        / "frontex_raw_rows.json").read_text())
    assert len(saved["results"]) == len(suite["expectations"]) == 12
    assert sorted(r["expectation_config"]["type"] for r in saved["results"]) == sorted(
        e["type"] for e in suite["expectations"])
    assert (tmp_path / "results" / "audit_marts.json").exists()


def test_negative_count_fails_with_the_row(db, tmp_path):
    _sql(db, """update raw.frontex_detections set detections = -5
                where route = 'Other' and nationality = 'Unknown' and month = '2010-03-01'""")
    message = _fails(_raw, db, tmp_path, "detections non-negative", "1 of 173,460 rows",
                     "route=Other", "nationality=Unknown", "month=2010-03-01", "source_row=886",
                     "release 2025-06-03", "frontex/")
    assert "[frontex_raw_rows]" in message


def test_duplicated_row_fails(db, tmp_path):
    _sql(db, """insert into raw.frontex_detections select * from raw.frontex_detections
                where route = 'Black Sea Route' and month = '2020-01-01' limit 1""")
    _fails(_raw, db, tmp_path, "no duplicate grain", "Black Sea Route")


def test_unknown_route_fails(db, tmp_path):
    _sql(db, """update raw.frontex_detections set route = 'Atlantic Route'
                where route = 'Other' and month = '2011-01-01'""")
    _fails(_raw, db, tmp_path, "known routes", "Atlantic Route")


def test_missing_month_fails_contiguity(db, tmp_path):
    _sql(db, "delete from raw.frontex_detections where month = '2015-06-01'")
    _fails(_raw, db, tmp_path, "months contiguous")


def test_month_after_the_release_fails(db, tmp_path):
    _sql(db, """update raw.frontex_detections set month = '2030-01-01'
                where route = 'Other' and nationality = 'Unknown' and month = '2009-01-01'""")
    _fails(_raw, db, tmp_path, "months in a sane range", "month=2030-01-01")


def test_row_count_collapse_against_previous_release_fails(db, tmp_path):
    _sql(db,
         """insert into raw.frontex_detections
            select * replace ('previous' as sha256, date '2025-05-05' as release_date,
                              loaded_at - interval 30 day as loaded_at)
            from raw.frontex_detections""",
         "delete from raw.frontex_detections where sha256 <> 'previous' and month < '2017-01-01'")
    _fails(_raw, db, tmp_path, "row count not collapsing")


def test_fact_total_differing_from_raw_fails(db, tmp_path):
    _sql(db, """update marts.fct_border_crossings set detections = detections + 1
                where route = 'Other' and nationality = 'Unknown' and month = '2009-01-01'""")
    _fails(_marts, db, tmp_path, "total detections consistent between raw and fact")


def test_fact_row_lost_fails(db, tmp_path):
    _sql(db, "delete from marts.fct_border_crossings where route = 'Other' and month = '2009-01-01'")
    _fails(_marts, db, tmp_path, "row counts consistent between raw and fact")


def test_unmapped_nationality_in_fact_fails(db, tmp_path):
    """The fact's contract declares nationality_country_code NOT NULL (decision 90): the file
    refuses an unmapped nationality. A fact without the constraint (a warehouse published
    before it) that holds one fails the mart audit, which names the nationality."""
    unmapped = """update marts.fct_border_crossings set nationality_country_code = null
                  where nationality = 'Kosovo*'"""
    with pytest.raises(duckdb.ConstraintException,
                       match="NOT NULL constraint failed: fct_border_crossings.nationality_country_code"):
        _sql(db, unmapped)
    _sql(db, "create table marts.fct_unconstrained as select * from marts.fct_border_crossings",
         "drop table marts.fct_border_crossings",
         "alter table marts.fct_unconstrained rename to fct_border_crossings", unmapped)
    _fails(_marts, db, tmp_path, "nationality mapped to dim_country", "nationality=Kosovo*")


# --- Eurostat ---------------------------------------------------------------------------------

def test_recorded_eurostat_loads_pass(db, tmp_path):
    raw = _raw(db, tmp_path)
    marts = _marts(db, tmp_path)
    by_suite = {c["suite"]: c for c in raw["checks"] + marts["checks"]}
    assert by_suite["eurostat_raw_observations"]["rows"] == 62_643  # the 7 recorded files
    assert by_suite["eurostat_raw_published_figures"]["rows"] == 193
    assert by_suite["fct_returns_totals"]["rows"] == 2  # migr_eiord, migr_eirtn
    assert all(c["failed"] == 0 for c in by_suite.values())


def test_negative_eurostat_value_fails_with_file_and_row(db, tmp_path):
    _sql(db, """update raw.eurostat_observations set obs_value = -5
                where dataset = 'migr_eirtn' and time_period = '2016' and geo = 'DE'
                  and citizen = 'AF'""")
    _fails(_raw, db, tmp_path, "[eurostat_raw_observations] values non-negative or missing",
           "1 of 62,643 rows", "landing_file=eurostat/migr_eirtn/", "source_row=23824",
           "geo=DE", "citizen=AF")


def test_unknown_geo_code_fails(db, tmp_path):
    _sql(db, """update raw.eurostat_observations set geo = 'XX'
                where dataset = 'migr_eipre' and geo = 'AT'""")
    _fails(_raw, db, tmp_path, "geo codes known", "geo=XX")


def test_unknown_flag_fails(db, tmp_path):
    _sql(db, """update raw.eurostat_observations set obs_flag = 'q'
                where dataset = 'migr_eiord' and obs_flag = 'p'""")
    _fails(_raw, db, tmp_path, "flags known")


def test_duplicated_eurostat_observation_fails(db, tmp_path):
    _sql(db, """insert into raw.eurostat_observations select * from raw.eurostat_observations
                where dataset = 'migr_eipre' limit 1""")
    _fails(_raw, db, tmp_path, "no duplicate observation within a file")


def test_missing_published_as_zero_in_the_fact_fails(db, tmp_path):
    _sql(db, """update marts.fct_returns set persons = 0
                where is_missing and geo = 'BE' and citizen = 'ST' and period = '2012'
                  and measure = 'ordered_to_leave'""")
    _fails(_marts, db, tmp_path, "persons NULL exactly where Eurostat publishes the value as "
           "missing", "geo=BE", "citizen=ST")


def test_returns_fact_row_lost_fails(db, tmp_path):
    _sql(db, """delete from marts.fct_returns
                where geo = 'DE' and citizen = 'AF' and period = '2016'""")
    _fails(_marts, db, tmp_path, "[fct_returns_totals]",
           "every published observation of the current vintage reaches fct_returns")


def test_quarter_with_a_year_grain_fails(db, tmp_path):
    _sql(db, """update marts.fct_returns set period = '2016-Q1'
                where period = '2016' and geo = 'DE' and citizen = 'AF'
                  and measure = 'returned'""")
    _fails(_marts, db, tmp_path, "period grain consistent", "period=2016-Q1")


def test_eurostat_load_collapsing_against_the_previous_load_fails(db, tmp_path):
    # A later load of migr_eiord with a fifth of the observations of the one before.
    _sql(db, """insert into raw.load_log
                select source, raw_table, landing_file, 'later' || sha256, release_date,
                       rows_loaded // 5, 'later_run', loaded_at + interval 30 day, dataset
                from raw.load_log where dataset = 'migr_eiord'""",
         """insert into raw.eurostat_observations
            select * replace ('later' || sha256 as sha256) from raw.eurostat_observations
            where dataset = 'migr_eiord' and time_period = '2016'""")
    _fails(_raw, db, tmp_path, "[eurostat_raw_loads] row count not collapsing",
           "dataset=migr_eiord")


# --- funding ----------------------------------------------------------------------------------

def test_recorded_funding_loads_pass(db, tmp_path):
    raw = _raw(db, tmp_path)
    marts = _marts(db, tmp_path)
    by_suite = {c["suite"]: c for c in raw["checks"] + marts["checks"]}
    assert by_suite["cohesion_raw_records"]["rows"] == 197  # BMVI and ISF rows of the sample
    assert by_suite["funding_registry_raw"]["rows"] == 78
    assert by_suite["fct_funding_paid_within_committed"]["rows"] == 1  # Morocco
    assert all(by_suite[s]["failed"] == 0 for s in by_suite)


def test_paid_above_committed_fails(db, tmp_path):
    _sql(db, """update marts.fct_funding_disbursements set amount_eur = 160000000
                where programme_or_action_key = 'morocco_budget_support' and stage = 'paid'""")
    _fails(_marts, db, tmp_path, "paid never above committed for the same action",
           "programme_or_action_key=morocco_budget_support")


def test_registry_row_without_its_quote_in_the_fact_fails(db, tmp_path):
    _sql(db, """update marts.fct_funding_disbursements set citation_quote = null
                where programme_or_action_key = 'wb_anti_smuggling'""")
    _fails(_marts, db, tmp_path, "registry citations present",
           "programme_or_action_key=wb_anti_smuggling")


def test_negative_cohesion_amount_fails_with_its_row(db, tmp_path):
    _sql(db, """update raw.cohesion_records
                set record = json_merge_patch(record, '{"eu_amount": "-5"}')
                where fund = 'BMVI' and source_row = (select min(source_row)
                    from raw.cohesion_records where fund = 'BMVI')""")
    _fails(_raw, db, tmp_path, "[cohesion_raw_records] amounts non-negative", "fund=BMVI")


# --- readmission ------------------------------------------------------------------------------

def test_recorded_readmission_loads_pass(db, tmp_path):
    raw = _raw(db, tmp_path)
    marts = _marts(db, tmp_path)
    by_suite = {c["suite"]: c for c in raw["checks"] + marts["checks"]}
    assert by_suite["readmission_registry_raw"]["rows"] == 76
    assert by_suite["fct_readmission_cooperation_rows"]["failed"] == 0
    assert by_suite["readmission_registry_raw"]["failed"] == 0


def test_return_rate_beyond_its_bound_fails(db, tmp_path):
    _sql(db, """update marts.fct_readmission_cooperation set return_rate = 25
                where country_code = 'GE' and year = 2012""")
    _fails(_marts, db, tmp_path, "return rate between 0 and its documented upper bound",
           "country_code=GE", "year=2012")


def test_two_rows_for_one_country_and_year_are_refused(db):
    """One row per country x year is the table's primary key (dbt contract; the audit no longer
    repeats it): DuckDB refuses the second row, naming the key."""
    with pytest.raises(duckdb.ConstraintException, match=r'"country_code: SY, year: 2024"'):
        _sql(db, """insert into marts.fct_readmission_cooperation
                    select * from marts.fct_readmission_cooperation
                    where country_code = 'SY' and year = 2024""")


def test_loaded_registry_with_in_force_before_signed_fails(db, tmp_path):
    _sql(db, """update raw.readmission_events set event_date = date '2009-01-01',
                       event_date_last = date '2009-01-01'
                where iso2 = 'GE' and status = 'in_force'""")
    _fails(_raw, db, tmp_path, "in force not before signed", "iso2=GE")


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of 50,000 rows: the recorded release (173,460 rows) is validated in four."""
    monkeypatch.setattr(audit, "CHUNK_ROWS", 50_000)


def test_a_big_file_is_validated_in_parts_that_cover_every_row(db, tmp_path, small_parts):
    raw, marts = _raw(db, tmp_path), _marts(db, tmp_path)
    assert raw["success"] and marts["success"]
    for stage, suite in ((raw, "frontex_raw_rows"), (marts, "fct_border_crossings_rows")):
        parts = [c for c in stage["checks"] if c["suite"].startswith(suite)]
        assert [c["suite"] for c in parts] == [f"{suite}.part{i}of4" for i in (1, 2, 3, 4)]
        assert all(0 < c["rows"] <= 50_000 for c in parts)
        assert sum(c["rows"] for c in parts) == 173_460  # every row, once
        assert all("part" in c["subject"] for c in parts)


def test_in_parts_a_duplicated_grain_is_still_found(db, tmp_path, small_parts):
    _sql(db, """insert into raw.frontex_detections select * from raw.frontex_detections
                where route = 'Black Sea Route' and month = '2020-01-01' limit 1""")
    message = _fails(_raw, db, tmp_path, "no duplicate grain", "Black Sea Route")
    assert "part" in message


def test_in_parts_a_collapsed_release_still_fails(db, tmp_path, small_parts):
    test_row_count_collapse_against_previous_release_fails(db, tmp_path)


def test_eurostat_observations_in_parts_cover_every_row_and_find_a_duplicate(db, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(audit, "CHUNK_ROWS", 20_000)
    raw = _raw(db, tmp_path / "clean")
    parts = [c for c in raw["checks"] if c["suite"].startswith("eurostat_raw_observations")]
    with duckdb.connect(str(db), read_only=True) as con:
        total = con.execute("""select count(*) from raw.eurostat_observations
                               where sha256 in (select sha256 from raw.load_log
                                                where raw_table = 'raw.eurostat_observations')
                            """).fetchone()[0]
    assert len(parts) == -(-total // 20_000) > 1
    assert sum(c["rows"] for c in parts) == total
    _sql(db, """insert into raw.eurostat_observations
                select * from raw.eurostat_observations where dataset = 'migr_eiord' limit 1""")
    _fails(_raw, db, tmp_path / "duplicate", "[eurostat_raw_observations] no duplicate observation",
           "by the observation's key: 2 of ")


def test_a_check_that_cannot_be_evaluated_fails_the_run_but_blames_no_file(db, tmp_path,
                                                                          monkeypatch):
    """An expectation that raised while it was evaluated (here: a numeric bound on a text
    column, as a bug in a check's query would do) is no evidence against the files: the audit
    fails, naming it, and AuditFailed carries no check to reject files by
    (pipeline.files.reject_culprits)."""
    import dataclasses

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "probe.json").write_text(json.dumps({"name": "probe", "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "detections", "min_value": 0}}]}))
    monkeypatch.setattr(audit, "SUITES_DIR", suites)
    [rows] = [c for c in checks.raw_checks(db) if c.suite == "frontex_raw_rows"]
    probe = dataclasses.replace(rows, suite="probe", parameters={}, sql=(
        f"select * replace (detections::varchar as detections) from ({rows.sql})"))
    with pytest.raises(audit.AuditFailed) as caught:
        audit.run_checks(db, [probe], tmp_path / "results", "raw")
    assert "could not be evaluated" in str(caught.value), str(caught.value)
    assert caught.value.failed == [] and caught.value.files == set(), \
        f"a check that raised blames files: {caught.value.files}"


def test_a_broken_rule_is_evidence_against_the_file_it_names(db, tmp_path):
    _sql(db, "update raw.frontex_detections set detections = -7 where source_row = 12")
    [rows] = [c for c in checks.raw_checks(db) if c.suite == "frontex_raw_rows"]
    with pytest.raises(audit.AuditFailed) as caught:
        audit.run_checks(db, [rows], tmp_path / "results", "raw")
    assert caught.value.failed == [rows] and caught.value.files == set(rows.files), \
        "a check that found a negative count does not point at its file"
