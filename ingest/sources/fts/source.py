"""Financial Transparency System (FTS): the Commission's yearly list of direct-management legal
commitments, one row per beneficiary of each commitment.

Live, the workbook of each year from ``WH_FTS_FIRST_YEAR`` to last year is
``https://ec.europa.eu/budget/financial-transparency-system/download/{YEAR}_FTS_dataset_en.xlsx``
(tens of MB: its own size cap, ``WH_FTS_MAX_DOWNLOAD_MB``); a year already landed is not fetched
again. Replayed, the workbooks are ``<WH_SNAPSHOT_DIR>/fts/*.xlsx``; the recorded snapshot has
none, so replay lands nothing and says so.

The columns change from year to year (added, renamed, double spaces, curly apostrophes,
trailing asterisks), so they are mapped by name through ``COLUMNS`` (aliases of each column,
compared after normalising case, spaces and quotes); a required column that no alias matches is
an error naming the headers found. Only rows of the migration and border budget lines are kept
(``dbt_project/seeds/fts_budget_lines.csv``, with a reason per line); NDICI lines count only for
rows whose subject names migration.
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import re
from dataclasses import dataclass
from datetime import date

import openpyxl
import pandas as pd

from ingest import http
from ingest.config import SEEDS_DIR, settings
from ingest.errors import DataError
from ingest.source import Candidate, Parsed
from ingest.xlsx import check_unpacked_size

log = logging.getLogger(__name__)

NAME = "fts"
BUDGET_LINES_SEED = SEEDS_DIR / "fts_budget_lines.csv"
HEADER_SEARCH_ROWS = 10
YEAR_IN_NAME = re.compile(r"(20\d{2})_FTS", re.IGNORECASE)
MIGRATION_WORDS = re.compile(
    r"migra|refugee|asylum|return|readmission|reintegration|border|smuggl|traffick|displace",
    re.IGNORECASE)
# Browsers get the workbook; some clients were answered with an HTML page without these.
REQUEST_HEADERS = {
    "Referer": "https://ec.europa.eu/budget/financial-transparency-system/help.html",
    "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,*/*",
}


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    required: bool = False


# Aliases are compared after normalise(): lower case, one space, straight quotes, no "*".
COLUMNS = (
    Column("year", ("year",), required=True),
    Column("beneficiary_name", ("name of beneficiary", "beneficiary name"), required=True),
    Column("amount_eur", ("beneficiary's contracted amount (eur)",
                          "beneficiary's estimated contracted amount (eur)",
                          "beneficiary contracted amount (eur)"), required=True),
    Column("budget_line_number", ("budget line number", "budget line"), required=True),
    Column("budget_line_name", ("budget line name",), required=True),
    Column("programme_name", ("programme name", "program name")),
    Column("subject", ("subject of grant or contract", "subject")),
    Column("beneficiary_country", ("beneficiary country", "country of beneficiary")),
    Column("action_location", ("action location", "benefiting country")),
    Column("commitment_total_eur", ("commitment total amount (eur) (a+b)",
                                    "commitment total amount (eur)")),
    Column("commitment_reference", ("reference of the legal commitment (lc)",
                                    "reference (budget)")),
    Column("responsible_department", ("responsible department",)),
    Column("management_type", ("management type",)),
    Column("funding_type", ("funding type", "type of contract", "expense type")),
)
OUTPUT_COLUMNS = [c.name for c in COLUMNS] + ["fund", "matched_by", "source_row"]


def normalise(header: object) -> str:
    text = str(header or "").replace("\u2019", "'").replace("\u2018", "'").replace("\xa0", " ")
    return re.sub(r"\s+", " ", text).strip().rstrip("*").strip().lower()


@dataclass(frozen=True)
class BudgetLine:
    number: str
    """Digits only (``100201`` for 10 02 01), or empty when matched on the name alone."""
    name_pattern: str
    fund: str
    needs_migration_subject: bool


@functools.lru_cache(maxsize=1)
def budget_lines() -> tuple[BudgetLine, ...]:
    with BUDGET_LINES_SEED.open(encoding="utf-8", newline="") as fh:
        return tuple(BudgetLine(re.sub(r"\D", "", row["budget_line_number"]),
                                row["name_pattern"].lower(), row["fund"],
                                row["needs_migration_subject"].lower() == "true")
                     for row in csv.DictReader(fh))


class FtsSource:
    name = NAME

    def discover(self) -> list[Candidate]:
        s = settings()
        if s.snapshot_dir is not None:
            files = sorted((s.snapshot_dir / NAME).glob("*.xlsx"))
            if not files:
                log.warning("no recorded FTS workbook (fts/*.xlsx) in %s: nothing to replay",
                            s.snapshot_dir)
            return [Candidate(NAME, f.resolve().as_uri()) for f in files]
        last = date.today().year - 1  # a year's file is published in the following year
        return [Candidate(NAME, s.fts_url.format(year=year), dataset=str(year))
                for year in range(s.fts_first_year, last + 1)]

    @property
    def max_download_bytes(self) -> int:
        """FTS workbooks are bigger than other files (``WH_FTS_MAX_DOWNLOAD_MB``)."""
        return settings().fts_max_download_bytes

    def fetch(self, candidate: Candidate) -> bytes:
        content, _ = http.get_bytes(candidate.url, max_bytes=settings().fts_max_download_bytes,
                                    headers=REQUEST_HEADERS)
        return content

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        frame, year = parse_workbook(content, file_name)
        return Parsed(None, frame, str(year))


def map_columns(header: list[object], where: str, row: int) -> dict[str, int]:
    """Column name -> index, by alias. A required column without a match is an error naming
    what the header holds."""
    found = {normalise(h): i for i, h in enumerate(header) if h is not None}
    mapping: dict[str, int] = {}
    missing = []
    for column in COLUMNS:
        index = next((found[a] for a in column.aliases if a in found), None)
        if index is not None:
            mapping[column.name] = index
        elif column.required:
            missing.append(f"{column.name} (one of {list(column.aliases)})")
    if missing:
        raise DataError(where, "columns mapped by name",
                        f"no column for {', '.join(missing)}; the header holds "
                        f"{[str(h) for h in header if h is not None]}", row=row)
    return mapping


def _match(line_number: str, line_name: str, programme: str, subject: str) -> tuple[str, str]:
    """(fund, why matched) for a row of a migration or border budget line, else ('', '')."""
    digits = re.sub(r"\D", "", line_number)
    names = f"{line_name} | {programme}".lower()
    for line in budget_lines():
        by_number = bool(line.number) and digits.startswith(line.number)
        by_name = bool(line.name_pattern) and line.name_pattern in names
        if not (by_number or by_name):
            continue
        if line.needs_migration_subject and not MIGRATION_WORDS.search(subject or ""):
            continue
        return line.fund, "budget line number" if by_number else "budget line or programme name"
    return "", ""


def parse_workbook(content: bytes, file_name: str) -> tuple[pd.DataFrame, int]:
    """The migration and border rows of an FTS workbook (first sheet, header in the first rows)."""
    if not content.startswith(b"PK\x03\x04"):
        head = content[:200].lstrip().lower()
        kind = "an HTML page" if b"<html" in head or head.startswith(b"<!doctype") else \
            f"not an xlsx workbook (starts {content[:8]!r})"
        raise DataError(file_name, "xlsx format", kind)
    check_unpacked_size(content, file_name, settings().fts_max_xlsx_unpacked_bytes,
                        "WH_FTS_MAX_XLSX_UNPACKED_MB")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as err:  # zip, XML and openpyxl errors all mean the same thing here
        raise DataError(file_name, "xlsx format",
                        f"truncated or corrupt workbook ({type(err).__name__}: {err})") from err
    try:
        sheet = wb[wb.sheetnames[0]]
        rows = sheet.iter_rows(values_only=True)
        header, header_row = None, 0
        for header_row, row in enumerate(rows, start=1):
            names = {normalise(c) for c in row or ()}
            if "year" in names and any(a in names for a in ("budget line number",
                                                             "budget line")):
                header = list(row)
                break
            if header_row >= HEADER_SEARCH_ROWS:
                break
        if header is None:
            raise DataError(file_name, "header row",
                            f"no row among the first {HEADER_SEARCH_ROWS} of sheet "
                            f"'{sheet.title}' names both 'Year' and 'Budget line number'")
        at = map_columns(header, f"{file_name} [{sheet.title}]", header_row)
        out: dict[str, list] = {c: [] for c in OUTPUT_COLUMNS}
        seen_rows = 0
        for line, row in enumerate(rows, start=header_row + 1):
            if not row or all(v is None for v in row):
                continue
            seen_rows += 1
            value = {name: (row[i] if i < len(row) else None) for name, i in at.items()}
            fund, why = _match(str(value["budget_line_number"] or ""),
                               str(value["budget_line_name"] or ""),
                               str(value.get("programme_name") or ""),
                               str(value.get("subject") or ""))
            if not fund:
                continue
            amount = value["amount_eur"]
            if isinstance(amount, str):
                amount = amount.strip().replace(",", "")
                try:
                    amount = float(amount) if amount not in ("", "-") else None
                except ValueError:
                    raise DataError(file_name, "amount is a number",
                                    f"amount {value['amount_eur']!r}", row=line) from None
            for column in COLUMNS:
                out[column.name].append(amount if column.name == "amount_eur"
                                        else value.get(column.name))
            out["fund"].append(fund)
            out["matched_by"].append(why)
            out["source_row"].append(line)
    finally:
        wb.close()
    frame = _typed(pd.DataFrame(out))
    year = _year(file_name, frame)
    log.info("%s: %s of %s rows belong to migration and border budget lines", file_name,
             f"{len(frame):,}", f"{seen_rows:,}")
    return frame, year


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in OUTPUT_COLUMNS:
        if column in ("amount_eur", "commitment_total_eur"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        elif column == "source_row":
            frame[column] = frame[column].astype("int32")
        elif column == "year":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int32")
        else:
            frame[column] = frame[column].map(
                lambda v: None if v is None else str(v).strip()).astype("string")
    return frame


def _year(file_name: str, frame: pd.DataFrame) -> int:
    m = YEAR_IN_NAME.search(file_name)
    if m:
        return int(m.group(1))
    years = frame["year"].dropna()
    if years.empty:
        raise DataError(file_name, "year named",
                        "neither the file name ({YEAR}_FTS_dataset_en.xlsx) nor a kept row "
                        "says which year the workbook covers")
    return int(years.max())


def add_year_column(entry, parsed) -> None:
    """The workbook's year, from its dataset (called by the raw load: ``ingest.catalog``)."""
    parsed.rows.insert(0, "fts_year", int(parsed.dataset))
