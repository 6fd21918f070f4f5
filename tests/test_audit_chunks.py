"""The audit of a big table in chunks (issue 21, item 2; docs/decisions.md 73): row rules on
chunks streamed from DuckDB, uniqueness on the rows DuckDB finds duplicated, row counts on a
frame of the count. Every one a real GX validation; the verdicts and the failure messages (rule,
subject, count, sample rows) must be those of the check validated whole."""
from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from expectations import audit
from expectations import suites_by_stage as checks

PROBE = {"name": "probe", "expectations": [
    {"type": "expect_table_columns_to_match_set",
     "kwargs": {"column_set": ["k1", "k2", "label", "amount", "paid", "code"]}},
    {"type": "expect_table_row_count_to_be_between",
     "kwargs": {"min_value": 1, "max_value": {"$PARAMETER": "max_rows"}},
     "meta": {"rule": "not too many rows"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"},
     "meta": {"rule": "label present"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "amount", "min_value": 0}, "meta": {"rule": "amount not negative"}},
    {"type": "expect_column_values_to_be_in_set",
     "kwargs": {"column": "label", "value_set": ["a", "b", "c"]},
     "meta": {"rule": "known label"}},
    {"type": "expect_column_values_to_match_regex",
     "kwargs": {"column": "code", "regex": "^[A-Z]{2}$"}, "meta": {"rule": "code of 2 letters"}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b",
     "kwargs": {"column_A": "amount", "column_B": "paid", "or_equal": True,
                "ignore_row_if": "either_value_is_missing"}, "meta": {"rule": "paid within"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["k1", "k2"]},
     "meta": {"rule": "one row per key"}},
]}
ROWS = 30_000


@pytest.fixture
def probe_db(tmp_path, monkeypatch):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "probe.json").write_text(json.dumps(PROBE))
    monkeypatch.setattr(audit, "SUITES_DIR", suites)
    db = tmp_path / "probe.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(f"""create table t as
            select i // 7 as k1, i % 7 as k2, ['a', 'b', 'c'][1 + i % 3] as label,
                   (i % 1000)::bigint as amount, (i % 1000)::bigint / 2 as paid,
                   ['AT', 'BE', 'CY'][1 + i % 3] as code
            from range({ROWS}) r(i) order by i""")
    return db


def _run(db, tmp_path, chunk_rows: int, max_rows: int = ROWS):
    check = audit.Check("probe", "select * from t", "table t", {"max_rows": max_rows},
                        ("k1", "k2"))
    try:
        return "passed", audit.run_checks(db, [check], tmp_path / f"r{chunk_rows}", "probe")
    except audit.AuditFailed as err:
        return str(err), None


def _both(db, tmp_path, monkeypatch, max_rows: int = ROWS) -> str:
    monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", 10**9)
    whole, whole_summary = _run(db, tmp_path, 0, max_rows)
    monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", 4096)  # 8 chunks of 4,096 rows (2 vectors)
    chunked, chunked_summary = _run(db, tmp_path, 4096, max_rows)
    assert chunked == whole
    result = json.loads((tmp_path / "r4096" / "probe.json").read_text())
    assert sum(c["kind"] == "rows" for c in result["chunks"]) == 8, "not validated in chunks"
    if whole_summary is not None:
        assert ([{k: v for k, v in c.items() if k != "elapsed_s"}
                 for c in chunked_summary["checks"]]
                == [{k: v for k, v in c.items() if k != "elapsed_s"}
                    for c in whole_summary["checks"]])
    return whole


def test_clean_data_passes_both_ways(probe_db, tmp_path, monkeypatch):
    assert _both(probe_db, tmp_path, monkeypatch) == "passed"


def test_every_rule_broken_reads_the_same(probe_db, tmp_path, monkeypatch):
    with duckdb.connect(str(probe_db)) as con:
        con.execute("update t set label = null where k1 in (3, 4000)")   # chunks 1 and 7
        con.execute("update t set amount = -5 where k1 = 4100 and k2 = 1")
        con.execute("update t set label = 'z' where k1 in (10, 2000, 4200) and k2 = 2")
        con.execute("update t set code = 'xyz' where k1 = 1500 and k2 = 3")
        con.execute("update t set paid = amount + 1 where k1 in (1, 3900) and k2 = 5")
        # Duplicates far apart (chunks 1 and 8): one key twice, one three times.
        con.execute("insert into t select * from t where (k1 = 2 and k2 = 2) or (k1 = 5 and k2 = 4)")
        con.execute("insert into t select * from t where k1 = 5 and k2 = 4 limit 1")
    message = _both(probe_db, tmp_path, monkeypatch, max_rows=ROWS)
    for rule in ("not too many rows", "label present", "amount not negative", "known label",
                 "code of 2 letters", "paid within", "one row per key"):
        assert rule in message, message
    assert "5 of 30,003 rows break it" in message  # 2 + 3 rows of duplicated keys


def test_duplicates_in_several_keys_show_the_first_rows(probe_db, tmp_path, monkeypatch):
    with duckdb.connect(str(probe_db)) as con:
        con.execute("insert into t select * from t where k1 in (4200, 7, 1000, 3000) and k2 = 0")
    message = _both(probe_db, tmp_path, monkeypatch, max_rows=10**6)
    assert "[probe] one row per key" in message and "8 of 30,004 rows break it" in message


def test_a_suite_with_a_rule_not_chunked_is_validated_whole(probe_db, tmp_path, monkeypatch):
    suite = {**PROBE, "expectations": PROBE["expectations"] + [
        {"type": "expect_column_mean_to_be_between",
         "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000}}]}
    (audit.SUITES_DIR / "probe.json").write_text(json.dumps(suite))
    monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", 4096)
    assert _run(probe_db, tmp_path, 4096)[0] == "passed"
    result = json.loads((tmp_path / "r4096" / "probe.json").read_text())
    assert "chunks" not in result and result["meta"]["rows_validated"] == ROWS


# The project's suites on the recorded data (a real dbt build): the same messages.

@pytest.fixture
def db(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    return copy


BREAKS = {
    "negative count": ("update raw.frontex_detections set detections = -7 "
                       "where source_row in (12, 700)"),
    "duplicated grain": ("insert into raw.frontex_detections select * from "
                         "raw.frontex_detections where source_row in (20, 800) limit 3"),
    "unknown route": ("update raw.frontex_detections set route = 'Arctic Route' "
                      "where source_row = 300"),
    "duplicated eurostat observation": (
        "insert into raw.eurostat_observations select * from raw.eurostat_observations "
        "where dataset = 'migr_eiord' limit 2"),
}


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_the_project_suites_fail_the_same_in_chunks(db, tmp_path, monkeypatch, broken):
    with duckdb.connect(str(db)) as con:
        con.execute(BREAKS[broken])
    messages = []
    for chunk_rows in (10**9, 20_000):
        monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", chunk_rows)
        with pytest.raises(audit.AuditFailed) as caught:
            audit.run_checks(db, checks.raw_checks(db), tmp_path / f"r{chunk_rows}", "raw")
        messages.append((str(caught.value), sorted(caught.value.files)))
    assert messages[1] == messages[0]


def test_the_project_marts_pass_the_same_in_chunks(db, tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", 20_000)
    summary = audit.run_checks(db, checks.mart_checks(db), tmp_path / "marts", "marts")
    assert summary["success"]
    chunked = [c["suite"] for c in summary["checks"]
               if "chunks" in json.loads((tmp_path / "marts" / f"{c['suite']}.json").read_text())]
    assert "fct_border_crossings_rows" in chunked, chunked


def test_small_and_chunked_checks_in_one_audit(probe_db, tmp_path, monkeypatch):
    """A small check's shared GX datasource and a chunked check's validations side by side."""
    monkeypatch.setattr(audit, "AUDIT_CHUNK_ROWS", 4096)
    small = audit.Check("probe", "select * from t where k1 < 100", "the first rows",
                        {"max_rows": ROWS}, ("k1", "k2"), name_suffix=".small")
    big = audit.Check("probe", "select * from t", "table t", {"max_rows": ROWS}, ("k1", "k2"))
    summary = audit.run_checks(probe_db, [small, big, small.__class__(
        **{**small.__dict__, "name_suffix": ".again"})], tmp_path / "r", "probe")
    assert summary["success"] and [c["rows"] for c in summary["checks"]] == [700, ROWS, 700]
