"""Cohesion Open Data (Socrata): the home-affairs funds (AMIF, BMVI, ISF) of the 2021-2027 CPR
programmes.

Live, for each dataset (``DATASETS``, plus the payment datasets the Socrata catalogue finds):

1. ``/api/views/<id>.json`` says when its rows were last updated (``rowsUpdatedAt``): a dataset
   whose update is already landed is not downloaded again;
2. ``/resource/<id>.csv`` is read page by page with an explicit ``$limit`` and ``$offset``,
   ordered by ``:id`` (Socrata does not order rows unless asked, so pages could overlap or skip
   rows), filtered server-side with ``$where=fund in('AMIF','BMVI','ISF')``, until a page comes
   back short or empty. The default page of 1000 rows is never relied on. The pages are landed
   as one file, each page with its header, as received.

Each download is a snapshot of cumulative figures: the warehouse keeps its date and never adds
snapshots of different dates together. Replayed, the files are ``<WH_SNAPSHOT_DIR>/cohesion/
<id>*.csv``; a replayed file holding exactly 1000 rows (the API's default page) or named a
sample is flagged as partial (``completeness``), since it is most likely the first page only.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd

from ingest import http
from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.csvtext import decode
from ingest.source import Candidate, Parsed

log = logging.getLogger(__name__)

NAME = "cohesion"
HOME_AFFAIRS_FUNDS = ("AMIF", "BMVI", "ISF")
DEFAULT_PAGE_ROWS = 1000  # what Socrata answers without an explicit $limit
DATASET_ID = re.compile(r"^([a-z0-9]{4}-[a-z0-9]{4})")
SOCRATA_ID = re.compile(r"[a-z0-9]{4}-[a-z0-9]{4}")
"""A dataset id as Socrata writes it (four-by-four), matched whole."""
PAYMENTS_NAME = re.compile(r"2021.?2027.*payment|payment.*2021.?2027", re.IGNORECASE)
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class CohesionDataset:
    id: str
    title: str
    stage: str
    """The funding stage its amounts are: ``allocated`` (programmed) or ``paid``."""
    required_columns: tuple[str, ...]
    amount_columns: tuple[str, ...]


DATASETS: dict[str, CohesionDataset] = {d.id: d for d in (
    CohesionDataset("hgyj-gyin", "2021-2027 Finances details (categorisation, multi funds)",
                    "allocated", ("ms", "cci", "fund", "dimension_type", "eu_amount"),
                    ("eu_amount", "total_amount")),
    CohesionDataset("9qee-iv7c", "2021-2027 Financial Plan details by year (All CPR funds)",
                    "allocated", ("ms", "cci", "fund", "total"),
                    ("y2021", "y2022", "y2023", "y2024", "y2025", "y2026", "y2027", "total")),
)}


def fund_filter() -> str:
    return "fund in(" + ",".join(f"'{f}'" for f in HOME_AFFAIRS_FUNDS) + ")"


def dataset_url(dataset_id: str) -> str:
    """The query of one dataset, without paging (what the manifest records)."""
    return (f"{settings().cohesion_url}/resource/{dataset_id}.csv?"
            f"$where={quote(fund_filter(), safe=SAFE)}&$order=:id")


SAFE = "(),'=:"


def page_url(url: str, limit: int, offset: int) -> str:
    return f"{url}&$limit={limit}&$offset={offset}"


class CohesionSource:
    name = NAME

    def discover(self) -> list[Candidate]:
        s = settings()
        if s.snapshot_dir is not None:
            return snapshot_candidates(s.snapshot_dir)
        candidates = []
        for dataset in DATASETS.values():
            meta = http.get_json(f"{s.cohesion_url}/api/views/{dataset.id}.json")
            candidates.append(Candidate(NAME, dataset_url(dataset.id), dataset=dataset.id,
                                        version=_rows_updated(meta, dataset.id)))
        candidates += payment_candidates()
        return candidates

    def fetch(self, candidate: Candidate) -> bytes:
        return fetch_pages(candidate.url)

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        frame, dataset_id = parse_records(content, file_name, dataset)
        return Parsed(None, frame, dataset_id)


def _rows_updated(meta: dict, dataset_id: str) -> str | None:
    stamp = meta.get("rowsUpdatedAt") if isinstance(meta, dict) else None
    if not isinstance(stamp, (int, float)):
        log.warning("%s: no rowsUpdatedAt in its metadata; downloaded every time", dataset_id)
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat()


def payment_candidates() -> list[Candidate]:
    """The 2021-2027 payment datasets of the platform, found through Socrata's catalogue."""
    s = settings()
    domain = urlsplit(s.cohesion_url).hostname
    answer = http.get_json(s.socrata_catalog_url,
                           params={"domains": domain, "only": "dataset",
                                   "q": "2021-2027 payments"})
    found = []
    for result in answer.get("results", []) if isinstance(answer, dict) else []:
        resource = result.get("resource") or {}
        name, dataset_id = resource.get("name") or "", resource.get("id") or ""
        if not PAYMENTS_NAME.search(name):
            continue
        if not isinstance(dataset_id, str) or not SOCRATA_ID.fullmatch(dataset_id):
            # It would become part of a URL and of a landing path: only a Socrata id will do.
            log.warning("Socrata's catalogue lists %r (%s) as a dataset id: not one, ignored",
                        dataset_id, name)
            continue
        found.append(Candidate(NAME, dataset_url(dataset_id), dataset=dataset_id,
                               version=resource.get("data_updated_at")
                               or resource.get("updatedAt")))
        log.info("payment dataset %s: %s", dataset_id, name)
    if not found:
        log.warning("Socrata's catalogue lists no 2021-2027 payment dataset on %s: absorption "
                    "is computed where other sources give payments", domain)
    return found


def snapshot_candidates(snapshot: Path) -> list[Candidate]:
    folder = snapshot / NAME
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(str(folder), "snapshot layout",
                        "no Cohesion Open Data files (cohesion/<dataset id>*.csv) in the "
                        "snapshot directory")
    return [Candidate(NAME, f.resolve().as_uri()) for f in files]


def fetch_pages(url: str) -> bytes:
    """Every page of a Socrata query, explicitly: ``$limit`` rows from ``$offset`` 0, 1 x
    limit, ... until a page is short or empty. Pages are joined as received (each with its
    header line); a page whose header differs from the first is an error."""
    s = settings()
    limit, ceiling = s.socrata_page_rows, s.socrata_max_pages
    pages: list[bytes] = []
    header: list[str] | None = None
    offset, total = 0, 0
    started = time.monotonic()
    while True:
        if len(pages) >= ceiling:
            raise DownloadError(url, "page ceiling",
                                f"more than {ceiling:,} pages of {limit:,} rows ({total:,} rows so "
                                "far): download aborted (WH_SOCRATA_MAX_PAGES)")
        if time.monotonic() - started > s.download_deadline_s:
            raise DownloadError(url, "download deadline",
                                f"not complete after {s.download_deadline_s:g} s ({len(pages)} "
                                f"pages, {total:,} rows): download aborted (WH_DOWNLOAD_DEADLINE_S)")
        query = page_url(url, limit, offset)
        body, _ = http.get_bytes(query)
        if pages and body and (body if body.endswith(b"\n") else body + b"\n") == pages[-1]:
            raise DownloadError(query, "paging honoured",
                                f"the page at offset {offset:,} is the page at offset "
                                f"{offset - limit:,} again: the server ignores $offset")
        text = decode(body, query) if body.strip() else ""
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:  # an empty body: no header, no rows
            log.info("%s: empty page at offset %d", url, offset)
            break
        if header is None:
            header = rows[0]
        elif rows[0] != header:
            raise DownloadError(query, "same columns on every page",
                                f"page at offset {offset} has columns {rows[0][:5]}..., "
                                f"the first page {header[:5]}...")
        count = len(rows) - 1
        pages.append(body if body.endswith(b"\n") else body + b"\n")
        total += count
        log.info("%s: page at offset %d: %d rows", url, offset, count)
        if count < limit:
            break
        offset += limit
    if header is None:
        raise DownloadError(url, "observations present",
                            "empty answer with status 200: no header and no rows")
    log.info("%s: %d rows in %d pages of up to %d", url, total, len(pages), limit)
    return b"".join(pages)


def parse_records(content: bytes, file_name: str,
                  dataset: str | None = None) -> tuple[pd.DataFrame, str]:
    """Rows of a Cohesion Open Data CSV (one or more pages, each with its header) as records:
    the fields as published in a JSON object, and the keys every dataset has (ms, cci, fund)
    beside it. Amounts must be numbers (or empty)."""
    dataset_id = dataset or _dataset_from_name(file_name)
    if dataset_id is None:
        raise DataError(file_name, "dataset named",
                        "the file name does not start with a Socrata dataset id (hgyj-gyin...)")
    text = decode(content, file_name)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    spec = DATASETS.get(dataset_id)
    required = spec.required_columns if spec else ("fund",)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(file_name, "columns present",
                        f"no column(s) {missing} in the header of {dataset_id} "
                        f"({', '.join(header[:8])}...)", row=1)
    amounts = [c for c in (spec.amount_columns if spec else ()) if c in header]
    out: dict[str, list] = {c: [] for c in ("ms", "cci", "fund", "record", "source_row")}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row) or [c.strip() for c in row] == header:
            continue
        if len(row) != len(header):
            raise DataError(file_name, "csv format",
                            f"{len(row)} fields where the header has {len(header)}", row=line)
        record = {h: v for h, v in zip(header, row) if v != ""}
        for column in amounts:
            value = record.get(column, "")
            if value and not NUMBER.match(value.strip()):
                raise DataError(file_name, "amount is a number",
                                f"{column} {value!r} is not a number", row=line)
        if not record.get("fund"):
            raise DataError(file_name, "fund present", "empty fund", row=line)
        out["ms"].append(record.get("ms"))
        out["cci"].append(record.get("cci"))
        out["fund"].append(record["fund"])
        out["record"].append(json.dumps(record, ensure_ascii=False, sort_keys=True))
        out["source_row"].append(line)
    frame = pd.DataFrame(out)
    if frame.empty:
        raise DataError(file_name, "rows present", "a header and no rows")
    frame.insert(0, "dataset_id", dataset_id)
    for column in ("dataset_id", "ms", "cci", "fund", "record"):
        frame[column] = frame[column].astype("string")
    frame["source_row"] = frame["source_row"].astype("int32")
    return frame, dataset_id


def completeness(url: str, rows: int) -> tuple[bool, str]:
    """Whether a landed snapshot holds the whole dataset, and why the warehouse thinks so.

    A live download pages explicitly to the end: complete. A replayed file is complete unless
    it is named a sample or holds exactly the API's default page of 1000 rows, which is what a
    query without ``$limit`` returns: the first page of a larger dataset."""
    if not url.startswith("file://"):
        return True, "downloaded page by page to the last (short or empty) page"
    name = url.rsplit("/", 1)[-1]
    if rows == DEFAULT_PAGE_ROWS:
        return False, (f"{name} holds exactly {DEFAULT_PAGE_ROWS:,} rows, the API's default "
                       "page: a first page only, not the whole dataset")
    if "sample" in name.lower():
        return False, f"{name} is named a sample: not the whole dataset"
    return True, f"{name}: {rows:,} rows, not a default page; taken as the whole dataset"


def _dataset_from_name(file_name: str) -> str | None:
    m = DATASET_ID.match(file_name.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def add_snapshot_columns(entry, parsed) -> None:
    """Each download is a snapshot of cumulative figures: keep whether it is whole, and its
    date (the platform's update date; a replayed file without one: the latest programme
    adoption date it holds). Called by the raw load (``ingest.catalog``: ``enrich``)."""
    frame = parsed.rows
    complete, note = completeness(entry.url, len(frame))
    if not complete:
        log.warning("%s: partial snapshot: %s", entry.path, note)
    frame["is_complete_snapshot"] = complete
    frame["completeness_note"] = note
    if entry.release is not None:
        frame["snapshot_date"], basis = entry.release, "the platform's last update of the rows"
    else:
        adopted = pd.to_datetime(frame["record"].map(
            lambda r: json.loads(r).get("last_adoption_date_ecms")), errors="coerce")
        frame["snapshot_date"] = adopted.max().date() if adopted.notna().any() else None
        basis = ("the latest programme adoption date in the file (the file states no date)"
                 if adopted.notna().any() else "unknown")
    frame["snapshot_date_basis"] = basis


def label(identifier: str) -> str | None:
    """What the report shows for a funding source key of this source
    (``cohesion_open_data:<dataset id>``; ``SourceSpec.labels``)."""
    prefix, _, dataset_id = identifier.partition(":")
    if prefix == "cohesion_open_data" and dataset_id:
        known = DATASETS.get(dataset_id)
        return (f"Cohesion Open Data, {known.title}" if known
                else f"Cohesion Open Data dataset {dataset_id}")
    return None
