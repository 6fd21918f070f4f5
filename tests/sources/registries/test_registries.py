"""The funding commitments registry parsed in full from the recorded file, and each rule it must
keep broken once in a copy: the error names the file, the row and the rule."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from ingest.errors import DataError
from ingest.sources.registries.source import parse_funding, parse_partial_date

FILE = "registries/funding_commitments.csv"


@pytest.fixture(scope="module")
def recorded(snapshot_dir) -> bytes:
    return (snapshot_dir / FILE).read_bytes()


def test_registry_parsed_in_full(recorded):
    frame = parse_funding(recorded, "funding_commitments.csv")
    assert len(frame) == 78
    assert frame["amount_eur"].notna().sum() == 76  # the two TSI rows state no amount
    assert frame["as_of_precision"].value_counts().to_dict() == {"month": 69, "day": 6, "year": 3}
    assert frame["stage"].value_counts()["contracted"] == 23
    # Line 42: Morocco, tranches paid so far, EUR 79.6m
    morocco = frame[frame["source_row"] == 42].iloc[0]
    assert (morocco.stage, morocco.amount_eur, morocco.fund_code, morocco.as_of_date) == (
        "paid", 79_600_000.0, "BUDGET_SUPPORT", date(2024, 10, 1))
    assert frame["quote"].notna().all() and frame["source"].notna().all()
    assert set(frame["fund_code"]) == {"AMIF", "BMVI", "ISF", "NDICI", "IPA", "BUDGET_SUPPORT",
                                       "HUMANITARIAN", "TSI", "OTHER"}


@pytest.mark.parametrize("raw, expected", [
    ("2024", (date(2024, 1, 1), "year")),
    ("2024-10", (date(2024, 10, 1), "month")),
    ("2024-07-31", (date(2024, 7, 31), "day")),
])
def test_dates_keep_their_precision(raw, expected):
    assert parse_partial_date(raw) == expected


def broken(recorded: bytes, line: int, column: str, value: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(recorded.decode("utf-8"))))
    rows[line - 2][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("line, column, value, rule", [
    (42, "amount_eur", "-79600000", "amount positive"),
    (42, "amount_eur", "0", "amount positive"),
    (42, "amount_eur", "79.6m", "amount is a number"),
    (10, "stage", "disbursed", "stage known"),
    (10, "instrument", "ESF+", "instrument known"),
    (10, "quote", "", "citation present"),
    (10, "source", "", "citation present"),
    (10, "as_of_date", "Oct 2024", "date parses"),
    (10, "as_of_date", "2024-13", "date parses"),
])
def test_a_broken_row_is_named_with_its_rule(recorded, line, column, value, rule):
    with pytest.raises(DataError) as caught:
        parse_funding(broken(recorded, line, column, value), "funding_commitments.csv")
    assert str(caught.value).startswith(f"funding_commitments.csv, row {line}: [{rule}]")
