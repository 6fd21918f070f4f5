"""Landing states without Airflow: state events, what a load may use, what a failure rejects,
corrections shown as superseded, hand rejection and re-admission (the commands of
``python -m pipeline.run``), and the removal of a rejected file from a build."""
from __future__ import annotations

from datetime import date

import duckdb
import pytest

from expectations.audit import AuditFailed, Check
from ingest import catalog
from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import LOADED, PUBLISHED, Landing
from ingest.load import LoadFailed, load_source, unload_rejected
from pipeline import files, run
from tests import workbooks


def land_releases(landing: Landing) -> dict[str, object]:
    """Three small workbooks in the real format: release 2024-04-05, a correction of it (one cell
    changed), and release 2024-05-07."""
    rows = [list(r) for r in workbooks.ROWS]
    first = workbooks.write_workbook(note="Source: FRAN data as of 05APR24")
    rows[0][3] = 46  # Bangladesh JAN2024: 41 -> 46
    correction = workbooks.write_workbook(rows=rows, note="Source: FRAN data as of 05APR24")
    later = workbooks.write_workbook(note="Source: FRAN data as of 07MAY24")
    out = {}
    for name, content, release in (("first", first, date(2024, 4, 5)),
                                   ("correction", correction, date(2024, 4, 5)),
                                   ("later", later, date(2024, 5, 7))):
        out[name], _ = landing.land("frontex", "file:///x/ibc.xlsx", content, release)
    return out


def load(db, landing, run_id):
    with duckdb.connect(str(db)) as con:
        done = load_source(con, landing, catalog.spec("frontex"), run_id)
    landing.record([landing.resolve(r.landing_file) for r in done], LOADED, run_id)
    return done


def test_every_release_and_correction_is_loaded_in_landing_order(wh_env):
    landing = Landing(settings().landing_dir)
    landed = land_releases(landing)
    db = wh_env / "build.duckdb"
    done = load(db, landing, "r1")
    assert [r.landing_file for r in done] == [landed[k].path for k in ("first", "correction",
                                                                      "later")]
    assert all(r.rows_loaded == workbooks.CELLS for r in done)
    assert load(db, landing, "r2") == []  # nothing twice
    with duckdb.connect(str(db)) as con:
        by_file = con.execute("""select release_date::varchar, sum(detections) from
                                 raw.frontex_detections group by sha256, release_date
                                 order by min(landing_file)""").fetchall()
    assert by_file == [("2024-04-05", workbooks.TOTAL), ("2024-04-05", workbooks.TOTAL + 5),
                       ("2024-05-07", workbooks.TOTAL)]


def test_a_failed_audit_rejects_only_the_file_it_names_and_the_next_load_skips_it(wh_env):
    landing = Landing(settings().landing_dir)
    landed = land_releases(landing)
    load(wh_env / "build.duckdb", landing, "r1")
    check = Check("frontex_raw_rows", "select 1", "raw.frontex_detections release 2024-05-07",
                  files=(landed["later"].path,), sources=("frontex",))
    rejected = files.reject_culprits("r1", AuditFailed("raw audit failed: ...", [check]))
    assert [e.path for e in rejected] == [landed["later"].path]
    assert landing.rejection(landed["later"]).startswith("run r1: raw audit failed")
    assert [e.path for e in landing.loadable("frontex")] == [landed["first"].path,
                                                            landed["correction"].path]
    # A fresh build (the published file had none of them) loads the two others only.
    assert [r.landing_file for r in load(wh_env / "fresh.duckdb", landing, "r2")] == [
        landed["first"].path, landed["correction"].path]


def test_a_check_without_files_rejects_the_run_files_of_its_sources_only(wh_env):
    landing = Landing(settings().landing_dir)
    land_releases(landing)
    load(wh_env / "build.duckdb", landing, "r1")
    other = Check("eurostat_raw_observations", "select 1", "x", sources=("eurostat",))
    assert files.reject_culprits("r1", AuditFailed("failed", [other])) == []
    mine = Check("fct_border_crossings_totals", "select 1", "x", sources=("frontex",))
    assert len(files.reject_culprits("r1", AuditFailed("failed", [mine]))) == 3
    # A file loaded by another run is never a culprit of this one.
    assert files.reject_culprits("r9", AuditFailed("failed", [mine])) == []


def test_a_file_that_fails_to_load_is_named_and_rejected(wh_env):
    landing = Landing(settings().landing_dir)
    entry, _ = landing.land("frontex", "file:///x/ibc.xlsx", b"PK\x03\x04 not a workbook",
                            date(2024, 4, 5))
    with duckdb.connect(str(wh_env / "b.duckdb")) as con, pytest.raises(LoadFailed) as caught:
        load_source(con, landing, catalog.spec("frontex"), "r1")
    assert f"landing file {entry.path}, release 2024-04-05" in str(caught.value)
    assert isinstance(caught.value, DataError)
    assert files.reject_culprits("r1", caught.value) == [entry]
    assert landing.loadable("frontex") == []


def test_states_superseded_published_loaded_landed_rejected(wh_env):
    landing = Landing(settings().landing_dir)
    landed = land_releases(landing)
    build = wh_env / "build.duckdb"
    load(build, landing, "r1")
    # Publish: the build becomes the warehouse; the correction supersedes the first file.
    # (exist_ok: the runs folder's DuckDB spill folder, WH_DUCKDB_TEMP_DIR, may be there)
    settings().warehouse.parent.mkdir(parents=True, exist_ok=True)
    build.rename(settings().warehouse)
    landing.record(list(landed.values()), PUBLISHED, "r1")
    extra, _ = landing.land("frontex", "file:///x/ibc.xlsx",
                            workbooks.write_workbook(note="Source: FRAN data as of 03JUN24"),
                            date(2024, 6, 3))
    bad, _ = landing.land("frontex", "file:///x/bad.xlsx", b"<html>", None, error="HTML page")
    got = {s.entry.path: (s.state, s.detail) for s in files.states(landing)}
    assert got[landed["first"].path] == ("superseded", f"corrected by {landed['correction'].path}")
    assert got[landed["correction"].path] == ("published", "run r1")
    assert got[landed["later"].path] == ("published", "run r1")
    assert got[extra.path][0] == "landed"
    assert got[bad.path] == ("rejected", "at landing: HTML page")
    landing.record([extra], LOADED, "r2")
    assert {s.entry.path: s.state for s in files.states(landing)}[extra.path] == "loaded"


def test_hand_rejection_unloads_a_published_file_and_readmission_brings_it_back(wh_env, capsys):
    landing = Landing(settings().landing_dir)
    landed = land_releases(landing)
    build = wh_env / "build.duckdb"
    load(build, landing, "r1")
    sha = landed["correction"].sha256
    assert run.main(["reject", sha[:10], "--reason", "wrong cell"]) == 0
    assert "rejected frontex/" in capsys.readouterr().out
    assert run.main(["reject", sha[:10], "--reason", "again"]) == 2
    assert "already rejected" in capsys.readouterr().err
    with duckdb.connect(str(build)) as con:
        [removed] = unload_rejected(con, landing)
        assert removed.sha256 == sha
        assert con.execute("select count(*) from raw.frontex_detections where sha256 = ?",
                           [sha]).fetchone()[0] == 0
        assert con.execute("select count(*) from raw.load_log where sha256 = ?",
                           [sha]).fetchone()[0] == 0
    assert run.main(["files", "--state", "rejected"]) == 0
    listing = capsys.readouterr().out
    assert "by hand: wrong cell" in listing and landed["correction"].path in listing
    assert run.main(["readmit", landed["correction"].path.rsplit("/", 1)[1]]) == 0
    assert [r.sha256 for r in load(build, landing, "r2")] == [sha]
    assert run.main(["readmit", sha[:10]]) == 2
    assert "is not rejected" in capsys.readouterr().err
    assert run.main(["reject", "nosuchfile", "--reason", "x"]) == 2
    assert "no landed file matches 'nosuchfile'" in capsys.readouterr().err
