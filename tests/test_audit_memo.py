"""Audit results reused only for the very rows and suite they were validated on
(expectations/memo.py, decision 76): real GX validations on a real DuckDB file, no dbt."""
from __future__ import annotations

import json

import duckdb
import pytest

from expectations import audit

SUITE = {"name": "probe", "expectations": [
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "detections", "min_value": 0, "max_value": {"$PARAMETER": "ceiling"}}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "route"}}]}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "probe.json").write_text(json.dumps(SUITE))
    monkeypatch.setattr(audit, "SUITES_DIR", suites)
    db = tmp_path / "build.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema marts")
        con.execute("""create table marts.t as select * from (values
            ('Central Mediterranean', 120), ('Western Balkans', 310), ('Eastern Land', 7))
            as v(route, detections)""")
    check = audit.Check(suite="probe", sql="select * from marts.t", subject="marts.t",
                        parameters={"ceiling": 1000}, index_columns=("route",))
    return db, check, tmp_path


def sql(db, statement):
    with duckdb.connect(str(db)) as con:
        con.execute(statement)


def audited(db, check, folder, run_id):
    summary = audit.run_checks(db, [check], folder / run_id, "marts", memo_run_id=run_id)
    [entry] = summary["checks"]
    stored = json.loads((folder / run_id / f"{check.name}.json").read_text())
    return entry, stored


def test_the_same_rows_and_suite_reuse_the_stored_result(setup):
    db, check, folder = setup
    first, first_result = audited(db, check, folder, "r1")
    assert "reused_from" not in first and first["evaluated"] == 2 and first["failed"] == 0
    again, result = audited(db, check, folder, "r2")
    assert again.get("reused_from") == "r1", (
        f"the same 3 rows under the same suite should reuse run r1's result, got {again}")
    assert (again["rows"], again["evaluated"], again["failed"]) == (3, 2, 0)
    # The evidence is the GX result run r1 produced, marked as reused.
    assert result["results"] == first_result["results"]
    assert result["meta"]["reused_from"] == "r1"
    # Same rows in another order: the same content.
    sql(db, "create or replace table marts.t as select * from marts.t order by detections desc")
    third, _ = audited(db, check, folder, "r3")
    assert third.get("reused_from") == "r1", third


@pytest.mark.parametrize("change, why", [
    ("update marts.t set detections = 121 where route = 'Central Mediterranean'", "one value"),
    ("insert into marts.t values ('Central Mediterranean', 120)", "a duplicated row"),
    ("alter table marts.t alter detections type double", "a column type"),
    ("alter table marts.t rename detections to detections", "nothing (control)"),
])
def test_changed_rows_are_validated_again(setup, change, why):
    db, check, folder = setup
    audited(db, check, folder, "r1")
    sql(db, change)
    entry, _ = audited(db, check, folder, "r2")
    if why == "nothing (control)":
        assert entry.get("reused_from") == "r1", entry
    else:
        assert "reused_from" not in entry, f"{why} changed, yet the result of r1 was reused"
        # The new pass replaces the old one in the memo.
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("select run_id from meta.audit_memo").fetchall() == [("r2",)]


def test_another_suite_or_parameter_is_validated_again(setup, monkeypatch):
    import dataclasses

    db, check, folder = setup
    audited(db, check, folder, "r1")
    lower = dataclasses.replace(check, parameters={"ceiling": 200})
    with pytest.raises(audit.AuditFailed) as caught:
        audited(db, lower, folder, "r2")
    assert "Western Balkans" in str(caught.value), str(caught.value)
    suite = {**SUITE, "expectations": SUITE["expectations"][1:]}
    (audit.SUITES_DIR / "probe.json").write_text(json.dumps(suite))
    entry, _ = audited(db, check, folder, "r3")
    assert "reused_from" not in entry and entry["evaluated"] == 1, entry


def test_a_failure_is_never_stored_nor_reused(setup):
    db, check, folder = setup
    sql(db, "update marts.t set detections = -5 where route = 'Eastern Land'")
    for run_id in ("r1", "r2"):
        with pytest.raises(audit.AuditFailed) as caught:
            audited(db, check, folder, run_id)
        assert "Eastern Land" in str(caught.value) and "-5" in str(caught.value), \
            f"run {run_id} should fail naming the negative row again: {caught.value}"
    with duckdb.connect(str(db), read_only=True) as con:
        assert not con.execute("""select count(*) from duckdb_tables()
                                  where schema_name = 'meta'""").fetchone()[0]


def test_without_a_run_the_audit_neither_reads_nor_writes_the_memo(setup):
    db, check, folder = setup
    audited(db, check, folder, "r1")
    summary = audit.run_checks(db, [check], folder / "plain", "marts")
    assert "reused_from" not in summary["checks"][0]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*), any_value(run_id) from meta.audit_memo"
                           ).fetchone() == (1, "r1")
