"""ingest.storage against a real S3 server (SeaweedFS, tests/s3server.py): reads, writes, the
conditional writes the pipeline relies on (If-None-Match, If-Match), the compare-and-swap
``update`` under contention from several processes, streamed multipart uploads, and the errors
a wrong configuration gives. Fast: one server start per session (~4 s), a bucket per test."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest import config, storage
from ingest.config import REPO_ROOT
from tests.s3server import ACCESS_KEY, SECRET_KEY

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def store(s3_env, monkeypatch) -> storage.Store:
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    found = storage.configured()
    assert found is not None, "WH_STORAGE_URL is set: configured() must give a Store"
    return found


def test_unset_storage_url_means_local_files(monkeypatch):
    monkeypatch.delenv("WH_STORAGE_URL", raising=False)
    assert storage.configured() is None
    assert config.settings().scratch_dir.name == "wh-scratch"


def test_put_get_head_list_delete(store):
    assert store.url.startswith("s3://wh-") and store.url.endswith("/wh"), store.url
    assert store.uri("landing/a b+c.txt") == f"{store.url}/landing/a b+c.txt"
    etag = store.put("landing/a b+c.txt", b"hello")
    assert etag.strip('"') and store.get("landing/a b+c.txt") == (b"hello", etag)
    head = store.head("landing/a b+c.txt")
    assert head is not None and (head.key, head.etag, head.size) == ("landing/a b+c.txt", etag, 5)
    assert head.modified.endswith("Z") and head.modified[:2] == "20", head.modified
    store.put("landing/x/1", b"1")
    store.put("parsed/y", b"22")
    assert store.get("landing/missing") is None and store.head("landing/missing") is None
    listed = store.list("landing/")
    assert [o.key for o in listed] == ["landing/a b+c.txt", "landing/x/1"], listed
    assert listed[0] == head, ("list and head describe an object alike", listed[0], head)
    assert [o.key for o in store.list()] == ["landing/a b+c.txt", "landing/x/1", "parsed/y"]
    store.delete("landing/x/1")
    store.delete("landing/x/1")  # missing is fine
    assert [o.key for o in store.list()] == ["landing/a b+c.txt", "parsed/y"]


def test_download_streams_to_a_file(store, tmp_path):
    store.put("warehouse/versions/r1.duckdb", b"x" * 3_000_000)
    target = tmp_path / "sub" / "w.duckdb"
    etag = store.download("warehouse/versions/r1.duckdb", target)
    assert etag == store.head("warehouse/versions/r1.duckdb").etag
    assert target.read_bytes() == b"x" * 3_000_000
    assert not target.with_name("w.duckdb.part").exists(), "the .part file is renamed"
    assert store.download("warehouse/versions/none.duckdb", tmp_path / "none") is None
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.part").exists()


def test_list_reads_every_page(store):
    store.page_size = 3
    keys = [f"runs/r{i:02d}/failure.json" for i in range(10)]
    for key in reversed(keys):
        store.put(key, key.encode())
    store.put("runsx", b"not under runs/")
    assert [o.key for o in store.list("runs/")] == keys, "10 keys in pages of 3, sorted"


def test_if_none_match_refuses_an_existing_key_and_keeps_its_body(store):
    first = store.put("landing/frontex/f.xlsx", b"first", if_none_match=True)
    with pytest.raises(storage.PreconditionFailed) as caught:
        store.put("landing/frontex/f.xlsx", b"second", if_none_match=True)
    assert caught.value.status == 412 and store.uri("landing/frontex/f.xlsx") in str(caught.value)
    assert store.get("landing/frontex/f.xlsx") == (b"first", first), "the first body stays"


def test_if_match_swaps_only_from_the_etag_read(store):
    v1 = store.put("warehouse/CURRENT", b"warehouse/versions/r1.duckdb", if_none_match=True)
    v2 = store.put("warehouse/CURRENT", b"warehouse/versions/r2.duckdb", if_match=v1)
    assert v2 != v1
    with pytest.raises(storage.PreconditionFailed, match=r"put s3://.*/warehouse/CURRENT: HTTP 412"):
        store.put("warehouse/CURRENT", b"warehouse/versions/r3.duckdb", if_match=v1)
    assert store.get("warehouse/CURRENT") == (b"warehouse/versions/r2.duckdb", v2)
    with pytest.raises(ValueError, match="exclude each other"):
        store.put("warehouse/CURRENT", b"x", if_match=v2, if_none_match=True)


def test_update_is_a_compare_and_swap(store):
    assert store.update("landing/states.jsonl", lambda old: None) is None, "missing, left as is"
    assert store.head("landing/states.jsonl") is None
    assert store.update("landing/states.jsonl", lambda old: (old or b"") + b"a\n") == b"a\n"
    assert store.update("landing/states.jsonl", lambda old: old + b"b\n") == b"a\nb\n"
    assert store.update("landing/states.jsonl", lambda old: None) == b"a\nb\n"

    others = iter(range(100))

    def always_raced(old):
        # Changes it under the swap (a new body each time: the etag is the body's MD5).
        store.put("landing/states.jsonl", f"someone else {next(others)}\n".encode())
        return b"mine\n"
    with pytest.raises(storage.StorageError, match=r"update s3://.*states.jsonl.*after 3 attempts"):
        store.update("landing/states.jsonl", always_raced, attempts=3)


def _append_lines(env: dict[str, str], name: str, count: int, start) -> None:
    os.environ.update(env)
    s = storage.configured()
    start.wait()
    for i in range(count):
        line = f"{name} {i}\n".encode()
        s.update("landing/manifest.jsonl", lambda old, line=line: (old or b"") + line)


def test_update_under_contention_loses_no_line(store, s3_env):
    """6 processes append 20 lines each to one object at once: all 120 there, each once."""
    start = FORK.Event()
    workers = [FORK.Process(target=_append_lines, args=(s3_env, f"w{n}", 20, start))
               for n in range(6)]
    for w in workers:
        w.start()
    began = time.monotonic()
    start.set()
    for w in workers:
        w.join(120)
    took = time.monotonic() - began
    assert [w.exitcode for w in workers] == [0] * 6, "a writer failed (see its output above)"
    lines = store.get("landing/manifest.jsonl")[0].decode().splitlines()
    expected = sorted(f"w{n} {i}" for n in range(6) for i in range(20))
    assert sorted(lines) == expected, (f"{len(lines)} lines, {len(set(lines))} distinct, "
                                       f"missing {sorted(set(expected) - set(lines))[:5]}")
    print(f"120 appends by 6 processes in {took:.2f} s")


def _put_once(env: dict[str, str], body: bytes, start, results) -> None:
    os.environ.update(env)
    s = storage.configured()
    start.wait()
    try:
        s.put("landing/eurostat/same.csv", body, if_none_match=True)
        results.put("won")
    except storage.PreconditionFailed:
        results.put("412")


def test_the_same_key_put_by_8_processes_at_once_has_one_winner(store, s3_env):
    start, results = FORK.Event(), FORK.Queue()
    workers = [FORK.Process(target=_put_once, args=(s3_env, f"body {n}".encode(), start, results))
               for n in range(8)]
    for w in workers:
        w.start()
    time.sleep(0.3)  # every worker is waiting at the start
    start.set()
    for w in workers:
        w.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["412"] * 7 + ["won"], outcomes
    body = store.get("landing/eurostat/same.csv")[0]
    assert body.startswith(b"body "), body


def test_a_big_file_goes_in_parts_with_its_condition(store, tmp_path):
    """Above the threshold a Path is uploaded in parts; If-None-Match holds for it too. The
    threshold is lowered (parts of 5 MB, S3's minimum) so that 12 MB is enough."""
    store.multipart_threshold = store.part_size = 5 * 1024 * 1024
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 7))
    etag = store.put("warehouse/versions/r1.duckdb", big, if_none_match=True)
    assert etag.strip('"').endswith("-3"), f"3 parts: {etag}"
    assert store.get("warehouse/versions/r1.duckdb")[0] == big.read_bytes()
    with pytest.raises(storage.PreconditionFailed, match="r1.duckdb"):
        store.put("warehouse/versions/r1.duckdb", big, if_none_match=True)
    small = tmp_path / "small.bin"
    small.write_bytes(b"under the threshold")
    store.put("warehouse/small", small)
    assert store.get("warehouse/small")[0] == b"under the threshold"


def test_a_file_over_64_mb_uploads_by_default(store, tmp_path):
    """The real threshold: a 70 MB file (5 parts of 16 MB), timed."""
    big = tmp_path / "70mb.duckdb"
    with open(big, "wb") as f:
        for _ in range(70):
            f.write(os.urandom(1024 * 1024))
    began = time.monotonic()
    etag = store.put("warehouse/versions/big.duckdb", big, if_none_match=True)
    took = time.monotonic() - began
    assert etag.strip('"').endswith("-5"), etag
    assert store.head("warehouse/versions/big.duckdb").size == 70 * 1024 * 1024
    began = time.monotonic()
    store.download("warehouse/versions/big.duckdb", tmp_path / "back")
    back = time.monotonic() - began
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
    print(f"70 MB: upload {took:.2f} s, download {back:.2f} s")


def test_wrong_credentials_and_a_missing_bucket_name_the_url(s3_server):
    bucket = s3_server.create_bucket()
    bad = storage.Store(f"s3://{bucket}/wh", s3_server.endpoint, ACCESS_KEY, "not the secret",
                        retries=0)
    with pytest.raises(storage.StorageError) as caught:
        bad.get("landing/manifest.jsonl")
    message = str(caught.value)
    assert f"get s3://{bucket}/wh/landing/manifest.jsonl: HTTP 403" in message, message
    assert "SignatureDoesNotMatch" in message, message
    with pytest.raises(storage.StorageError, match=r"HTTP 403"):
        bad.put("landing/x", b"x")

    gone = storage.Store("s3://no-such-bucket-here/wh", s3_server.endpoint, ACCESS_KEY,
                         SECRET_KEY, retries=0)
    for operation, call in [("get", lambda: gone.get("k")), ("head", lambda: gone.head("k")),
                            ("put", lambda: gone.put("k", b"x")), ("delete", lambda: gone.delete("k")),
                            ("download", lambda: gone.download("k", Path("/nonexistent/k")))]:
        with pytest.raises(storage.StorageError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"{operation} s3://no-such-bucket-here/wh/k: HTTP 404 "
                                  "NoSuchBucket"), message
    with pytest.raises(storage.StorageError, match=r"list s3://no-such-bucket-here: HTTP 404"):
        gone.list()
    assert "no-such-bucket-here" not in [o.key for o in storage.Store(
        f"s3://{bucket}", s3_server.endpoint, ACCESS_KEY, SECRET_KEY).list()]


def test_no_answer_names_the_url_and_the_endpoint(monkeypatch):
    from tests.s3server import free_ports
    port = free_ports(1)[0]
    s = storage.Store("s3://bucket/wh", f"http://127.0.0.1:{port}", "a", "b", retries=1,
                      backoff_s=0.01)
    with pytest.raises(storage.StorageError) as caught:
        s.get("k")
    assert str(caught.value).startswith("get s3://bucket/wh/k: no answer ConnectionError"), \
        str(caught.value)
    assert f"endpoint http://127.0.0.1:{port}, 2 attempts" in str(caught.value)


@pytest.mark.parametrize("value", ["s3://ab/x", "http://x", "s3://", "s3://Bucket/x",
                                   "s3://bucket//x", "s3://bucket/../x", "s3:/bucket"])
def test_a_bad_storage_url_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("WH_STORAGE_URL", value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    with pytest.raises(config.SettingError) as caught:
        config.settings()
    assert str(caught.value).startswith(f"WH_STORAGE_URL={value!r}: expected s3://<bucket>"), \
        str(caught.value)


@pytest.mark.parametrize("value, normal", [("s3://abc", "s3://abc"), ("s3://my.bucket-1/a/b/",
                                                                       "s3://my.bucket-1/a/b")])
def test_a_good_storage_url_is_kept(monkeypatch, value, normal):
    monkeypatch.setenv("WH_STORAGE_URL", value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    assert config.settings().storage_url == normal


def test_the_storage_url_needs_an_endpoint_and_credentials(monkeypatch):
    monkeypatch.setenv("WH_STORAGE_URL", "s3://bucket/wh")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(config.SettingError, match="WH_STORAGE_URL='s3://bucket/wh' needs "
                                                  "AWS_ENDPOINT_URL"):
        config.settings()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    with pytest.raises(config.SettingError, match="AWS_SECRET_ACCESS_KEY not set"):
        storage.configured()


@pytest.mark.parametrize("value", ["s3://ab/x", "http://x"])
def test_the_command_exits_2_on_a_bad_storage_url(value):
    env = {**os.environ, "WH_STORAGE_URL": value, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "settings"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stdout[:300], done.stderr[-500:])
    assert done.stdout.startswith(f"ERROR WH_STORAGE_URL={value!r}: expected s3://"), \
        done.stdout[:300]


def test_duckdb_reads_the_objects_through_the_packaged_httpfs(store, tmp_path):
    """What a reader does: resolve warehouse/CURRENT, ATTACH that version read-only; Parquet by
    its URI. The extension comes from the duckdb-extension-httpfs package (no download)."""
    import duckdb
    built = tmp_path / "r1.duckdb"
    with duckdb.connect(str(built)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t AS SELECT range AS n FROM range(1000)")
        con.execute(f"COPY (SELECT 7 AS seven) TO '{tmp_path / 'p.parquet'}' (FORMAT parquet)")
    store.put("warehouse/versions/r1.duckdb", built, if_none_match=True)
    store.put("parsed/p.parquet", tmp_path / "p.parquet")
    store.put("warehouse/CURRENT", b"warehouse/versions/r1.duckdb", if_none_match=True)
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    storage.open_in_duckdb(con, store)
    current = con.execute("SELECT trim(content) FROM read_text(?)",
                          [store.uri("warehouse/CURRENT")]).fetchone()[0]
    con.execute(f"ATTACH '{store.uri(current)}' AS wh (READ_ONLY)")
    assert con.execute("SELECT count(*), sum(n) FROM wh.marts.t").fetchone() == (1000, 499500)
    assert con.execute("SELECT seven FROM read_parquet(?)",
                       [store.uri("parsed/p.parquet")]).fetchone() == (7,)
