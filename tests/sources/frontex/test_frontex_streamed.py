"""The streamed Frontex parse (issue 21, item 2; docs/decisions.md 73): landing and the load
parse with ``parse_streamed``, which reads the sheet a piece at a time and writes the
observations to Parquet every FLUSH_ROWS. It must give the rows ``parse_workbook`` gives (one
frame in memory), in the same order and Parquet schema, and fail with the same messages; here
with flushes after every row or few rows and pieces of a few hundred bytes, so that totals rows,
release notes below the table and errors fall across parts and pieces."""
from __future__ import annotations

import duckdb
import pytest

from ingest import xlsx
from ingest.errors import DataError
from ingest.parsed import kv_sql
from ingest.sources.frontex import source as frontex
from ingest.sources.frontex.source import FrontexSource, parse_workbook
from tests import workbooks
from tests.sources.frontex import test_frontex_layouts as layouts

META = {"sha256": "0" * 64, "release_date": "2024-04-05"}


@pytest.fixture(params=[(1, 300), (7, 4096), (frontex.FLUSH_ROWS, 1 << 22)],
                ids=["flush every row, 300-byte pieces", "flush every 7, 4 KB pieces",
                     "defaults"])
def small_parts(request, monkeypatch, tmp_path):
    flush, piece = request.param
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setattr(frontex, "FLUSH_ROWS", flush)
    monkeypatch.setattr(xlsx, "_CHUNK", piece)
    return request.param


def _parquet_of_frame(frame, path) -> None:
    """What ingest.parsed.write does with a DataFrame (the form before streaming)."""
    with duckdb.connect() as con:
        con.register("parsed_rows", frame)
        con.execute(f"copy parsed_rows to '{path}' "
                    f"(format parquet, compression zstd, kv_metadata {{{kv_sql(META)}}})")


def _same_parquet(content: bytes, name: str, tmp_path) -> int:
    old = parse_workbook(content, name)
    new = FrontexSource().parse(content, name)
    assert new.release_date == old.release_date
    assert len(new.rows) == len(old.rows)
    _parquet_of_frame(old.rows, tmp_path / "old.parquet")
    new.rows.write_parquet(tmp_path / "new.parquet", META)
    with duckdb.connect() as con:
        schema = "select name, type, logical_type from parquet_schema(?)"
        assert (con.execute(schema, [str(tmp_path / "new.parquet")]).fetchall()
                == con.execute(schema, [str(tmp_path / "old.parquet")]).fetchall())
        rows = "select * from read_parquet(?)"
        assert (con.execute(rows, [str(tmp_path / "new.parquet")]).fetchall()
                == con.execute(rows, [str(tmp_path / "old.parquet")]).fetchall())
        kv = "select key, value from parquet_kv_metadata(?) order by key"
        assert (con.execute(kv, [str(tmp_path / "new.parquet")]).fetchall()
                == con.execute(kv, [str(tmp_path / "old.parquet")]).fetchall())
    frame = new.rows.df()
    assert list(frame.columns) == list(old.rows.columns)
    assert len(frame) == len(old.rows)
    return len(frame)


@pytest.mark.parametrize("flush, piece", [(20_000, 65_536), (frontex.FLUSH_ROWS, 1 << 22)])
def test_the_recorded_workbook(flush, piece, recorded_workbook, tmp_path, monkeypatch):
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setattr(frontex, "FLUSH_ROWS", flush)
    monkeypatch.setattr(xlsx, "_CHUNK", piece)
    assert _same_parquet(recorded_workbook, "ibc.xlsx", tmp_path) == 173_460


@pytest.mark.parametrize("name", ["2019", "2020"])
def test_older_layouts_totals_and_notes_below_the_table(small_parts, name, tmp_path):
    content = layouts.archive_2019() if name == "2019" else layouts.archive_2020()
    assert _same_parquet(content, f"ibc_{name}.xlsx", tmp_path) > 0


def test_the_current_layout_with_blank_rows_above(small_parts, tmp_path):
    content = workbooks.write_workbook(blank_rows=3)
    assert _same_parquet(content, "ibc.xlsx", tmp_path) == workbooks.CELLS


def _failure(parse, content: bytes) -> str:
    with pytest.raises(DataError) as err:
        parse(content, "ibc_2019.xlsx")
    return str(err.value)


@pytest.mark.parametrize("broken", ["totals row", "totals column", "count", "whole number",
                                    "route", "no counts"])
def test_the_same_failures(small_parts, broken):
    rows = [list(r) for r in layouts.ROWS_2019]
    if broken == "totals row":
        rows[-1][4] = 770
    elif broken == "totals column":
        rows[2][6] = 841
    elif broken == "count":
        rows[3][4] = "n/a"
    elif broken == "whole number":
        rows[4][3] = 2.5
    elif broken == "route":
        rows[5][0] = "Arctic route"
    else:
        rows = [[r[0], r[1], r[2], None, None, None, None] for r in rows[:-1]]
    content = workbooks.write_layout(
        layouts.HEADER_2019, rows, sheet="Detections of IBC", notes=None,
        below=[[], ["Source: Frontex FRAN, data as of 05/04/2019"]])
    old = _failure(parse_workbook, content)
    assert {"totals row": "totals row agrees", "totals column": "totals column agrees",
            "count": "not a count", "whole number": "whole number", "route": "Arctic route",
            "no counts": "data rows"}[broken] in old
    assert _failure(lambda c, n: FrontexSource().parse(c, n), content) == old
