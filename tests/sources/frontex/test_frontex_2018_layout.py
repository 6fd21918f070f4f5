"""The Frontex release of 6 July 2018 (issue 19, item 5): a layout the parser did not read.

Its layout, as the issue describes the real release: sheet ``Detections_of_IBC`` with the header
on row 1, columns ``Route``, ``BorderLocation`` (Land/Sea), ``NationalityLong`` (nationality names)
and one column per month whose header cell is a real Excel date (Jan 2009 .. May 2018, 113
months); a ``Notes`` sheet with "Source: Frontex data as of 06 July 2018."; a ``Dictionary``
sheet; route names without the word "Route" ("Western African", "Eastern Land Borders") beside
"Circular Route from Albania to Greece" and "Other". The parser failed on it with
``[header row] missing column(s) ['Nationality'] in header ['Route', 'BorderLocation',
'NationalityLong', ...]``.

The workbook is written here with openpyxl from ROWS below, never copied from Frontex. Each row's
cells are its ``base`` count in every month but the few months listed beside it; every expected
figure was added up by hand from that (the sums are written out beside ROWS).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import duckdb
import openpyxl
import pandas as pd
import pytest
from openpyxl.cell import WriteOnlyCell

from ingest.config import SEEDS_DIR
from ingest.errors import DataError
from ingest.sources.frontex.source import parse_workbook
from tests.conftest import OTHER_SOURCE_DAGS, point_installation_at

FILE = "Monthly_detections_of_IBC_2018_07_06.xlsx"
RELEASE = date(2018, 7, 6)
NOTE = "Source: Frontex data as of 06 July 2018."
HEADER = ["Route", "BorderLocation", "NationalityLong"]
MONTHS = [date(2009 + i // 12, i % 12 + 1, 1) for i in range(113)]  # Jan 2009 .. May 2018
assert (MONTHS[0], MONTHS[-1]) == (date(2009, 1, 1), date(2018, 5, 1))

# route, border location, nationality, base count per month, {month: count} where it differs,
# first month with a cell (earlier cells empty). Sheet rows 2 .. 12. Row totals by hand:
ROWS = [
    # 113 x 100 + (1,100 - 100)                                                 = 12,300
    ("Central Mediterranean", "Sea", "Eritrea", 100, {"2016-05": 1_100}, None),
    # empty before 2014; 2014-01 .. 2018-05 is 53 months x 50                    =  2,650
    ("Central Mediterranean", "Sea", "Côte d'Ivoire", 50, {}, "2014-01"),
    # 113 x 500 + (8,000 - 500)                                                 = 64,000
    ("Eastern Mediterranean", "Sea", "Syria", 500, {"2015-10": 8_000}, None),
    # 113 x 20                                                                  =  2,260
    ("Eastern Mediterranean", "Land", "Turkey", 20, {}, None),
    # 113 x 60 + (260 - 60)                                                     =  6,980
    ("Western Mediterranean", "Sea", "Morocco", 60, {"2018-05": 260}, None),
    # 113 x 3                                                                   =    339
    ("Western African", "Sea", "Guinea", 3, {}, None),
    # 113 x 40 + (2,040 - 40)                                                   =  6,520
    ("Western Balkans", "Land", "Afghanistan", 40, {"2015-09": 2_040}, None),
    # 113 x 7                                                                   =    791
    ("Eastern Land Borders", "Land", "Ukraine", 7, {}, None),
    # zeros written, 68 + 32                                                    =    100
    ("Black Sea", "Sea", "Iraq", 0, {"2015-09": 68, "2017-09": 32}, None),
    # 113 x 400                                                                 = 45,200
    ("Circular Route from Albania to Greece", "Land", "Albania", 400, {}, None),
    # zeros written, 5                                                          =      5
    ("Other", "Sea", "Not specified", 0, {"2016-03": 5}, None),
]
TOTAL = 141_145  # 12,300 + 2,650 + 64,000 + 2,260 + 6,980 + 339 + 6,520 + 791 + 100 + 45,200 + 5
CELLS = 1_183    # 10 rows x 113 months + 53
BY_ROUTE = {     # canonical routes of frontex_routes.csv
    "Central Mediterranean Route": 14_950,           # 12,300 + 2,650
    "Eastern Mediterranean Route": 66_260,           # 64,000 + 2,260
    "Western Mediterranean Route": 6_980,
    "Western African Route": 339,
    "Western Balkan Route": 6_520,
    "Eastern Borders Route": 791,
    "Black Sea Route": 100,
    "Circular Route from Albania to Greece": 45_200,
    "Other": 5,
}
MAY_2018 = 1_380  # 100 + 50 + 500 + 20 + 260 + 3 + 40 + 7 + 0 + 400 + 0
# The route names as the 2018 release wrote them, and the route of frontex_routes each stands for.
CANONICAL = {
    "Central Mediterranean": "Central Mediterranean Route",
    "Eastern Mediterranean": "Eastern Mediterranean Route",
    "Western Mediterranean": "Western Mediterranean Route",
    "Western African": "Western African Route",
    "Western Balkans": "Western Balkan Route",
    "Eastern Land Borders": "Eastern Borders Route",
    "Black Sea": "Black Sea Route",
    "Circular Route from Albania to Greece": "Circular Route from Albania to Greece",
    "Other": "Other",
}


def _cells(base: int, changed: dict[str, int], first: str | None) -> list[int | None]:
    return [None if first is not None and f"{m:%Y-%m}" < first
            else changed.get(f"{m:%Y-%m}", base) for m in MONTHS]


def july_2018(rows=ROWS, header=HEADER, note: str = NOTE) -> bytes:
    """The workbook of the July 2018 layout: data sheet, Notes, Dictionary."""
    wb = openpyxl.Workbook(write_only=True)
    data = wb.create_sheet("Detections_of_IBC")
    months = []
    for m in MONTHS:  # real Excel dates: date cells with a date format
        cell = WriteOnlyCell(data, value=datetime(m.year, m.month, m.day))
        cell.number_format = "mmm-yy"
        months.append(cell)
    data.append(list(header) + months)
    for route, border, nationality, base, changed, first in rows:
        data.append([route, border, nationality] + _cells(base, changed, first))
    notes = wb.create_sheet("Notes")
    for line in ("Detections of illegal border-crossings (IBC) between BCPs, by route, border "
                 "location and nationality.",
                 None,
                 "Data are provisional and subject to change.",
                 note):
        notes.append([line])
    dictionary = wb.create_sheet("Dictionary")
    dictionary.append(["Field", "Description"])
    dictionary.append(["Route", "Migratory route of the detection"])
    dictionary.append(["BorderLocation", "Land or Sea"])
    dictionary.append(["NationalityLong", "Nationality declared by the migrant"])
    dictionary.append([])
    dictionary.append(["Route", "Zones included"])
    dictionary.append(["Western African", "Canary Islands"])
    dictionary.append(["Eastern Land Borders", "Land borders with Belarus, Moldova, Russian "
                       "Federation and Ukraine"])
    dictionary.append(["Other", "Areas not included in the other routes"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _parse(content: bytes, name: str = FILE):
    try:
        return parse_workbook(content, name)
    except DataError as err:
        pytest.fail(f"the July 2018 layout does not parse: {err}")


@pytest.fixture(scope="module")
def parsed():
    return _parse(july_2018())


def test_july_2018_release_date_from_the_notes_sheet(parsed):
    assert parsed.release_date == RELEASE, (
        f"'{NOTE}' read as {parsed.release_date}, not {RELEASE}")


def test_july_2018_every_cell_is_the_value_written(parsed):
    """Each parsed cell against ROWS (not against another parse), under the canonical route."""
    expected = {(CANONICAL[route], border, nationality, pd.Timestamp(m)): v
                for route, border, nationality, base, changed, first in ROWS
                for m, v in zip(MONTHS, _cells(base, changed, first)) if v is not None}
    got = {(r.route, r.border_type, r.nationality, r.month): r.detections
           for r in parsed.rows.itertuples()}
    # Which cells are wrong first: a shifted month column shows as cells, not as a row count.
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"{len(wrong)} cells differ (parsed, written), e.g. {list(wrong.items())[:3]}"
    extra = sorted(set(got) - set(expected))
    assert not extra, f"{len(extra)} rows parsed where no cell was written, e.g. {extra[:3]}"
    assert len(got) == len(parsed.rows) == len(expected) == CELLS, (
        f"every one of the {CELLS} written cells should be one row and each key and month once: "
        f"{len(parsed.rows)} rows, {len(got)} distinct cells, {len(expected)} expected")
    assert int(parsed.rows["detections"].sum()) == TOTAL, (
        f"the written cells add up to {TOTAL:,}, parsed {int(parsed.rows['detections'].sum()):,}")


def test_july_2018_figures_added_up_by_hand(parsed):
    rows = parsed.rows
    assert rows.groupby("route", observed=True)["detections"].sum().to_dict() == BY_ROUTE
    by_month = rows.groupby("month")["detections"].sum()
    assert (rows["month"].min(), rows["month"].max(), rows["month"].nunique()) == (
        pd.Timestamp("2009-01-01"), pd.Timestamp("2018-05-01"), 113)
    assert int(by_month[pd.Timestamp("2018-05-01")]) == MAY_2018
    # Jan 2009: every row but Côte d'Ivoire (empty before 2014): 100 + 500 + 20 + 60 + 3 + 40
    # + 7 + 0 + 400 + 0 = 1,130; Oct 2015 adds Côte d'Ivoire's 50 and Syria's 8,000 for 500.
    assert int(by_month[pd.Timestamp("2009-01-01")]) == 1_130
    assert int(by_month[pd.Timestamp("2015-10-01")]) == 1_130 + 50 + 7_500
    syria = rows[(rows["nationality"] == "Syria") & (rows["month"] == pd.Timestamp("2015-10-01"))]
    assert [(r.route, r.border_type, r.detections, r.source_row) for r in syria.itertuples()] == [
        ("Eastern Mediterranean Route", "Sea", 8_000, 4)]
    ivoire = rows[rows["nationality"] == "Côte d'Ivoire"]
    assert (len(ivoire), ivoire["month"].min()) == (53, pd.Timestamp("2014-01-01"))
    assert set(rows["border_type"]) == {"Land", "Sea"}


def test_july_2018_route_names_are_the_canonical_routes(parsed):
    pairs = set(zip(parsed.rows["route_as_published"], parsed.rows["route"]))
    assert pairs == set(CANONICAL.items())
    by_label = parsed.rows.groupby("route_as_published", observed=True)["source_row"].min()
    assert by_label.to_dict()["Eastern Land Borders"] == 9
    assert by_label.to_dict()["Western African"] == 7


def test_july_2018_nationality_names_map_through_the_nationality_seed(parsed):
    with (SEEDS_DIR / "frontex_nationalities.csv").open(encoding="utf-8", newline="") as fh:
        seed = {row["frontex_label"]: row["country_code"] for row in csv.DictReader(fh)}
    labels = set(parsed.rows["nationality"])
    assert labels == {r[2] for r in ROWS}
    assert not labels - set(seed), f"not in frontex_nationalities.csv: {labels - set(seed)}"
    assert (seed["Turkey"], seed["Not specified"], seed["Côte d'Ivoire"]) == ("TR", "UNK", "CI")


# What cannot be mapped still fails, naming the file and what was not understood ----------------

def _error(content: bytes, name: str) -> DataError:
    with pytest.raises(DataError) as caught:
        parse_workbook(content, name)
    return caught.value


def test_unknown_nationality_header_names_file_header_and_the_names_known():
    header = ["Route", "BorderLocation", "NationalityCode"]
    err = _error(july_2018(header=header), "ibc_2018_code.xlsx")
    text = str(err)
    assert err.rule == "header row" and err.row == 1, f"rule or row not named: {text}"
    assert err.file == "ibc_2018_code.xlsx [Detections_of_IBC]", text
    assert "'NationalityCode' in column C" in text, f"the unmapped header is not named: {text}"
    # The reader is told which names the seed knows for the missing column, among them the
    # July 2018 one, and the header is shown as written (dates as dates, not Python reprs).
    assert "NationalityLong" in text and "Citizenship" in text, (
        f"the error does not list the names known for the nationality column: {text}")
    assert "datetime" not in text and "'2009-01-01'" in text, f"header shown as Python: {text}"
    assert "frontex_layout_aliases.csv" in text, text


def test_unknown_route_name_names_file_row_and_name():
    rows = list(ROWS)
    rows[7] = ("Eastern Land Border Crossings",) + ROWS[7][1:]  # sheet row 9
    err = _error(july_2018(rows=rows), "ibc_2018_route.xlsx")
    text = str(err)
    assert err.rule == "route" and err.row == 9, f"expected the route of row 9 to fail: {text}"
    assert text.startswith("ibc_2018_route.xlsx [Detections_of_IBC], row 9: [route]"), text
    assert "'Eastern Land Border Crossings'" in text and "frontex_route_aliases.csv" in text, text


@pytest.mark.parametrize("note, release", [
    (NOTE, RELEASE),
    ("Source: Frontex data as of 6 July 2018", RELEASE),
    ("Source: Frontex data as of 06 Jul 2018.", RELEASE),
    ("Source: Frontex data as of 6th July 2018.", RELEASE),
])
def test_july_2018_note_wordings(note, release):
    assert _parse(july_2018(note=note)).release_date == release


# Through the real transform steps, beside the recorded 2025 release ----------------------------

TRANSFORM = ("prepare", "load", "audit_raw", "dbt_build", "audit_marts", "publish")


def _transform(run_id: str) -> None:
    from pipeline import steps

    for name in TRANSFORM:
        getattr(steps, name)(run_id)


@pytest.fixture(scope="module")
def published_2018(tmp_path_factory, recorded_workbook, snapshot_dir):
    """The July 2018 release published by the real steps (with the other recorded sources), then
    the recorded 2025 release landed and published by a later run, as an installation running
    since 2018 would have met them. No WH_FRONTEX_RELEASE_LAG_DAYS: the release is 66 days after
    its newest month began (36 after it ended), within the 150 days a real release is allowed."""
    from ingest.landing import Landing
    from pipeline import files, steps

    root = tmp_path_factory.mktemp("frontex_2018")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        landing = Landing(root / "landing")
        warehouse = root / "wh" / "migration.duckdb"
        landing.land("frontex", f"file:///archive/{FILE}", july_2018(), RELEASE)
        for dag_id in OTHER_SOURCE_DAGS:
            steps.land("july2018", dag_id)
        _transform("july2018")
        first = query(warehouse, """select release_date::varchar, count(*), sum(detections)
                                    from marts.fct_border_crossings group by 1""")
        landing.land("frontex", "file:///archive/ibc.xlsx", recorded_workbook, date(2025, 6, 3))
        _transform("recorded2025")
        yield {"warehouse": warehouse, "first": first, "states": files.states(landing, warehouse)}


def query(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_july_2018_release_publishes_then_the_recorded_release_beside_it(published_2018):
    db = published_2018["warehouse"]
    assert published_2018["first"] == [("2018-07-06", CELLS, TOTAL)]
    assert query(db, """
        select release_date::varchar, count(*), sum(detections), count(distinct sha256)
        from marts.fct_border_crossings group by 1 order by 1""") == [
        ("2018-07-06", CELLS, TOTAL, 1), ("2025-06-03", 173_460, 4_966_869, 1)]
    assert dict(query(db, """
        select route, sum(detections) from marts.fct_border_crossings
        where release_date = '2018-07-06' group by 1""")) == BY_ROUTE
    assert query(db, """
        select route_as_published, route, count(*) from raw.frontex_detections
        where release_date = '2018-07-06' and route_as_published <> route
        group by 1, 2 order by 1""") == [
        ("Black Sea", "Black Sea Route", 113),
        ("Central Mediterranean", "Central Mediterranean Route", 166),
        ("Eastern Land Borders", "Eastern Borders Route", 113),
        ("Eastern Mediterranean", "Eastern Mediterranean Route", 226),
        ("Western African", "Western African Route", 113),
        ("Western Balkans", "Western Balkan Route", 113),
        ("Western Mediterranean", "Western Mediterranean Route", 113)]
    # NationalityLong names reach their countries through frontex_nationalities.
    assert query(db, """
        select nationality, nationality_country_code, sum(detections)
        from marts.fct_border_crossings
        where release_date = '2018-07-06' and nationality in ('Turkey', 'Not specified', 'Syria')
        group by 1, 2 order by 1""") == [
        ("Not specified", "UNK", 5), ("Syria", "SY", 64_000), ("Turkey", "TR", 2_260)]
    assert query(db, """
        select detections, source_row from marts.fct_border_crossings
        where release_date = '2018-07-06' and route = 'Western African Route'
          and month = '2018-05-01'""") == [(3, 7)]


def test_july_2018_and_recorded_files_are_both_published(published_2018):
    states = sorted(s.state for s in published_2018["states"] if s.entry.source == "frontex")
    assert states == ["published", "published"]


@pytest.mark.slow  # lands, loads, dbt-builds and publishes in its body
def test_july_2018_backfilled_beside_the_recorded_release_in_one_run(tmp_path, recorded_workbook,
                                                                     snapshot_dir, monkeypatch):
    """The archive case: the 2018 release landed with (or after) the 2025 one. It parses, and
    the raw audit's row-count rule compares it with an earlier release only (there is none), not
    with the later, longer 2025 one (113 months against 196), so both publish in one run."""
    from ingest.landing import Landing
    from pipeline import steps

    point_installation_at(monkeypatch, tmp_path, snapshot_dir)
    landing = Landing(tmp_path / "landing")
    for name, content, release in (("ibc.xlsx", recorded_workbook, date(2025, 6, 3)),
                                   (FILE, july_2018(), RELEASE)):
        landing.land("frontex", f"file:///archive/{name}", content, release)
    for dag_id in OTHER_SOURCE_DAGS:
        steps.land("backfill", dag_id)
    _transform("backfill")
    assert query(tmp_path / "wh" / "migration.duckdb", """
        select release_date::varchar, count(*) from marts.fct_border_crossings
        group by 1 order by 1""") == [("2018-07-06", CELLS), ("2025-06-03", 173_460)]
