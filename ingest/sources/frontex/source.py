"""Frontex detections of irregular border crossings (monthly workbook).

Live, the workbook is linked from the Frontex migratory-map page under a name that changes with
every release (``Monthly_detections_of_IBC_2025_06_05.xlsx``), so ``discover`` reads the page.
Replayed, it is ``<WH_SNAPSHOT_DIR>/frontex/*.xlsx``.

Sheet ``Detections_of_IBC``: a header row whose first cell is ``Route`` (some releases start with
blank rows), then ``Border type or inland``, ``Nationality`` and one column per month
(``JAN2009`` ...). ``parse`` unpivots it to one row per non-empty cell.

Frontex has changed this layout over the years, and archived workbooks must still parse so every
release can be backfilled. The parser therefore reads a layout by meaning, through two seeds that
BI tools see too (schema ``reference``):

- ``frontex_layout_aliases.csv``: other names of the key columns (``Routes``, ``Border type``,
  ``Citizenship``; ``BorderLocation`` and ``NationalityLong`` in the release of 6 July 2018 ...),
  of the sheets, columns and rows of totals to pass over, extra month
  names, and the phrases that introduce the release date in a note ("data as of", "as at").
  Month headers may also be Excel dates or other spellings (``Jan 2009``, ``JAN-09``).
- ``frontex_route_aliases.csv``: older route labels ("Western Balkans", "Eastern Land Borders")
  to the routes of ``frontex_routes.csv``, optionally only for releases within dates. Each row
  keeps its route label as published beside the canonical route (``route_as_published``).

Matching ignores case, spaces and punctuation. A header, route label or note the seeds do not
explain fails the file with a ``DataError`` naming it, its row and the seed to extend.
"""
from __future__ import annotations

import csv
import functools
import itertools
import logging
import os
import re
import weakref
from array import array
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pandas as pd

from ingest import http
from ingest.config import SEEDS_DIR, settings
from ingest.errors import DataError, DownloadError
from ingest.source import Candidate, Parsed
from ingest.xlsx import Workbook, column_letter, open_workbook
from ingest.xlsx import normalised_cell as _normalised_cell

log = logging.getLogger(__name__)

NAME = "frontex"
DATA_SHEET = "Detections_of_IBC"
NOTES_SHEET = "Notes"
HEADER_SEARCH_ROWS = 20
MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]
# Month headers as text: JAN2009, Jan 2009, JAN-09, January 2009, Sept. 2009 (names: MONTH_NAMES,
# their first three letters and the seed's kind 'month'); 2009-01, 2009M01, 2009-01-01; 01/2009;
# 01.01.2009 (day first). Tuples: pattern, year group, month group.
MONTH_TEXT = re.compile(r"^([A-Za-z]+)\.?[\s\-_/'.]*(\d{4}|\d{2})$")
MONTH_NUMBERS = [
    (re.compile(r"^(\d{4})\s*[-/.Mm]\s*(\d{1,2})(?:[-/.]\d{1,2})?(?:[ T]00:00(?::00)?)?$"), 1, 2),
    (re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{4})$"), 2, 1),
    (re.compile(r"^\d{1,2}[-/.](\d{1,2})[-/.](\d{4})$"), 2, 1),
]
# A month header stored as a bare Excel serial (no date format): 2000-01-01 to 2099-12-31 only,
# so that no other number passes for a month. Serials past 60 count days from 1899-12-30.
EXCEL_SERIALS = (36526, 73050)
EXCEL_EPOCH = date(1899, 12, 30)
# The date after a release-note phrase ("as of"): 2019-04-05; 05.04.2019, 05/04/2019 (day first);
# 03JUN25, 5 April 2019, 5 Apr 2019; April 5, 2019. Tuples: pattern, order of its groups.
NOTE_DATES = [
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?!\d)"), "dmy"),
    (re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[\s.-]*([A-Za-z]{3,9})\.?[\s.,-]*(\d{4}|\d{2})(?!\d)"),
     "dmy"),
    (re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)"), "mdy"),
]
LAYOUT_SEED = SEEDS_DIR / "frontex_layout_aliases.csv"
ROUTE_ALIASES_SEED = SEEDS_DIR / "frontex_route_aliases.csv"
ROUTES_SEED = SEEDS_DIR / "frontex_routes.csv"
LINK = re.compile(r"""href=["']([^"']*Monthly_detections_of_IBC_(\d{4})_(\d{2})_(\d{2})\.xlsx)["']""",
                  re.IGNORECASE)
ROW_COLUMNS = ["route", "route_as_published", "border_type", "nationality", "month",
               "detections", "source_row"]


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
        content, _ = http.get_bytes(candidate.url)
        return content

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        return parse_streamed(content, file_name)


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


def _open(content: bytes, file_name: str) -> Workbook:
    if not content.startswith(b"PK\x03\x04"):
        raise DataError(file_name, "xlsx format", _describe_non_xlsx(content))
    return open_workbook(content, file_name)  # DataError "truncated or corrupt workbook (...)"


def _key(text: str) -> str:
    """Matching key of a header, route label, month name or sheet name: case, spaces and
    punctuation vary between releases ("Border type", "BorderType", "border  type "), the
    letters and digits do not."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _read_seed(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for n, row in enumerate(rows, 2):
        if None in row or None in row.values():
            raise ValueError(f"{path.name} line {n}: not as many fields as columns (a comma in "
                             "a note must be quoted)")
    return [{k: v.strip() for k, v in row.items()} for row in rows]


@dataclass(frozen=True)
class Layout:
    """What ``frontex_layout_aliases.csv`` says about workbook layouts, keyed by ``_key``."""

    headers: dict[str, str]
    """header key -> route, border_type, nationality or ignore (a column that is not data)."""
    total_rows: frozenset[str]
    """route-column labels of totals rows (sums of the rows above, never observations)."""
    months: dict[str, int]
    """month-name key -> month number, for month headers and release notes."""
    note: re.Pattern
    """the phrases that introduce the release date in a note ("data as of")."""
    sheets: dict[str, str]
    """sheet-name key -> data or notes."""
    spellings: dict[str, tuple[str, ...]]
    """route, border_type, nationality -> its header aliases as the seed writes them (for
    errors: the names a missing column is known by)."""

    def names(self, canonical: str) -> list[str]:
        return [k for k, v in self.headers.items() if v == canonical]


def _unique(table: dict[str, str], key: str, value: str, seed: Path, alias: str) -> None:
    if table.setdefault(key, value) != value:
        raise ValueError(f"{seed.name}: {alias!r} maps to both {table[key]!r} and {value!r} "
                         "(aliases are matched ignoring case, spaces and punctuation)")


@functools.lru_cache(maxsize=1)
def layout() -> Layout:
    """The layout aliases, read once per process (the parser runs once per landed file)."""
    headers: dict[str, str] = {}
    spellings: dict[str, list[str]] = {}
    sheets: dict[str, str] = {}
    totals: set[str] = set()
    months = {_key(name): i for i, name in enumerate(MONTH_NAMES, 1)}
    months.update({_key(name[:3]): i for i, name in enumerate(MONTH_NAMES, 1)})
    phrases: list[str] = []
    allowed = {"header": {"route", "border_type", "nationality", "ignore"}, "row": {"total"},
               "month": set(MONTHS), "note": {"release_date"}, "sheet": {"data", "notes"}}
    for n, row in enumerate(_read_seed(LAYOUT_SEED), 2):
        kind, alias, canonical = row["kind"], row["alias"], row["canonical"]
        if kind not in allowed or canonical not in allowed[kind] or not _key(alias):
            raise ValueError(f"{LAYOUT_SEED.name} line {n}: kind {kind!r} / canonical "
                             f"{canonical!r} / alias {alias!r} not understood (kinds and their "
                             f"canonical values: {allowed})")
        if kind == "header":
            _unique(headers, _key(alias), canonical, LAYOUT_SEED, alias)
            spellings.setdefault(canonical, []).append(alias)
        elif kind == "sheet":
            _unique(sheets, _key(alias), canonical, LAYOUT_SEED, alias)
        elif kind == "row":
            totals.add(_key(alias))
        elif kind == "month":
            months[_key(alias)] = MONTHS[canonical]
        else:
            phrases.append(alias)
    if not phrases or {"route", "border_type", "nationality"} - set(headers.values()):
        raise ValueError(f"{LAYOUT_SEED.name}: needs at least one note phrase and one header "
                         "for each of route, border_type, nationality")
    words = sorted((r"\s+".join(map(re.escape, p.split())) for p in phrases), key=len,
                   reverse=True)
    note = re.compile(r"\b(?:" + "|".join(words) + r")\b[\s:,]*", re.IGNORECASE)
    return Layout(headers, frozenset(totals), months, note, sheets,
                  {k: tuple(v) for k, v in spellings.items()})


@dataclass(frozen=True)
class RouteAlias:
    route: str
    valid_from: date | None
    valid_to: date | None

    def applies(self, release: date) -> bool:
        return ((self.valid_from is None or self.valid_from <= release)
                and (self.valid_to is None or release <= self.valid_to))

    def validity(self) -> str:
        return f"{self.valid_from or 'any release'} to {self.valid_to or 'any release'}"


@functools.lru_cache(maxsize=1)
def route_aliases() -> dict[str, tuple[RouteAlias, ...]]:
    """Route label key -> the canonical routes it may stand for, with the releases in which it
    does. Every canonical route of ``frontex_routes.csv`` stands for itself in every release."""
    canonical = [row["route"] for row in _read_seed(ROUTES_SEED)]
    table: dict[str, list[RouteAlias]] = {_key(r): [RouteAlias(r, None, None)] for r in canonical}
    for n, row in enumerate(_read_seed(ROUTE_ALIASES_SEED), 2):
        where = f"{ROUTE_ALIASES_SEED.name} line {n}"
        if row["route"] not in canonical:
            raise ValueError(f"{where}: route {row['route']!r} is not a route of "
                             f"{ROUTES_SEED.name} ({canonical})")
        try:
            bounds = [date.fromisoformat(row[c]) if row[c] else None
                      for c in ("valid_from", "valid_to")]
        except ValueError as err:
            raise ValueError(f"{where}: valid_from/valid_to must be YYYY-MM-DD ({err})") from err
        alias = RouteAlias(row["route"], *bounds)
        if alias.valid_from and alias.valid_to and alias.valid_from > alias.valid_to:
            raise ValueError(f"{where}: valid_from {alias.valid_from} after valid_to "
                             f"{alias.valid_to}")
        key = _key(row["alias"])
        for other in table.setdefault(key, []):
            overlap = ((other.valid_from is None or alias.valid_to is None
                        or other.valid_from <= alias.valid_to)
                       and (alias.valid_from is None or other.valid_to is None
                            or alias.valid_from <= other.valid_to))
            if other.route != alias.route and overlap:
                raise ValueError(f"{where}: {row['alias']!r} maps to {alias.route!r} "
                                 f"({alias.validity()}) and to {other.route!r} "
                                 f"({other.validity()}) in overlapping releases")
        table[key].append(alias)
    return {k: tuple(v) for k, v in table.items()}


def canonical_route(label: str, release: date, where: str, row: int) -> str:
    """The route of ``frontex_routes.csv`` a published route label stands for in a release."""
    aliases = route_aliases().get(_key(label), ())
    for alias in aliases:
        if alias.applies(release):
            return alias.route
    if aliases:
        valid = "; ".join(f"{a.route} for releases {a.validity()}" for a in aliases)
        raise DataError(where, "route",
                        f"route label {label!r} is an alias ({valid}) but not for release "
                        f"{release}; extend the validity in "
                        f"dbt_project/seeds/{ROUTE_ALIASES_SEED.name}", row=row)
    raise DataError(where, "route",
                    f"route label {label!r} is neither a route of {ROUTES_SEED.name} nor an alias "
                    f"in {ROUTE_ALIASES_SEED.name}; if it names a known route, add it to "
                    f"dbt_project/seeds/{ROUTE_ALIASES_SEED.name} (alias,route,valid_from,"
                    f"valid_to,note)", row=row)


def _year(text: str) -> int:
    return int(text) if len(text) == 4 else 2000 + int(text)


def _note_date(text: str, next_cell: object, lay: Layout) -> date | None:
    """The date written right after a note phrase ("03JUN25", "5 April 2019", "05.04.2019",
    "05/04/2019", "2019-04-05", "April 5, 2019"), or in the next cell when the phrase ends its
    cell. Numeric dates are day first: Frontex is a European publisher."""
    if not text.strip():
        if isinstance(next_cell, datetime | date):
            return date(next_cell.year, next_cell.month, next_cell.day)
        text = next_cell if isinstance(next_cell, str) else ""
    for pattern, order in NOTE_DATES:
        if m := pattern.match(text.strip()):
            parts = dict(zip(order, m.groups()))
            month = (int(parts["m"]) if parts["m"].isdigit()
                     else lay.months.get(_key(parts["m"])))
            if month is None:
                return None
            try:
                return date(_year(parts["y"]), month, int(parts["d"]))
            except ValueError:
                return None
    return None


def _find_release(rows, lay: Layout) -> date | None:
    for row in rows:
        for j, cell in enumerate(row or ()):
            if not isinstance(cell, str):
                continue
            for m in lay.note.finditer(cell):
                following = row[j + 1] if j + 1 < len(row) else None
                if found := _note_date(cell[m.end():], following, lay):
                    return found
    return None


def _note_rows(rows: list[tuple]):
    """Rows of the data sheet that may hold a note: at most three filled cells (titles above
    the header, notes below the table). Data rows have a cell per month and are passed over
    after a few cells."""
    for row in rows:
        filled = 0
        for cell in row or ():
            if cell is not None:
                filled += 1
                if filled > 3:
                    break
        else:
            if filled:
                yield row


def parse_release_date(notes: list[tuple] | None, data: list[tuple], file_name: str,
                       data_sheet: str = DATA_SHEET) -> date:
    """The release date stated in the Notes sheet ("Source: FRAN data as of 03JUN25"; older
    releases: "Data as of 05.04.2019", "FRAN data as of 5 April 2019" ...), else in a note on
    the data sheet itself (older releases put it above or below the table)."""
    lay = layout()
    found = (_find_release(notes, lay) if notes is not None else None) or _find_release(
        _note_rows(data), lay)
    if found is None:
        sheets = (f"the '{NOTES_SHEET}' sheet nor " if notes is not None
                  else f"(no '{NOTES_SHEET}' sheet) ")
        raise DataError(file_name, "release date",
                        f"no 'FRAN data as of DDMMMYY' statement (or another wording: phrases of "
                        f"kind note in {LAYOUT_SEED.name} followed by a date) in {sheets}"
                        f"a note on the '{data_sheet}' sheet")
    return found


def _month(header: object, lay: Layout) -> date | None:
    """The month of a month header: text (JAN2009, Jan 2009, JAN-09, January 2009, 2009-01,
    01/2009) or an Excel date (the reader returns a datetime for a date-formatted cell, as
    openpyxl did, and a bare number for a date serial without a date format)."""
    if isinstance(header, datetime | date):
        return date(header.year, header.month, 1)
    if isinstance(header, int | float) and not isinstance(header, bool):
        if float(header).is_integer() and EXCEL_SERIALS[0] <= header <= EXCEL_SERIALS[1]:
            day = EXCEL_EPOCH + timedelta(days=int(header))
            return date(day.year, day.month, 1)
        return None
    if not isinstance(header, str):
        return None
    text = header.strip()
    if m := MONTH_TEXT.match(text):
        month = lay.months.get(_key(m.group(1)))
        return date(_year(m.group(2)), month, 1) if month else None
    for pattern, year_group, month_group in MONTH_NUMBERS:
        if m := pattern.match(text):
            month = int(m.group(month_group))
            return date(int(m.group(year_group)), month, 1) if 1 <= month <= 12 else None
    return None


def _sheet(names: list[str], role: str, lay: Layout) -> str | None:
    return next((n for n in names if lay.sheets.get(_key(n)) == role), None)


def _find_header(rows: list[tuple], file_name: str, lay: Layout) -> int:
    """The header row: the first of the first rows whose column A names the route column."""
    route_names = set(lay.names("route"))
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if row and isinstance(row[0], str) and _key(row[0]) in route_names:
            return i
    # Say what is there instead, so the person reading the error can see what moved.
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        for j, cell in enumerate(row or ()):
            if isinstance(cell, str) and _key(cell) in route_names:
                raise DataError(file_name, "header row",
                                f"{cell.strip()!r} found in cell {column_letter(j + 1)}"
                                f"{i + 1}, but the header must start in column A: the header "
                                "moved", row=i + 1)
    first = next(((i, r) for i, r in enumerate(rows[:HEADER_SEARCH_ROWS])
                  if r and any(c is not None for c in r)), None)
    seen = f"; first non-empty row {first[0] + 1} starts {list(first[1][:3])}" if first else ""
    raise DataError(file_name, "header row",
                    f"no row in the first {HEADER_SEARCH_ROWS} of the data sheet has "
                    f"'Route' in column A (renamed or moved header? route header names are "
                    f"the kind 'header' rows of {LAYOUT_SEED.name}){seen}")


def _shown(cell: object) -> object:
    """A header cell as an error shows it: text as written, a date as YYYY-MM-DD (not a Python
    repr), anything else as it is."""
    if isinstance(cell, datetime | date):
        return f"{cell:%Y-%m-%d}"
    return cell.strip() if isinstance(cell, str) else cell


def _columns(header: tuple, where: str, row: int,
             lay: Layout) -> tuple[int, int, list[tuple[int, date]], list[int]]:
    """Border type and nationality columns, the month columns and the totals columns of the
    header row, by meaning: each header is a key column, a column to ignore (row totals) or a
    month; anything else fails, naming the header. An ignored column whose header is also a
    totals label (``Total``, ``Grand total``: the seed's kind 'row') is a totals column, whose
    cells are compared with the sum of their row's months."""
    keys: dict[str, int] = {"route": 0}
    months: list[tuple[int, date]] = []
    totals: list[int] = []
    seen: dict[date, str] = {}
    unknown: list[str] = []
    for j, cell in enumerate(header):
        if j == 0 or cell is None or (isinstance(cell, str) and not cell.strip()):
            continue
        letter = column_letter(j + 1)
        role = lay.headers.get(_key(cell)) if isinstance(cell, str) else None
        if role == "ignore":
            if _key(cell) in lay.total_rows:
                totals.append(j)
            continue
        if role is not None:
            if role in keys:
                raise DataError(where, "header row",
                                f"columns {column_letter(keys[role] + 1)} and {letter} "
                                f"({cell.strip()!r}) both read as {role}", row=row)
            keys[role] = j
            continue
        month = _month(cell, lay)
        if month is None:
            unknown.append(f"{cell!r} in column {letter}")
            continue
        if month in seen:
            raise DataError(where, "month column",
                            f"month {cell!r} appears twice (columns {seen[month]} and {letter})",
                            row=row)
        seen[month] = letter
        months.append((j, month))
    missing = [(name, role) for name, role in (("Border type or inland", "border_type"),
                                               ("Nationality", "nationality"))
               if role not in keys]
    if missing:
        filled = [c for c in header if c is not None]
        names = [_shown(c) for c in header[:4]]
        more = f" and {len(filled) - 4} more columns" if len(filled) > 4 else ""
        known = "; ".join(f"{name} is read from a header named "
                          f"{', '.join(repr(a) for a in lay.spellings.get(role, ()))}"
                          for name, role in missing)
        raise DataError(where, "header row",
                        f"missing column(s) {[name for name, _ in missing]} in header "
                        f"{names}{more}"
                        + (f"; not understood: {', '.join(unknown[:3])}" if unknown else "")
                        + f"; {known} (a new name for a known column goes into "
                        f"dbt_project/seeds/{LAYOUT_SEED.name}, kind 'header')",
                        row=row)
    if unknown:
        raise DataError(where, "month column",
                        f"header {unknown[0]} is not a month like JAN2009 (or Jan 2009, JAN-09, "
                        f"an Excel date) nor a column named in {LAYOUT_SEED.name}"
                        + (f" ({len(unknown) - 1} more such header(s))" if len(unknown) > 1
                           else ""), row=row)
    if not months:
        raise DataError(where, "month column", "no month columns after the header", row=row)
    return keys["border_type"], keys["nationality"], months, totals


def _frame(keys: list[tuple[str, str, str, str]], key_rows: array, months: list[date],
           key_of: array, month_of: array, counts: array) -> pd.DataFrame:
    """The observations as a frame of ROW_COLUMNS: text keys as Categoricals (a few hundred
    labels for millions of rows), months, counts and sheet rows as numpy arrays."""
    index = np.frombuffer(key_of, dtype=np.int32) if len(key_of) else np.zeros(0, np.int32)
    columns: dict[str, object] = {}
    for pos, name in enumerate(ROW_COLUMNS[:4]):
        labels = [k[pos] for k in keys]
        categories = sorted(set(labels))
        code = {label: c for c, label in enumerate(categories)}
        codes = np.array([code[label] for label in labels], dtype=np.int32)
        columns[name] = pd.Categorical.from_codes(codes[index], categories=categories)
    month_index = np.frombuffer(month_of, dtype=np.int16) if len(month_of) else np.zeros(0, np.int16)
    columns["month"] = np.array(months, dtype="datetime64[s]")[month_index]
    columns["detections"] = (np.frombuffer(counts, dtype=np.int64) if len(counts)
                             else np.zeros(0, np.int64))
    rows = np.frombuffer(key_rows, dtype=np.int32) if len(key_rows) else np.zeros(0, np.int32)
    columns["source_row"] = rows[index]
    return pd.DataFrame(columns, columns=ROW_COLUMNS)


def _count_text(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else repr(value)


def _check_totals_row(row: tuple, sheet_row: int, label: str, month_cols: list[tuple[int, date]],
                      sums: tuple[list[int], list[int]], where: str) -> None:
    """A totals row states, per month, the sum of the rows since the previous totals row (or of
    every row above it); a cell that is empty or not a number states nothing."""
    for n, (j, month) in enumerate(month_cols):
        v = row[j] if j < len(row) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if v != sums[0][n] and v != sums[1][n]:
            raise DataError(where, "totals row agrees with its rows",
                            f"cell {column_letter(j + 1)}{sheet_row} ({label!r} row, "
                            f"{month:%b %Y}) states {_count_text(v)}, but the rows above it "
                            f"add up to {sums[0][n]:,}", row=sheet_row)


def _check_totals_column(row: tuple, sheet_row: int, label: str,
                         month_cols: list[tuple[int, date]], total_cols: list[int],
                         where: str) -> None:
    """A totals column states the sum of its row's month cells (empty cells count nothing)."""
    if not total_cols:
        return
    total = sum(v for j, _ in month_cols if j < len(row) and isinstance(v := row[j], (int, float))
                and not isinstance(v, bool))
    for j in total_cols:
        v = row[j] if j < len(row) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if v != total:
            raise DataError(where, "totals column agrees with its row",
                            f"cell {column_letter(j + 1)}{sheet_row} ({label}) states "
                            f"{_count_text(v)}, but the row's {len(month_cols)} months add up "
                            f"to {_count_text(total)}", row=sheet_row)


def parse_workbook(content: bytes, file_name: str) -> Parsed:
    """Parse a Frontex workbook, in the current or an older layout: release date from the notes,
    rows from the data sheet unpivoted to (route, route_as_published, border_type, nationality,
    month, detections, source_row).

    Layouts are read by meaning through seeds (headers, sheet names, note wordings in
    ``frontex_layout_aliases.csv``; route labels in ``frontex_route_aliases.csv``), so a release
    from any year loads into the same columns and routes; what no seed explains fails, naming it.
    Empty cells are no observation and produce no row. Counts must be whole numbers; negative
    counts parse (the raw audit rejects them, with the row, before anything is published).
    A sheet with no count at all fails (rule "data rows"). Totals rows and columns (older
    layouts) are not observations; each must agree with the rows or months it sums, else the
    file fails naming the cell (rules "totals row agrees with its rows", "totals column agrees
    with its row").
    """
    frame = _Frames()
    release = _parse(content, file_name, frame, flush_rows=None)
    return Parsed(release_date=release, rows=frame.frame())


def parse_streamed(content: bytes, file_name: str) -> Parsed:
    """``parse_workbook`` whose rows never are all in memory: the sheet is read a piece at a
    time (``ingest.xlsx``) and the observations go to Parquet every ``FLUSH_ROWS``
    (``ParquetRows``, which ``ingest.parsed.write`` copies into the parsed form). Same rows,
    same checks and messages; the landing and the load parse with it."""
    rows = ParquetRows()
    try:
        release = _parse(content, file_name, rows, flush_rows=FLUSH_ROWS)
    except BaseException:
        rows.close()
        raise
    return Parsed(release_date=release, rows=rows)


BLOCKS = True
"""Read the month cells of each piece of the sheet as one numpy array where that is exactly
what reading them cell by cell gives (``_observations``); False: every row cell by cell (the
tests' reference)."""

FLUSH_ROWS = 1_000_000
"""Observations kept in memory before they are written out as one part (``parse_streamed``)."""
PART_COMPRESSION = "uncompressed"
"""Of the parts under the spill folder (read once, by the copy into the parsed form)."""


class _Frames:
    """Where ``_parse`` puts the observations: here, one DataFrame of them all."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, part: pd.DataFrame) -> None:
        self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        return self.parts[0]  # flush_rows None: one part


KEY_COLUMNS = ROW_COLUMNS[:4]
"""The text columns: the keys of a sheet row."""
_enum_types = itertools.count(1)


class ParquetRows:
    """Parsed observations in Parquet parts under this process's DuckDB spill folder
    (``ingest.duck``), in sheet order: ``write_parquet`` copies them into one file (the parsed
    form), ``df()`` reads them back (tests, small files). The parts are removed when this object
    is collected (or at ``close()``)."""

    _made = 0

    def __init__(self) -> None:
        from ingest import duck
        ParquetRows._made += 1
        self.folder = duck.temp_dir_for(f"frontex-rows-{ParquetRows._made}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: list[Path] = []
        self.count = 0
        self._labels: dict[str, set[str]] = {name: set() for name in KEY_COLUMNS}
        """Every label of each key column in the parts (the parts' own categories)."""
        self._con = None
        self._closer = None
        self._cleanup = weakref.finalize(self, _remove_folder, self.folder)

    def _connection(self):
        """A cursor of the process's shared DuckDB instance (``ingest.duck.shared_cursor``)
        for the parts and the copy, closed with this object; one thread (set before each
        query: the setting is the instance's): the parts are written and copied in order, a
        row group at a time."""
        if self._con is None:
            from ingest import duck
            self._con = duck.shared_cursor()
            self._closer = weakref.finalize(self, self._con.close)
        self._con.execute("set threads = 1")
        return self._con

    def add(self, part: pd.DataFrame) -> None:
        path = self.folder / f"part-{len(self.files):05d}.parquet"
        con = self._connection()
        con.register("part_rows", part)
        try:
            # Uncompressed: the parts are read once, by the copy into the parsed form.
            con.execute(f"copy part_rows to '{_sql_str(path)}' (format parquet, "
                        f"compression {PART_COMPRESSION})")
        finally:
            con.unregister("part_rows")
        self.files.append(path)
        self.count += len(part)
        for name in KEY_COLUMNS:
            self._labels[name].update(part[name].cat.categories)

    def __len__(self) -> int:
        return self.count

    def _source(self) -> str:
        return "read_parquet([" + ", ".join(f"'{_sql_str(f)}'" for f in self.files) + "])"

    def write_parquet(self, path: Path, meta: dict[str, str]) -> None:
        """One COPY of the parts, in order (one thread, a scan and a projection). The key
        columns go through an ENUM of their labels: DuckDB's Parquet writer takes an ENUM's
        dictionary as it is, where it hashes every text value again (17 million rows of four
        key columns: 2.3 s of a 2.8 s copy as text); the file holds the same text, types and
        rows (decision 87)."""
        from ingest.parsed import kv_sql
        con = self._connection()
        made = next(_enum_types)
        types = {name: f"frontex_{name}_{os.getpid()}_{made}" for name in KEY_COLUMNS}
        try:
            for name, enum in types.items():
                labels = pd.DataFrame({"label": sorted(self._labels[name])})
                con.register("frontex_labels", labels)
                try:
                    con.execute(f"create type {enum} as enum (select label from frontex_labels)")
                finally:
                    con.unregister("frontex_labels")
            columns = ", ".join(f"{c}::{types[c]} as {c}" if c in types else c
                                for c in ROW_COLUMNS)
            con.execute(
                f"copy (select {columns} from {self._source()}) to '{_sql_str(path)}' "
                f"(format parquet, compression zstd, kv_metadata {{{kv_sql(meta)}}})")
        finally:
            for enum in types.values():
                con.execute(f"drop type if exists {enum}")

    def df(self) -> pd.DataFrame:
        from ingest import duck
        with duck.connect(config={"preserve_insertion_order": True}) as con:
            return con.execute(f"select * from {self._source()}").df()

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
        self._cleanup()


def _remove_folder(folder: Path) -> None:
    import shutil
    shutil.rmtree(folder, ignore_errors=True)


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _month_sums(month_of: array, counts: array, months: int) -> np.ndarray:
    """Per month column, the sum of the counts (exact, int64)."""
    sums = np.zeros(months, dtype=np.int64)
    if len(counts):
        np.add.at(sums, np.frombuffer(month_of, dtype=np.int16),
                  np.frombuffer(counts, dtype=np.int64))
    return sums


def _parse(content: bytes, file_name: str, out, flush_rows: int | None) -> date:
    """``parse_workbook``'s work, reading the data sheet row by row: the observations go to
    ``out.add(frame)``, every ``flush_rows`` of them (after a whole sheet row), or once at the
    end (None). Returns the release date."""
    lay = layout()
    wb = _open(content, file_name)
    try:
        data_sheet = _sheet(wb.sheetnames, "data", lay)
        if data_sheet is None:
            raise DataError(file_name, "sheet",
                            f"no '{DATA_SHEET}' sheet (sheets: {wb.sheetnames}; other names of it "
                            f"are the kind 'sheet' rows of {LAYOUT_SEED.name})")
        notes_sheet = _sheet(wb.sheetnames, "notes", lay)
        notes = wb.rows(notes_sheet) if notes_sheet is not None else None

        def data_rows():  # a pass over the data sheet, started only when iterated
            yield from wb.iter_rows(data_sheet)

        # The release date first (route aliases depend on it): from the Notes sheet, else from
        # a note on the data sheet (older layouts), for which the sheet is read once more.
        release = parse_release_date(notes, data_rows(), file_name, data_sheet)
        return _observations(wb.iter_blocks(data_sheet), release, lay,
                             f"{file_name} [{data_sheet}]", file_name, out, flush_rows)
    finally:
        wb.close()


def _observations(blocks, release: date, lay: Layout, where: str, file_name: str, out,
                  flush_rows: int | None) -> date:
    """The observations of the data sheet's rows (``Workbook.iter_blocks``): the header
    within the first HEADER_SEARCH_ROWS rows, then every row below it, unpivoted. A block
    (a piece of the sheet) is read by ``block_rows`` with numpy when that gives exactly what
    reading it row by row (``one_row``) gives, else row by row; errors are raised by the same
    code either way, in sheet order."""
    blocks = iter(blocks)
    head: list = []
    rest = None  # (block, index of its first row after the head)
    for block in blocks:
        take = min(len(block), HEADER_SEARCH_ROWS - len(head))
        head.extend(block.row(i) for i in range(take))
        if take < len(block):
            rest = (block, take)
            break
        if len(head) == HEADER_SEARCH_ROWS:
            break
    h = _find_header(head, where, lay)
    border_col, nat_col, month_cols, total_cols = _columns(head[h], where, h + 1, lay)
    width = max(border_col, nat_col)
    months = [m for _, m in month_cols]
    routes: dict[str, str] = {}
    # Totals (older layouts; the current one has none): a totals row is compared month by month
    # with the sum of the rows since the previous totals row (or of every row above: a grand
    # total after subtotals), a totals column with the sum of its row's months. The sums are
    # computed when a totals row comes, from the observations (those written out already
    # summed as they were).
    flushed_since = np.zeros(len(month_cols), dtype=np.int64)
    flushed_all = np.zeros(len(month_cols), dtype=np.int64)
    since_at = 0  # first observation (of those in memory) after the last totals row

    # Compact while unpivoting: the keys once per sheet row, and per observation an index into
    # them, the month's column and the count; written out every flush_rows observations.
    keys: list[tuple[str, str, str, str]] = []
    key_rows = array("i")
    key_of, month_of, counts = array("i"), array("h"), array("q")
    total_keys = total_rows = total_detections = 0

    def flush() -> None:
        nonlocal keys, key_rows, key_of, month_of, counts, since_at
        nonlocal total_keys, total_rows, total_detections
        if len(counts):
            frame = _frame(keys, key_rows, months, key_of, month_of, counts)
            total_rows += len(frame)
            total_detections += int(frame["detections"].sum())
            out.add(frame)
        flushed_all[:] += _month_sums(month_of, counts, len(month_cols))
        flushed_since[:] += _month_sums(month_of[since_at:], counts[since_at:], len(month_cols))
        total_keys += len(keys)
        keys, key_rows = [], array("i")
        key_of, month_of, counts = array("i"), array("h"), array("q")
        since_at = 0

    def keyed(route: object, border: object, nat: object, sheet_row: int) -> int:
        """The index of a data row's keys (checked, the route made canonical) in ``keys``."""
        for label, key in (("Route", route), ("Border type or inland", border),
                           ("Nationality", nat)):
            if not isinstance(key, str) or not key.strip():
                raise DataError(where, "row keys", f"empty {label} on a row with counts",
                                row=sheet_row)
        published, border, nat = route.strip(), border.strip(), nat.strip()
        canonical = routes.get(published)
        if canonical is None:
            canonical = routes[published] = canonical_route(published, release, where,
                                                            sheet_row)
        keys.append((canonical, published, border, nat))
        key_rows.append(sheet_row)
        return len(keys) - 1

    def one_row(row: tuple, sheet_row: int) -> None:
        """One sheet row, cell by cell (any row ``block_rows`` does not take)."""
        nonlocal since_at
        if not row or all(c is None or (isinstance(c, str) and not c.strip()) for c in row):
            return
        route, border, nat = (row[0], row[border_col], row[nat_col]) if len(row) > width else (
            row[0], None, None)
        if isinstance(route, str) and _key(route) in lay.total_rows:
            sums = ((flushed_since + _month_sums(month_of[since_at:], counts[since_at:],
                                                 len(month_cols))).tolist(),
                    (flushed_all + _month_sums(month_of, counts, len(month_cols))).tolist())
            _check_totals_row(row, sheet_row, route.strip(), month_cols, sums, where)
            _check_totals_column(row, sheet_row, route.strip(), month_cols, total_cols, where)
            log.info("%s row %d: %r is a totals row, not an observation: checked against the "
                     "rows above and skipped", where, sheet_row, route)
            flushed_since[:] = 0
            since_at = len(counts)
            return
        values = [(j, m, row[j] if j < len(row) else None) for j, m in month_cols]
        if all(v is None for _, _, v in values) and (border is None or nat is None):
            log.info("%s row %d: no counts and no keys, read as a note: %r", where, sheet_row, row[0])
            return
        key = keyed(route, border, nat, sheet_row)
        published, border, nat = keys[key][1:]
        for n, (j, month, v) in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise DataError(where, "count is a number",
                                f"cell {column_letter(j + 1)}{sheet_row} ({published} / "
                                f"{border} / {nat}, {month:%b %Y}) holds {v!r}, not a count",
                                row=sheet_row)
            if isinstance(v, float):
                if not v.is_integer():
                    raise DataError(where, "count is a whole number",
                                    f"cell {column_letter(j + 1)}{sheet_row} holds {v!r}",
                                    row=sheet_row)
                v = int(v)
            key_of.append(key)
            month_of.append(n)
            counts.append(v)
        if total_cols:
            _check_totals_column(row, sheet_row, f"{published} / {border} / {nat}", month_cols,
                                 total_cols, where)

    month_js = np.array([j for j, _ in month_cols], dtype=np.intp)
    month_set = set(month_js.tolist())
    totals_label: dict[object, bool] = {}

    def block_rows(block, start: int) -> bool:
        """The rows of ``block`` from ``start`` with the month cells as one numpy array, when
        that gives exactly what ``one_row`` gives row by row: calamine's cells (not a sheet
        read with openpyxl), no totals column or totals row, and every month cell a float
        holding a whole number or empty (""). Anything else (text, a date, a bool, a fraction:
        ``one_row`` raises its error, naming the cell) returns False before anything is
        kept, and the block is read row by row."""
        if not BLOCKS or block.normalised or total_cols:
            return False
        live = [i for i in range(start, len(block))
                if block.raw[i] is not None and block.widths[i] > 0]
        if not live:
            return True  # rows without cells: skipped, as one_row skips them
        raws = [block.raw[i] for i in live]
        n = len(raws[0])
        if any(len(r) != n for r in raws):
            return False
        lead = len(block.lead)
        cols = month_js - lead
        inside = (cols >= 0) & (cols < n)
        pos = cols[inside]
        widths = np.array([block.widths[i] for i in live])
        short = bool(len(pos)) and bool((widths <= month_js[inside][-1]).any())
        values = has = None
        if len(pos) and pos[-1] - pos[0] + 1 == len(pos):  # the months side by side
            slices = [r[pos[0]:pos[-1] + 1] for r in raws]
            if set(map(type, itertools.chain.from_iterable(slices))) <= {float}:
                values = np.array(slices, dtype=np.float64)  # every cell a number
        if values is None:
            cells = np.array(raws, dtype=object)
            if cells.shape != (len(raws), n):
                return False
            sub = cells[:, pos]
            kinds = set(map(type, sub.ravel().tolist()))
            if not kinds <= {float, str}:
                return False
            if str in kinds:
                has = sub != ""
                sub[~has] = 0.0
                if not set(map(type, sub.ravel().tolist())) <= {float}:
                    return False  # text in a count cell
            values = sub.astype(np.float64)
        if short:  # past a row's last cell: no cell
            fits = month_js[inside][None, :] < widths[:, None]
            has = fits if has is None else has & fits
        filled = values.ravel() if has is None else values[has]
        if not (np.isfinite(filled).all() and (filled == np.trunc(filled)).all()
                and (np.abs(filled) < 2.0 ** 63).all()):
            return False
        norm = _normalised_cell

        def cell(raw: list, w: int, j: int) -> object:
            c = j - lead
            return norm(raw[c]) if j < w and 0 <= c < n else None

        firsts = [cell(raws[k], block.widths[i], 0) for k, i in enumerate(live)]
        for route in firsts:
            if isinstance(route, str):
                total = totals_label.get(route)
                if total is None:
                    total = totals_label[route] = _key(route) in lay.total_rows
                if total:
                    return False
        any_month = (has.any(axis=1).tolist() if has is not None
                     else [bool(len(pos))] * len(live))
        key_at = np.full(len(live), -1, dtype=np.int32)
        for k, i in enumerate(live):
            raw, w, sheet_row = raws[k], block.widths[i], block.first + i
            route = firsts[k]
            border, nat = ((cell(raw, w, border_col), cell(raw, w, nat_col)) if w > width
                           else (None, None))
            if not any_month[k]:
                if all(c is None or (isinstance(c, str) and not c.strip())
                       for c in (cell(raw, w, j) for j in range(w) if j not in month_set)):
                    continue  # an empty row
                if border is None or nat is None:
                    log.info("%s row %d: no counts and no keys, read as a note: %r", where,
                             sheet_row, route)
                    continue
            key_at[k] = keyed(route, border, nat, sheet_row)
        if has is None:  # every month cell of every row
            at_row = np.repeat(np.arange(len(live)), len(pos))
            at_month = np.tile(np.arange(len(pos)), len(live))
        else:
            at_row, at_month = np.nonzero(has)
        key_of.frombytes(key_at[at_row].astype(np.int32).tobytes())
        month_of.frombytes(np.arange(len(month_cols), dtype=np.int16)[inside][at_month]
                           .tobytes())
        counts.frombytes(filled.astype(np.int64).tobytes())
        return True

    for i, row in enumerate(head[h + 1:], h + 2):
        one_row(row, i)
    as_arrays = by_cell = 0
    for block, start in itertools.chain([rest] if rest else [], ((b, 0) for b in blocks)):
        if block_rows(block, start):
            as_arrays += 1
        else:
            by_cell += 1
            for i in range(start, len(block)):
                one_row(block.row(i), block.first + i)
                if flush_rows is not None and len(counts) >= flush_rows:
                    flush()
        if flush_rows is not None and len(counts) >= flush_rows:
            flush()
    kept_keys = total_keys + len(keys)
    if not total_rows and not counts:
        raise DataError(where, "data rows",
                        f"the header is on row {h + 1}, but no row below it holds a count"
                        + (f" ({kept_keys} row(s) with keys, every month cell empty)" if kept_keys
                           else " (a header and no data rows)")
                        + ": a release without data is never loaded", row=h + 1)
    flush()
    log.info("%s: release %s, %d rows, %d months, %s detections; %d piece(s) of the sheet read "
             "as arrays, %d cell by cell", file_name, release, total_rows, len(month_cols),
             f"{total_detections:,}", as_arrays, by_cell)
    return release
