"""The readmission registry parsed in full from the recorded file, small registries written here
for the cross-row rules, and each rule broken once in a copy of the recorded file."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from ingest.errors import DataError
from ingest.sources.registries.source import READMISSION_COLUMNS, last_day, parse_readmission

FILE = "registries/readmission_instruments.csv"


@pytest.fixture(scope="module")
def recorded(snapshot_dir) -> bytes:
    return (snapshot_dir / FILE).read_bytes()


def test_registry_parsed_in_full(recorded):
    frame = parse_readmission(recorded, "readmission_instruments.csv")
    assert len(frame) == 76
    assert frame["effect"].value_counts().to_dict() == {
        "agreement_signed": 18, "agreement_in_force": 18, "other_event": 11,
        "arrangement_concluded": 8, "art25a_proposed": 8, "jrc_meeting": 4,
        "art25a_measure_adopted": 3, "art25a_assessment": 2, "planned_event": 2,
        "art25a_lifting_proposed": 1, "art25a_measure_lifted": 1}
    assert frame["event_date_precision"].value_counts().to_dict() == {"day": 65, "month": 10,
                                                                      "year": 1}
    # Line 31: Armenia in force "2014-01" (month only): kept as a month, no day invented.
    armenia = frame[frame["source_row"] == 31].iloc[0]
    assert (armenia.event_date, armenia.event_date_last, armenia.event_date_precision,
            armenia.has_caveat) == (date(2014, 1, 1), date(2014, 1, 31), "month", True)
    # Lines 48-49: the EU-wide Art. 25a assessments have no country.
    assert frame[frame["scope"] == "eu_wide"]["source_row"].tolist() == [48, 49]
    assert frame["has_caveat"].sum() == 16  # notes that say "not confirmed", "MEDIUM CONFIDENCE"...


def registry(*rows: dict) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=READMISSION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"legal_reference": "", "note": "", "source": "https://example.eu",
                         "title": "Agreement", **row})
    return out.getvalue().encode()


def event(iso2, country, kind, status, when, **extra) -> dict:
    return {"iso2": iso2, "third_country": country, "instrument_type": kind, "status": status,
            "event_date": when, **extra}


def test_agreement_signed_then_in_force_at_month_precision():
    frame = parse_readmission(registry(
        event("AM", "Armenia", "eu_readmission_agreement", "signed", "2014-01-15"),
        event("AM", "Armenia", "eu_readmission_agreement", "in_force", "2014-01")),
        "small.csv")
    assert frame["effect"].tolist() == ["agreement_signed", "agreement_in_force"]


def test_in_force_before_signed_is_refused_with_its_row():
    with pytest.raises(DataError) as caught:
        parse_readmission(registry(
            event("GE", "Georgia", "eu_readmission_agreement", "signed", "2010-11-22"),
            event("GE", "Georgia", "eu_readmission_agreement", "in_force", "2010-10")),
            "small.csv")
    assert str(caught.value) == ("small.csv, row 3: [in force not before signed] GE: in force "
                                 "2010-10-01 (month) before signed 2010-11-22 (row 2)")


def test_measure_adopted_then_lifted():
    frame = parse_readmission(registry(
        event("GM", "The Gambia", "visa_code_art25a_measure", "revoked", "2022-12-08",
              title="Fee"),
        event("GM", "The Gambia", "visa_code_art25a_lifting", "adopted", "2024-04",
              title="Repeal")),
        "small.csv")
    assert frame["effect"].tolist() == ["art25a_measure_adopted", "art25a_measure_lifted"]


def test_lifting_without_an_earlier_measure_is_refused():
    with pytest.raises(DataError, match=r"row 2: \[lifting after its measure\] GM"):
        parse_readmission(registry(
            event("GM", "The Gambia", "visa_code_art25a_lifting", "adopted", "2021-04"),
            event("GM", "The Gambia", "visa_code_art25a_measure", "in_force", "2022-12-08")),
            "small.csv")


def broken(recorded: bytes, line: int, column: str, value: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(recorded.decode("utf-8"))))
    rows[line - 2][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=READMISSION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("line, column, value, rule", [
    (27, "event_date", "2010-01-01", "in force not before signed"),  # Georgia, signed 2010-11-22
    (26, "iso2", "AM", "ISO code matches the country name"),
    (26, "iso2", "QQ", "ISO code valid"),
    (26, "status", "ratified", "known instrument type and status"),
    (26, "instrument_type", "treaty", "known instrument type and status"),
    (26, "source", "", "source cited"),
    (26, "event_date", "22 Nov 2010", "date parses"),
])
def test_a_broken_row_is_named_with_its_rule(recorded, line, column, value, rule):
    with pytest.raises(DataError) as caught:
        parse_readmission(broken(recorded, line, column, value), "readmission_instruments.csv")
    assert str(caught.value).startswith(f"readmission_instruments.csv, row {line}: [{rule}]")


@pytest.mark.parametrize("first, precision, last", [
    (date(2024, 4, 1), "month", date(2024, 4, 30)),
    (date(2024, 2, 1), "month", date(2024, 2, 29)),
    (date(2017, 1, 1), "year", date(2017, 12, 31)),
    (date(2024, 12, 1), "month", date(2024, 12, 31)),
])
def test_last_day_of_a_stated_precision(first, precision, last):
    assert last_day(first, precision) == last
