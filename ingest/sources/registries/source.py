"""Curated registries: hand-compiled tables with a citation on every row, read from
``WH_CURATED_DIR`` (by default the snapshot directory). They have no live endpoint; their DAG
lands a new version whenever the file changes (its sha256).

- ``registries/funding_commitments.csv``: every funding statement of the European Council's
  October 2024 Migration State of Play, one amount per row, with its stage, the quote and the
  source. Validated here: amounts positive where given, stages and instruments known, source and
  quote present, dates that parse (year, month or day: the precision is kept, no day invented).
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import re
from datetime import date
from pathlib import Path

import pandas as pd

from ingest.config import SEEDS_DIR, settings
from ingest.csvtext import decode
from ingest.errors import DataError, DownloadError
from ingest.source import Candidate, Parsed

log = logging.getLogger(__name__)

FUNDING = "funding_registry"
FUNDING_FILE = Path("registries") / "funding_commitments.csv"
FUNDING_COLUMNS = ["as_of_date", "instrument", "action_title", "beneficiary_or_partner",
                   "direction", "stage", "amount_eur", "period", "source", "quote", "note"]
STAGES_SEED = SEEDS_DIR / "funding_stages.csv"
FUNDS_SEED = SEEDS_DIR / "funds.csv"
DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
AMOUNT = re.compile(r"^\d+(\.\d+)?$")


@functools.lru_cache(maxsize=1)
def known_stages() -> frozenset[str]:
    with STAGES_SEED.open(encoding="utf-8", newline="") as fh:
        return frozenset(r["stage"] for r in csv.DictReader(fh))


@functools.lru_cache(maxsize=1)
def instrument_funds() -> dict[str, str]:
    """Registry instrument label -> fund code of dim_fund."""
    with FUNDS_SEED.open(encoding="utf-8", newline="") as fh:
        return {r["registry_label"]: r["fund_code"] for r in csv.DictReader(fh)
                if r["registry_label"]}


def parse_partial_date(raw: str) -> tuple[date, str]:
    """``2024``, ``2024-10`` or ``2024-07-31``: the first day of what is stated, and its
    precision (``year``, ``month``, ``day``)."""
    m = DATE.match(raw.strip())
    if not m:
        raise ValueError(raw)
    year, month, day = m.groups()
    return (date(int(year), int(month or 1), int(day or 1)),
            "day" if day else "month" if month else "year")


class FundingRegistrySource:
    name = FUNDING

    def discover(self) -> list[Candidate]:
        folder = settings().curated_dir
        if folder is None:
            log.warning("no WH_CURATED_DIR (or WH_SNAPSHOT_DIR): the funding commitments "
                        "registry is not loaded")
            return []
        path = folder / FUNDING_FILE
        if not path.is_file():
            raise DataError(str(path), "curated layout", "no funding commitments registry")
        return [Candidate(FUNDING, path.resolve().as_uri(), dataset="funding_commitments")]

    def fetch(self, candidate: Candidate) -> bytes:
        raise DownloadError(candidate.url, "no live endpoint",
                            "a curated registry is curated by hand: only files in WH_CURATED_DIR are read")

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        return Parsed(None, parse_funding(content, file_name), "funding_commitments")


def parse_funding(content: bytes, file_name: str) -> pd.DataFrame:
    """Validate every row of the funding commitments registry; the first broken row is an error
    naming the file, the row and the rule."""
    reader = csv.DictReader(io.StringIO(decode(content, file_name), newline=""))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != FUNDING_COLUMNS:
        raise DataError(file_name, "csv format",
                        f"header {reader.fieldnames} is not {FUNDING_COLUMNS}", row=1)
    stages, funds = known_stages(), instrument_funds()
    out: dict[str, list] = {c: [] for c in FUNDING_COLUMNS + [
        "as_of_precision", "fund_code", "source_row"]}
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items()}
        try:
            as_of, precision = parse_partial_date(values["as_of_date"])
        except ValueError:
            raise DataError(file_name, "date parses",
                            f"as_of_date {values['as_of_date']!r} is not YYYY, YYYY-MM or "
                            "YYYY-MM-DD", row=line) from None
        if values["stage"] not in stages:
            raise DataError(file_name, "stage known",
                            f"stage {values['stage']!r} is not one of {sorted(stages)} "
                            f"(seed {STAGES_SEED.name})", row=line)
        if values["instrument"] not in funds:
            raise DataError(file_name, "instrument known",
                            f"instrument {values['instrument']!r} is not a registry_label of "
                            f"seed {FUNDS_SEED.name}", row=line)
        amount = None
        if values["amount_eur"]:
            if values["amount_eur"].startswith("-"):
                raise DataError(file_name, "amount positive",
                                f"amount_eur {values['amount_eur']} is negative", row=line)
            if not AMOUNT.match(values["amount_eur"]):
                raise DataError(file_name, "amount is a number",
                                f"amount_eur {values['amount_eur']!r}", row=line)
            amount = float(values["amount_eur"])
            if amount <= 0:
                raise DataError(file_name, "amount positive", "amount_eur is 0", row=line)
        for column in ("source", "quote"):
            if not values[column]:
                raise DataError(file_name, "citation present", f"no {column}", row=line)
        if values["direction"] not in ("internal", "external"):
            raise DataError(file_name, "direction known",
                            f"direction {values['direction']!r} is not internal or external",
                            row=line)
        for column in FUNDING_COLUMNS:
            out[column].append(as_of if column == "as_of_date" else
                               amount if column == "amount_eur" else (values[column] or None))
        out["as_of_precision"].append(precision)
        out["fund_code"].append(funds[values["instrument"]])
        out["source_row"].append(line)
    frame = pd.DataFrame(out)
    if frame.empty:
        raise DataError(file_name, "rows present", "no rows")
    for column in frame.columns:
        if column == "amount_eur":
            frame[column] = frame[column].astype("float64")
        elif column == "source_row":
            frame[column] = frame[column].astype("int32")
        elif column == "as_of_date":
            frame[column] = pd.to_datetime(frame[column]).dt.date
        else:
            frame[column] = frame[column].astype("string")
    return frame


# --- readmission instruments ------------------------------------------------------------------

READMISSION = "readmission_registry"
READMISSION_FILE = Path("registries") / "readmission_instruments.csv"
READMISSION_COLUMNS = ["third_country", "iso2", "instrument_type", "title", "status",
                       "event_date", "legal_reference", "source", "note"]
EFFECTS_SEED = SEEDS_DIR / "readmission_event_effects.csv"
COUNTRIES_SEED = SEEDS_DIR / "country_codes.csv"
ALIASES_SEED = SEEDS_DIR / "country_name_aliases.csv"
# Words by which the registry's notes flag what is not confirmed (registries/NOTES.md).
CAVEAT = re.compile(r"not confirmed|medium confidence|verify|inferred|derived|not checked|"
                    r"not assessed|not independently", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def event_effects() -> dict[tuple[str, str, str], str]:
    with EFFECTS_SEED.open(encoding="utf-8", newline="") as fh:
        return {(r["instrument_type"], r["status"], r["scope"]): r["effect"]
                for r in csv.DictReader(fh)}


@functools.lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """Country name (ISO short name, or an alias the registries use) -> ISO alpha-2."""
    names = {}
    with COUNTRIES_SEED.open(encoding="utf-8", newline="") as fh:
        names.update({r["country_name"]: r["iso2"] for r in csv.DictReader(fh) if r["iso2"]})
    with ALIASES_SEED.open(encoding="utf-8", newline="") as fh:
        names.update({r["label"]: r["country_code"] for r in csv.DictReader(fh)})
    return names


def last_day(first: date, precision: str) -> date:
    """The last day a date of this precision can mean (2014-01 -> 2014-01-31)."""
    if precision == "day":
        return first
    if precision == "year":
        return date(first.year, 12, 31)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


class ReadmissionRegistrySource:
    name = READMISSION

    def discover(self) -> list[Candidate]:
        folder = settings().curated_dir
        if folder is None:
            log.warning("no WH_CURATED_DIR (or WH_SNAPSHOT_DIR): the readmission registry is "
                        "not loaded")
            return []
        path = folder / READMISSION_FILE
        if not path.is_file():
            raise DataError(str(path), "curated layout", "no readmission instruments registry")
        return [Candidate(READMISSION, path.resolve().as_uri(), dataset="readmission_instruments")]

    def fetch(self, candidate: Candidate) -> bytes:
        raise DownloadError(candidate.url, "no live endpoint",
                            "a curated registry is curated by hand: only files in WH_CURATED_DIR are read")

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        return Parsed(None, parse_readmission(content, file_name), "readmission_instruments")


def parse_readmission(content: bytes, file_name: str) -> pd.DataFrame:
    """Validate the readmission registry row by row (codes matching names, dates at their
    precision, known statuses and combinations, a source on every row), then across rows (an
    agreement in force not before it was signed; a lifting after a measure)."""
    reader = csv.DictReader(io.StringIO(decode(content, file_name), newline=""))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != READMISSION_COLUMNS:
        raise DataError(file_name, "csv format",
                        f"header {reader.fieldnames} is not {READMISSION_COLUMNS}", row=1)
    effects, names = event_effects(), country_names()
    known_codes = set(names.values())
    out: dict[str, list] = {c: [] for c in READMISSION_COLUMNS + [
        "event_date_precision", "event_date_last", "scope", "effect", "has_caveat",
        "source_row"]}
    for row in reader:
        line = reader.line_num
        v = {k: (val or "").strip() for k, val in row.items()}
        scope = "country" if v["iso2"] else "eu_wide"
        if v["iso2"]:
            if v["iso2"] not in known_codes:
                raise DataError(file_name, "ISO code valid",
                                f"iso2 {v['iso2']!r} is not an ISO 3166 alpha-2 code of "
                                "country_codes", row=line)
            if names.get(v["third_country"]) != v["iso2"]:
                raise DataError(file_name, "ISO code matches the country name",
                                f"{v['third_country']!r} is "
                                f"{names.get(v['third_country'], 'no known country')}, "
                                f"not {v['iso2']}", row=line)
        elif v["third_country"]:
            raise DataError(file_name, "ISO code valid",
                            f"{v['third_country']!r} has no iso2", row=line)
        try:
            first, precision = parse_partial_date(v["event_date"])
        except ValueError:
            raise DataError(file_name, "date parses",
                            f"event_date {v['event_date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD",
                            row=line) from None
        effect = effects.get((v["instrument_type"], v["status"], scope))
        if effect is None:
            raise DataError(file_name, "known instrument type and status",
                            f"{v['instrument_type']} / {v['status']} ({scope}) has no reading "
                            f"in seed {EFFECTS_SEED.name}", row=line)
        if not v["source"]:
            raise DataError(file_name, "source cited", "no source", row=line)
        for column in READMISSION_COLUMNS:
            out[column].append(first if column == "event_date" else (v[column] or None))
        out["event_date_precision"].append(precision)
        out["event_date_last"].append(last_day(first, precision))
        out["scope"].append(scope)
        out["effect"].append(effect)
        out["has_caveat"].append(bool(CAVEAT.search(v["note"])))
        out["source_row"].append(line)
    frame = pd.DataFrame(out)
    if frame.empty:
        raise DataError(file_name, "rows present", "no rows")
    _check_event_order(frame, file_name)
    for column in frame.columns:
        if column in ("event_date", "event_date_last"):
            frame[column] = pd.to_datetime(frame[column]).dt.date
        elif column == "has_caveat":
            frame[column] = frame[column].astype(bool)
        elif column == "source_row":
            frame[column] = frame[column].astype("int32")
        else:
            frame[column] = frame[column].astype("string")
    return frame


def _check_event_order(frame: pd.DataFrame, file_name: str) -> None:
    """An agreement is not in force before it is signed (compared at the dates' precision: the
    last day an in-force date can mean before the first day a signature can mean), and a
    lifting comes after a measure of the same country."""
    agreements = frame[frame["instrument_type"] == "eu_readmission_agreement"]
    for (iso2, title), rows in agreements.groupby(["iso2", "title"]):
        signed = rows[rows["status"] == "signed"]
        in_force = rows[rows["status"] == "in_force"]
        for _, force in in_force.iterrows():
            for _, sign in signed.iterrows():
                if force["event_date_last"] < sign["event_date"]:
                    raise DataError(file_name, "in force not before signed",
                                    f"{iso2}: in force {force['event_date']:%Y-%m-%d} "
                                    f"({force['event_date_precision']}) before signed "
                                    f"{sign['event_date']:%Y-%m-%d} (row {sign['source_row']})",
                                    row=int(force["source_row"]))
    measures = frame[frame["effect"] == "art25a_measure_adopted"]
    for _, lifting in frame[frame["instrument_type"] == "visa_code_art25a_lifting"].iterrows():
        earlier = measures[(measures["iso2"] == lifting["iso2"])
                           & (measures["event_date"] <= lifting["event_date_last"])]
        if earlier.empty:
            raise DataError(file_name, "lifting after its measure",
                            f"{lifting['iso2']}: a lifting dated "
                            f"{lifting['event_date']:%Y-%m-%d} with no Art. 25a measure before it",
                            row=int(lifting["source_row"]))


def label(identifier: str) -> str | None:
    """What the report shows for a funding source key of the registries
    (``registry:<registry>``; ``SourceSpec.labels``)."""
    return {"registry:funding_commitments": "Funding registry (curated)",
            "funding_commitments": "Funding registry (curated)",
            "readmission_events": "Readmission registry (curated)"}.get(identifier)
