"""ingest.xlsx (python-calamine) against openpyxl, the reader the parsers were written for.

For the recorded workbook and for workbooks written here, ``open_workbook(...).rows(sheet)`` must
be what ``openpyxl.load_workbook(read_only=True, data_only=True)`` and
``iter_rows(values_only=True)`` give, row by row, with the same types (``1 == 1.0 == True`` in
Python, so values are compared with their types). What openpyxl cannot write (cached formula
results, error cells, shared strings, escapes, ``5.0``) is written into its XML by hand. Where
calamine cannot give openpyxl's values, the reader reads the sheet with openpyxl: those tests
also check which reader answered.
"""
from __future__ import annotations

import io
import itertools
import re
import zipfile
from datetime import date, datetime, time, timedelta

import openpyxl
import pytest
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from ingest.errors import DataError
from ingest import xlsx
from ingest.xlsx import column_letter, open_workbook
from tests import workbooks


@pytest.fixture(autouse=True, params=["pieces of 4 MB", "pieces of 300 bytes"])
def pieces(request, monkeypatch):
    """Every test twice: a sheet is streamed in pieces (ingest.xlsx ``_streamed``); with
    pieces of 300 bytes each row or two is a piece of its own, read by calamine on its own,
    and the rows must still be openpyxl's."""
    if request.param == "pieces of 300 bytes":
        monkeypatch.setattr(xlsx, "_CHUNK", 300)
    return request.param


def _typed(rows):
    return [(type(row), [(type(v), v) for v in row]) for row in rows]


def _openpyxl(content: bytes) -> dict[str, list]:
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        return {name: list(wb[name].iter_rows(values_only=True)) for name in wb.sheetnames}
    finally:
        wb.close()


def assert_read_as_openpyxl_reads(content: bytes) -> dict[str, str]:
    """Every sheet as openpyxl reads it; returns the sheets read with openpyxl, and why."""
    expected = _openpyxl(content)
    with open_workbook(content, "test.xlsx") as wb:
        assert wb.sheetnames == list(expected)
        for name, rows in expected.items():
            got = wb.rows(name)
            assert len(got) == len(rows), name
            for number, (mine, theirs) in enumerate(zip(got, rows), 1):
                assert _typed([mine]) == _typed([theirs]), f"sheet {name!r} row {number}"
        return dict(wb.read_with_openpyxl)


def _rewritten(content: bytes, part: str, *replacements: tuple[str, str]) -> bytes:
    """The workbook with text replaced in one of its XML parts."""
    src = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == part:
                text = data.decode()
                for old, new in replacements:
                    assert re.search(old, text), (part, old)
                    text = re.sub(old, lambda _: new, text, count=1, flags=re.S)
                data = text.encode()
            dst.writestr(item, data)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"


def _sheet(cells: str, shared_strings: list[str] | None = None,
           dimension: str | None = "A1:C3") -> bytes:
    """A workbook written by openpyxl whose sheet data is ``cells`` (XML), with a shared strings
    part holding ``shared_strings`` (each an <si> element's content) if given."""
    wb = openpyxl.Workbook()
    wb.active.title = "S"
    for row, fmt in enumerate(["yyyy-mm-dd h:mm:ss", "yyyy-mm-dd"], 1):  # styles s="1", "2"
        wb.active.cell(row=row, column=1, value=0).number_format = fmt
    out = io.BytesIO()
    wb.save(out)
    content = _rewritten(out.getvalue(), SHEET, ("<sheetData>.*</sheetData>",
                                                 f"<sheetData>{cells}</sheetData>"),
                         ('<dimension ref="[^"]*" ?/>', f'<dimension ref="{dimension}"/>'
                          if dimension else ""))
    if shared_strings is None:
        return content
    content = _rewritten(content, "xl/_rels/workbook.xml.rels", (
        "</Relationships>",
        '<Relationship Id="rIdS" Target="sharedStrings.xml" Type="http://schemas.openxmlformats'
        '.org/officeDocument/2006/relationships/sharedStrings"/></Relationships>'))
    content = _rewritten(content, "[Content_Types].xml", (
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'))
    out = io.BytesIO(content)
    with zipfile.ZipFile(out, "a") as z:
        z.writestr("xl/sharedStrings.xml",
                   '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   + "".join(f"<si>{s}</si>" for s in shared_strings) + "</sst>")
    return out.getvalue()


# -- what calamine reads as openpyxl does ---------------------------------------------------------


def test_recorded_workbook(recorded_workbook):
    assert assert_read_as_openpyxl_reads(recorded_workbook) == {}


def test_recorded_workbook_one_row_at_a_time(recorded_workbook):
    with open_workbook(recorded_workbook, "ibc.xlsx") as wb:
        assert list(wb.iter_rows("Detections_of_IBC")) == wb.rows("Detections_of_IBC")


@pytest.mark.parametrize("ahead", [0, 1, 4])
def test_recorded_workbook_whatever_the_pieces_read_ahead(recorded_workbook, monkeypatch, ahead):
    """calamine reads the pieces in threads, AHEAD of the one given (decision 77): the blocks,
    as rows, are the rows read with nothing ahead, in order; each block starts where the one
    before ended."""
    monkeypatch.setattr(xlsx, "AHEAD", 0)
    with open_workbook(recorded_workbook, "ibc.xlsx") as wb:
        expected = wb.rows("Detections_of_IBC")
    monkeypatch.setattr(xlsx, "AHEAD", ahead)
    with open_workbook(recorded_workbook, "ibc.xlsx") as wb:
        blocks = list(wb.iter_blocks("Detections_of_IBC"))
    assert [row for block in blocks for row in block.rows()] == expected
    assert [b.first for b in blocks] == list(itertools.accumulate(
        [1] + [len(b) for b in blocks[:-1]]))


def test_rows_before_a_broken_piece_come_first(pieces):
    """The XML read ahead of the rows given: a piece that cannot be read fails where its rows
    would come, after the rows before it (so a bad cell above it is reported first)."""
    good = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 41))
    content = _sheet(good + '<row r="41"><c r="A41"><v>1</v></row>'
                     + '<row r="42"><c r="A42"><v>42</v></c></row>', dimension=None)
    given = []
    with open_workbook(content, "broken.xlsx") as wb, pytest.raises(DataError) as caught:
        for row in wb.iter_rows("S"):
            given.append(row)
    assert caught.value.rule == "xlsx format" and "truncated or corrupt" in str(caught.value)
    assert given == [(n,) for n in range(1, len(given) + 1)]
    if pieces == "pieces of 300 bytes":
        assert len(given) >= 30


def test_rows_before_a_bad_checksum_come_first(pieces):
    """The same for the zip: a sheet stored with a checksum that does not match fails at the
    read that reaches its end, after every row of the pieces read before it (those the reader
    read ahead are given first)."""
    cells = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 3001))
    content = _sheet(cells, dimension=None)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename), zipfile.ZIP_STORED)
    data = bytearray(out.getvalue())
    at = data.index(b'<c r="A2979"><v>2979</v>')
    data[at + 16] = ord("8")  # row 2979 holds 2989 now; the stored checksum is of 2979
    data = bytes(data)
    before = 0  # rows in the pieces read before the one that fails
    with zipfile.ZipFile(io.BytesIO(data)) as z, z.open(SHEET) as stream:
        with pytest.raises(zipfile.BadZipFile):
            for piece in xlsx._pieces(stream, b"<row "):
                before += piece.count(b"<row ")
    given = []
    with open_workbook(data, "crc.xlsx") as wb, pytest.raises(DataError) as caught:
        for row in wb.iter_rows("S"):
            given.append(row)
    assert "truncated or corrupt" in str(caught.value) and "CRC" in str(caught.value)
    assert given == [(n,) for n in range(1, before + 1)]
    if pieces == "pieces of 300 bytes":
        assert before > 2000


def test_workbook_written_by_openpyxl():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Detections_of_IBC"
    # Rows 1 and 2 blank, as in releases that start with blank rows; a header with month cells
    # as Excel dates (one at midnight, one with a time); an empty cell between values; a cell
    # given an empty string (openpyxl writes it as an empty cell); numbers as int, integral
    # float, fraction, negative and 15 digits; booleans; a formula (no cached value: None).
    ws.append([])
    ws.append([])
    ws.append(["Route", "Border type", "Nationality", datetime(2024, 1, 1), date(2024, 2, 1),
               datetime(2024, 3, 1, 12, 30), time(6, 15), timedelta(hours=30)])
    for cell, fmt in zip(ws[3][3:], ["mmm-yy", "mmm yyyy", "yyyy-mm-dd h:mm", "h:mm", "[h]:mm"]):
        cell.number_format = fmt
    ws.append(["Western Balkan Route", "Land", "Syria", 41, None, 7.0, 2.5, -3])
    ws.append(["Other", "", " padded text ", 123456789012345, True, False, "=1+1", "Türkiye"])
    ws["J7"].number_format = "0.00"  # a styled empty cell: widens the sheet's dimension
    out = io.BytesIO()
    wb.save(out)
    content = out.getvalue()
    assert assert_read_as_openpyxl_reads(content) == {}
    with open_workbook(content, "t.xlsx") as book:
        rows = book.rows("Detections_of_IBC")
    assert rows[2][:2] == ("Route", "Border type")  # sheet row 3 is rows[2]: nothing shifts
    assert rows[2][3] == datetime(2024, 1, 1) and type(rows[2][4]) is datetime
    assert rows[3][3:6] == (41, None, 7) and type(rows[3][5]) is int
    assert len(rows) == 7 and {len(r) for r in rows} == {10}


def test_write_only_workbooks_without_a_dimension():
    # openpyxl's write-only mode (tests/workbooks.py) writes no <dimension>: openpyxl's rows are
    # then as wide as their last cell, () for a blank row element and [] for a missing row.
    content = workbooks.write_workbook(blank_rows=3, offset_columns=1)
    assert b"<dimension" not in zipfile.ZipFile(io.BytesIO(content)).read(SHEET)
    assert assert_read_as_openpyxl_reads(content) == {}
    layout = workbooks.write_layout(
        ["Routes", "Border type", "Citizenship", date(2019, 1, 1), date(2019, 2, 1),
         (43525, "mmm-yy"), 43556],
        [["Western Balkans", "Land", "Syria", 3, 4.0, None, 1], ["Total", None, None, 3, 4]],
        above=[["Detections of illegal border-crossing"], [], [None, "as of 05.04.2019"]],
        below=[[], ["Source: FRAN data as of 05.04.2019"]], notes=[["a"], [], [None, None, "c"]])
    assert assert_read_as_openpyxl_reads(layout) == {}


def test_missing_rows_and_rows_without_cells_without_a_dimension():
    content = _sheet('<row r="2"></row><row r="3"><c r="C3"><v>1</v></c><c r="E3" s="1"/></row>'
                     '<row r="5"/><row r="6" spans="1:2"><c r="B6" t="inlineStr"><is><r><rPr>'
                     '<color rgb="FFFF0000"/></rPr><t>red</t></r></is></c></row>', dimension=None)
    assert assert_read_as_openpyxl_reads(content) == {}
    assert _openpyxl(content)["S"] == [[], (), (None, None, 1, None, None), [], (), (None, "red")]


@pytest.mark.parametrize("dimension", ["A1:E9", "A1:B2", "A1", "B2:C3"])
def test_rows_cut_or_padded_to_the_dimension(dimension):
    # openpyxl pads every row to the dimension's width, and reads no row or column past it.
    content = _sheet('<row r="2"><c r="A2"><v>1</v></c><c r="C2"><v>3</v></c></row>'
                     '<row r="3"><c r="B3"><v>2</v></c></row><row r="4"><c r="D4" s="1"/></row>',
                     dimension=dimension)
    assert assert_read_as_openpyxl_reads(content) == {}


def test_formulas_with_cached_values():
    wb = openpyxl.Workbook()
    wb.active.title = "S"
    wb.active.append(["=1+1", '="a"', "=TRUE()", '=""', "=NOW()", "=1/4"])
    wb.active["E1"].number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    wb.save(out)
    content = _rewritten(out.getvalue(), SHEET,
                         (r"<f>1\+1</f><v ?/>", "<f>1+1</f><v>2</v>"),
                         (r'<c r="B1"><f>"a"</f><v ?/>', '<c r="B1" t="str"><f>"a"</f><v>a</v>'),
                         (r'<c r="C1"><f>TRUE\(\)</f><v ?/>',
                          '<c r="C1" t="b"><f>TRUE()</f><v>1</v>'),
                         (r'<c r="D1"><f>""</f><v ?/>', '<c r="D1" t="str"><f>""</f><v></v>'),
                         (r"<f>NOW\(\)</f><v ?/>", "<f>NOW()</f><v>45292</v>"),
                         (r"<f>1/4</f><v ?/>", "<f>1/4</f><v>0.25</v>"))
    assert assert_read_as_openpyxl_reads(content) == {}
    assert _openpyxl(content)["S"] == [(2, "a", True, None, datetime(2024, 1, 1), 0.25)]


def test_shared_strings():
    content = _sheet('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
                     '<c r="C1" t="s"><v>2</v></c></row>',
                     ['<t xml:space="preserve"> Sea </t>', "<r><t>Kosovo</t></r><r><rPr><b/>"
                      "</rPr><t>*</t></r>", '<t>Japan</t><rPh sb="0" eb="1"><t>ja</t></rPh>'])
    assert assert_read_as_openpyxl_reads(content) == {}
    assert _openpyxl(content)["S"][0] == (" Sea ", "Kosovo*", "Japan")


def test_big_sheet_without_a_dimension_is_scanned_in_pieces():
    # More than the 4 MB the reader scans at a time, in openpyxl's write-only layout.
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Big")
    for i in range(12000):
        stamp = WriteOnlyCell(ws, value=date(2020, 1, 1) + timedelta(days=i % 900))
        stamp.number_format = "yyyy-mm-dd"
        ws.append([f"row {i}", "Western Balkan Route", None if i % 7 else "", i, i / 8, stamp,
                   "Land", "Syria", i % 2 == 0] + ([] if i % 5 else [None, "wide row"]))
    out = io.BytesIO()
    wb.save(out)
    assert zipfile.ZipFile(out).getinfo("xl/worksheets/sheet1.xml").file_size > 4 << 20
    assert assert_read_as_openpyxl_reads(out.getvalue()) == {}


# -- what calamine cannot read as openpyxl does: read with openpyxl -------------------------------

# Case -> (a cell A2, shared strings). Comments: what calamine gives, what openpyxl gives.
CELLS_CALAMINE_LOSES = {
    "an error cell": ('<c r="A2" t="e"><v>#N/A</v></c>', None),  # "", "#N/A"
    "an inline empty string": ('<c r="A2" t="inlineStr"><is><t></t></is></c>', None),  # "", ""
    "text not marked to keep its spaces": (
        '<c r="A2" t="inlineStr"><is><t> Sea </t></is></c>', None),  # "Sea", " Sea "
    "an escape": ('<c r="A2" t="inlineStr"><is><t>a_x000D_b</t></is></c>', None),  # "a\rb"
    "a formula result with an escape": ('<c r="A2" t="str"><f>x</f><v>a_x000D_b</v></c>', None),
    "5.0": ('<c r="A2"><v>5.0</v></c>', None),  # 5.0 (an int once normalised), 5.0
    "1E+3": ('<c r="A2"><v>1E+3</v></c>', None),  # 1000.0 (1000), 1000.0
    "17 digits": ('<c r="A2"><v>12345678901234567</v></c>', None),  # a float, the exact int
    "an ISO date": ('<c r="A2" t="d"><v>2024-01-01T00:00:00</v></c>', None),  # date, datetime
    "an empty shared string": ('<c r="A2" t="s"><v>0</v></c>', ["<t/>"]),  # "", ""
    "a shared string with an escape": ('<c r="A2" t="s"><v>0</v></c>', ["<t>a_x000D_b</t>"]),
    "a shared string not marked to keep its spaces": (
        '<c r="A2" t="s"><v>0</v></c>', ["<t> Sea </t>"]),
}


@pytest.mark.parametrize("case", list(CELLS_CALAMINE_LOSES))
def test_what_calamine_loses_is_read_with_openpyxl(case):
    cell, shared_strings = CELLS_CALAMINE_LOSES[case]
    # Beside a formula giving text, so that no check but the one for the case finds it.
    content = _sheet(f'<row r="1"><c r="B1"><v>2</v></c></row><row r="2">{cell}'
                     f'<c r="C2" t="str"><f>"ok"</f><v>ok</v></c></row>', shared_strings)
    assert list(assert_read_as_openpyxl_reads(content)) == ["S"]


def test_rows_without_numbers_are_read_with_openpyxl():
    content = _sheet('<row><c r="A1"><v>1</v></c></row><row><c r="B2"><v>2</v></c></row>')
    assert list(assert_read_as_openpyxl_reads(content)) == ["S"]


def test_text_in_a_number_cell_is_a_corrupt_workbook():
    # openpyxl fails on it (int('abc')); calamine would give the text.
    content = _sheet('<row r="1"><c r="A1"><v>abc</v></c></row>')
    with open_workbook(content, "bad.xlsx") as wb, pytest.raises(DataError) as caught:
        wb.rows("S")
    assert caught.value.rule == "xlsx format" and "bad.xlsx" in str(caught.value)
    assert "truncated or corrupt workbook (ValueError" in str(caught.value)


# -- errors ---------------------------------------------------------------------------------------


def test_truncated_workbook(recorded_workbook):
    with pytest.raises(DataError) as caught:
        open_workbook(recorded_workbook[: len(recorded_workbook) // 2], "half.xlsx")
    assert caught.value.rule == "xlsx format" and caught.value.file == "half.xlsx"
    assert "truncated or corrupt workbook (" in str(caught.value)


def test_broken_sheet_xml_fails_when_read():
    content = _sheet('<row r="1"><c r="A1"><v>1</v></row>')  # <c> not closed
    with open_workbook(content, "broken.xlsx") as wb, pytest.raises(DataError) as caught:
        wb.rows("S")
    assert caught.value.rule == "xlsx format" and "truncated or corrupt" in str(caught.value)


def test_column_letters_as_openpyxl_names_them():
    assert [column_letter(i) for i in range(1, 18279)] == [
        get_column_letter(i) for i in range(1, 18279)]
