"""Landing's own de-duplication (issue #13): ``Landing.land`` looks the sha256 up in the manifest
inside the manifest lock, so the same bytes are landed once however they arrive: from a caller
that skips every pre-check, or from two processes landing them at the same moment.

Real processes and real files: two ``python`` processes start behind a file barrier; in the
``barrier+lock`` variant this test holds the landing lock while both reach it (seen as waiters in
/proc/locks), so both have passed anything done before the lock when they go on, one at a time.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest

from ingest.config import settings
from ingest.landing import LANDED, Landing

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 20.0
CONTENT_BYTES = 4 << 20
"""Big enough that hashing and writing it take a few milliseconds: two landings overlap."""


def content(seed: str, size: int = CONTENT_BYTES) -> bytes:
    block = hashlib.sha512(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def manifest_lines(landing: Landing) -> list[dict]:
    if not landing.manifest.exists():
        return []
    return [json.loads(line) for line in landing.manifest.read_text().splitlines() if line]


def landed_files(landing: Landing) -> list[str]:
    return sorted(p.relative_to(landing.root).as_posix() for p in landing.root.rglob("*")
                  if p.is_file() and p.parent != landing.root)


def test_landing_the_same_bytes_twice_without_a_pre_check_returns_the_existing_entry(wh_env):
    landing = Landing(settings().landing_dir)
    data = content("twice", 64 << 10)
    first, first_new = landing.land("frontex", "https://example.org/a/ibc.xlsx", data,
                                    date(2025, 6, 3))
    # Another URL, another release date: the same bytes all the same.
    again, again_new = landing.land("frontex", "https://example.org/b/ibc.xlsx", data,
                                    date(2025, 7, 1))
    assert (first_new, again_new) == (True, False), (
        f"the same bytes landed twice (another URL and release date, no pre-check) must return "
        f"the first entry and is_new=False; Landing.land returned is_new={again_new} and "
        f"{again.path} (the first: {first.path}, is_new={first_new})")
    assert asdict(again) == asdict(first), (
        f"the same bytes landed twice must return the first entry {asdict(first)}, "
        f"got {asdict(again)}")
    lines, files = manifest_lines(landing), landed_files(landing)
    assert len(lines) == 1 and files == [first.path], (
        f"the same bytes landed twice must leave one manifest entry and one file ({first.path}), "
        f"found {len(lines)} entries and files {files}")
    assert landing.file(first).read_bytes() == data, f"{first.path} does not hold the bytes landed"
    # Other bytes still land.
    other, other_new = landing.land("frontex", "https://example.org/a/ibc.xlsx",
                                    content("other", 64 << 10), date(2025, 7, 1))
    assert other_new and other.status == LANDED and len(manifest_lines(landing)) == 2, (
        f"other bytes from a known URL must land as new: is_new={other_new}, status "
        f"{other.status}, {len(manifest_lines(landing))} manifest entries (2 expected)")


LANDER = r"""
import json, os, sys, time
from datetime import date
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ingest.landing import Landing

root, content_file, url, ready, go, out = sys.argv[2:8]
data = Path(content_file).read_bytes()
landing = Landing(Path(root))
Path(ready).touch()
while not os.path.exists(go):  # the barrier: both start landing at the same moment
    time.sleep(0.0005)
entry, new = landing.land("frontex", url, data, date(2025, 6, 3))
Path(out).write_text(json.dumps({"pid": os.getpid(), "path": entry.path, "new": new}))
"""


def lock_waiters() -> tuple[set[int], set[int]]:
    """The inodes this process holds a lock on, and the pids waiting for one of them."""
    held, waiting = set(), []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        blocked = "->" in fields
        if blocked:
            fields.remove("->")
        pid, inode = int(fields[4]), int(fields[5].rsplit(":", 1)[1])
        if blocked:
            waiting.append((pid, inode))
        elif pid == os.getpid():
            held.add(inode)
    return held, {pid for pid, inode in waiting if inode in held}


def wait_for(condition, what: str, procs: list[subprocess.Popen]):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.poll() is not None and proc.returncode != 0:
                pytest.fail(f"{what}: a landing process failed:\n{proc.stderr.read()}")
        time.sleep(0.001)
    pytest.fail(f"timed out after {TIMEOUT_S:g} s waiting for {what}")


@pytest.mark.parametrize("gate", ["barrier", "barrier+lock"])
def test_two_processes_landing_the_same_bytes_at_once_land_them_once(wh_env, tmp_path, gate):
    landing = Landing(settings().landing_dir)
    rounds = 3 if gate == "barrier" else 1
    for r in range(rounds):
        data = content(f"{gate} {r}")
        content_file = tmp_path / f"content_{r}.bin"
        content_file.write_bytes(data)
        ready = [tmp_path / f"ready_{r}_{i}" for i in range(2)]
        out = [tmp_path / f"out_{r}_{i}.json" for i in range(2)]
        go = tmp_path / f"go_{r}"
        procs = [subprocess.Popen(
            [sys.executable, "-c", LANDER, str(REPO_ROOT), str(landing.root), str(content_file),
             f"https://example.org/{i}/ibc.xlsx", str(ready[i]), str(go), str(out[i])],
            stderr=subprocess.PIPE, text=True) for i in range(2)]
        try:
            wait_for(lambda: all(p.exists() for p in ready), "both processes ready", procs)
            if gate == "barrier":
                go.touch()
            else:
                with landing._locked():  # the lock Landing.land takes, held by this test
                    go.touch()
                    pids = {p.pid for p in procs}
                    wait_for(lambda: pids <= lock_waiters()[1],
                             "both processes waiting for the landing lock", procs)
            for proc in procs:
                assert proc.wait(TIMEOUT_S) == 0, proc.stderr.read()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

        results = [json.loads(p.read_text()) for p in out]
        digest = hashlib.sha256(data).hexdigest()
        entries = [e for e in manifest_lines(landing) if e["sha256"] == digest]
        files = [f for f in landed_files(landing) if digest[:12] in f]
        assert len(entries) == 1 and len(files) == 1, (
            f"two processes landing the same bytes at once ({gate}, round {r}) left "
            f"{len(entries)} manifest entries and {len(files)} landed files: {files}")
        assert sorted(res["new"] for res in results) == [False, True], (
            f"of two processes landing the same bytes at once ({gate}, round {r}) exactly one "
            f"must get is_new=True and the other the first entry with is_new=False, got {results}")
        assert {res["path"] for res in results} == {entries[0]["path"]} == set(files), (
            f"both processes must return the one landed file {entries[0]['path']}, got "
            f"{[res['path'] for res in results]} (files: {files})")
        assert landing.file(landing.find_sha(digest)).read_bytes() == data, (
            f"the landed file of round {r} does not hold the bytes landed")
    parts = list(landing.root.rglob("*.part"))
    assert not parts, f"staged .part files left behind: {parts}"
    assert len(manifest_lines(landing)) == rounds, (
        f"{rounds} different contents should leave {rounds} manifest entries, "
        f"found {len(manifest_lines(landing))}")
