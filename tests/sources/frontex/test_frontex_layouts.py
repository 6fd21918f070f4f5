"""Older Frontex workbook layouts, read by meaning through the seeds frontex_layout_aliases and
frontex_route_aliases, so an archive of every release can be backfilled.

The workbooks are written here (tests/workbooks.py ``write_layout``), never copied from Frontex.
Two archived releases in two layouts:

- release 2019-04-05, the older layout: sheet ``Detections of IBC`` with a title above the header,
  headers ``Migratory route`` / ``Border location`` / ``Citizenship``, months as Excel dates
  (Jan-19 ... Mar-19), a ``Total`` column and a ``Total`` row, routes without the word Route,
  no Notes sheet: "Source: Frontex FRAN, data as of 05/04/2019" below the table;
- release 2020-04-05: headers ``Routes`` / ``BorderType`` / ``Nationality (citizenship)``, months
  as text (``Jan 2019``), routes mixed (current and old names), note "FRAN data as of 5 April
  2020" in a Notes sheet. It revises two cells of the 2019 release.

Every expected figure below was added up by hand from the rows written here.
"""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from ingest.sources.frontex import source as frontex
from ingest.errors import DataError
from ingest.sources.frontex.source import parse_workbook
from tests import workbooks

HEADER_2019 = ["Migratory route", "Border location", "Citizenship",
               datetime(2019, 1, 1), datetime(2019, 2, 1), datetime(2019, 3, 1), "Total"]
ROWS_2019 = [
    ["Central Mediterranean", "Sea", "Tunisia", 120, 95, 210, 425],
    ["Central Mediterranean", "Sea", "Eritrea", 30, None, 12, 42],
    ["Western Balkans", "Land", "Syria", 300, 280, 260, 840],
    ["Eastern Land Borders", "Land", "Ukraine", 14, 9, 11, 34],
    ["Circular route from Albania to Greece", "Land", "Albania", 410, 385, 402, 1197],
    ["Black Sea", "Sea", "Iraq", 0, 0, 7, 7],
    ["Total", None, None, 874, 769, 902, 2545],
]
HEADER_2020 = ["  ROUTES ", "BorderType", "Nationality (citizenship)",
               "Jan 2019", "Feb 2019", "Mar 2019", "Apr 2019"]
ROWS_2020 = [
    ["Central Mediterranean Route", "Sea", "Tunisia", 120, 95, 214, 180],
    ["Central Mediterranean Route", "Sea", "Eritrea", 30, 2, 12, None],
    ["Western Balkans", "Land", "Syria", 310, 280, 260, 190],
    ["Eastern Mediterranean", "Sea", "Afghanistan", 640, 512, 433, 701],
    ["Eastern Mediterranean", "Land", "Türkiye", 95, 60, 71, 88],
]


def archive_2019() -> bytes:
    return workbooks.write_layout(
        HEADER_2019, ROWS_2019, sheet="Detections of IBC", notes=None,
        above=[["Detections of illegal border-crossings between BCPs"], []],
        below=[[], ["Source: Frontex FRAN, data as of 05/04/2019"]])


def archive_2020() -> bytes:
    return workbooks.write_layout(
        HEADER_2020, ROWS_2020,
        notes=[["Definition: Data reported on a monthly basis by Member States."],
               ["FRAN data as of 5 April 2020"]])


@pytest.fixture(scope="module")
def archive():
    """The two releases, landed newer first (archives arrive in any order)."""
    return {name: parse_workbook(content, name) for name, content in
            (("ibc_2020.xlsx", archive_2020()), ("ibc_2019.xlsx", archive_2019()))}


def test_archive_releases_are_dated_from_each_layouts_note(archive):
    assert archive["ibc_2019.xlsx"].release_date == date(2019, 4, 5)
    assert archive["ibc_2020.xlsx"].release_date == date(2020, 4, 5)


def test_older_layout_cells_totals_and_canonical_routes(archive):
    rows = archive["ibc_2019.xlsx"].rows
    # 6 data rows x 3 months, one empty cell; the Total column and the Total row are sums.
    assert len(rows) == 17
    assert int(rows["detections"].sum()) == 2_545
    assert rows.groupby("route")["detections"].sum().to_dict() == {
        "Central Mediterranean Route": 467,
        "Western Balkan Route": 840,
        "Eastern Borders Route": 34,
        "Circular Route from Albania to Greece": 1_197,
        "Black Sea Route": 7,
    }
    assert rows.groupby("month")["detections"].sum().to_dict() == {
        pd.Timestamp("2019-01-01"): 874, pd.Timestamp("2019-02-01"): 769,
        pd.Timestamp("2019-03-01"): 902}
    assert "Total" not in set(rows["route_as_published"])


def test_older_layout_keeps_route_as_published_and_source_row(archive):
    rows = archive["ibc_2019.xlsx"].rows
    assert list(rows.columns) == frontex.ROW_COLUMNS
    assert list(rows.columns[:2]) == ["route", "route_as_published"]
    pairs = set(zip(rows["route_as_published"], rows["route"]))
    assert pairs == {
        ("Central Mediterranean", "Central Mediterranean Route"),
        ("Western Balkans", "Western Balkan Route"),
        ("Eastern Land Borders", "Eastern Borders Route"),
        ("Circular route from Albania to Greece", "Circular Route from Albania to Greece"),
        ("Black Sea", "Black Sea Route"),
    }
    # Title and blank row above the header (rows 1-2), header on row 3, first data row 4.
    first = rows.iloc[0]
    assert (first["route"], first["nationality"], first["month"], first["detections"],
            first["source_row"]) == ("Central Mediterranean Route", "Tunisia",
                                     pd.Timestamp("2019-01-01"), 120, 4)
    syria = rows[rows["nationality"] == "Syria"]
    assert set(syria["source_row"]) == {6} and set(syria["border_type"]) == {"Land"}


def test_second_layout_cells_totals_and_canonical_routes(archive):
    rows = archive["ibc_2020.xlsx"].rows
    assert len(rows) == 19  # 5 rows x 4 months, one empty cell
    assert int(rows["detections"].sum()) == 4_293
    assert rows.groupby("route")["detections"].sum().to_dict() == {
        "Central Mediterranean Route": 653,
        "Western Balkan Route": 1_040,
        "Eastern Mediterranean Route": 2_600,
    }
    assert rows.groupby("route_as_published")["detections"].sum().to_dict() == {
        "Central Mediterranean Route": 653, "Western Balkans": 1_040,
        "Eastern Mediterranean": 2_600}
    assert rows["month"].max() == pd.Timestamp("2019-04-01")


def test_archive_of_two_layouts_lines_up_by_release(archive):
    """Both releases in one frame, as the raw table holds them: the same cells line up across
    layouts, so the revisions between releases show."""
    both = pd.concat([p.rows.assign(release_date=p.release_date) for p in archive.values()])
    assert both.groupby("release_date")["detections"].sum().to_dict() == {
        date(2019, 4, 5): 2_545, date(2020, 4, 5): 4_293}
    cells = both.pivot_table(index=["route", "border_type", "nationality", "month"],
                             columns="release_date", values="detections")
    old, new = date(2019, 4, 5), date(2020, 4, 5)
    common = cells.dropna()
    assert len(common) == 8 and (int(common[old].sum()), int(common[new].sum())) == (1_307, 1_321)
    revised = common[common[old] != common[new]]
    assert {k: (int(r[old]), int(r[new])) for k, r in revised.iterrows()} == {
        ("Central Mediterranean Route", "Sea", "Tunisia", pd.Timestamp("2019-03-01")): (210, 214),
        ("Western Balkan Route", "Land", "Syria", pd.Timestamp("2019-01-01")): (300, 310),
    }
    # Circular route, Eastern Borders and Black Sea are in the 2019 release only; Eastern
    # Mediterranean, April 2019 and Eritrea's February in the 2020 release only.
    only_old, only_new = cells[cells[new].isna()], cells[cells[old].isna()]
    assert (len(only_old), int(only_old[old].sum())) == (9, 1_238)
    assert (len(only_new), int(only_new[new].sum())) == (11, 2_972)


def test_recorded_workbook_routes_are_published_as_canonical(recorded_workbook):
    rows = parse_workbook(recorded_workbook, "ibc.xlsx").rows
    assert (rows["route"] == rows["route_as_published"]).all()
    assert rows["route_as_published"].nunique() == 9


# Month headers -------------------------------------------------------------------------------

@pytest.mark.parametrize("jan, feb", [
    ("JAN2009", "FEB2009"),
    ("Jan 2009", "Feb 2009"),
    ("JAN-09", "FEB-09"),
    ("jan-2009", "feb-2009"),
    ("January 2009", "February 2009"),
    ("2009-01", "2009-02"),
    ("2009M01", "2009M02"),
    ("01/2009", "02/2009"),
    (datetime(2009, 1, 1), datetime(2009, 2, 1)),
    (datetime(2009, 1, 31), datetime(2009, 2, 28)),      # month-end dates
    ((39814, "mmm-yy"), (39845, "mmm-yy")),              # date-formatted serials
    (39814, 39845),                                      # bare serials (format lost)
], ids=["JAN2009", "Jan 2009", "JAN-09", "jan-2009", "January 2009", "2009-01", "2009M01",
        "01/2009", "datetime", "month-end", "formatted serial", "bare serial"])
def test_month_header_spellings(jan, feb):
    header = ["Route", "Border type or inland", "Nationality", jan, feb]
    rows = [["Black Sea Route", "Sea", "Iraq", 3, 4], ["Other", "Sea", "Iraq", None, 6]]
    parsed = parse_workbook(workbooks.write_layout(header, rows, notes=[[workbooks.NOTE]]),
                            "months.xlsx")
    by_month = parsed.rows.groupby("month")["detections"].sum().to_dict()
    assert by_month == {pd.Timestamp("2009-01-01"): 3, pd.Timestamp("2009-02-01"): 10}, (
        f"columns D and E headed {jan!r} and {feb!r} should read as Jan 2009 (D2 = 3) and "
        f"Feb 2009 (E2 + E3 = 4 + 6), got {({f'{m:%b %Y}': n for m, n in by_month.items()})}")


def test_sept_is_september():
    header = ["Route", "Border type", "Nationality", "Aug 2015", "Sept 2015", "Oct 2015"]
    parsed = parse_workbook(workbooks.write_layout(
        header, [["Black Sea", "Sea", "Iraq", 1, 2, 3]], notes=[[workbooks.NOTE]]), "sept.xlsx")
    got = parsed.rows.set_index("month")["detections"].to_dict()
    assert got == {pd.Timestamp("2015-08-01"): 1, pd.Timestamp("2015-09-01"): 2,
                   pd.Timestamp("2015-10-01"): 3}, (
        f"'Aug 2015', 'Sept 2015', 'Oct 2015' in D, E, F (1, 2, 3) should read as Aug, Sep and "
        f"Oct 2015, got {({f'{m:%b %Y}': n for m, n in got.items()})}")


# Release notes -------------------------------------------------------------------------------

@pytest.mark.parametrize("note, release", [
    ("Source: FRAN data as of 03JUN25", date(2025, 6, 3)),
    ("FRAN data as of 5 April 2019", date(2019, 4, 5)),
    ("Data as of 05.04.2019", date(2019, 4, 5)),
    ("Source: Frontex FRAN, data as of 05/04/2019", date(2019, 4, 5)),
    ("data as of 5 Apr 2019", date(2019, 4, 5)),
    ("Data as at 12 January 2016.", date(2016, 1, 12)),
    ("Source: FRAN, data as of: 2017-11-02", date(2017, 11, 2)),
    ("FRAN data as of April 5, 2019", date(2019, 4, 5)),
])
def test_release_note_wordings_in_the_notes_sheet(note, release):
    content = workbooks.write_layout(workbooks.HEADER, workbooks.ROWS,
                                     notes=[["Definition: monthly data."], [None], [note]])
    assert parse_workbook(content, "note.xlsx").release_date == release


def test_release_note_in_two_cells_with_an_excel_date():
    content = workbooks.write_layout(workbooks.HEADER, workbooks.ROWS,
                                     notes=[["Data as of", datetime(2018, 3, 7)]])
    assert parse_workbook(content, "note.xlsx").release_date == date(2018, 3, 7)


def test_release_note_on_the_data_sheet_when_there_is_no_notes_sheet():
    content = workbooks.write_layout(workbooks.HEADER, workbooks.ROWS, notes=None,
                                     below=[[], ["Source: FRAN data as of 15 March 2017"]])
    parsed = parse_workbook(content, "below.xlsx")
    assert parsed.release_date == date(2017, 3, 15)
    assert int(parsed.rows["detections"].sum()) == workbooks.TOTAL


def test_no_release_note_in_any_wording_names_the_file():
    content = workbooks.write_layout(workbooks.HEADER, workbooks.ROWS,
                                     notes=[["Source: FRAN data, April 2019"]])
    with pytest.raises(DataError) as caught:
        parse_workbook(content, "undated_2019.xlsx")
    err = caught.value
    assert err.rule == "release date" and err.file == "undated_2019.xlsx"
    assert "frontex_layout_aliases.csv" in str(err)


# Headers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("route, border, nationality", [
    ("Route", "Border type or inland", "Nationality"),
    ("route ", " BORDER TYPE", "citizenship"),
    ("Migratory route", "Border location", "Nationality (citizenship)"),
    ("Routes", "BorderType", "Citizenship"),
])
def test_header_aliases(route, border, nationality):
    header = [route, border, nationality] + workbooks.HEADER[3:]
    parsed = parse_workbook(workbooks.write_layout(header, workbooks.ROWS,
                                                   notes=[[workbooks.NOTE]]), "aliases.xlsx")
    assert len(parsed.rows) == workbooks.CELLS == 29
    assert int(parsed.rows["detections"].sum()) == workbooks.TOTAL == 1_078


def test_key_columns_in_another_order():
    header = ["Route", "Nationality", "Border type", "JAN2024"]
    parsed = parse_workbook(workbooks.write_layout(
        header, [["Black Sea Route", "Iraq", "Sea", 5]], notes=[[workbooks.NOTE]]), "order.xlsx")
    row = parsed.rows.iloc[0]
    assert (row["border_type"], row["nationality"], row["detections"]) == ("Sea", "Iraq", 5)


def _error(content: bytes, name: str) -> DataError:
    with pytest.raises(DataError) as caught:
        parse_workbook(content, name)
    assert name in str(caught.value)
    return caught.value


def test_unmapped_key_header_names_file_row_and_header():
    header = ["Migratory route", "Border location", "Passport", datetime(2019, 1, 1)]
    err = _error(workbooks.write_layout(header, [["Black Sea", "Sea", "Iraq", 1]], notes=None,
                                        above=[["Title"]], below=[["data as of 05.04.2019"]]),
                 "ibc_2019_04.xlsx")
    assert err.rule == "header row" and err.row == 2
    assert "'Nationality'" in str(err) and "'Passport' in column C" in str(err)
    assert "frontex_layout_aliases.csv" in str(err)


def test_unknown_header_among_months_names_it():
    header = ["Route", "Border type", "Nationality", "Jan 2019", "Q1 2019"]
    err = _error(workbooks.write_layout(header, [["Black Sea", "Sea", "Iraq", 1, 1]],
                                        notes=[[workbooks.NOTE]]), "quarters.xlsx")
    assert err.rule == "month column" and err.row == 1
    assert "'Q1 2019' in column E" in str(err) and "frontex_layout_aliases.csv" in str(err)


def test_two_columns_of_the_same_meaning():
    header = ["Route", "Citizenship", "Nationality", "Border type", "Jan 2019"]
    err = _error(workbooks.write_layout(header, [["Black Sea", "Iraq", "Iraq", "Sea", 1]],
                                        notes=[[workbooks.NOTE]]), "twice.xlsx")
    assert err.rule == "header row" and "columns B and C" in str(err)


# Route labels --------------------------------------------------------------------------------

def test_unknown_route_label_names_file_row_label_and_seed():
    rows = [list(r) for r in ROWS_2019]
    rows[3][0] = "Northern Arctic"
    err = _error(workbooks.write_layout(HEADER_2019, rows, sheet="Detections of IBC",
                                        below=[["Source: FRAN data as of 05/04/2019"]]),
                 "ibc_2019_arctic.xlsx")
    assert err.rule == "route" and err.row == 5
    assert err.file == "ibc_2019_arctic.xlsx [Detections of IBC]"
    assert "'Northern Arctic'" in str(err) and "frontex_route_aliases.csv" in str(err)
    assert str(err).startswith("ibc_2019_arctic.xlsx [Detections of IBC], row 5: [route]")


@pytest.fixture
def route_seed(tmp_path, monkeypatch):
    """Point the parser at a route alias seed written by the test (and forget it after)."""
    def write(text: str) -> None:
        path = tmp_path / "frontex_route_aliases.csv"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setattr(frontex, "ROUTE_ALIASES_SEED", path)
        frontex.route_aliases.cache_clear()
    yield write
    frontex.route_aliases.cache_clear()


def _one_route(label: str, note: str) -> bytes:
    return workbooks.write_layout(["Route", "Border type", "Nationality", "Jan 2014"],
                                  [[label, "Land", "Syria", 9]], notes=[[note]])


def test_route_alias_applies_only_within_its_validity(route_seed):
    route_seed("alias,route,valid_from,valid_to,note\n"
               "Balkans,Western Balkan Route,,2015-12-31,before 2016 only\n"
               "Balkans,Eastern Borders Route,2016-01-01,,a made-up later meaning\n")
    early = parse_workbook(_one_route("Balkans", "data as of 05.04.2015"), "early.xlsx")
    assert list(early.rows["route"]) == ["Western Balkan Route"]
    late = parse_workbook(_one_route("Balkans", "data as of 05.04.2016"), "late.xlsx")
    assert list(late.rows["route"]) == ["Eastern Borders Route"]


def test_route_alias_outside_its_validity_says_so(route_seed):
    route_seed("alias,route,valid_from,valid_to,note\n"
               "Balkans,Western Balkan Route,,2015-12-31,before 2016 only\n")
    err = _error(_one_route("Balkans", "data as of 05.04.2016"), "late.xlsx")
    assert err.rule == "route" and err.row == 2
    assert "'Balkans'" in str(err) and "2015-12-31" in str(err) and "2016-04-05" in str(err)


def test_route_alias_seed_with_overlapping_meanings_is_refused(route_seed):
    route_seed("alias,route,valid_from,valid_to,note\n"
               "Balkans,Western Balkan Route,,2016-06-30,\n"
               "Balkans,Eastern Borders Route,2016-01-01,,\n")
    with pytest.raises(ValueError, match="overlapping"):
        frontex.route_aliases()


# The seeds themselves -----------------------------------------------------------------------

def test_route_aliases_point_at_known_routes():
    from ingest.sources.frontex.checks import known_routes
    routes = set(known_routes())
    table = frontex.route_aliases()
    assert {a.route for aliases in table.values() for a in aliases} == routes
    for route in routes:  # every canonical route stands for itself
        assert frontex.canonical_route(route, date(2025, 6, 3), "seed", 0) == route
    assert frontex.canonical_route("Eastern Land Borders", date(2012, 1, 1), "s", 0) == \
        "Eastern Borders Route"


def test_layout_seed_covers_every_key_column():
    lay = frontex.layout()
    assert {"route", "border_type", "nationality", "ignore"} == set(lay.headers.values())
    assert lay.headers[frontex._key("Border type or inland")] == "border_type"
    assert lay.sheets[frontex._key("Detections_of_IBC")] == "data"
