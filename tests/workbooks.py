"""Small Frontex-format workbooks written here, for bad-input tests.

``write_workbook`` writes the real layout (sheets ``Detections_of_IBC``, ``Notes``) from a header
and rows; ``write_layout`` writes workbooks in older layouts (other sheet and header names,
month headers as Excel dates, titles above the header, notes below the table, no Notes sheet);
``recorded_rows`` reads the recorded workbook's rows so a test can change one cell of the real
thing and write it back.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import openpyxl
from openpyxl.cell import WriteOnlyCell

HEADER = ["Route", "Border type or inland", "Nationality", "JAN2024", "FEB2024", "MAR2024"]
ROWS = [
    ["Central Mediterranean Route", "Sea", "Bangladesh", 41, 7, 108],
    ["Central Mediterranean Route", "Sea", "Eritrea", 16, 1, 14],
    ["Western Balkan Route", "Land", "Syria", 300, 250, 0],
    ["Western Balkan Route", "Land", "Kosovo*", 2, 0, 1],
    ["Eastern Mediterranean Route", "Sea", "Palestine^", 10, 12, 9],
    ["Eastern Mediterranean Route", "Land", "Stateless", 0, 3, None],
    ["Western African Route", "Sea", "Unspecified sub-Saharan nationals", 120, 80, 95],
    ["Western African Route", "Sea", "Unknown", 5, 0, 2],
    ["Other", "Sea", "Türkiye", 0, 0, 1],
    ["Black Sea Route", "Sea", "Afghanistan", 0, 1, 0],
]
TOTAL = sum(v for r in ROWS for v in r[3:] if v is not None)
CELLS = sum(1 for r in ROWS for v in r[3:] if v is not None)
NOTE = "Source: FRAN data as of 05APR24"


def write_workbook(header=HEADER, rows=ROWS, note: str | None = NOTE, blank_rows: int = 0,
                   sheet: str = "Detections_of_IBC", offset_columns: int = 0) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for _ in range(blank_rows):
        ws.append([])
    ws.append([None] * offset_columns + list(header))
    for row in rows:
        ws.append([None] * offset_columns + list(row))
    if note is not None:
        notes = wb.create_sheet("Notes")
        notes.append(["Definition: Data reported on a monthly basis by Member States."])
        notes.append([note])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_layout(header: Sequence, rows: Sequence[Sequence], *, sheet: str = "Detections_of_IBC",
                 notes: Sequence[Sequence] | None = None, notes_sheet: str = "Notes",
                 above: Sequence[Sequence] = (), below: Sequence[Sequence] = (),
                 date_format: str = "mmm-yy") -> bytes:
    """A workbook in an older layout, as Excel would hold it.

    ``above`` rows (titles, blank rows) come before the header and ``below`` rows (notes) after
    the table; ``notes`` are the rows of a notes sheet (None: no notes sheet). A header cell that
    is a date is written as a date cell shown as ``date_format`` (Jan-19), the way a workbook
    with real Excel dates as month headers stores it; a ``(number, number_format)`` tuple is a
    number cell with that format (an Excel serial shown as a date).
    """
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)

    def cell(value):
        if isinstance(value, date):
            value = (value, date_format)
        if isinstance(value, tuple):
            c = WriteOnlyCell(ws, value=value[0])
            c.number_format = value[1]
            return c
        return value

    for row in above:
        ws.append(list(row))
    ws.append([cell(v) for v in header])
    for row in rows:
        ws.append(list(row))
    for row in below:
        ws.append(list(row))
    if notes is not None:
        ns = wb.create_sheet(notes_sheet)
        for row in notes:
            ns.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def recorded_rows(path: Path) -> tuple[list, list[list]]:
    """Header and data rows of the recorded workbook's data sheet."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = [list(r) for r in wb["Detections_of_IBC"].iter_rows(values_only=True)]
    wb.close()
    return rows[0], rows[1:]


def unpacking_to(workbook: bytes, mib: int) -> bytes:
    """``workbook`` with its data sheet padded to unpack to ``mib`` MiB more, compressing to a few
    KB (a zip bomb in xlsx clothing)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as good, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in good.infolist():
            data = good.read(info.filename)
            if info.filename.endswith("sheet1.xml"):
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * (mib << 20), 1)
            new.writestr(info.filename, data)
    return out.getvalue()
