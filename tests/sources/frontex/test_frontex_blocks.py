"""The Frontex parse reads the month cells of each piece of the data sheet as one numpy array
(``_observations``' ``block_rows``; docs/decisions.md 77) where that gives exactly what reading
them cell by cell gives, and the pieces are read by calamine in threads ahead (``ingest.xlsx``
``AHEAD``). Both ways (``frontex.BLOCKS`` True and False) must give the same parsed Parquet
(schema, every row in order) and fail with the same message (file, row, rule), for each class of
workbook the parser meets: the recorded one (written by Excel: shared strings, styles, a
dimension), the July 2018 layout (dates as month headers, empty cells), the benchmark's generated
layout (openpyxl's write-only mode: inline strings, no dimension) and the recorded rows written
with a dimension and without; with empty cells, blank rows, short rows, notes below the table,
and pieces of a few KB so that many pieces, and the header, fall across blocks. Each case also
checks that pieces were read as arrays (the log says how many), so that no comparison is
vacuous. The rows come from the recorded workbook or from the test's own workbooks; no count is
written here by hand."""
from __future__ import annotations

import io
import logging
import re
from datetime import datetime

import duckdb
import openpyxl
import pytest

from bench import _gen
from ingest import xlsx
from ingest.errors import DataError
from ingest.sources.frontex import source as frontex
from tests import workbooks
from tests.sources.frontex import test_frontex_2018_layout as july

META = {"sha256": "0" * 64, "release_date": "2025-06-03"}
ARRAYS = re.compile(r"(\d+) piece\(s\) of the sheet read as arrays, (\d+) cell by cell")


@pytest.fixture(autouse=True)
def spill(tmp_path, monkeypatch):
    monkeypatch.setenv("WH_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))


def _parse(content: bytes, name: str, blocks: bool, path, monkeypatch, caplog) -> tuple:
    """The parsed Parquet (parse_streamed, as landing writes it) and the log's count of pieces
    read as arrays and cell by cell."""
    monkeypatch.setattr(frontex, "BLOCKS", blocks)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ingest.sources.frontex.source"):
        parsed = frontex.parse_streamed(content, name)
    parsed.rows.write_parquet(path, META)
    parsed.rows.close()
    counts = [ARRAYS.search(r.getMessage()) for r in caplog.records]
    found = [m for m in counts if m]
    assert len(found) == 1
    return parsed.release_date, int(found[0].group(1)), int(found[0].group(2))


def assert_same_both_ways(content: bytes, name: str, tmp_path, monkeypatch, caplog) -> int:
    """Parse with and without arrays; the same Parquet; returns the pieces read as arrays."""
    new, old = tmp_path / "arrays.parquet", tmp_path / "cells.parquet"
    release, arrays, _ = _parse(content, name, True, new, monkeypatch, caplog)
    release_old, arrays_old, _ = _parse(content, name, False, old, monkeypatch, caplog)
    assert release == release_old
    assert arrays_old == 0
    with duckdb.connect() as con:
        schema = "select name, type, repetition_type, logical_type from parquet_schema(?)"
        assert (con.execute(schema, [str(new)]).fetchall()
                == con.execute(schema, [str(old)]).fetchall())
        kinds = "select column_name, column_type from (describe select * from read_parquet(?))"
        assert (con.execute(kinds, [str(new)]).fetchall()
                == con.execute(kinds, [str(old)]).fetchall())
        rows = "select * from read_parquet(?)"
        got, expected = (con.execute(rows, [str(new)]).fetchall(),
                         con.execute(rows, [str(old)]).fetchall())
        assert len(got) == len(expected) > 0
        assert got == expected
    return arrays


def _recorded(snapshot_dir) -> tuple[list, list[list]]:
    return workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")


def _dimension_workbook(header: list, rows: list) -> bytes:
    """The rows written by openpyxl's normal mode: inline strings and a <dimension> (the
    recorded workbook has shared strings and a dimension; write-only mode writes none)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Detections_of_IBC"
    ws.append(header)
    for row in rows:
        ws.append(list(row))
    notes = wb.create_sheet("Notes")
    notes.append(["Source: FRAN data as of 03JUN25"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _holey(rows: list[list]) -> list[list]:
    """The rows with empty cells (every 7th month cell), a blank row every 40, a short row
    (its last 20 months not written) every 25, a row with keys and no count, and a note."""
    out: list[list] = []
    cell = 0
    for n, row in enumerate(rows):
        months = []
        for v in row[3:]:
            cell += 1
            months.append(None if cell % 7 == 0 else v)
        if n % 25 == 3:
            months = months[:-20]
        out.append(list(row[:3]) + months)
        if n % 40 == 5:
            out.append([])
    out.append(["Other", "Sea", "Nobody", *([None] * 5)])
    out.append(["Note: a note below the table."])
    return out


@pytest.fixture(params=[1 << 22, 16_384], ids=["4 MB pieces", "16 KB pieces"])
def pieces(request, monkeypatch):
    monkeypatch.setattr(xlsx, "_CHUNK", request.param)
    return request.param


def test_the_recorded_workbook(pieces, recorded_workbook, tmp_path, monkeypatch, caplog):
    assert re.search(rb'<c r="A\d+"[^>]* t="s"', _sheet_xml(recorded_workbook))  # shared strings
    assert b"<dimension" in _sheet_xml(recorded_workbook)
    assert assert_same_both_ways(recorded_workbook, "ibc.xlsx", tmp_path, monkeypatch,
                                 caplog) >= 1


def test_the_july_2018_layout(pieces, tmp_path, monkeypatch, caplog):
    """Date headers, and the cells before 2014 of one row empty (calamine's ""). Its 11 rows
    are all within the header search (read cell by cell), so also 20 times over, each copy's
    nationalities suffixed."""
    assert_same_both_ways(july.july_2018(), july.FILE, tmp_path, monkeypatch, caplog)
    rows = [(route, border, f"{nationality} {k}", *rest)
            for k in range(20) for route, border, nationality, *rest in july.ROWS]
    assert assert_same_both_ways(july.july_2018(rows=rows), july.FILE, tmp_path, monkeypatch,
                                 caplog) >= 1


def test_the_generated_layout_inline_strings(pieces, snapshot_dir, tmp_path, monkeypatch,
                                             caplog):
    header, rows = _recorded(snapshot_dir)
    path = tmp_path / "ibc_2x.xlsx"
    _gen.write_workbook(path, header, _gen.frontex_rows(header, rows, 2),
                        datetime(2025, 6, 3))
    content = path.read_bytes()
    assert b"inlineStr" in content or b"inlineStr" in _sheet_xml(content)
    arrays = assert_same_both_ways(content, path.name, tmp_path, monkeypatch, caplog)
    assert arrays >= (2 if pieces < 1 << 22 else 1)


def test_a_dimension_and_holes(pieces, snapshot_dir, tmp_path, monkeypatch, caplog):
    header, rows = _recorded(snapshot_dir)
    content = _dimension_workbook(header, _holey(rows[:300]))
    assert b"<dimension" in _sheet_xml(content)
    assert assert_same_both_ways(content, "holes.xlsx", tmp_path, monkeypatch, caplog) >= 1


def test_inline_strings_and_holes(pieces, snapshot_dir, tmp_path, monkeypatch, caplog):
    header, rows = _recorded(snapshot_dir)
    content = workbooks.write_workbook(header, _holey(rows[:300]), note="Source: FRAN data as "
                                       "of 03JUN25")
    assert b"<dimension" not in _sheet_xml(content)
    assert assert_same_both_ways(content, "holes.xlsx", tmp_path, monkeypatch, caplog) >= 1


def _sheet_xml(content: bytes) -> bytes:
    import zipfile
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return z.read("xl/worksheets/sheet1.xml")


@pytest.mark.parametrize("broken", ["text", "fraction", "bool", "date", "empty nationality",
                                    "unknown route", "text in a later piece"])
def test_the_same_failures(broken, snapshot_dir, tmp_path, monkeypatch, caplog):
    """A bad cell deep in the sheet (in a piece read as arrays until then): the same error,
    naming the file, the row and the rule, whichever way the pieces are read."""
    monkeypatch.setattr(xlsx, "_CHUNK", 16_384)
    header, rows = _recorded(snapshot_dir)
    rows = [list(r) for r in rows[:200]]
    at = 150 if broken == "text in a later piece" else 60
    rows[at][10] = {"text": "n/a", "fraction": 2.5, "bool": True,
                    "date": datetime(2024, 1, 1), "text in a later piece": "12 "}.get(
        broken, rows[at][10])
    if broken == "empty nationality":
        rows[at][2] = None
    if broken == "unknown route":
        rows[at][0] = "Arctic route"
    content = workbooks.write_workbook(header, rows, note="Source: FRAN data as of 03JUN25")
    messages = []
    for blocks in (True, False):
        monkeypatch.setattr(frontex, "BLOCKS", blocks)
        with pytest.raises(DataError) as err:
            frontex.parse_streamed(content, "broken.xlsx")
        messages.append((str(err.value), err.value.file, err.value.row, err.value.rule))
    assert messages[0] == messages[1]
    text, file, row, rule = messages[0]
    assert file.startswith("broken.xlsx") and row == at + 2
    assert rule == {"text": "count is a number", "fraction": "count is a whole number",
                    "bool": "count is a number", "date": "count is a number",
                    "empty nationality": "row keys", "unknown route": "route",
                    "text in a later piece": "count is a number"}[broken]
    if broken in ("text", "fraction", "bool", "date", "text in a later piece"):
        assert f"cell K{at + 2}" in text
