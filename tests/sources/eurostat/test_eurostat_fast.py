"""The DuckDB fast path for SDMX-CSV 1.0 with codes (``ingest.sources.eurostat.sdmx_csv_duckdb``) against the Python
reader (``parse_observations``), the independent second reader: the same rows, values, types
and line numbers, the same load into raw.eurostat_observations, and for every file it must not
read itself, None and then exactly the Python reader's result or error.

The code file is built from the recorded SDMX-CSV 2.0 file (its code columns, written as the
API's SDMX-CSV 1.0), with rows added for what that file lacks: flags, missing values, CONF_STATUS,
quarterly, monthly and half-yearly periods, numbers in every notation the format allows."""
from __future__ import annotations

import csv
import gc
import gzip
import io
import logging
import math
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingest import catalog, parsed
from ingest.config import settings
from ingest.errors import DataError
from ingest.sources.eurostat.source import EurostatSource, decompress
from ingest.sources.eurostat import sdmx_csv_duckdb
from ingest.sources.eurostat.sdmx_csv_duckdb import FastRows, parse_sdmx_codes
from ingest.sources.eurostat.formats import OBSERVATION_COLUMNS, parse_observations
from ingest.landing import Landing, ManifestEntry
from ingest.load import load_source
from ingest.source import land_new

RECORDED = "eurostat/sdmx/migr_asyappctza.csv"
NAME = "migr_asyappctza.csv"
DATASET = "migr_asyappctza"
DATAFLOW = "ESTAT:MIGR_ASYAPPCTZA(1.0)"
STAMP = "18/03/25 11:00:00"
DIMS = ["freq", "citizen", "sex", "unit", "age", "asyl_app", "geo"]
FIELDS = ["TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "CONF_STATUS"]
HEADER = ["DATAFLOW", "LAST UPDATE", *DIMS, *FIELDS]
# (freq, citizen, sex, unit, age, asyl_app, geo, TIME_PERIOD, OBS_VALUE, OBS_FLAG, CONF_STATUS)
ADDED = [
    ["A", "SY", "T", "PER", "TOTAL", "ASY_APP", "DE", "2024", "1234", "p", ""],
    ["A", "SY", "F", "PER", "Y14-17", "ASY_APP", "DE", "2024", ":", "", ""],
    ["A", "UA", "M", "PER", "Y_LT14", "NASY_APP", "EU27_2020", "2024", "", "", "C"],
    ["A", "AF", "T", "PER", "TOTAL", "ASY_APP", "FR", "2024", "12.5", "e", ""],
    ["Q", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "DE", "2024-Q4", "351915", "p", ""],
    ["M", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "DE", "2024-03", "1.5e3", "bep", ""],
    ["S", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "DE", "2024-S1", "-0", "", ""],
    ["M", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "DE", "2024-12", "007", "", ""],
    ["A", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "EL", "2023",
     "0.1000000000000000055511151231257827", "", ""],
    ["A", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "EL", "2022", "123456789012345678901234567890",
     "", ""],
    ["A", "TOTAL", "T", "PER", "TOTAL", "ASY_APP", "EL", "2021", "2.5E-3", "u", "D"],
]


@pytest.fixture(autouse=True, params=["streamed", "table"])
def read_as(request, monkeypatch):
    """Every test both ways: a file of TABLE_BYTES or more is read into a temporary table
    (line numbers from its rowid, written on every thread), a smaller one streamed from the CSV
    twice (line numbers from a row_number() window). The threshold is moved here so that every
    file goes each way."""
    monkeypatch.setattr(sdmx_csv_duckdb, "TABLE_BYTES", 0 if request.param == "table" else 1 << 62)
    return request.param


# --- building files ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded_rows(snapshot_dir) -> list[list[str]]:
    """The code columns of the recorded SDMX-CSV 2.0 file, with ADDED spread through them."""
    text = (snapshot_dir / RECORDED).read_text(encoding="utf-8")
    rows = [[r[c] for c in DIMS + FIELDS] for r in csv.DictReader(io.StringIO(text))]
    assert len(rows) == 1080
    out = list(rows)
    for i, extra in enumerate(ADDED):
        out.insert(1 + i * 97, extra)
    return out


def sdmx1(rows, header=HEADER, dataflow=DATAFLOW, stamp=STAMP, newline="\n") -> bytes:
    """SDMX-CSV 1.0 as the API writes it (no quoting: codes hold no commas)."""
    lines = [",".join(header)] + [",".join([dataflow, stamp, *r]) for r in rows]
    return (newline.join(lines) + newline).encode("ascii")


@pytest.fixture(scope="module")
def codes_file(recorded_rows) -> bytes:
    return sdmx1(recorded_rows)


# --- comparing ---------------------------------------------------------------------------------

def entry_for(name: str) -> ManifestEntry:
    return ManifestEntry(source="eurostat", url=f"file:///{name}", fetched_at="2025-03-18T12:00:00",
                         sha256="0" * 64, bytes=0, release_date=None, path=f"eurostat/{name}",
                         status="landed")


def kept(rows, folder: Path, release, dataset) -> Path:
    """``rows`` kept as the landing keeps them (``ingest.parsed.write``)."""
    return parsed.write(Landing(folder), entry_for(NAME), rows, release, dataset)


def read_back(path: Path):
    with duckdb.connect() as con:
        schema = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
        rows = con.execute("select * from read_parquet(?)", [str(path)]).fetchall()
        frame = con.execute("select * from read_parquet(?)", [str(path)]).df()
        meta = dict(con.execute("select key, value from parquet_kv_metadata(?)",
                                [str(path)]).fetchall())
    return schema, rows, frame, meta


def plain(value):
    """A cell as a plain Python value (pandas' NA/NaN/NaT: None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def assert_same_as_python(content: bytes, tmp_path: Path, file_name: str = NAME,
                          dataset: str | None = DATASET) -> FastRows:
    """The fast path reads ``content`` and gives what parse_observations gives: release date,
    dataset, and every cell of every row, in order, with the same Parquet column types."""
    fast = parse_sdmx_codes(decompress(content, file_name), file_name, dataset)
    assert fast is not None, "the fast path should read this file"
    expected = parse_observations(decompress(content, file_name), file_name, dataset)
    assert (fast.release_date, fast.dataset) == (expected.release_date, expected.dataset)
    assert len(fast.rows) == len(expected.rows)

    schema, rows, frame, meta = read_back(kept(fast.rows, tmp_path / "fast", fast.release_date,
                                               fast.dataset))
    py_schema, py_rows, _, py_meta = read_back(kept(expected.rows, tmp_path / "python",
                                                    expected.release_date, expected.dataset))
    assert schema == py_schema
    assert list(frame.columns) == OBSERVATION_COLUMNS
    assert meta == py_meta
    # Row by row and column by column against the Python reader's own frame ...
    for column in OBSERVATION_COLUMNS:
        got = [plain(v) for v in frame[column]]
        want = [plain(v) for v in expected.rows[column]]
        assert got == want, column
    # ... the signs of zeros included, and as DuckDB reads both Parquet files.
    assert [math.copysign(1, v) for v in frame["obs_value"] if v == 0] == \
        [math.copysign(1, v) for v in expected.rows["obs_value"] if v == 0]
    assert rows == py_rows
    return fast.rows


def assert_falls_back(content: bytes, file_name: str = NAME, dataset: str | None = DATASET):
    """The fast path declines; EurostatSource().parse then gives exactly parse_observations'
    result, or raises its very error (file, rule, row, message). Returns that error, if any."""
    text = decompress(content, file_name)
    assert parse_sdmx_codes(text, file_name, dataset) is None
    try:
        expected = parse_observations(text, file_name, dataset)
    except DataError as err:
        with pytest.raises(DataError) as got:
            EurostatSource().parse(content, file_name, dataset)
        assert (got.value.file, got.value.rule, got.value.row, str(got.value)) == (
            err.file, err.rule, err.row, str(err))
        return err
    result = EurostatSource().parse(content, file_name, dataset)
    assert isinstance(result.rows, pd.DataFrame)
    assert (result.release_date, result.dataset) == (expected.release_date, expected.dataset)
    pd.testing.assert_frame_equal(result.rows, expected.rows)
    return None


def replaced(rows, index, column, value):
    out = [list(r) for r in rows]
    out[index][(DIMS + FIELDS).index(column)] = value
    return out


# --- the same rows -----------------------------------------------------------------------------

def test_recorded_codes_file_reads_the_same_both_ways(codes_file, tmp_path):
    rows = assert_same_as_python(codes_file, tmp_path)
    assert len(rows) == 1080 + len(ADDED)


def test_source_uses_the_fast_path_for_the_api_format(codes_file, caplog):
    with caplog.at_level(logging.INFO, logger="ingest.sources.eurostat.source"):
        result = EurostatSource().parse(gzip.compress(codes_file), NAME, DATASET)
    assert isinstance(result.rows, FastRows)
    assert "read by DuckDB" in caplog.text
    assert (result.dataset, str(result.release_date)) == (DATASET, "2025-03-18")


def test_cells_as_the_python_reader_gives_them(codes_file, tmp_path):
    fast = parse_sdmx_codes(codes_file, NAME, DATASET)
    _, _, frame, _ = read_back(kept(fast.rows, tmp_path, fast.release_date, fast.dataset))
    first = frame.iloc[0]
    assert first.source_row == 2 and first.dimensions == (
        '{"age": "TOTAL", "asyl_app": "ASY_APP", "sex": "T", "unit": "PER"}')
    assert plain(first.geo_label) is None and plain(first.dimension_labels) is None
    assert str(first.last_update) == "2025-03-18 11:00:00"
    quarter = frame[frame.time_period == "2024-Q4"].iloc[0]
    assert (quarter.freq, quarter.obs_value, quarter.obs_flag) == ("Q", 351915, "p")
    assert quarter.source_row == 2 + 4 * 97 + 1  # inserted after 4 * 97 recorded rows
    missing = frame[(frame.citizen == "UA") & (frame.geo == "EU27_2020")].iloc[0]
    assert math.isnan(missing.obs_value) and missing.conf_status == "C" \
        and plain(missing.obs_flag) is None


@pytest.mark.parametrize("variant", [
    "crlf", "bom", "no final newline", "gzip members", "no CONF_STATUS or OBS_FLAG",
    "only own columns", "no LAST UPDATE value", "no DATAFLOW value", "dataset not given",
])
def test_variants_read_the_same(recorded_rows, variant, tmp_path):
    rows, header, dataset, name = recorded_rows, HEADER, DATASET, NAME
    flow, stamp = DATAFLOW, STAMP
    if variant == "no CONF_STATUS or OBS_FLAG":
        rows, header = [r[:-2] for r in rows], HEADER[:-2]
    if variant == "only own columns":
        keep = [(DIMS + FIELDS).index(c) for c in ("freq", "citizen", "geo", *FIELDS)]
        rows = [[r[i] for i in keep] for r in rows]
        header = ["DATAFLOW", "LAST UPDATE", "freq", "citizen", "geo", *FIELDS]
    if variant == "no LAST UPDATE value":
        stamp = ""
    if variant == "no DATAFLOW value":
        flow = ""  # the file name then names the dataset
    if variant == "dataset not given":
        dataset = None
    content = sdmx1(rows, header, flow, stamp, newline="\r\n" if variant == "crlf" else "\n")
    if variant == "bom":
        content = b"\xef\xbb\xbf" + content
    if variant == "no final newline":
        content = content.rstrip(b"\n")
    if variant == "gzip members":
        half = len(content) // 2
        cut = content.index(b"\n", half) + 1
        content = gzip.compress(content[:cut]) + gzip.compress(content[cut:])
    assert_same_as_python(content, tmp_path, name, dataset)


def test_the_load_gives_the_same_rows_both_ways(codes_file, wh_env, tmp_path, monkeypatch):
    snapshot = tmp_path / "snapshot"
    (snapshot / "eurostat" / "sdmx").mkdir(parents=True)
    (snapshot / "eurostat" / "sdmx" / NAME).write_bytes(codes_file)
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(snapshot))
    landing = Landing(settings().landing_dir)
    [entry] = land_new(EurostatSource(), landing)  # keeps the fast path's Parquet
    spec = catalog.spec("eurostat")

    def load(name):
        with duckdb.connect(str(tmp_path / name)) as con:
            [result] = load_source(con, landing, spec, "run")
            rows = con.execute("select * exclude (loaded_at) from raw.eurostat_observations "
                               "order by source_row").fetchall()
            log = con.execute("select source, raw_table, landing_file, sha256, release_date, "
                              "rows_loaded, dataset from raw.load_log").fetchall()
        return result.rows_loaded, rows, log

    fast = load("fast.duckdb")
    # The same landed file, its parsed form now written from the Python reader's frame.
    expected = parse_observations(landing.file(entry).read_bytes(), entry.path, entry.dataset)
    parsed.write(landing, entry, expected.rows, expected.release_date, expected.dataset)
    python = load("python.duckdb")
    assert fast[0] == python[0] == 1080 + len(ADDED)
    assert fast == python


def test_a_big_file_keeps_its_line_order(recorded_rows, tmp_path):
    """A file DuckDB reads on several threads (about 40 MB, in ranges read at once): every row
    keeps its line number and its place. Each line's value is its own line number, so a row
    out of place or numbered from another line shows."""
    lines = 700_000
    body = [[*recorded_rows[(n - 2) % len(recorded_rows)][:8], str(n), "", ""]
            for n in range(2, lines + 1)]
    content = sdmx1(body)
    assert len(content) > 40 * 2**20
    fast = parse_sdmx_codes(content, NAME, DATASET)
    assert fast is not None and len(fast.rows) == lines - 1
    path = kept(fast.rows, tmp_path, fast.release_date, fast.dataset)
    with duckdb.connect() as con:
        counts = con.execute(
            """select count(*),
                      count(*) filter (where obs_value <> source_row),
                      count(*) filter (where source_row <> 1 + place),
                      min(source_row), max(source_row)
               from (select *, file_row_number + 1 as place
                     from read_parquet(?, file_row_number = true))""", [str(path)]).fetchone()
    assert counts == (lines - 1, 0, 0, 2, lines)


def test_the_temporary_file_and_table_are_removed(codes_file, tmp_path, monkeypatch, read_as):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    fast = parse_sdmx_codes(codes_file, NAME, DATASET)
    con, table = fast.rows._con, fast.rows.table
    if read_as == "table":  # the bytes' copy read into a table at once, and removed then
        assert list(scratch.iterdir()) == [] and fast.rows.csv_path is None
        assert con.execute(f"select count(*) from {table}").fetchone() == (
            1080 + len(ADDED) + 1,)
    else:  # read again by the write
        assert [p.name for p in scratch.iterdir()] == [fast.rows.csv_path.name]
        assert table is None
    kept(fast.rows, tmp_path / "kept", fast.release_date, fast.dataset)
    del fast
    gc.collect()
    assert list(scratch.iterdir()) == []
    with pytest.raises(duckdb.Error):  # the table dropped, its connection closed
        con.execute("select 1")
    # Declined after writing it (a rule broken): removed at once.
    assert parse_sdmx_codes(codes_file.replace(b",2024-Q4,", b",2024-Q5,"), NAME, DATASET) is None
    assert list(scratch.iterdir()) == []


# --- declined: the Python reader decides, with its own errors ------------------------------------

def test_period_not_of_its_frequency(recorded_rows):
    err = assert_falls_back(sdmx1(replaced(recorded_rows, 500, "TIME_PERIOD", "2023-Q1")))
    assert (err.rule, err.row) == ("time period matches the frequency", 502)


def test_value_that_is_not_a_number(recorded_rows):
    err = assert_falls_back(sdmx1(replaced(recorded_rows, 700, "OBS_VALUE", "12a")))
    assert (err.rule, err.row) == ("value is a number", 702)


def test_unknown_frequency(recorded_rows):
    err = assert_falls_back(sdmx1(replaced(recorded_rows, 3, "freq", "W")))
    assert (err.rule, err.row) == ("known frequency", 5)


@pytest.mark.parametrize("cut", ["short", "long"])
def test_row_of_another_width(recorded_rows, cut):
    content = sdmx1(recorded_rows)
    lines = content.split(b"\n")
    lines[300] = lines[300].rsplit(b",", 1)[0] if cut == "short" else lines[300] + b",x"
    err = assert_falls_back(b"\n".join(lines))
    assert (err.rule, err.row) == ("csv format", 301)


def test_blank_line_in_the_middle(recorded_rows):
    lines = sdmx1(recorded_rows).split(b"\n")
    assert assert_falls_back(b"\n".join(lines[:400] + [b""] + lines[400:])) is None
    assert assert_falls_back(b"\n".join(lines[:400] + [b",,,,,,,,,,,,"] + lines[400:])) is None
    assert assert_falls_back(b"\n".join(lines) + b"\n") is None  # blank last line


def test_blank_line_then_an_error_names_the_right_line(recorded_rows):
    lines = sdmx1(replaced(recorded_rows, 600, "OBS_VALUE", "x")).split(b"\n")
    err = assert_falls_back(b"\n".join(lines[:400] + [b""] + lines[400:]))
    assert (err.rule, err.row) == ("value is a number", 603)


def test_repeated_header_of_a_split_answer_reads_the_same(recorded_rows, tmp_path):
    # A 413 answer fetched in parts repeats its header: read once, line numbers kept.
    lines = sdmx1(recorded_rows).split(b"\n")
    assert_same_as_python(b"\n".join(lines[:400] + [lines[0]] + lines[400:]), tmp_path / "a")
    assert_same_as_python(gzip.compress(b"\n".join(lines[:400]) + b"\n")
                          + gzip.compress(b"\n".join([lines[0], *lines[400:]])), tmp_path / "b")


def test_labelled_file(snapshot_dir):
    # Recorded: SDMX-CSV 1.0 with labels (freq "Annual"); mapped to codes by the Python reader.
    content = (snapshot_dir / "eurostat/sdmx/migr_eipre.csv").read_bytes()
    assert assert_falls_back(content, "migr_eipre.csv", "migr_eipre") is None


def test_other_recorded_formats(snapshot_dir):
    assert assert_falls_back((snapshot_dir / RECORDED).read_bytes()) is None  # SDMX-CSV 2.0
    legacy = snapshot_dir / "eurostat/legacy/migr_eiord_1_Data.csv"
    assert assert_falls_back(legacy.read_bytes(), legacy.name, "migr_eiord") is None


def test_utf16_file(codes_file):
    err = assert_falls_back(codes_file.decode("ascii").encode("utf-16"))
    assert err.rule == "text encoding" and "UTF-16 text (byte-order mark of little-endian" in str(err)
    assert "expected UTF-8" in str(err)


def test_cp1252_file(recorded_rows):
    content = sdmx1(replaced(recorded_rows, 20, "OBS_FLAG", "X")).replace(b",X,", b",\xe9,")
    assert assert_falls_back(content) is None
    assert (parse_observations(content, NAME).rows["obs_flag"] == "\xe9").sum() == 1


def test_utf8_text_beyond_ascii(recorded_rows):
    content = sdmx1(replaced(recorded_rows, 20, "citizen", "X")).replace(
        b",X,", ",\u00c7\u00e9,".encode("utf-8"))
    assert assert_falls_back(content) is None


def test_wrong_dataset(codes_file):
    err = assert_falls_back(codes_file, NAME, "migr_eiord")
    assert err.rule == "dataset named" and "holds migr_asyappctza" in str(err)


def test_unknown_dataset(recorded_rows):
    err = assert_falls_back(sdmx1(recorded_rows, dataflow="ESTAT:MIGR_ASYDCFSTA(1.0)"),
                            "data.csv", None)
    assert err.rule == "known dataset"


def test_dataflow_not_understood(recorded_rows):
    err = assert_falls_back(sdmx1(recorded_rows, dataflow="MIGR_ASYAPPCTZA"))
    assert (err.rule, err.row) == ("dataset named", 2)


def test_last_update_not_a_date(recorded_rows):
    err = assert_falls_back(sdmx1(recorded_rows, stamp="yesterday"))
    assert (err.rule, err.row) == ("last update is a date", 2)


def test_header_only():
    err = assert_falls_back((",".join(HEADER) + "\n").encode())
    assert err.rule == "observations present"


@pytest.mark.parametrize("change", [
    "quoted field", "trailing space", "tab inside a code", "empty code", "infinite value",
    "value with plus sign", "lone carriage return", "mixed line ends", "two dataflows",
    "two update stamps", "header with spaces", "header repeated with spaces", "NUL byte",
    "backslash in a code",
])
def test_unusual_files(recorded_rows, change):
    rows = recorded_rows
    content = sdmx1(rows)
    if change == "quoted field":
        content = content.replace(b",ASY_APP,AT,2008,", b',"ASY_APP",AT,2008,', 1)
    elif change == "trailing space":
        content = sdmx1(replaced(rows, 10, "geo", "DE "))
    elif change == "tab inside a code":
        content = sdmx1(replaced(rows, 10, "geo", "D\tE"))
    elif change == "empty code":
        content = sdmx1(replaced(rows, 10, "sex", ""))
    elif change == "infinite value":
        content = sdmx1(replaced(rows, 10, "OBS_VALUE", "1e999"))
    elif change == "value with plus sign":
        content = sdmx1(replaced(rows, 10, "OBS_VALUE", "+5"))
    elif change == "lone carriage return":
        content = content.replace(b"\n", b"\r", 5)
    elif change == "mixed line ends":
        content = content.replace(b"\n", b"\r\n", 5)
    elif change == "two dataflows":
        lines = content.split(b"\n")
        lines[9] = lines[9].replace(b"(1.0)", b"(1.1)")
        content = b"\n".join(lines)
    elif change == "two update stamps":
        lines = content.split(b"\n")
        lines[9] = lines[9].replace(STAMP.encode(), b"19/03/25 11:00:00")
        content = b"\n".join(lines)
    elif change == "header with spaces":
        content = content.replace(b"DATAFLOW,LAST UPDATE,freq", b"DATAFLOW,LAST UPDATE, freq", 1)
    elif change == "header repeated with spaces":
        lines = content.split(b"\n")
        content = b"\n".join(lines[:50] + [lines[0].replace(b",geo,", b", geo ,")] + lines[50:])
    elif change == "NUL byte":
        content = content[:9000] + b"\x00" + content[9000:]
    elif change == "backslash in a code":
        content = sdmx1(replaced(rows, 10, "unit", "P\\R"))
    assert_falls_back(content)


def test_no_temporary_file_falls_back(codes_file, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert parse_sdmx_codes(codes_file, NAME, DATASET) is None
    result = EurostatSource().parse(codes_file, NAME, DATASET)
    pd.testing.assert_frame_equal(result.rows, parse_observations(codes_file, NAME).rows)
