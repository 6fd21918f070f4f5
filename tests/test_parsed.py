"""Parse once: landing keeps the parsed rows as Parquet, the raw load reads them with DuckDB and
parses the landed bytes again only when the parsed form is missing, of other bytes or of another
parser version. Real files, real DuckDB; nothing mocked."""
from __future__ import annotations

import hashlib

import duckdb
import pytest

from ingest import catalog, parsed
from ingest.config import settings
from ingest.sources.frontex.source import FrontexSource
from ingest.landing import Landing
from ingest.load import load_source
from ingest.source import land_new

# From the recorded workbook (FRAN data as of 03JUN25), counted by hand once.
RECORDED_ROWS, RECORDED_TOTAL = 173_460, 4_966_869


@pytest.fixture
def landed(wh_env, tmp_path, monkeypatch, recorded_workbook):
    folder = tmp_path / "snapshot" / "frontex"
    folder.mkdir(parents=True)
    (folder / "ibc.xlsx").write_bytes(recorded_workbook)
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(folder.parent))
    landing = Landing(settings().landing_dir)
    [entry] = land_new(FrontexSource(), landing)
    return landing, entry


def load(landing, tmp_path, name="build.duckdb"):
    with duckdb.connect(str(tmp_path / name)) as con:
        [result] = load_source(con, landing, catalog.spec("frontex"), "run")
        total = con.execute("select sum(detections) from raw.frontex_detections").fetchone()[0]
    return result, total


def test_landing_keeps_the_parsed_rows_with_their_sha256_and_parser(landed, recorded_workbook):
    landing, entry = landed
    path = parsed.path_for(landing, entry)
    assert path == landing.root / "parsed" / f"{entry.path}.parquet"
    found = parsed.lookup(landing, entry)
    assert found is not None and found[0] == path
    meta = found[1]
    assert meta["sha256"] == hashlib.sha256(recorded_workbook).hexdigest() == entry.sha256
    assert meta["parser"] == parsed.fingerprint()
    assert meta["release_date"] == "2025-06-03" and meta["landing_file"] == entry.path
    with duckdb.connect() as con:
        rows, total, first_row = con.execute(
            "select count(*), sum(detections), min(source_row) from read_parquet(?)",
            [str(path)]).fetchone()
    assert (rows, total) == (RECORDED_ROWS, RECORDED_TOTAL)
    assert first_row > 1  # sheet rows, as errors name them


def test_the_load_reads_the_parsed_form_not_the_bytes(landed, tmp_path):
    landing, entry = landed
    path = parsed.path_for(landing, entry)
    # Rewrite the parsed form with one count changed, keeping its metadata: the load must take
    # the rows from it (the landed bytes still say otherwise).
    with duckdb.connect() as con:
        frame = con.execute("select * from read_parquet(?)", [str(path)]).df()
    frame.loc[0, "detections"] += 1000
    parsed.write(landing, entry, frame, entry.release, entry.dataset)
    result, total = load(landing, tmp_path)
    assert result.rows_loaded == RECORDED_ROWS
    assert total == RECORDED_TOTAL + 1000


@pytest.mark.parametrize("spoil", ["missing", "other bytes", "other parser"])
def test_a_parsed_form_that_is_not_current_is_parsed_again(landed, tmp_path, spoil):
    landing, entry = landed
    path = parsed.path_for(landing, entry)
    with duckdb.connect() as con:
        frame = con.execute("select * from read_parquet(?)", [str(path)]).df()
    frame.loc[0, "detections"] += 1000  # wrong rows: must not be used
    if spoil == "missing":
        path.unlink()
    elif spoil == "other bytes":
        parsed.write(landing, entry.__class__(**{**entry.__dict__, "sha256": "0" * 64}), frame,
                     entry.release, None)
    else:
        parsed.write(landing, entry, frame, entry.release, None)
        with duckdb.connect() as con:
            con.execute(f"copy (select * from read_parquet('{path}')) to '{path}.x' "
                        f"(format parquet, kv_metadata {{sha256: '{entry.sha256}', "
                        "parser: 'an older parser'})")
        path.with_name(path.name + ".x").replace(path)
    assert parsed.lookup(landing, entry) is None
    result, total = load(landing, tmp_path)
    assert (result.rows_loaded, total) == (RECORDED_ROWS, RECORDED_TOTAL)
    # ... and the parsed form is current again for the next build.
    assert parsed.lookup(landing, entry) is not None



def test_the_parser_fingerprint_covers_every_source_folder():
    """A parser lives in its source folder (ingest/sources/<name>/): a change there must make the
    parsed forms stale, so the fingerprint hashes those files too (not only ingest/*.py)."""
    from ingest import catalog
    from ingest.config import REPO_ROOT
    hashed = {p.relative_to(REPO_ROOT).as_posix() for p in parsed.parser_files()}
    for spec in catalog.sources():
        module = spec.factory.split(":")[0].replace(".", "/") + ".py"
        assert module in hashed, f"{module} (the parser of {spec.name}) is not in the fingerprint"
