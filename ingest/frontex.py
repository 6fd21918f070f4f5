"""Frontex detections of irregular border crossings (monthly workbook).

Live, the workbook is linked from the Frontex migratory-map page under a name that changes with
every release (``Monthly_detections_of_IBC_2025_06_05.xlsx``), so ``discover`` reads the page.
Replayed, it is ``<WH_SNAPSHOT_DIR>/frontex/*.xlsx``.

Sheet ``Detections_of_IBC``: a header row whose first cell is ``Route`` (some releases start with
blank rows), then ``Border type or inland``, ``Nationality`` and one column per month
(``JAN2009`` ...). ``parse`` unpivots it to one row per non-empty cell.
"""
from __future__ import annotations

import io
import logging
import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urljoin

import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter

from ingest import http
from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.source import Candidate, Parsed

log = logging.getLogger(__name__)

NAME = "frontex"
DATA_SHEET = "Detections_of_IBC"
NOTES_SHEET = "Notes"
HEADER_SEARCH_ROWS = 20
MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
MONTH_HEADER = re.compile(r"^([A-Z]{3})\s*(\d{4})$")
RELEASE_NOTE = re.compile(r"as of\s+(\d{1,2})\s*([A-Za-z]{3})\s*(\d{2,4})")
LINK = re.compile(r"""href=["']([^"']*Monthly_detections_of_IBC_(\d{4})_(\d{2})_(\d{2})\.xlsx)["']""",
                  re.IGNORECASE)
ROW_COLUMNS = ["route", "border_type", "nationality", "month", "detections", "source_row"]


class FrontexSource:
    name = NAME

    def discover(self) -> list[Candidate]:
        s = settings()
        if s.snapshot_dir is not None:
            folder = s.snapshot_dir / NAME
            files = sorted(folder.glob("*.xlsx"))
            if not files:
                raise DataError(str(folder), "snapshot layout",
                                "no Frontex workbook (*.xlsx) in the snapshot directory")
            return [Candidate(NAME, f.resolve().as_uri()) for f in files]
        page = http.get_text(s.frontex_page_url)
        return [Candidate(NAME, find_workbook_link(page, s.frontex_page_url))]

    def fetch(self, candidate: Candidate) -> bytes:
        if candidate.is_local:
            return Path(candidate.url.removeprefix("file://")).read_bytes()
        content, _ = http.get_bytes(candidate.url)
        return content

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        return parse_workbook(content, file_name)


def find_workbook_link(page_html: str, page_url: str) -> str:
    """The newest ``Monthly_detections_of_IBC_YYYY_MM_DD.xlsx`` linked from the page."""
    links = [(m.group(2, 3, 4), m.group(1)) for m in LINK.finditer(page_html)]
    if not links:
        raise DownloadError(page_url, "workbook link",
                            "no link to Monthly_detections_of_IBC_<date>.xlsx on the page "
                            "(has the page layout changed?)")
    return urljoin(page_url, max(links)[1])


def _describe_non_xlsx(content: bytes) -> str:
    head = content[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page, not an xlsx workbook (an error page served with status 200?)"
    if not content:
        return "an empty file, not an xlsx workbook"
    return f"not an xlsx workbook (starts with {content[:8]!r})"


def _open(content: bytes, file_name: str) -> openpyxl.Workbook:
    if not content.startswith(b"PK\x03\x04"):
        raise DataError(file_name, "xlsx format", _describe_non_xlsx(content))
    try:
        return openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as err:  # zip, XML and openpyxl errors all mean the same thing here
        raise DataError(file_name, "xlsx format",
                        f"truncated or corrupt workbook ({type(err).__name__}: {err})") from err


def parse_release_date(wb: openpyxl.Workbook, file_name: str) -> date:
    """The release date stated in the Notes sheet ("FRAN data as of 03JUN25")."""
    if NOTES_SHEET not in wb.sheetnames:
        raise DataError(file_name, "release date", f"no '{NOTES_SHEET}' sheet")
    for row in wb[NOTES_SHEET].iter_rows(values_only=True):
        for cell in row:
            if isinstance(cell, str) and (m := RELEASE_NOTE.search(cell)):
                day, mon, year = m.groups()
                if mon.upper() not in MONTHS:
                    break
                y = int(year) if len(year) == 4 else 2000 + int(year)
                return date(y, MONTHS[mon.upper()], int(day))
    raise DataError(file_name, "release date",
                    f"no 'FRAN data as of DDMMMYY' statement in the '{NOTES_SHEET}' sheet")


def _month(header: object) -> date | None:
    if isinstance(header, datetime):
        return date(header.year, header.month, 1)
    if isinstance(header, str) and (m := MONTH_HEADER.match(header.strip().upper())):
        if m.group(1) in MONTHS:
            return date(int(m.group(2)), MONTHS[m.group(1)], 1)
    return None


def _find_header(rows: list[tuple], file_name: str) -> int:
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if row and isinstance(row[0], str) and row[0].strip() == "Route":
            return i
    # Say what is there instead, so the person reading the error can see what moved.
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        for j, cell in enumerate(row or ()):
            if isinstance(cell, str) and cell.strip() == "Route":
                raise DataError(file_name, "header row",
                                f"'Route' found in cell {get_column_letter(j + 1)}{i + 1}, but the "
                                "header must start in column A: the header moved", row=i + 1)
    first = next(((i, r) for i, r in enumerate(rows[:HEADER_SEARCH_ROWS])
                  if r and any(c is not None for c in r)), None)
    seen = f"; first non-empty row {first[0] + 1} starts {list(first[1][:3])}" if first else ""
    raise DataError(file_name, "header row",
                    f"no row in the first {HEADER_SEARCH_ROWS} of sheet '{DATA_SHEET}' has "
                    f"'Route' in column A (renamed or moved header?){seen}")


def parse_workbook(content: bytes, file_name: str) -> Parsed:
    """Parse a Frontex workbook: release date from ``Notes``, rows from ``Detections_of_IBC``
    unpivoted to (route, border_type, nationality, month, detections, source_row).

    Empty cells are no observation and produce no row. Counts must be whole numbers; negative
    counts parse (the raw audit rejects them, with the row, before anything is published).
    """
    wb = _open(content, file_name)
    try:
        release = parse_release_date(wb, file_name)
        if DATA_SHEET not in wb.sheetnames:
            raise DataError(file_name, "sheet", f"no '{DATA_SHEET}' sheet (sheets: {wb.sheetnames})")
        rows = list(wb[DATA_SHEET].iter_rows(values_only=True))
    finally:
        wb.close()
    where = f"{file_name} [{DATA_SHEET}]"
    h = _find_header(rows, where)
    header = rows[h]
    names = [c.strip() if isinstance(c, str) else c for c in header]
    border_col = next((j for j, c in enumerate(names) if isinstance(c, str)
                       and c.lower().startswith("border type")), None)
    nat_col = next((j for j, c in enumerate(names) if c == "Nationality"), None)
    if border_col is None or nat_col is None:
        missing = [n for n, j in (("Border type or inland", border_col), ("Nationality", nat_col))
                   if j is None]
        raise DataError(where, "header row", f"missing column(s) {missing} in header {names[:4]}",
                        row=h + 1)
    month_cols: list[tuple[int, date]] = []
    seen: dict[date, str] = {}
    for j, cell in enumerate(header):
        if j in (0, border_col, nat_col) or cell is None:
            continue
        month = _month(cell)
        letter = get_column_letter(j + 1)
        if month is None:
            raise DataError(where, "month column",
                            f"header {cell!r} in column {letter} is not a month like JAN2009",
                            row=h + 1)
        if month in seen:
            raise DataError(where, "month column",
                            f"month {cell!r} appears twice (columns {seen[month]} and {letter})",
                            row=h + 1)
        seen[month] = letter
        month_cols.append((j, month))
    if not month_cols:
        raise DataError(where, "month column", "no month columns after the header", row=h + 1)

    out: dict[str, list] = {c: [] for c in ROW_COLUMNS}
    for i in range(h + 1, len(rows)):
        row = rows[i]
        if not row or all(c is None or (isinstance(c, str) and not c.strip()) for c in row):
            continue
        sheet_row = i + 1
        route, border, nat = (row[0], row[border_col], row[nat_col]) if len(row) > nat_col else (
            row[0], None, None)
        values = [(j, m, row[j] if j < len(row) else None) for j, m in month_cols]
        if all(v is None for _, _, v in values) and (border is None or nat is None):
            log.info("%s row %d: no counts and no keys, read as a note: %r", where, sheet_row, row[0])
            continue
        for label, key in (("Route", route), ("Border type or inland", border),
                           ("Nationality", nat)):
            if not isinstance(key, str) or not key.strip():
                raise DataError(where, "row keys", f"empty {label} on a row with counts",
                                row=sheet_row)
        route, border, nat = route.strip(), border.strip(), nat.strip()
        for j, month, v in values:
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise DataError(where, "count is a number",
                                f"cell {get_column_letter(j + 1)}{sheet_row} ({route} / {border} / "
                                f"{nat}, {month:%b %Y}) holds {v!r}, not a count", row=sheet_row)
            if isinstance(v, float):
                if not v.is_integer():
                    raise DataError(where, "count is a whole number",
                                    f"cell {get_column_letter(j + 1)}{sheet_row} holds {v!r}",
                                    row=sheet_row)
                v = int(v)
            out["route"].append(route)
            out["border_type"].append(border)
            out["nationality"].append(nat)
            out["month"].append(month)
            out["detections"].append(v)
            out["source_row"].append(sheet_row)
    frame = pd.DataFrame(out, columns=ROW_COLUMNS)
    frame["month"] = pd.to_datetime(frame["month"]).astype("datetime64[s]")
    frame["detections"] = frame["detections"].astype("int64")
    frame["source_row"] = frame["source_row"].astype("int32")
    log.info("%s: release %s, %d rows, %d months, %s detections", file_name, release,
             len(frame), len(month_cols), f"{int(frame['detections'].sum()):,}")
    return Parsed(release_date=release, rows=frame)
