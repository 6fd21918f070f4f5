"""Landing in snapshot (replay) mode: immutable files, manifest, no double landing, quarantine."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import date

import pytest

from ingest.config import settings
from ingest.errors import DataError
from ingest.sources.frontex.source import FrontexSource
from ingest.landing import LANDED, QUARANTINED, Landing
from ingest.source import land_new
from tests import workbooks


@pytest.fixture
def snapshot_copy(tmp_path, monkeypatch):
    folder = tmp_path / "snapshot"
    (folder / "frontex").mkdir(parents=True)
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(folder))
    return folder


def test_replayed_workbook_is_landed_once_with_its_manifest_entry(wh_env, snapshot_copy,
                                                                   recorded_workbook):
    (snapshot_copy / "frontex" / "ibc.xlsx").write_bytes(recorded_workbook)
    landing = Landing(settings().landing_dir)
    first = land_new(FrontexSource(), landing)
    assert len(first) == 1
    entry = first[0]
    assert entry.source == "frontex" and entry.status == LANDED
    assert entry.release_date == "2025-06-03"
    assert entry.bytes == len(recorded_workbook)
    assert entry.sha256 == hashlib.sha256(recorded_workbook).hexdigest()
    assert entry.url.startswith("file://") and entry.url.endswith("/frontex/ibc.xlsx")
    landed = settings().landing_dir / entry.path
    assert landed.read_bytes() == recorded_workbook
    assert not os.stat(landed).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    assert land_new(FrontexSource(), landing) == []
    lines = (settings().landing_dir / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["fetched_at"]


def test_bad_file_is_quarantined_kept_and_reported(wh_env, snapshot_copy):
    bad = b"<html><body>Maintenance</body></html>"
    (snapshot_copy / "frontex" / "ibc.xlsx").write_bytes(bad)
    landing = Landing(settings().landing_dir)
    with pytest.raises(DataError, match=r"ibc\.xlsx.*HTML page"):
        land_new(FrontexSource(), landing)
    [entry] = landing.entries("frontex")
    assert entry.status == QUARANTINED and "HTML page" in entry.error
    assert landing.file(entry).read_bytes() == bad
    assert landing.newest("frontex") is None

    # The same bad bytes again: not landed twice, not an error again (it would fail every run
    # while the publisher offers it), and named among the files skipped.
    skipped = []
    assert land_new(FrontexSource(), landing, skipped=skipped) == [], \
        "the same quarantined bytes must land nothing"
    assert [e.path for e in skipped] == [entry.path], \
        f"the quarantined file offered again must be reported as skipped, got {skipped}"
    assert len(landing.entries()) == 1, "the same bad bytes were landed twice"


def test_newest_release_wins(wh_env, snapshot_copy):
    older = workbooks.write_workbook(note="Source: FRAN data as of 05APR24")
    newer = workbooks.write_workbook(note="Source: FRAN data as of 07MAY24")
    landing = Landing(settings().landing_dir)
    landing.land("frontex", "file:///x/new.xlsx", newer, date(2024, 5, 7))
    landing.land("frontex", "file:///x/old.xlsx", older, date(2024, 4, 5))
    assert landing.newest("frontex").release_date == "2024-05-07"


def test_empty_snapshot_folder_is_a_clear_error(wh_env, snapshot_copy):
    with pytest.raises(DataError, match="no Frontex workbook"):
        land_new(FrontexSource(), Landing(settings().landing_dir))


@pytest.mark.parametrize("dataset", ["../../../../elsewhere", "abcd-efgh/../../x", "..", "a/b",
                                     " ", "x\x00y", "-rf", "a" * 101])
def test_a_name_from_outside_never_leaves_landing(wh_env, tmp_path, dataset):
    landing = Landing(settings().landing_dir)
    with pytest.raises(DataError) as caught:
        landing.land("cohesion", "https://example.org/resource/x.csv", b"a,b\n1,2\n", None,
                     dataset=dataset)
    assert caught.value.rule == "safe name" and repr(dataset) in str(caught.value)
    # Nothing written anywhere: not in landing/, not beside it, no manifest line.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".manifest.lock"]
    assert written == [] and landing.entries() == []


def test_a_url_suffix_that_is_not_a_plain_extension_is_not_used(wh_env):
    landing = Landing(settings().landing_dir)
    entry, _ = landing.land("cohesion", "https://example.org/resource/x.c$v%2f..", b"a,b\n1,2\n",
                            None, dataset="abcd-efgh")
    assert entry.path.startswith("cohesion/abcd-efgh/") and entry.path.endswith(".csv")
    assert landing.file(entry).resolve().is_relative_to(settings().landing_dir.resolve())


def test_a_workbook_unpacking_beyond_the_cap_is_refused_before_it_is_parsed(
        wh_env, snapshot_copy, recorded_workbook, monkeypatch):
    # A small file whose sheet unpacks to 64 MiB of XML (a zip bomb in xlsx clothing).
    content = workbooks.unpacking_to(recorded_workbook, 64)
    assert len(content) < 3 << 20
    (snapshot_copy / "frontex" / "ibc.xlsx").write_bytes(content)
    monkeypatch.setenv("WH_MAX_XLSX_UNPACKED_MB", "32")
    landing = Landing(settings().landing_dir)
    with pytest.raises(DataError) as caught:
        land_new(FrontexSource(), landing)
    err = caught.value
    assert err.rule == "xlsx unpacked size" and err.file == "ibc.xlsx"
    assert "sheet1.xml" in str(err) and "WH_MAX_XLSX_UNPACKED_MB" in str(err)
    [entry] = landing.entries()  # kept for diagnosis, quarantined, never loaded
    assert entry.status == QUARANTINED and "unpack" in entry.error
    # The good workbook, under the default cap, lands.
    monkeypatch.delenv("WH_MAX_XLSX_UNPACKED_MB")
    (snapshot_copy / "frontex" / "ibc.xlsx").write_bytes(recorded_workbook)
    [good] = land_new(FrontexSource(), landing)
    assert good.status == LANDED and good.release_date == "2025-06-03"


def test_a_replayed_file_over_the_size_cap_is_not_read(wh_env, snapshot_copy, recorded_workbook,
                                                       monkeypatch):
    (snapshot_copy / "frontex" / "ibc.xlsx").write_bytes(recorded_workbook)
    monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", str(len(recorded_workbook) / 2 / 1024 / 1024))
    landing = Landing(settings().landing_dir)
    with pytest.raises(DataError) as caught:
        land_new(FrontexSource(), landing)
    assert caught.value.rule == "size cap" and caught.value.file == "ibc.xlsx"
    assert f"{len(recorded_workbook):,} bytes" in str(caught.value)
    assert landing.entries() == []
