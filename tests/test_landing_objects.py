"""Landing on the object store (WH_STORAGE_URL), against a real S3 server: the same bytes landed
by several hosts at once land once, different bytes all land, state events from several hosts
are all kept, and a host with an empty disk reads what another landed."""
from __future__ import annotations

import json
import multiprocessing
import os
from datetime import date
from pathlib import Path

import pytest

from ingest import storage
from ingest.errors import DataError
from ingest.landing import LOADED, Landing

URL = "https://www.frontex.europa.eu/assets/Migratory_Map/Monthly_detections_of_IBC.xlsx"


@pytest.fixture
def on_s3(s3_env, monkeypatch, tmp_path):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    return storage.configured()


def _land(args) -> tuple[str, bool]:
    """In a process of its own, as another host: its own empty scratch landing."""
    env, root, content = args
    os.environ.update(env)
    entry, new = Landing(Path(root)).land("frontex", URL, content, date(2025, 6, 3))
    return entry.path, new


def _record(args) -> None:
    env, root, n = args
    os.environ.update(env)
    landing = Landing(Path(root))
    [entry] = landing.entries()
    for i in range(5):
        landing.record([entry], LOADED, run_id=f"host{n}_run{i}")


def _run(func, jobs):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        return pool.map(func, jobs)


def test_the_same_bytes_landed_by_six_hosts_at_once_land_once(on_s3, s3_env, tmp_path):
    content = b"PK\x03\x04 the same workbook, fetched by six workers at once"
    results = _run(_land, [(s3_env, str(tmp_path / f"host{i}"), content) for i in range(6)])
    paths = {path for path, _ in results}
    assert len(paths) == 1, f"six hosts got {len(paths)} different entries: {paths}"
    assert sum(new for _, new in results) >= 1
    entries = Landing(tmp_path / "reader").entries()
    assert len(entries) == 1, f"the manifest has {len(entries)} entries for one file"
    objects = [o.key for o in on_s3.list("landing/frontex/")]
    assert objects == [f"landing/{entries[0].path}"], \
        f"copies left in the bucket besides the one the manifest names: {objects}"
    assert on_s3.get(objects[0])[0] == content


def test_different_bytes_from_six_hosts_at_once_all_land(on_s3, s3_env, tmp_path):
    jobs = [(s3_env, str(tmp_path / f"host{i}"), f"release {i}".encode() * 50) for i in range(6)]
    results = _run(_land, jobs)
    assert all(new for _, new in results)
    entries = Landing(tmp_path / "reader").entries()
    assert sorted(e.path for e in entries) == sorted(p for p, _ in results), \
        "a manifest line was lost when six hosts appended at once"


def test_state_events_from_several_hosts_are_all_kept(on_s3, s3_env, tmp_path):
    Landing(tmp_path / "lander").land("frontex", URL, b"one file", date(2025, 6, 3))
    _run(_record, [(s3_env, str(tmp_path / f"host{i}"), i) for i in range(4)])
    runs = sorted(e.run_id for e in Landing(tmp_path / "reader").events())
    assert runs == sorted(f"host{n}_run{i}" for n in range(4) for i in range(5)), \
        f"{20 - len(runs)} state events lost: {runs}"


def test_a_host_with_an_empty_disk_reads_what_another_landed(on_s3, tmp_path):
    entry, _ = Landing(tmp_path / "host_a").land("frontex", URL, b"the bytes", date(2025, 6, 3))
    other = Landing(tmp_path / "host_b")
    assert not (tmp_path / "host_b").exists()
    assert other.file(entry).read_bytes() == b"the bytes"
    assert not (tmp_path / "host_a" / "manifest.jsonl").exists(), \
        "the manifest was written to the local disk"
    on_s3.delete(f"landing/{entry.path}")
    with pytest.raises(DataError, match=r"s3://.*/landing/frontex/.*no such object"):
        Landing(tmp_path / "host_c").file(entry)


def test_without_object_storage_landing_is_the_local_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("WH_STORAGE_URL", raising=False)
    entry, _ = Landing(tmp_path / "landing").land("frontex", URL, b"local", date(2025, 6, 3))
    lines = (tmp_path / "landing" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == [entry.path]
    assert (tmp_path / "landing" / entry.path).read_bytes() == b"local"
    assert Landing(tmp_path / "landing").store is None


def test_http_validators_are_kept_in_the_bucket_and_written_only_when_they_change(on_s3,
                                                                                  tmp_path):
    """The validators a conditional check sends (docs/decisions.md 85) live beside the manifest
    in the bucket: the last record of a URL wins, the same validators are not written again,
    and a download without any clears them (no conditional request next time)."""
    store = on_s3
    landing = Landing(tmp_path / "scratch")
    landing.remember_validators(URL, {"etag": '"a"'}, "1" * 64)
    landing.remember_validators("https://elsewhere.example/x.csv", {"etag": '"z"'}, "2" * 64)
    written = store.head("landing/http_validators.jsonl").etag
    landing.remember_validators(URL, {"etag": '"a"'}, "1" * 64)
    assert store.head("landing/http_validators.jsonl").etag == written, "rewritten unchanged"
    assert Landing(tmp_path / "other-host").validators(URL)["etag"] == '"a"'
    landing.remember_validators(URL, {"etag": '"b"', "last_modified": "Tue, 03 Jun 2025 "
                                      "10:00:00 GMT"}, "3" * 64)
    assert {k: Landing(tmp_path / "other-host").validators(URL)[k] for k in ("etag", "sha256")} == \
        {"etag": '"b"', "sha256": "3" * 64}
    landing.remember_validators(URL, None, "3" * 64)
    assert Landing(tmp_path / "other-host").validators(URL) is None
    assert Landing(tmp_path / "other-host").validators("https://elsewhere.example/x.csv")["etag"] == '"z"'
