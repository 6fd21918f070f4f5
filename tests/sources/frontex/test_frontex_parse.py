"""The Frontex parser on the recorded workbook and on broken workbooks written here.

Figures for the recorded workbook (FRAN data as of 03JUN25) were checked once by hand against
the workbook read cell by cell with openpyxl: 885 data rows x 196 months (JAN2009-APR2025), all
cells filled, 4,966,869 detections in total.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ingest.errors import DataError
from ingest.sources.frontex.source import find_workbook_link, parse_workbook
from tests import workbooks


@pytest.fixture(scope="module")
def recorded(recorded_workbook):
    return parse_workbook(recorded_workbook, "ibc.xlsx")


def written_cells(rows=workbooks.ROWS, header=workbooks.HEADER, first_row: int = 2) -> dict:
    """(route, border type, nationality, month) -> (cell address, count) of every non-empty
    month cell of a workbook written by ``workbooks.write_workbook`` from ``header`` and ``rows``
    (months as JAN2024: three letters and a year), read from those lists, not from the parser."""
    months = {j: pd.Timestamp(f"{h[3:]}-{h[:3].title()}-01") for j, h in enumerate(header)
              if j >= 3}
    return {(route, border, nationality, months[j]): (f"{chr(65 + j)}{first_row + i}", value)
            for i, (route, border, nationality, *values) in enumerate(rows)
            for j, value in enumerate(values, 3) if value is not None}


def cell_differences(parsed_rows: pd.DataFrame, written: dict) -> str:
    """The written cells the parse got wrong or missed, and the parsed rows no cell was written
    for, named by cell address, keys and month: the first three, for a failure message."""
    got = {(r.route, r.border_type, r.nationality, r.month): r.detections
           for r in parsed_rows.itertuples()}
    same_row = {}
    for key, (address, value) in written.items():
        same_row.setdefault((key[:3], address[1:]), {})[value] = address
    wrong = []
    for key, (address, value) in written.items():
        where = f"cell {address} ({' / '.join(key[:3])}, {key[3]:%b %Y})"
        if key not in got:
            wrong.append(f"{where}: written {value}, no row parsed")
        elif got[key] != value:
            twin = same_row[(key[:3], address[1:])].get(got[key])
            wrong.append(f"{where}: written {value}, parsed {got[key]}"
                         + (f" (the value written in {twin}: a month column shifted?)"
                            if twin else ""))
    wrong += [f"{' / '.join(key[:3])}, {key[3]:%b %Y}: parsed {n}, no such cell written"
              for key, n in got.items() if key not in written]
    if not wrong:
        return "every cell as written"
    return f"{len(wrong)} cell(s) wrong, first {'; '.join(wrong[:3])}"


def test_recorded_release_date_is_read_from_notes(recorded):
    assert recorded.release_date == date(2025, 6, 3), (
        f"the release date should be read from the notes ('FRAN data as of 03JUN25'), "
        f"got {recorded.release_date}")


def test_recorded_workbook_every_cell_becomes_a_row(recorded):
    rows = recorded.rows
    months = pd.date_range("2009-01-01", "2025-04-01", freq="MS")  # JAN2009 ... APR2025
    assert len(months) == 196
    per_month = rows.groupby("month").size().reindex(months.union(rows["month"].unique()),
                                                     fill_value=0)
    off = [f"{m:%b %Y}: {n} rows" for m, n in per_month.items() if n != 885 or m not in months]
    assert not off, (f"every month JAN2009-APR2025 should have one row per data row (885, the "
                     f"sheet has every cell filled) and no other month any, got {off[:5]}"
                     + (f" and {len(off) - 5} more" if len(off) > 5 else ""))
    assert len(rows) == 885 * 196 == 173_460, f"885 rows x 196 months should be 173,460 rows, got {len(rows):,}"
    assert int(rows["detections"].sum()) == 4_966_869, (
        f"the recorded workbook holds 4,966,869 detections, parsed {int(rows['detections'].sum()):,}")


def test_recorded_totals_by_route(recorded):
    by_route = recorded.rows.groupby("route")["detections"].sum().to_dict()
    expected = {
        "Eastern Mediterranean Route": 1_740_759,
        "Western Balkan Route": 1_363_571,
        "Central Mediterranean Route": 1_252_298,
        "Western Mediterranean Route": 249_133,
        "Western African Route": 168_384,
        "Circular Route from Albania to Greece": 135_336,
        "Eastern Borders Route": 55_938,
        "Black Sea Route": 1_379,
        "Other": 71,
    }
    differ = [f"{route}: expected {n:,}, parsed {by_route.get(route, 0):,}"
              for route, n in expected.items() if by_route.get(route) != n]
    differ += [f"{route}: parsed {n:,}, not a route of the workbook" for route, n in by_route.items()
               if route not in expected]
    assert by_route == expected, f"detections per route (checked by hand) differ: {differ}"


def test_recorded_labels_are_kept_as_written(recorded):
    labels = set(recorded.rows["nationality"])
    assert len(labels) == 161, f"the recorded workbook has 161 nationality labels, parsed {len(labels)}"
    kept = {"Kosovo*", "Palestine^", "Stateless", "Unknown", "Unspecified sub-Saharan nationals",
            "Türkiye", "Third-country"}
    assert kept <= labels, f"labels should be kept as written, missing {sorted(kept - labels)}"
    borders = set(recorded.rows["border_type"])
    assert borders == {"Land", "Sea"}, f"border types should be Land and Sea, got {borders}"


def test_recorded_first_cell_keeps_its_source_row(recorded):
    first = recorded.rows.iloc[0]
    got = (first["route"], first["nationality"], first["month"], first["detections"],
           first["source_row"])
    assert got == ("Central Mediterranean Route", "Bangladesh", pd.Timestamp("2009-01-01"), 41, 2), (
        f"the first row should be cell D2 (Central Mediterranean Route / Bangladesh, JAN2009: 41, "
        f"sheet row 2), got {first['route']} / {first['nationality']}, "
        f"{first['month']:%b %Y}: {first['detections']}, sheet row {first['source_row']}")


def test_every_cell_is_the_value_written_whatever_the_file_name():
    """Each parsed cell against what the workbook was written from (workbooks.HEADER and ROWS,
    not the parser), under two file names: two parses compared with each other would show only
    determinism, not that the cells are right."""
    months = [pd.Timestamp(2024, m, 1) for m in (1, 2, 3)]  # JAN2024, FEB2024, MAR2024
    expected = {(route, border, nationality, month): value
                for route, border, nationality, *values in workbooks.ROWS
                for month, value in zip(months, values) if value is not None}
    for name in ("a.xlsx", "b.xlsx"):
        parsed = parse_workbook(workbooks.write_workbook(), name)
        got = {(r.route, r.border_type, r.nationality, r.month): r.detections
               for r in parsed.rows.itertuples()}
        assert got == expected, (f"{name}: every parsed cell should be the value written, "
                                 f"{cell_differences(parsed.rows, written_cells())}")
        assert parsed.release_date == date(2024, 4, 5), (  # "FRAN data as of 05APR24"
            f"{name}: the release date should be 2024-04-05 (note 'FRAN data as of 05APR24'), "
            f"got {parsed.release_date}")
    # Written by hand from ROWS: Western Balkan Route, Land, Syria, FEB2024 = 250.
    assert expected[("Western Balkan Route", "Land", "Syria", pd.Timestamp(2024, 2, 1))] == 250, \
        "the test's own reading of workbooks.ROWS is off: E4 (Syria, FEB2024) is 250"


def test_small_workbook_empty_cell_is_no_observation():
    parsed = parse_workbook(workbooks.write_workbook(), "small.xlsx")
    differences = cell_differences(parsed.rows, written_cells())
    assert len(parsed.rows) == workbooks.CELLS == 29, (
        f"each of the 29 filled month cells should be one row and the empty one (F7) none, "
        f"got {len(parsed.rows)} rows: {differences}")
    assert int(parsed.rows["detections"].sum()) == workbooks.TOTAL, (
        f"the cells add up to {workbooks.TOTAL:,}, parsed {int(parsed.rows['detections'].sum()):,}: "
        f"{differences}")


@pytest.mark.parametrize("blank_rows", [1, 3])
def test_header_after_blank_rows_is_found(blank_rows):
    parsed = parse_workbook(workbooks.write_workbook(blank_rows=blank_rows), "blank.xlsx")
    assert int(parsed.rows["detections"].sum()) == workbooks.TOTAL, (
        f"with {blank_rows} blank row(s) above the header the cells add up to "
        f"{workbooks.TOTAL:,}, parsed {int(parsed.rows['detections'].sum()):,}: "
        f"{cell_differences(parsed.rows, written_cells(first_row=blank_rows + 2))}")
    assert parsed.rows["source_row"].min() == blank_rows + 2, (
        f"the first data row is sheet row {blank_rows + 2}, parsed source_row "
        f"{parsed.rows['source_row'].min()}")


def test_negative_count_and_duplicate_rows_parse_for_the_audit_to_reject():
    rows = [list(r) for r in workbooks.ROWS] + [list(workbooks.ROWS[0])]
    rows[1][3] = -5
    parsed = parse_workbook(workbooks.write_workbook(rows=rows), "neg.xlsx")
    negative = parsed.rows[parsed.rows["detections"] < 0]
    assert len(negative) == 1, (
        f"the -5 written in D3 (Eritrea, JAN2024) should parse as the one negative count, got "
        f"{[(r.nationality, f'{r.month:%b %Y}', r.detections) for r in negative.itertuples()]}; "
        f"{cell_differences(parsed.rows, written_cells(rows[:-1]))}")
    duplicated = parsed.rows.duplicated(["route", "border_type", "nationality", "month"]).sum()
    assert duplicated == 3, (f"the first row written again (row 12) should give its 3 month "
                             f"cells again as duplicates, got {duplicated}")


def _error(content: bytes, name: str = "bad.xlsx") -> DataError:
    try:
        parsed = parse_workbook(content, name)
    except DataError as err:
        assert name in str(err), f"the error should name the file {name}: {err}"
        return err
    pytest.fail(f"{name} should fail to parse with a DataError, but it parsed "
                f"({len(parsed.rows)} rows, release {parsed.release_date})")


def test_html_error_page_is_named_as_such():
    err = _error(b"<!DOCTYPE html><html><body>Service unavailable</body></html>")
    assert err.rule == "xlsx format" and "HTML page" in str(err)


def test_random_bytes_are_not_a_workbook():
    err = _error(b"\x00\x01garbage")
    assert err.rule == "xlsx format" and "not an xlsx workbook" in str(err)


def test_truncated_workbook(recorded_workbook):
    err = _error(recorded_workbook[: len(recorded_workbook) // 2], "ibc_truncated.xlsx")
    assert err.rule == "xlsx format" and "truncated or corrupt" in str(err)


def test_header_moved_to_another_column():
    err = _error(workbooks.write_workbook(offset_columns=1))
    assert err.rule == "header row" and "B1" in str(err) and "moved" in str(err)


def test_route_column_renamed():
    # "Routes" is a known older name (seed frontex_layout_aliases); an unknown one still fails.
    header = ["Corridor"] + workbooks.HEADER[1:]
    err = _error(workbooks.write_workbook(header=header))
    assert err.rule == "header row" and "'Route' in column A" in str(err)
    assert "Corridor" in str(err)


def test_missing_nationality_column():
    # "Citizenship" is a known older name (seed frontex_layout_aliases); an unknown one fails.
    header = workbooks.HEADER[:2] + ["Passport"] + workbooks.HEADER[3:]
    err = _error(workbooks.write_workbook(header=header))
    assert err.rule in ("header row", "month column")
    assert err.row == 1


def test_month_column_that_does_not_parse():
    header = workbooks.HEADER[:4] + ["FEBB2024"] + workbooks.HEADER[5:]
    err = _error(workbooks.write_workbook(header=header))
    assert err.rule == "month column" and "'FEBB2024'" in str(err) and "column E" in str(err)


def test_duplicated_month_column():
    header = workbooks.HEADER[:5] + ["JAN2024"]
    err = _error(workbooks.write_workbook(header=header))
    assert err.rule == "month column" and "twice" in str(err)


def test_text_count_names_cell_and_row():
    rows = [list(r) for r in workbooks.ROWS]
    rows[2][4] = "n/a"
    err = _error(workbooks.write_workbook(rows=rows))
    assert err.rule == "count is a number"
    assert err.row == 4 and "E4" in str(err) and "'n/a'" in str(err) and "Syria" in str(err)


def test_fractional_count():
    rows = [list(r) for r in workbooks.ROWS]
    rows[0][3] = 1.5
    err = _error(workbooks.write_workbook(rows=rows))
    assert err.rule == "count is a whole number" and "D2" in str(err)


def test_missing_release_note():
    err = _error(workbooks.write_workbook(note="Source: FRAN data"))
    assert err.rule == "release date"


def test_missing_data_sheet():
    err = _error(workbooks.write_workbook(sheet="Sheet1"))
    assert err.rule == "sheet" and "Detections_of_IBC" in str(err)


def test_workbook_link_newest_wins_and_is_absolute():
    page = """<a href="/assets/Migratory_routes/2025/Monthly_detections_of_IBC_2025_05_07.xlsx">May</a>
              <a href='/assets/Migratory_routes/2025/Monthly_detections_of_IBC_2025_06_05.xlsx'>Jun</a>"""
    url = find_workbook_link(page, "https://www.frontex.europa.eu/what-we-do/migratory-map/")
    assert url == ("https://www.frontex.europa.eu/assets/Migratory_routes/2025/"
                   "Monthly_detections_of_IBC_2025_06_05.xlsx")
