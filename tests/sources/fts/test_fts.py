"""FTS workbooks written here in the published layouts (the 2024 header with its double space,
curly apostrophe and asterisk; an older layout with other names), mapped by name; the rows of
the migration and border budget lines kept; a column that cannot be mapped named in the error;
the live download against a server on 127.0.0.1 (its own size cap, the Referer it needs)."""
from __future__ import annotations

import io

import openpyxl
import pytest

from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.sources.fts.source import FtsSource, parse_workbook
from ingest.landing import Landing
from ingest.source import land_new
from tests.replay_server import XLSX_TYPE, ReplayServer, Reply

# The 2024 layout (38 columns), as the Commission publishes it: note the double space in
# "Commitment  total amount", the curly apostrophe in "Beneficiary’s" and "Type of contract*".
HEADER_2024 = [
    "Year", "Budget", "Reference of the Legal Commitment (LC)", "Reference (Budget)",
    "Name of beneficiary", "VAT number of beneficiary", "Not-for-profit organisation (NFPO)",
    "Non-governmental organisation (NGO)", "Coordinator", "Address", "City", "Postal code",
    "Beneficiary country", "NUTS2", "Geographical Zone", "Action location",
    "Beneficiary\u2019s contracted amount (EUR)", "Beneficiary\u2019s estimated contracted amount (EUR)",
    "Beneficiary\u2019s estimated consumed amount (EUR)", "Commitment contracted amount (EUR) (A)",
    "Additional/Reduced amount (EUR) (B)", "Commitment  total amount (EUR) (A+B)",
    "Commitment consumed amount (EUR)", "Source of (estimated) detailed amount", "Expense type",
    "Subject of grant or contract", "Responsible department", "Budget line number",
    "Budget line name", "Programme name", "Funding type", "Beneficiary Group Code",
    "Beneficiary type", "Project start date", "Project end date", "Type of contract*",
    "Management type", "Benefiting country"]


def row_2024(**values):
    row = {h: None for h in HEADER_2024}
    row.update({"Year": 2024, "Budget": "EU Budget"})
    for key, value in values.items():
        row[key] = value
    return [row[h] for h in HEADER_2024]


ROWS_2024 = [
    row_2024(**{"Name of beneficiary": "Ministry of Interior", "Beneficiary country": "Greece",
                "Beneficiary\u2019s contracted amount (EUR)": 1_250_000.0,
                "Commitment  total amount (EUR) (A+B)": 1_250_000.0,
                "Subject of grant or contract": "Emergency assistance: reception capacity",
                "Budget line number": "10 02 01",
                "Budget line name": "Asylum, Migration and Integration Fund",
                "Programme name": "Asylum, Migration and Integration Fund (AMIF)"}),
    row_2024(**{"Name of beneficiary": "Guardia Civil", "Beneficiary country": "Spain",
                "Beneficiary\u2019s contracted amount (EUR)": 800_000.5,
                "Subject of grant or contract": "Specific action: border surveillance",
                "Budget line number": "11.020100",
                "Budget line name": "Border management and visa instrument",
                "Programme name": "Integrated Border Management Fund"}),
    # NDICI: kept only when the subject names migration.
    row_2024(**{"Name of beneficiary": "International Organization for Migration",
                "Beneficiary country": "Switzerland", "Action location": "Libya",
                "Beneficiary\u2019s contracted amount (EUR)": 2_000_000,
                "Subject of grant or contract": "Voluntary humanitarian return and reintegration",
                "Budget line number": "14 02 01 10",
                "Budget line name": "Southern Neighbourhood",
                "Programme name": "Neighbourhood, Development and International Cooperation "
                                  "Instrument \u2013 Global Europe (NDICI \u2013 Global Europe)"}),
    row_2024(**{"Name of beneficiary": "Water utility", "Beneficiary country": "Jordan",
                "Beneficiary\u2019s contracted amount (EUR)": 9_000_000,
                "Subject of grant or contract": "Drinking water network",
                "Budget line number": "14 02 01 10",
                "Budget line name": "Southern Neighbourhood",
                "Programme name": "Neighbourhood, Development and International Cooperation "
                                  "Instrument \u2013 Global Europe (NDICI \u2013 Global Europe)"}),
    # Not a migration line at all.
    row_2024(**{"Name of beneficiary": "University", "Beneficiary country": "Belgium",
                "Beneficiary\u2019s contracted amount (EUR)": 300_000,
                "Subject of grant or contract": "Research grant",
                "Budget line number": "01 02 02 11", "Budget line name": "Horizon Europe",
                "Programme name": "Horizon Europe"}),
]


def workbook(header, rows, leading_blank_rows: int = 0) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "FTS 2024"
    for _ in range(leading_blank_rows):
        ws.append([])
    ws.append(header)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_2024_layout_keeps_the_migration_and_border_rows():
    frame, year = parse_workbook(workbook(HEADER_2024, ROWS_2024), "2024_FTS_dataset_en.xlsx")
    assert year == 2024
    assert frame["fund"].tolist() == ["AMIF", "BMVI", "NDICI"]
    assert frame["matched_by"].tolist() == ["budget line number", "budget line number",
                                            "budget line number"]
    assert frame["amount_eur"].tolist() == [1_250_000.0, 800_000.5, 2_000_000.0]
    assert frame["beneficiary_name"].tolist()[2] == "International Organization for Migration"
    assert frame["commitment_total_eur"].tolist()[0] == 1_250_000.0  # the double-spaced column
    assert frame["source_row"].tolist() == [2, 3, 4]


def test_renamed_and_reordered_headers_are_mapped_by_name():
    old_names = {"Name of beneficiary": "Beneficiary name",
                 "Beneficiary\u2019s contracted amount (EUR)": "Beneficiary's contracted  amount (EUR)",
                 "Programme name": "Program name", "Budget line number": "Budget line number *"}
    header = [old_names.get(h, h) for h in HEADER_2024]
    order = list(reversed(range(len(header))))
    frame, _ = parse_workbook(
        workbook([header[i] for i in order], [[r[i] for i in order] for r in ROWS_2024],
                 leading_blank_rows=1),
        "2023_FTS_dataset_en.xlsx")
    assert frame["fund"].tolist() == ["AMIF", "BMVI", "NDICI"]
    assert frame["amount_eur"].tolist() == [1_250_000.0, 800_000.5, 2_000_000.0]
    assert frame["source_row"].tolist() == [3, 4, 5]  # one blank row above the header


def test_a_column_that_cannot_be_mapped_is_named():
    header = ["Amount paid" if h.startswith("Beneficiary\u2019s") else h for h in HEADER_2024]
    with pytest.raises(DataError) as caught:
        parse_workbook(workbook(header, ROWS_2024), "2022_FTS_dataset_en.xlsx")
    message = str(caught.value)
    assert "[columns mapped by name]" in message and "amount_eur" in message
    assert "2022_FTS_dataset_en.xlsx [FTS 2024], row 1" in message


def test_a_text_amount_names_its_row():
    rows = [list(r) for r in ROWS_2024]
    rows[1][HEADER_2024.index("Beneficiary\u2019s contracted amount (EUR)")] = "eight hundred"
    with pytest.raises(DataError, match=r"row 3: \[amount is a number\]"):
        parse_workbook(workbook(HEADER_2024, rows), "2024_FTS_dataset_en.xlsx")


def test_html_instead_of_a_workbook():
    with pytest.raises(DataError, match="HTML page"):
        parse_workbook(b"<!DOCTYPE html><html>Please enable cookies</html>", "2024.xlsx")


def test_live_download_sends_the_referer_and_has_its_own_size_cap(tmp_path, monkeypatch):
    content = workbook(HEADER_2024, ROWS_2024)
    with ReplayServer() as srv:
        srv.route("/download/2024_FTS_dataset_en.xlsx",
                  Reply(body=content, headers={"Content-Type": XLSX_TYPE}))
        monkeypatch.delenv("WH_SNAPSHOT_DIR", raising=False)
        monkeypatch.setenv("WH_FTS_URL", srv.url("/download/{year}_FTS_dataset_en.xlsx"))
        monkeypatch.setenv("WH_FTS_FIRST_YEAR", "2024")
        monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", "0.001")  # the general cap does not apply
        monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
        source = FtsSource()
        candidates = [c for c in source.discover() if c.dataset == "2024"]
        monkeypatch.setattr(source, "discover", lambda: candidates)
        [entry] = land_new(source, Landing(settings().landing_dir))
        assert entry.dataset == "2024" and entry.bytes == len(content)
        [request] = srv.requested("/download/2024_FTS_dataset_en.xlsx")
        assert request.headers["Referer"].endswith("/financial-transparency-system/help.html")

        monkeypatch.setenv("WH_FTS_MAX_DOWNLOAD_MB", "0.001")
        srv.route("/download/2024_FTS_dataset_en.xlsx", Reply(body=content + b"x"))
        (tmp_path / "landing" / "manifest.jsonl").unlink()
        with pytest.raises(DownloadError, match="size cap"):
            land_new(source, Landing(settings().landing_dir))


def test_replay_without_recorded_workbooks_lands_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(tmp_path))
    assert FtsSource().discover() == []
    assert "no recorded FTS workbook" in caplog.text


def test_fts_rows_are_loaded_and_audited(tmp_path, monkeypatch):
    """A written workbook through the real loader into a build database, then the raw suite:
    passes as written, fails with the row on a negative amount."""
    import duckdb

    from expectations import audit
    from ingest.sources.fts import checks as fts_checks
    from ingest import catalog
    from ingest.load import load_source

    snapshot = tmp_path / "snapshot"
    (snapshot / "fts").mkdir(parents=True)
    (snapshot / "fts" / "2024_FTS_dataset_en.xlsx").write_bytes(workbook(HEADER_2024, ROWS_2024))
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(snapshot))
    monkeypatch.setenv("WH_CURATED_DIR", str(tmp_path / "no_curated_files"))
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
    landing = Landing(settings().landing_dir)
    [entry] = land_new(FtsSource(), landing)
    assert entry.dataset == "2024"
    db = tmp_path / "migration.duckdb"
    with duckdb.connect(str(db)) as con:
        [loaded] = load_source(con, landing, catalog.spec("fts"), "run1")
        assert loaded.rows_loaded == 3
        assert con.execute("select fts_year, sum(amount_eur) from raw.fts_commitments"
                           " group by 1").fetchall() == [(2024, 4_050_000.5)]
    summary = audit.run_checks(db, fts_checks.raw_checks(db), tmp_path / "ok", "raw")
    assert [c["suite"] for c in summary["checks"]] == ["fts_raw_commitments"]
    with duckdb.connect(str(db)) as con:
        con.execute("update raw.fts_commitments set amount_eur = -1 where source_row = 3")
    with pytest.raises(audit.AuditFailed, match=r"amounts non-negative.*source_row=3"):
        audit.run_checks(db, fts_checks.raw_checks(db), tmp_path / "bad", "raw")
