"""Tests written for mutants that survived ``make mutate`` (docs/decisions.md, mutation testing):
each checks a rule of the landing or publish code that a plausible bug would break (a dedup
skipped, a boundary moved by one, a field not stored, a file named otherwise than the code that
cleans up after it expects). Expected values come from the code's documented contract and its
constants, never from a run of the code. Fast: no Airflow, no dbt."""
from __future__ import annotations

import json
import os
import re
import stat
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingest import landing as landing_mod
from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import LANDED, REJECTED, Landing, safe_part
from pipeline import warehouse

CSV = b"a,b\n1,2\n"


def _landing() -> Landing:
    return Landing(settings().landing_dir)


# --- ingest/landing.py ---------------------------------------------------------------------------

def test_the_same_bytes_are_landed_once_whatever_the_url(wh_env):
    landing = _landing()
    first, new = landing.land("cohesion", "https://example.org/a.csv", CSV, None)
    again, new_again = landing.land("cohesion", "https://example.org/other.csv", CSV, None)
    assert new, f"bytes never landed before must land as new, got is_new={new} for {first.path}"
    assert (new, new_again) == (True, False), (
        f"the same bytes landed twice (from another URL) must return the first entry and "
        f"is_new=False, got is_new={new_again} and {again.path} (the first: {first.path})")
    assert again == first, (
        f"the same bytes landed twice must return the first entry {first}, got {again}")
    entries = landing.entries()
    assert len(entries) == 1, (f"the same bytes landed twice must leave one manifest entry, "
                               f"found {len(entries)}: {[e.path for e in entries]}")
    files = [p.name for p in (settings().landing_dir / "cohesion").iterdir()]
    assert files == [Path(first.path).name], (
        f"the same bytes landed twice must be one file, {Path(first.path).name}, found {files}")


def test_a_landed_file_is_named_by_utc_time_and_sha_prefix_and_is_read_only(wh_env):
    entry, _ = _landing().land("frontex", "https://example.org/x.xlsx", b"PK\x03\x04rest", None)
    # <source>/<fetched_at UTC, %Y%m%dT%H%M%S%fZ>_<first 12 hex digits of the sha256><suffix>
    assert re.fullmatch(r"frontex/\d{8}T\d{12}Z_[0-9a-f]{12}\.xlsx", entry.path), entry.path
    assert entry.path.split("_")[-1] == entry.sha256[:12] + ".xlsx"
    fetched = datetime.fromisoformat(entry.fetched_at)
    assert fetched.utcoffset() == timedelta(0)
    assert stat.S_IMODE(os.stat(_landing().file(entry)).st_mode) == 0o444


def test_bytes_are_staged_as_part_files_the_housekeeping_knows(wh_env, monkeypatch):
    # housekeeping removes stale "*.part" files of landing/: the lander must stage under that name
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(landing_mod.os, "replace", spy)
    entry, _ = _landing().land("cohesion", "https://example.org/a.csv", CSV, None)
    assert renames == [(_landing().file(entry).with_name(Path(entry.path).name + ".part"),
                        _landing().file(entry))]


def test_dataset_version_and_final_url_are_kept_in_the_manifest(wh_env):
    landing = _landing()
    landing.land("eurostat", "https://example.org/data/migr_x", CSV, date(2025, 3, 18),
                 dataset="migr_x", version="2025-03-18T11:00:00",
                 final_url="https://mirror.example.org/migr_x.csv")
    landing.land("eurostat", "https://example.org/data/migr_y", CSV + b"3,4\n", None,
                 dataset="migr_y", final_url="https://example.org/data/migr_y")
    landing.land("eurostat", "https://example.org/data/migr_z", CSV + b"5,6\n", None,
                 dataset="migr_z")
    x, y, z = landing.entries("eurostat")  # read back from manifest.jsonl
    assert (x.dataset, x.version, x.final_url, x.release_date) == (
        "migr_x", "2025-03-18T11:00:00", "https://mirror.example.org/migr_x.csv", "2025-03-18")
    assert x.path.startswith("eurostat/migr_x/") and x.status == LANDED
    assert (y.dataset, y.version, y.final_url) == ("migr_y", None, None)  # same as url: not kept
    assert (z.dataset, z.final_url) == ("migr_z", None)


@pytest.mark.parametrize("content, suffix", [
    (b"PK\x03\x04anything", ".xlsx"),
    (b"\x1f\x8b\x08anything", ".gz"),
    (b"geo,value\n1,2\n", ".csv"),
    (b"geo\tvalue\n1\t2\n", ".csv"),
    (b"first line,with a space before the comma\n", ".csv"),
    (b"no separator on the first line\na,b\n", ".bin"),
    (b"x" * 4096 + b",\n", ".bin"),  # only the first 4096 bytes are looked at
    (b"pk\x03\x04lower case is no zip", ".bin"),
])
def test_a_url_without_suffix_gets_one_from_the_bytes(wh_env, content, suffix):
    entry, _ = _landing().land("eurostat", "https://example.org/data/migr_x", content, None)
    assert Path(entry.path).suffix == suffix


def test_a_name_with_two_dots_inside_is_not_a_landing_folder():
    with pytest.raises(DataError) as caught:
        safe_part("dataset", "a..b", "https://example.org/x")
    assert caught.value.file == "https://example.org/x" and "dataset 'a..b'" in str(caught.value)
    assert safe_part("dataset", "a.b", "w") == "a.b"


def test_an_unsafe_name_is_reported_with_its_kind_and_url(wh_env):
    with pytest.raises(DataError) as caught:
        _landing().land("../x", "https://example.org/a.csv", CSV, None)
    assert caught.value.file == "https://example.org/a.csv" and "source '../x'" in str(caught.value)
    with pytest.raises(DataError) as caught:
        _landing().land("cohesion", "https://example.org/a.csv", CSV, None, dataset="a/b")
    assert caught.value.file == "https://example.org/a.csv" and "dataset 'a/b'" in str(caught.value)


def test_state_events_go_to_states_jsonl_with_path_time_and_pipeline_as_author(wh_env):
    landing = _landing()
    entry, _ = landing.land("cohesion", "https://example.org/a.csv", CSV, None)
    landing.record([entry], REJECTED, run_id="r1")
    assert (settings().landing_dir / "states.jsonl").is_file()
    [event] = landing.events()
    assert (event.path, event.sha256, event.event, event.run_id, event.by) == (
        entry.path, entry.sha256, REJECTED, "r1", "pipeline")
    assert datetime.fromisoformat(event.at).utcoffset() == timedelta(0)
    # A rejection without a reason still rejects, and says so.
    assert landing.rejection(entry) == "rejected"


def test_loadable_rejected_and_newest_keep_to_their_source(wh_env):
    landing = _landing()
    mine, _ = landing.land("frontex", "https://example.org/a.xlsx", b"PK\x03\x04a",
                           date(2025, 6, 3))
    other, _ = landing.land("eurostat", "https://example.org/b.csv", CSV, date(2025, 7, 1))
    assert landing.loadable("frontex") == [mine]
    assert landing.newest("frontex") == mine
    landing.record([mine, other], REJECTED, reason="bad")
    assert landing.rejected("frontex") == [mine]
    assert landing.loadable("frontex") == []


def test_find_url_matches_url_status_and_version(wh_env):
    landing = _landing()
    url = "https://example.org/data/migr_x"
    old, _ = landing.land("eurostat", url, CSV, None, version="v1")
    new, _ = landing.land("eurostat", url, CSV + b"3,4\n", None, version="v2",
                          error="bad bytes")  # quarantined
    assert landing.find_url(url) == old  # the first entry of the url
    assert landing.find_url(url, version="v2") == new
    assert landing.find_url(url, status=LANDED, version="v2") is None
    assert landing.find_url(url, status=LANDED) == old
    assert landing.find_url("https://example.org/data/other") is None


def test_newest_prefers_a_release_date_over_none(wh_env):
    landing = _landing()
    dated, _ = landing.land("frontex", "https://example.org/a.xlsx", b"PK\x03\x04a",
                            date(2025, 6, 3))
    landing.land("frontex", "https://example.org/b.xlsx", b"PK\x03\x04b", None)  # fetched later
    assert landing.newest("frontex") == dated


def test_a_sha_prefix_names_a_file_from_eight_characters(wh_env):
    landing = _landing()
    entry, _ = landing.land("cohesion", "https://example.org/a.csv", CSV, None)
    assert landing.resolve(entry.sha256[:8]) == entry
    assert landing.resolve(entry.sha256[:8].upper()) == entry
    with pytest.raises(LookupError):
        landing.resolve(entry.sha256[:7])


def test_an_ambiguous_name_lists_the_candidates(wh_env):
    landing = _landing()
    entry, _ = landing.land("cohesion", "https://example.org/a.csv", CSV, None, dataset="one")
    name = Path(entry.path).name
    # The same file name in a second folder (a manifest line written by another installation).
    line = json.loads(landing.manifest.read_text(encoding="utf-8"))
    line.update(path=f"cohesion/two/{name}", sha256="0" * 64)
    with landing.manifest.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    with pytest.raises(LookupError) as caught:
        landing.resolve(name)
    assert f"{name!r} matches 2 landed files: {entry.path}, cohesion/two/{name}" == str(
        caught.value)


# --- pipeline/warehouse.py -----------------------------------------------------------------------

def test_run_ids_become_folder_names():
    assert warehouse.safe_run_id("manual__2026-11-21T14:10:45+00:00") == (
        "manual_2026_11_21T14_10_45_00_00")
    assert warehouse.safe_run_id("__a..b__") == "a_b"
    assert warehouse.safe_run_id("X-1") == "X_1"  # only the "_" at either end goes


def test_a_retried_prepare_starts_again_from_the_published_file(wh_env):
    warehouse.prepare_build("one")
    warehouse.publish("one")
    published = settings().warehouse.read_bytes()
    build = warehouse.prepare_build("two")
    with duckdb.connect(str(build)) as con:
        con.execute("create table half_done as select 1 as v")
    Path(str(build) + ".wal").write_bytes(b"a WAL a killed build left")
    again = warehouse.prepare_build("two")  # the task retried: same run folder
    assert again == build and again.read_bytes() == published
    assert not Path(str(build) + ".wal").exists()


def test_publish_creates_the_warehouse_folders_and_runs_before_checkpoint(wh_env, monkeypatch):
    target = wh_env / "deep" / "er" / "migration.duckdb"
    monkeypatch.setenv("WH_WAREHOUSE", str(target))
    warehouse.prepare_build("one")
    seen = []

    def add_history(con):
        seen.append(con)
        con.execute("create table meta.quality_history as select 42 as checks")

    assert warehouse.publish("one", before_checkpoint=add_history) == target
    assert len(seen) == 1 and seen[0] is not None
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select checks from meta.quality_history").fetchone() == (42,)


def test_failure_record_without_a_build(wh_env, monkeypatch):
    monkeypatch.setenv("WH_RUNS_DIR", str(wh_env / "not" / "yet" / "runs"))
    try:
        raise ValueError("rule X broken")
    except ValueError as err:
        path = warehouse.record_failure("early", "land", err)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["run_id"] == "early" and record["build_db"] is None
    assert datetime.fromisoformat(record["failed_at"]).utcoffset() == timedelta(0)
    assert "ValueError: rule X broken" in "".join(record["traceback"])


def _failed_build(run_id: str, age_s: float, wal: bytes | None = None) -> Path:
    db = warehouse.build_db(run_id)
    db.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(db)).close()
    if wal is not None:
        Path(str(db) + ".wal").write_bytes(wal)
    stamp = time.time() - age_s
    os.utime(db, (stamp, stamp))
    return db


def test_housekeeping_keeps_the_newest_builds_by_time_not_by_name(wh_env, monkeypatch):
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "1")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "0")
    _failed_build("a_newest", 3600)
    _failed_build("z_oldest", 30 * 86400)
    warehouse.housekeeping("now")
    assert [p.parent.name for p in settings().runs_dir.glob("*/migration.duckdb")] == ["a_newest"]


def test_housekeeping_removes_a_build_just_past_the_days_limit_and_its_wal(wh_env, monkeypatch):
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "0")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "7")
    old = _failed_build("old", 7 * 86400 + 3, wal=b"w" * 1000)  # 3 s past 7 days
    young = _failed_build("young", 7 * 86400 - 3600)
    sizes = old.stat().st_size + 1000
    s = settings()
    s.landing_dir.mkdir(parents=True)
    part = s.landing_dir / "x.csv.part"
    part.write_bytes(b"p" * 500)
    stamp = time.time() - warehouse.STALE_LANDING_S - 60
    os.utime(part, (stamp, stamp))
    done = warehouse.housekeeping("now")
    assert not old.exists() and not Path(str(old) + ".wal").exists() and young.exists()
    assert done == {"builds": 1, "staged": 1, "bytes": sizes + 500, "publishes": 0, "reports": 0}


# --- ingest/sources/frontex/source.py ---------------------------------------------------------------------------

def _frontex(rows, header=None):
    from ingest.sources.frontex.source import parse_workbook
    from tests import workbooks
    return parse_workbook(workbooks.write_workbook(header=header or workbooks.HEADER, rows=rows),
                          "rows.xlsx").rows


def test_rows_after_a_blank_row_a_totals_row_or_a_note_are_still_read():
    from tests import workbooks
    first, second = workbooks.ROWS[0], workbooks.ROWS[2]
    # The totals row agrees with the row above it (a disagreeing one fails the file).
    rows = _frontex([first, [], [None, "  ", None], ["Total", None, None, *first[3:]],
                     ["A note in column A only"], second])
    # The sheet rows: header 1, first 2, blanks 3-4, total 5, note 6, second 7.
    assert sorted(set(rows["source_row"])) == [2, 7]
    assert rows["detections"].sum() == sum(v for v in first[3:] + second[3:] if v is not None)


def test_a_whole_float_count_is_read_as_its_integer():
    rows = _frontex([["Western Balkan Route", "Land", "Syria", 12.0, None, 3]])
    assert rows["detections"].tolist() == [12, 3]


def test_a_row_with_counts_and_a_key_that_is_not_text_fails_naming_its_row():
    from ingest.sources.frontex.source import parse_workbook
    from tests import workbooks
    content = workbooks.write_workbook(rows=[workbooks.ROWS[0],
                                             ["Western Balkan Route", "Land", 42, 1, 2, 3]])
    with pytest.raises(DataError) as caught:
        parse_workbook(content, "keys.xlsx")
    assert (caught.value.rule, caught.value.row) == ("row keys", 3)
    assert "empty Nationality" in str(caught.value)


# --- ingest/sources/eurostat/formats.py ------------------------------------------------------------------

def test_a_blank_line_inside_an_sdmx_file_is_passed_over_not_the_end():
    from ingest.sources.eurostat.formats import parse_observations
    body = ("DATAFLOW,LAST UPDATE,freq,citizen,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG\n"
            "ESTAT:MIGR_EIORD(1.0),18/03/25 11:00:00,A,TOTAL,DE,2022,5,\n"
            "\n"
            "ESTAT:MIGR_EIORD(1.0),18/03/25 11:00:00,A,TOTAL,DE,2023,7,\n").encode()
    rows = parse_observations(body, "migr_eiord", "migr_eiord").rows
    assert rows["time_period"].tolist() == ["2022", "2023"]
    assert rows["source_row"].tolist() == [2, 4]


def test_a_short_line_is_named_with_its_line_number():
    from ingest.sources.eurostat.formats import parse_observations
    body = ("DATAFLOW,LAST UPDATE,freq,citizen,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG\n"
            "ESTAT:MIGR_EIORD(1.0),18/03/25 11:00:00,A,TOTAL,DE,2022,5,\n"
            "ESTAT:MIGR_EIORD(1.0),18/03/25 11:00:00,A,TOTAL,DE,2023\n").encode()
    with pytest.raises(DataError) as caught:
        parse_observations(body, "migr_eiord", "migr_eiord")
    assert (caught.value.file, caught.value.rule, caught.value.row) == (
        "migr_eiord", "csv format", 3)


def test_legacy_months_and_quarters_get_their_frequency():
    from ingest.sources.eurostat.formats import parse_observations
    header = '"TIME","GEO","CITIZEN","UNIT","Value","Flag and Footnotes"\n'
    body = (header + '"2017M03","Belgium","Total","Person","12",""\n'
            '"2017Q1","Belgium","Total","Person","30",""\n').encode()
    rows = parse_observations(body, "migr_eiord_1_Data.csv").rows
    assert list(zip(rows["freq"], rows["time_period"])) == [("M", "2017-03"), ("Q", "2017-Q1")]
