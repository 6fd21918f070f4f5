"""Eurostat: orders to leave, returns and their context, from the dissemination API.

Live, for each dataset of ``ingest.sources.eurostat.codes.DATASETS``:

1. the table of contents (``catalogue/toc/txt``) says when the dataset was last updated; a
   dataset whose update date is already landed is not downloaded again;
2. its data structure definition (``sdmx/2.1/datastructure/ESTAT/<CODE>``) gives the order of
   its dimensions, from which the query key is built (totals for sex and age; every other
   dimension unfiltered), so no dimension order is hard-coded;
3. the data come as gzip-compressed SDMX-CSV (``sdmx/2.1/data/<code>/<key>?format=SDMX-CSV&
   compressed=true``). An answer of 413 (the extraction is too big to answer at once) splits the
   query into two halves of its years, down to a single year; 429 (honouring ``Retry-After``) and
   5xx are retried with backoff by ``ingest.http``; an empty body with status 200 is an error for
   the dataset as a whole (an empty half of a split query is just empty). The landed file is the
   body as received (the gzip members of a split query, one after another).

Replayed, the files are ``<WH_SNAPSHOT_DIR>/eurostat/{legacy,sdmx}/*.csv`` in any of the formats
``ingest.sources.eurostat.formats`` reads. Eurostat's published headline figures
(``<WH_CURATED_DIR>/eurostat/published/*.csv``) are a source of their own
(``EurostatPublishedSource``): they exist only as a curated file.
"""
from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import requests

from ingest import http
from ingest.sources.eurostat import codes as eurostat_codes
from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.csvtext import decode
from ingest.sources.eurostat.sdmx_csv_duckdb import parse_sdmx_codes
from ingest.sources.eurostat.formats import parse_observations
from ingest.source import Candidate, Parsed

log = logging.getLogger(__name__)

NAME = "eurostat"
PUBLISHED = "eurostat_published"
SNAPSHOT_FOLDERS = ("legacy", "sdmx")
TOC_COLUMNS = ("code", "type", "last update of data", "data start", "data end")
GZIP_MAGIC = b"\x1f\x8b"


# --- table of contents and structure ------------------------------------------------------------

@dataclass(frozen=True)
class TocEntry:
    code: str
    last_update: str
    """As the table of contents writes it (``18.03.2025``): the version marker of the dataset."""
    data_start: str
    data_end: str

    @property
    def years(self) -> tuple[int, int] | None:
        try:
            return int(self.data_start[:4]), int(self.data_end[:4])
        except ValueError:
            return None


def parse_toc(text: str, url: str) -> dict[str, TocEntry]:
    """Eurostat's table of contents (tab-separated, quoted; one row per dataset and place in the
    navigation tree, so a dataset may appear more than once)."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in TOC_COLUMNS if c not in header]
    if missing:
        raise DownloadError(url, "table of contents layout",
                            f"no column(s) {missing} in header {header[:8]} (layout changed?)")
    at = {c: header.index(c) for c in TOC_COLUMNS}
    entries: dict[str, TocEntry] = {}
    for row in reader:
        if len(row) < len(header) or row[at["type"]].strip() not in ("dataset", "table"):
            continue
        code = row[at["code"]].strip().lower()
        entries[code] = TocEntry(code, row[at["last update of data"]].strip(),
                                 row[at["data start"]].strip(), row[at["data end"]].strip())
    if not entries:
        raise DownloadError(url, "table of contents layout", "no dataset rows")
    return entries


def parse_dimensions(xml_text: str, url: str) -> list[str]:
    """Dimension ids of a data structure definition, in key order (``position``), without the
    time dimension."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as err:
        raise DownloadError(url, "structure definition", f"not XML ({err})") from err
    found = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Dimension" and el.get("id"):
            found.append((int(el.get("position") or len(found) + 1), el.get("id")))
    if not found:
        raise DownloadError(url, "structure definition", "no Dimension elements")
    return [dim for _, dim in sorted(found)]


def query_key(dimensions: list[str], filters: dict[str, str]) -> str:
    """The SDMX key: one position per dimension, in the definition's order; empty = all."""
    return ".".join(filters.get(d, "") for d in dimensions)


# --- the source ---------------------------------------------------------------------------------

class EurostatSource:
    name = NAME

    def __init__(self) -> None:
        self._toc: dict[str, TocEntry] = {}

    def discover(self) -> list[Candidate]:
        s = settings()
        if s.snapshot_dir is not None:
            return snapshot_candidates(s.snapshot_dir)
        url = f"{s.eurostat_api_url}/catalogue/toc/txt?lang=en"
        self._toc = parse_toc(http.get_text(url), url)
        candidates = []
        for dataset in eurostat_codes.datasets().values():
            entry = self._toc.get(dataset.code)
            if entry is None:
                if dataset.required:
                    raise DownloadError(url, "dataset in the table of contents",
                                        f"{dataset.code} is not in Eurostat's table of contents "
                                        "(renamed or discontinued?)")
                log.warning("%s is not in Eurostat's table of contents: skipped (fetched where "
                            "available)", dataset.code)
                continue
            candidates.append(Candidate(NAME, dataset_url(dataset.code), dataset=dataset.code,
                                        version=entry.last_update))
        return candidates

    def fetch(self, candidate: Candidate) -> bytes:
        assert candidate.dataset is not None
        return fetch_dataset(candidate.dataset, self._toc.get(candidate.dataset))

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        """SDMX-CSV 1.0 with codes (what the API sends) is read by DuckDB
        (``ingest.sources.eurostat.sdmx_csv_duckdb``) when that gives exactly what the Python reader gives; every
        other file, and any file breaking a rule, by ``parse_observations`` (its errors)."""
        text = decompress(content, file_name)
        fast = parse_sdmx_codes(text, file_name, dataset)
        if fast is not None:
            log.info("%s: read by DuckDB (SDMX-CSV 1.0 with codes, %s rows)", file_name,
                     f"{len(fast.rows):,}")
            return fast
        log.debug("%s: read by the Python reader", file_name)
        parsed = parse_observations(text, file_name, dataset)
        return Parsed(parsed.release_date, parsed.rows, parsed.dataset)


def snapshot_candidates(snapshot: Path) -> list[Candidate]:
    folder = snapshot / NAME
    files = sorted(f for sub in SNAPSHOT_FOLDERS for f in (folder / sub).glob("*")
                   if f.is_file() and f.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise DataError(str(folder), "snapshot layout",
                        "no Eurostat files (eurostat/legacy/*.csv or eurostat/sdmx/*.csv) in the "
                        "snapshot directory")
    return [Candidate(NAME, f.resolve().as_uri()) for f in files]


def dataset_url(code: str) -> str:
    return f"{settings().eurostat_api_url}/sdmx/2.1/data/{code}?format=SDMX-CSV&compressed=true"


def fetch_dataset(code: str, toc: TocEntry | None) -> bytes:
    """Download one dataset as gzip-compressed SDMX-CSV, splitting the years on 413."""
    base = settings().eurostat_api_url
    dsd_url = f"{base}/sdmx/2.1/datastructure/ESTAT/{code.upper()}"
    dimensions = parse_dimensions(http.get_text(dsd_url), dsd_url)
    key = query_key(dimensions, eurostat_codes.datasets()[code].filters)
    url = f"{base}/sdmx/2.1/data/{code}/{key}?format=SDMX-CSV&compressed=true"
    parts = _fetch_years(url, toc.years if toc else None, whole=True)
    if not any(parts):
        raise DownloadError(url, "observations present",
                            "empty answer with status 200: Eurostat returned no data for the "
                            "whole dataset")
    # One landed file: gzip members one after another (a valid gzip stream).
    return b"".join(p if p.startswith(GZIP_MAGIC) else gzip.compress(p) for p in parts if p)


def _fetch_years(url: str, years: tuple[int, int] | None, whole: bool) -> list[bytes]:
    query = url if whole or years is None else \
        f"{url}&startPeriod={years[0]}&endPeriod={years[1]}"
    try:
        content, _ = http.get_bytes(query)
    except requests.HTTPError as err:
        if err.response is None or err.response.status_code != 413:
            raise
        if years is None or years[0] >= years[1]:
            span = "" if years is None else f" (years {years[0]}-{years[1]})"
            raise DownloadError(query, "extraction size",
                                f"413: too big to answer at once even for the smallest query"
                                f"{span}") from err
        mid = (years[0] + years[1]) // 2
        log.warning("%s: 413 (extraction too big), splitting into %d-%d and %d-%d", query,
                    years[0], mid, mid + 1, years[1])
        return (_fetch_years(url, (years[0], mid), whole=False)
                + _fetch_years(url, (mid + 1, years[1]), whole=False))
    if not content:
        log.info("%s: empty answer (no observations in this part)", query)
    return [content]


def decompress(content: bytes, file_name: str) -> bytes:
    """Undo ``compressed=true``: Eurostat's gzip answers carry no Content-Encoding header, so the
    magic bytes tell. A gzip body cut short is an error naming the file."""
    if not content.startswith(GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(file_name, "gzip complete",
                        f"compressed body cut short or corrupt ({type(err).__name__}: {err})") \
            from err


# --- published headline figures (curated) -------------------------------------------------------

PUBLISHED_COLUMNS = ["period", "geo", "citizen", "indicator", "value", "source_url",
                     "source_title", "extracted_date_or_data_date", "note"]
PUBLISHED_PERIOD = re.compile(r"^\d{4}(-Q[1-4])?$")
PUBLISHED_INDICATOR = re.compile(
    r"^(ordered_to_leave|returned|returned_to_third_country)"
    r"(_pct_change_(yoy|qoq)|_share_of_eu_total_pct|_share_of_returned_pct"
    r"|_voluntary_share_pct|_enforced_share_pct)?$")


class EurostatPublishedSource:
    """Eurostat's own headline figures on returns, transcribed by hand with their page
    addresses: for reconciliation. There is no live endpoint; the file is read from
    ``WH_CURATED_DIR`` (by default the snapshot directory)."""

    name = PUBLISHED

    def discover(self) -> list[Candidate]:
        folder = settings().curated_dir
        if folder is None:
            log.warning("no WH_CURATED_DIR (or WH_SNAPSHOT_DIR): Eurostat's published headline "
                        "figures are not loaded, so returns are not reconciled against them")
            return []
        files = sorted((folder / NAME / "published").glob("*.csv"))
        if not files:
            raise DataError(str(folder / NAME / "published"), "curated layout",
                            "no published figures (eurostat/published/*.csv)")
        return [Candidate(PUBLISHED, f.resolve().as_uri(), dataset=f.stem) for f in files]

    def fetch(self, candidate: Candidate) -> bytes:
        raise DownloadError(candidate.url, "no live endpoint",
                            "Eurostat's published headline figures is curated by hand: only files in WH_CURATED_DIR are read")

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        return Parsed(None, parse_published(content, file_name), dataset)


def parse_published(content: bytes, file_name: str) -> pd.DataFrame:
    """Validate and read the published figures: every row a known period, code and indicator,
    a number, and the page it was copied from."""
    reader = csv.DictReader(io.StringIO(decode(content, file_name), newline=""))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != PUBLISHED_COLUMNS:
        raise DataError(file_name, "csv format",
                        f"header {reader.fieldnames} is not {PUBLISHED_COLUMNS}", row=1)
    known = eurostat_codes.known_country_codes()
    out: dict[str, list] = {c: [] for c in PUBLISHED_COLUMNS + ["source_row"]}
    for row in reader:
        line = reader.line_num
        if not PUBLISHED_PERIOD.match(row["period"]):
            raise DataError(file_name, "period is a year or a quarter",
                            f"period {row['period']!r}", row=line)
        for column in ("geo", "citizen"):
            if row[column] not in known:
                raise DataError(file_name, "codes known",
                                f"{column} {row[column]!r} is not a Eurostat code in dim_country",
                                row=line)
        if not PUBLISHED_INDICATOR.match(row["indicator"]):
            raise DataError(file_name, "known indicator", f"indicator {row['indicator']!r}",
                            row=line)
        try:
            value = float(row["value"])
        except ValueError:
            raise DataError(file_name, "value is a number", f"value {row['value']!r}",
                            row=line) from None
        if not row["source_url"].startswith(("http://", "https://")):
            raise DataError(file_name, "source cited", "no page address in source_url", row=line)
        for column in PUBLISHED_COLUMNS:
            out[column].append(value if column == "value" else (row[column] or None))
        out["source_row"].append(line)
    frame = pd.DataFrame(out)
    if frame.empty:
        raise DataError(file_name, "rows present", "no published figures in the file")
    for column in PUBLISHED_COLUMNS:
        if column != "value":
            frame[column] = frame[column].astype("string")
    frame["value"] = frame["value"].astype("float64")
    frame["source_row"] = frame["source_row"].astype("int32")
    return frame

