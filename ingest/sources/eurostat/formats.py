"""Parsers for the file formats Eurostat data arrives in; each a pure function of the bytes.

- ``legacy_export``: the Data Browser export Eurostat offered until 2018 (``TIME,GEO,CITIZEN,...,
  Value,Flag and Footnotes``): labels instead of codes, thousands separators (``"533,395"``),
  ``:`` for missing, Windows-1252 text in some files, and in ``migr_eirtn`` the older
  ``INDIC_MG`` dimension where today's dataset has ``c_dest``.
- ``sdmx_csv``: SDMX-CSV 1.0 as the dissemination API writes it (``DATAFLOW,LAST UPDATE,freq,...,
  TIME_PERIOD,OBS_VALUE,OBS_FLAG[,CONF_STATUS]``), with codes (the API's default) or with labels
  (a download "with labels", as the recorded ``migr_eipre.csv``).
- ``sdmx_csv2``: SDMX-CSV 2.0 with codes and labels side by side (``STRUCTURE,STRUCTURE_ID,
  STRUCTURE_NAME,freq,Time frequency,...``).

Every format becomes the same long table (``OBSERVATION_COLUMNS``): one row per observation with
Eurostat codes for every dimension, the published labels kept beside them, the value (NULL when
missing, never 0) and the flags as published. Labels are mapped to codes through the reference
tables in ``dbt_project/seeds`` (``ingest.sources.eurostat.codes``); a label without a code is an error
naming the file, the row and the label, never a dropped row.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from ingest.sources.eurostat import codes as eurostat_codes
from ingest.csvtext import decode
from ingest.errors import DataError

log = logging.getLogger(__name__)

OBSERVATION_COLUMNS = [
    "dataset", "source_format", "freq", "time_period", "geo", "geo_label", "citizen",
    "citizen_label", "dimensions", "dimension_labels", "obs_value", "obs_flag", "conf_status",
    "last_update", "source_row",
]
# Dimensions with a column of their own; every other one goes into ``dimensions`` (JSON).
OWN_COLUMNS = ("freq", "geo", "citizen")

LEGACY_FIELDS = {"TIME": "time_period", "Value": "obs_value", "Flag and Footnotes": "obs_flag"}
SDMX_FIELDS = ("TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "CONF_STATUS")
FREQ_CODES = {"A", "S", "Q", "M", "W", "D"}
PERIOD_PATTERNS = {
    "A": re.compile(r"^\d{4}$"),
    "S": re.compile(r"^\d{4}-S[12]$"),
    "Q": re.compile(r"^\d{4}-Q[1-4]$"),
    "M": re.compile(r"^\d{4}-(0[1-9]|1[0-2])$"),
}
LEGACY_PERIOD = re.compile(r"^(\d{4})(?:([QS])([1-4])|M(\d{2}))?$")
# A count as the legacy export writes it: digits with optional thousands separators.
LEGACY_NUMBER = re.compile(r"^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
SDMX_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
DATAFLOW_ID = re.compile(r"^(?:[A-Z]+:)?([A-Za-z0-9_]+?)(?:\$[A-Za-z0-9_]+)?\(")
LEGACY_RELEASE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
MISSING = {"", ":"}


@dataclass(frozen=True)
class ParsedObservations:
    dataset: str
    source_format: str
    rows: pd.DataFrame
    last_update: datetime | None
    """When Eurostat last updated the data, as the file states it (None when it does not)."""
    release_date: date | None
    """``last_update``'s date, or the export date a legacy file name carries."""


def detect_format(header: list[str], file_name: str) -> str:
    if header[:1] == ["STRUCTURE"] and "STRUCTURE_ID" in header:
        return "sdmx_csv2"
    if header[:1] == ["DATAFLOW"] and "TIME_PERIOD" in header and "OBS_VALUE" in header:
        return "sdmx_csv"
    if "TIME" in header and "Value" in header and "GEO" in header:
        return "legacy_export"
    raise DataError(file_name, "csv format",
                    f"header {header[:6]} is none of the Eurostat layouts this warehouse reads "
                    "(SDMX-CSV 1.0, SDMX-CSV 2.0, Data Browser export)", row=1)


def parse_observations(content: bytes, file_name: str,
                       dataset: str | None = None) -> ParsedObservations:
    """Parse any supported Eurostat file to the long observation table.

    ``dataset`` is what the caller knows (the dataset it asked the API for, or None); a legacy
    export does not name its dataset, so its file name must (``migr_eiord_1_Data.csv``)."""
    text = decode(content, file_name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(file_name, "csv format", "no header row") from None
    except csv.Error as err:
        raise DataError(file_name, "csv format", f"not readable as CSV ({err})", row=1) from err
    fmt = detect_format(header, file_name)
    reader = _RepeatedHeaderSkipped(reader, header)
    if fmt == "legacy_export":
        frame, found, last_update = _legacy(reader, header, file_name)
        release = _legacy_release(file_name)
    elif fmt == "sdmx_csv":
        frame, found, last_update = _sdmx1(reader, header, file_name)
        release = last_update.date() if last_update else None
    else:
        frame, found, last_update = _sdmx2(reader, header, file_name)
        release = last_update.date() if last_update else None
    named = found or _dataset_from_name(file_name)
    if named is None and dataset is None:
        raise DataError(file_name, "dataset named",
                        "the file does not say which dataset it holds (legacy exports are "
                        "recognised by their file name, e.g. migr_eiord_1_Data.csv)")
    if dataset is not None and named is not None and named != dataset:
        raise DataError(file_name, "dataset named",
                        f"asked for {dataset}, but the file holds {named}")
    code = dataset or named
    if code not in eurostat_codes.datasets():
        raise DataError(file_name, "known dataset",
                        f"{code} is not one of the datasets this warehouse reads "
                        f"({', '.join(sorted(eurostat_codes.datasets()))})")
    if frame.empty:
        raise DataError(file_name, "observations present",
                        "a header and no observations (an empty answer?)")
    frame.insert(0, "dataset", code)
    frame.insert(1, "source_format", fmt)
    frame["last_update"] = pd.Series([last_update] * len(frame), dtype="datetime64[us]")
    return ParsedObservations(code, fmt, frame[OBSERVATION_COLUMNS], last_update, release)


class _RepeatedHeaderSkipped:
    """The rows of a CSV reader without repeats of its header line: a query split in parts
    arrives as several bodies, each with its header."""

    def __init__(self, reader, header: list[str]) -> None:
        self._reader = reader
        self._header = header

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self):
        for row in self._reader:
            if [cell.strip() for cell in row] != self._header:
                yield row


def _data_rows(reader, header: list[str], file_name: str):
    """(line, fields) of each non-blank row, every row as wide as the header."""
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(file_name, "csv format",
                            f"{len(row)} fields where the header has {len(header)}",
                            row=reader.line_num)
        yield reader.line_num, row


# --- legacy Data Browser export ---------------------------------------------------------------

def _legacy(reader, header: list[str], file_name: str):
    dims = [h for h in header if h not in LEGACY_FIELDS]
    missing = [f for f in LEGACY_FIELDS if f not in header]
    if missing:
        raise DataError(file_name, "csv format", f"legacy export without column(s) {missing}",
                        row=1)
    index = {h: i for i, h in enumerate(header)}
    out = _Columns()
    for line, row in _data_rows(reader, header, file_name):
        period, freq = _legacy_period(row[index["TIME"]].strip(), file_name, line)
        labels = {d.lower(): row[index[d]].strip() for d in dims}
        codes = {d: eurostat_codes.code_for(d, label, file_name, line)
                 for d, label in labels.items()}
        out.add(freq=freq, time_period=period, codes=codes, labels=labels,
                obs_value=_legacy_value(row[index["Value"]], file_name, line),
                obs_flag=row[index["Flag and Footnotes"]].strip() or None, conf_status=None,
                source_row=line)
    return out.frame(), None, None


def _legacy_period(raw: str, file_name: str, line: int) -> tuple[str, str]:
    m = LEGACY_PERIOD.match(raw)
    if not m:
        raise DataError(file_name, "time period",
                        f"TIME {raw!r} is not a year, quarter (2017Q1) or month (2017M01)",
                        row=line)
    year, sub, n, month = m.groups()
    if sub:
        return f"{year}-{sub}{n}", sub
    if month:
        return f"{year}-{month}", "M"
    return year, "A"


def _legacy_value(raw: str, file_name: str, line: int) -> float | None:
    value = raw.strip()
    if value in MISSING:
        return None
    if not LEGACY_NUMBER.match(value):
        raise DataError(file_name, "value is a number",
                        f"Value {raw!r} is neither a number nor ':' (missing)", row=line)
    return float(value.replace(",", ""))


def _legacy_release(file_name: str) -> date | None:
    m = LEGACY_RELEASE_IN_NAME.search(file_name)
    return date.fromisoformat(m.group(1)) if m else None


def _dataset_from_name(file_name: str) -> str | None:
    stem = file_name.rsplit("/", 1)[-1].lower()
    for code in sorted(eurostat_codes.datasets(), key=len, reverse=True):
        if stem == code or stem.startswith((code + "_", code + ".", code + "-")):
            return code
    return None


# --- SDMX-CSV 1.0 ------------------------------------------------------------------------------

def _sdmx1(reader, header: list[str], file_name: str):
    index = {h: i for i, h in enumerate(header)}
    dims = [h for h in header[2:] if h not in SDMX_FIELDS]
    if "freq" not in dims:
        raise DataError(file_name, "csv format", "SDMX-CSV without a freq column", row=1)
    out = _Columns()
    dataflow = None
    last_update: datetime | None = None
    with_labels: bool | None = None
    for line, row in _data_rows(reader, header, file_name):
        dataflow = dataflow or row[0].strip()
        if last_update is None and "LAST UPDATE" in index:
            stamp = row[index["LAST UPDATE"]].strip()
            if stamp:
                last_update = parse_last_update(stamp, file_name, line)
        values = {d: row[index[d]].strip() for d in dims}
        if with_labels is None:
            # The API answers with codes by default; a download "with labels" has them instead.
            with_labels = values["freq"] not in FREQ_CODES
        if with_labels:
            labels = values
            codes = {d: eurostat_codes.code_for(d, v, file_name, line) for d, v in values.items()}
        else:
            labels, codes = {}, values
        _add_sdmx_row(out, row, index, codes, labels, file_name, line)
    return out.frame(), _dataflow_code(dataflow, file_name), last_update


# --- SDMX-CSV 2.0 (codes and labels side by side) ----------------------------------------------

def _sdmx2(reader, header: list[str], file_name: str):
    index = {h: i for i, h in enumerate(header)}
    # After STRUCTURE, STRUCTURE_ID (and STRUCTURE_NAME when labels are included), each
    # dimension code column may be followed by its label column; then TIME_PERIOD, OBS_VALUE ...
    start = 3 if "STRUCTURE_NAME" in index else 2
    dims: list[tuple[str, int, int | None]] = []
    j = start
    while j < len(header) and header[j] not in SDMX_FIELDS:
        name = header[j]
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise DataError(file_name, "csv format",
                            f"column {j + 1} ({name!r}) should be a dimension id", row=1)
        label_col = j + 1 if j + 1 < len(header) and header[j + 1] not in SDMX_FIELDS \
            and not re.match(r"^[a-z][a-z0-9_]*$", header[j + 1]) else None
        dims.append((name, j, label_col))
        j = label_col + 1 if label_col is not None else j + 1
    if "freq" not in [d for d, _, _ in dims] or "TIME_PERIOD" not in index:
        raise DataError(file_name, "csv format", "SDMX-CSV 2.0 without freq or TIME_PERIOD",
                        row=1)
    out = _Columns()
    structure = None
    for line, row in _data_rows(reader, header, file_name):
        structure = structure or row[index["STRUCTURE_ID"]].strip()
        codes = {d: row[i].strip() for d, i, _ in dims}
        labels = {d: row[lc].strip() for d, _, lc in dims if lc is not None}
        for d, value in codes.items():
            if not value:
                raise DataError(file_name, "dimension code present", f"empty {d} code", row=line)
        _add_sdmx_row(out, row, index, codes, labels, file_name, line)
    return out.frame(), _dataflow_code(structure, file_name), None


# --- shared -------------------------------------------------------------------------------------

def _add_sdmx_row(out: "_Columns", row: list[str], index: dict[str, int], codes: dict[str, str],
                  labels: dict[str, str], file_name: str, line: int) -> None:
    """One SDMX-CSV observation (either version), its dimensions already read."""
    out.add(freq=codes["freq"],
            time_period=_period(row[index["TIME_PERIOD"]].strip(), codes["freq"], file_name,
                                line),
            codes=codes, labels=labels,
            obs_value=_sdmx_value(row[index["OBS_VALUE"]], file_name, line),
            obs_flag=_optional(row, index, "OBS_FLAG"),
            conf_status=_optional(row, index, "CONF_STATUS"),
            source_row=line)


def _optional(row: list[str], index: dict[str, int], column: str) -> str | None:
    return (row[index[column]].strip() or None) if column in index else None


def _dataflow_code(dataflow: str | None, file_name: str) -> str | None:
    """``ESTAT:MIGR_EIPRE$DEFAULTVIEW(1.0)`` -> ``migr_eipre``."""
    if not dataflow:
        return None
    m = DATAFLOW_ID.match(dataflow)
    if not m:
        raise DataError(file_name, "dataset named", f"dataflow {dataflow!r} not understood", row=2)
    return m.group(1).lower()


def _period(raw: str, freq: str, file_name: str, line: int) -> str:
    pattern = PERIOD_PATTERNS.get(freq)
    if pattern is None:
        raise DataError(file_name, "known frequency", f"freq {freq!r} is not A, S, Q or M",
                        row=line)
    if not pattern.match(raw):
        raise DataError(file_name, "time period matches the frequency",
                        f"TIME_PERIOD {raw!r} is not a period of frequency {freq}", row=line)
    return raw


def _sdmx_value(raw: str, file_name: str, line: int) -> float | None:
    value = raw.strip()
    if value in MISSING:
        return None
    if not SDMX_NUMBER.match(value):
        raise DataError(file_name, "value is a number",
                        f"OBS_VALUE {raw!r} is neither a number nor empty (missing)", row=line)
    return float(value)


LAST_UPDATE_FORMATS = ("%d/%m/%y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d.%m.%Y", "%d/%m/%Y",
                       "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def parse_last_update(raw: str, file_name: str, line: int | None = None) -> datetime:
    """Eurostat's update stamps as its files and its table of contents write them
    (``18/03/25 11:00:00`` in SDMX-CSV, ISO 8601 with an offset in the table of contents).
    Returned naive, in the time the publisher wrote."""
    value = raw.strip()
    for fmt in LAST_UPDATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=None)
        except ValueError:
            continue
    raise DataError(file_name, "last update is a date",
                    f"LAST UPDATE {raw!r} is not a date Eurostat writes", row=line)


class _Columns:
    """Collects parsed rows column-wise, so the frame is built once (no row-by-row inserts)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in OBSERVATION_COLUMNS
                                      if c not in ("dataset", "source_format", "last_update")}
        self._encoded: dict[tuple, str] = {}

    def _json(self, values: dict[str, str]) -> str:
        """The dimensions other than freq, geo and citizen as a JSON object with sorted keys
        (files repeat a handful of combinations: each is encoded once)."""
        key = tuple(sorted((k, v) for k, v in values.items() if k not in OWN_COLUMNS))
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = self._encoded[key] = json.dumps(dict(key), ensure_ascii=False)
        return encoded

    def add(self, *, freq: str, time_period: str, codes: dict[str, str],
            labels: dict[str, str], obs_value, obs_flag, conf_status, source_row: int) -> None:
        c = self.cols
        c["freq"].append(freq)
        c["time_period"].append(time_period)
        c["geo"].append(codes.get("geo"))
        c["geo_label"].append(labels.get("geo"))
        c["citizen"].append(codes.get("citizen"))
        c["citizen_label"].append(labels.get("citizen"))
        c["dimensions"].append(self._json(codes))
        c["dimension_labels"].append(self._json(labels) if labels else None)
        c["obs_value"].append(obs_value)
        c["obs_flag"].append(obs_flag)
        c["conf_status"].append(conf_status)
        c["source_row"].append(source_row)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.cols)
        for name in frame.columns:
            if name not in ("obs_value", "source_row"):
                # Explicit: a column of only NULLs must stay text, not become a float of NaN.
                frame[name] = frame[name].astype("string")
        frame["obs_value"] = frame["obs_value"].astype("float64")
        frame["source_row"] = frame["source_row"].astype("int32")
        return frame
