"""Small Frontex-format workbooks written here, for bad-input tests.

``write_workbook`` writes the real layout (sheets ``Detections_of_IBC``, ``Notes``) from a header
and rows; ``recorded_rows`` reads the recorded workbook's rows so a test can change one cell of
the real thing and write it back.
"""
from __future__ import annotations

import io
from pathlib import Path

import openpyxl

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


def recorded_rows(path: Path) -> tuple[list, list[list]]:
    """Header and data rows of the recorded workbook's data sheet."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = [list(r) for r in wb["Detections_of_IBC"].iter_rows(values_only=True)]
    wb.close()
    return rows[0], rows[1:]
