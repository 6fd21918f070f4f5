"""The soak's comparison of two published warehouses (bench/soak.py, `make soak`), on small
DuckDB files: no pipeline runs here."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from bench import soak


def warehouse(folder: Path, detections: int = 7, landing_file: str = "frontex/1.xlsx",
              rate: float = 0.5, extra_table: bool = False) -> Path:
    """A file named like the published one (DuckDB names the catalog after the stem, and the
    table macro refers to it), with a marts table, a table macro and a column to ignore."""
    folder.mkdir()
    path = folder / "migration.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("""create table marts.fct_crossings (month date, route varchar,
                           detections bigint, rate double, landing_file varchar,
                           loaded_at timestamptz)""")
        con.execute("insert into marts.fct_crossings values "
                    "('2025-04-01', 'Central Mediterranean Route', 41, 0.25, ?, now()), "
                    "('2025-04-01', 'Western Balkan Route', ?, ?, ?, now()), "
                    "('2025-03-01', 'Western Balkan Route', 3, null, ?, now())",
                    [landing_file, detections, rate, landing_file, landing_file])
        con.execute("create table marts.dim_route as select 'Other' as route, 9 as route_order")
        con.execute("""create macro marts.crossings_as_of(d) as table
                       select * from marts.fct_crossings where month <= d""")
        if extra_table:
            con.execute("create table marts.rpt_extra as select 1 as x")
    return path


def test_the_same_rows_in_another_order_and_other_landing_paths_are_the_same(tmp_path):
    a = warehouse(tmp_path / "a")
    b = warehouse(tmp_path / "b", landing_file="frontex/20261205T064158980434Z_878d70785032.xlsx",
                  rate=0.5 + 1e-12)
    differences, fa, fb = soak.compare(a, b)
    assert differences == []
    assert fa == fb
    assert set(fa) == {"marts.fct_crossings", "marts.dim_route",
                       "marts.crossings_as_of(current_date)"}
    assert fa["marts.fct_crossings"]["rows"] == 3
    assert fa["marts.fct_crossings"]["excluded"] == ["landing_file", "loaded_at"]


def test_one_cell_that_differs_is_reported_with_its_rows(tmp_path):
    a = warehouse(tmp_path / "a")
    b = warehouse(tmp_path / "b", detections=8)
    differences, _, _ = soak.compare(a, b)
    assert len(differences) == 2, differences  # the table, and the macro that reads it
    table = next(d for d in differences if d.startswith("marts.fct_crossings:"))
    assert "3 rows in the soak's warehouse, 3 in the clean one; contents differ" in table
    # Columns in name order: detections, month, rate, route (landing_file, loaded_at left out).
    assert ("only in the soak's warehouse: (7, datetime.date(2025, 4, 1), 0.5, "
            "'Western Balkan Route')") in table, table
    assert ("only in the clean warehouse: (8, datetime.date(2025, 4, 1), 0.5, "
            "'Western Balkan Route')") in table, table
    assert "columns: detections, month, rate, route" in table
    assert any(d.startswith("marts.crossings_as_of(current_date):") for d in differences)


@pytest.mark.parametrize("rate", [0.5001, None])
def test_a_double_that_differs_beyond_rounding_or_is_missing_is_different(tmp_path, rate):
    a = warehouse(tmp_path / "a")
    b = warehouse(tmp_path / "b", rate=rate)
    differences, _, _ = soak.compare(a, b)
    assert any(d.startswith("marts.fct_crossings:") for d in differences), differences


def test_a_table_in_one_warehouse_only_is_reported(tmp_path):
    a = warehouse(tmp_path / "a", extra_table=True)
    b = warehouse(tmp_path / "b")
    differences, _, _ = soak.compare(a, b)
    assert differences == ["marts.rpt_extra: only in the soak's warehouse"]


def test_the_workbook_note_reads_as_frontex_writes_it():
    from datetime import date

    assert soak.note_of(date(2025, 7, 3)) == "Source: FRAN data as of 03JUL25"
