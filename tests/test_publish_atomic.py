"""The publish is atomic, proven with real processes and real DuckDB files (issue #13).

``pipeline.warehouse.publish`` promises that the published file is never written in place: a BI
reader that opened it keeps reading the complete old database, and a crash at any point leaves
either the complete old or the complete new file. These tests fail when ``os.replace`` (or the
staged copy of the cross-filesystem fallback) is swapped for a copy into the published file:

- a reader process, holding the published file open read-only and re-reading it from disk
  (DuckDB memory limit below the table size), polls a checksum of a ~34 MB table before, during
  and after a publish that rewrites that table (the new build reuses the old table's blocks, so
  a copy in place would hand the reader other rows at the same block ids);
- the published path gets a new inode and the old inode's bytes are intact behind an open fd;
- a publishing process is SIGKILLed before each of its file-system steps in turn (an audit hook
  and a profile hook pause it there: nothing is mocked) and the published file must be the whole
  old or the whole new database each time, and the next publish recovers with no hand work;
- each of these with the runs folder on the same filesystem (``os.replace``) and on another one
  (/dev/shm: the EXDEV fallback, a staged copy renamed into place).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from ingest.config import settings
from pipeline import warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
BIG_ROWS = 2_000_000
"""~34 MB of incompressible hashes: an in-place copy of it takes measurable time (~15 ms from
the page cache here) and its blocks outnumber what the reader may cache."""
SMALL_ROWS = 20_000
READER_MEMORY = "16MB"
"""Below the table size, so every poll of the reader reads the file again (not its cache)."""
CHECKSUM_SQL = ("select (select label from wh_version), count(*), sum(id), bit_xor(h), "
                "bit_xor(g) from big")
TIMEOUT_S = 30.0
FILESYSTEMS = ["same-fs", "runs-on-other-fs"]


def _table_sql(seed: int, rows: int) -> str:
    return (f"create table big as select i as id, hash(i + {seed}) as h, hash(i, {seed}) as g "
            f"from range({rows}) t(i)")


def expected(label: str, seed: int, rows: int) -> list:
    """The checksum a complete ``big`` of ``seed`` has, computed from range() (no file)."""
    with duckdb.connect() as con:
        row = con.execute(f"select ?, count(*), sum(i), bit_xor(hash(i + {seed})), "
                          f"bit_xor(hash(i, {seed})) from range({rows}) t(i)", [label]).fetchone()
    return json.loads(json.dumps(list(row)))


def write_version(db: Path, label: str, seed: int, rows: int) -> None:
    """Give ``db`` version ``label``: drop the big table and checkpoint first, so the new rows go
    into the blocks the old rows had (as dbt's ``create or replace`` runs do over a build)."""
    with duckdb.connect(str(db)) as con:
        con.execute("drop table if exists big")
        con.execute("checkpoint")
        con.execute("create or replace table wh_version as select ? as label", [label])
        con.execute(_table_sql(seed, rows))
        con.execute("checkpoint")


def checksum(db: Path) -> list:
    with duckdb.connect(str(db), read_only=True) as con:
        return json.loads(json.dumps(list(con.execute(CHECKSUM_SQL).fetchone())))


def state_of(db: Path, versions: dict[str, list]) -> str:
    """Which complete version ``db`` is, or what is wrong with it."""
    if not db.exists():
        return "missing"
    try:
        found = checksum(db)
    except Exception as err:  # noqa: BLE001 - any failure to read it is the finding
        return f"unreadable ({os.path.getsize(db):,} bytes): {type(err).__name__}: {err}"
    return next((name for name, value in versions.items() if value == found),
                f"neither version: checksum {found}")


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """Published databases to start from: a big one (~34 MB) and a small one."""
    root = tmp_path_factory.mktemp("publish_templates")
    made = {}
    for name, rows in (("big", BIG_ROWS), ("small", SMALL_ROWS)):
        made[name] = root / f"{name}.duckdb"
        write_version(made[name], "old", 1, rows)
    return made


@pytest.fixture(params=FILESYSTEMS)
def install(request, wh_env, monkeypatch):
    """Landing, warehouse and runs under tmp; with ``runs-on-other-fs`` the runs folder is on
    /dev/shm, so ``os.replace`` of the build fails with EXDEV and publish takes its fallback."""
    if request.param == "same-fs":
        yield request.param
        return
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(wh_env).st_dev:
        pytest.fail("/dev/shm is not a separate filesystem here; the EXDEV fallback needs one")
    with tempfile.TemporaryDirectory(dir=shm, prefix="wh-runs-") as runs:
        monkeypatch.setenv("WH_RUNS_DIR", runs)
        yield request.param


def publish_from(template: Path, run_id: str, label: str, seed: int, rows: int) -> Path:
    """A published ``template`` and a build of ``run_id`` (copied by the real prepare_build)
    rewritten to version ``label``; returns the published path."""
    published = settings().warehouse
    published.parent.mkdir(parents=True, exist_ok=True)
    if not published.exists():
        shutil.copyfile(template, published)
    build = warehouse.prepare_build(run_id)
    write_version(build, label, seed, rows)
    return published


def wait_for(condition, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode} first:\n"
                        f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.002)
    pytest.fail(f"timed out after {TIMEOUT_S:g} s waiting for {what}")


def same_blocks(a: Path, b: Path, block: int = 256 * 1024) -> float:
    """The share of DuckDB blocks (256 KiB) with the same bytes at the same offset."""
    with a.open("rb") as fa, b.open("rb") as fb:
        total = same = 0
        while True:
            x, y = fa.read(block), fb.read(block)
            if not x or not y:
                return same / max(total, 1)
            total += 1
            same += x == y


# --- a. a reader that holds the published file open --------------------------------------------

READER = r"""
import json, os, sys, time
import duckdb
db, out, stop, sql, memory = sys.argv[1:6]
con = duckdb.connect(db, read_only=True)
con.execute("set threads = 1")
con.execute(f"set memory_limit = '{memory}'")
def poll():
    t0 = time.monotonic()
    try:
        result, error = json.loads(json.dumps(list(con.execute(sql).fetchone()))), None
    except Exception as err:
        result, error = None, f"{type(err).__name__}: {err}"
    return {"t0": t0, "t1": time.monotonic(), "result": result, "error": error}
with open(out, "a") as fh:
    polls_after_stop = 0
    while polls_after_stop < 3:
        if os.path.exists(stop):
            polls_after_stop += 1
        fh.write(json.dumps(poll()) + "\n")
        fh.flush()
"""


def read_polls(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]


def test_a_reader_holding_the_published_file_reads_the_old_data_during_and_after_publish(
        install, templates, tmp_path):
    old, new = expected("old", 1, BIG_ROWS), expected("new", 2, BIG_ROWS)
    published = publish_from(templates["big"], "big", "new", 2, BIG_ROWS)
    build = warehouse.build_db("big")
    # Otherwise a copy in place could leave the old rows where the reader looks for them.
    assert same_blocks(published, build) < 0.1, "the new build does not rewrite the old blocks"
    out, stop = tmp_path / "reader.jsonl", tmp_path / "reader.stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(published), str(out), str(stop), CHECKSUM_SQL,
         READER_MEMORY], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(read_polls(out)) >= 2, "the reader's first polls", reader)

        def while_publishing(con):
            # Inside publish(): let the reader finish two more polls of the published file.
            seen = len(read_polls(out))
            wait_for(lambda: len(read_polls(out)) >= seen + 2, "reader polls during publish",
                     reader)

        started = time.monotonic()
        warehouse.publish("big", before_checkpoint=while_publishing)
        finished = time.monotonic()
        wait_for(lambda: sum(p["t0"] > finished for p in read_polls(out)) >= 5,
                 "reader polls after publish", reader)
        stop.touch()
        assert reader.wait(TIMEOUT_S) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()

    polls = read_polls(out)
    wrong = [p for p in polls if p["error"] or p["result"] != old]
    assert not wrong, (
        f"a reader that opened the published file before the publish saw {len(wrong)} of "
        f"{len(polls)} polls without the complete old data (published file written in place?); "
        f"first: {wrong[0]['error'] or wrong[0]['result']} (expected {old})")
    during = [p for p in polls if p["t1"] > started and p["t0"] < finished]
    after = [p for p in polls if p["t0"] > finished]
    assert len(during) >= 2 and len(after) >= 5, (len(during), len(after))
    # Reconnecting shows the new version; nothing staged is left beside it.
    assert checksum(published) == new
    assert sorted(p.name for p in published.parent.iterdir() if p.is_file()) == sorted(
        [published.name, warehouse.record_path(published).name]), "something staged is left"


# --- b. the published path gets a new inode ----------------------------------------------------

def test_publish_gives_the_path_a_new_inode_and_leaves_the_old_one_whole(install, templates,
                                                                        tmp_path):
    published = publish_from(templates["small"], "inode", "new", 2, SMALL_ROWS)
    fd = os.open(published, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        old_bytes = os.pread(fd, before.st_size + 1, 0)
        warehouse.publish("inode")
        after = os.stat(published)
        held = os.fstat(fd)
        held_bytes = os.pread(fd, max(held.st_size, before.st_size) + 1, 0)
    finally:
        os.close(fd)
    assert after.st_ino != before.st_ino, (
        f"publish kept inode {before.st_ino} of {published}: the file was written in place, "
        "not replaced")
    assert held.st_ino == before.st_ino and held.st_nlink == 0, "the old inode is not unlinked"
    assert hashlib.sha256(held_bytes).hexdigest() == hashlib.sha256(old_bytes).hexdigest(), (
        f"the old inode, held open, changed under its reader: {before.st_size:,} bytes before, "
        f"{held.st_size:,} after")
    # The bytes behind the fd are still the whole old database; the path is the new one.
    copy = tmp_path / "held.duckdb"
    copy.write_bytes(held_bytes)
    assert checksum(copy) == expected("old", 1, SMALL_ROWS)
    assert checksum(published) == expected("new", 2, SMALL_ROWS)


# --- c. a publish killed at any step ----------------------------------------------------------

PUBLISHER = r"""
import io, json, os, sys, time
from datetime import datetime, timezone
sys.path.insert(0, sys.argv[1])
import duckdb
from pipeline import warehouse
from pipeline.changes import code_fingerprint

# A fork server: what publish loads on first use (the code fingerprint; pandas, which DuckDB
# imports for a datetime parameter) is loaded once here, and each publish runs in a fork of it.
code_fingerprint()
with duckdb.connect() as con:
    con.execute("select ?::timestamptz", [datetime.now(timezone.utc)])
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CALLS = {"sendfile", "copy_file_range", "splice", "write", "writelines", "pwrite", "truncate",
         "ftruncate", "fsync", "fdatasync"}


def short(path):
    path = os.fsdecode(path)
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def publish(run_id, pause_at, marker):
    # Run publish; before its pause_at-th file-system step, tell the parent and wait for SIGKILL.
    points, active = [], [False]

    def step(what):
        if not active[0]:
            return
        points.append(what)
        if len(points) == pause_at:
            active[0] = False
            with open(marker + ".part", "w") as fh:
                json.dump(points, fh)
            os.rename(marker + ".part", marker)
            time.sleep(120)

    def audit(event, args):
        if event == "open" and args[2] & WRITING:
            step(f"open {short(args[0])} for writing")
        elif event in ("os.rename", "os.remove", "os.truncate", "os.link", "os.symlink",
                       "shutil.copyfile", "shutil.copymode", "shutil.copystat"):
            paths = [short(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            step(f"{event} {' -> '.join(paths)}")

    def profile(frame, event, arg):
        if event == "c_call" and getattr(arg, "__name__", None) in CALLS and (
                getattr(arg, "__module__", None) == "posix"
                or isinstance(getattr(arg, "__self__", None), io.IOBase)):
            step(f"{arg.__name__}()")

    sys.addaudithook(audit)
    sys.setprofile(profile)
    active[0] = True
    warehouse.publish(run_id, before_checkpoint=lambda con: step("before_checkpoint(con)"))
    active[0] = False
    sys.setprofile(None)
    with open(marker + ".part", "w") as fh:
        json.dump({"finished": points}, fh)
    os.rename(marker + ".part", marker)


print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            publish(job["run_id"], job["pause_at"], job["marker"])
            code = 0
        except BaseException:
            import traceback
            with open(job["marker"], "w") as fh:
                json.dump({"error": traceback.format_exc()}, fh)
        finally:
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": status}), flush=True)
"""


class Publisher:
    """The fork server above, started with this test's environment."""

    pid: int | None = None
    """The last publish process."""

    def __init__(self):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(REPO_ROOT)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "ready\n", "the publishing process did not start"

    def start(self, run_id: str, pause_at: int, marker: Path) -> int:
        self.proc.stdin.write(json.dumps(
            {"run_id": run_id, "pause_at": pause_at, "marker": str(marker)}) + "\n")
        self.proc.stdin.flush()
        self.pid = json.loads(self.proc.stdout.readline())["pid"]
        return self.pid

    def status(self) -> int:
        """The exit status (``os.waitpid``) of the last publish process, once it ended."""
        return json.loads(self.proc.stdout.readline())["status"]

    def close(self):
        if self.pid is not None:  # a publish left paused by a failed test
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdin.close()
        try:
            self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def killed_at(seen: list[tuple[str, str]]) -> str:
    return "\n".join(f"  killed before {what}: published file is {state}" for what, state in seen)


@pytest.fixture
def publisher(install):
    started = Publisher()
    yield started
    started.close()


def staged_leftovers(published: Path) -> list[str]:
    return sorted(p.name for p in published.parent.glob(f".{published.name}.*.tmp"))


def test_a_publish_killed_at_any_step_leaves_a_whole_database_and_the_next_one_recovers(
        install, publisher, templates, tmp_path):
    versions = {"old": expected("old", 1, SMALL_ROWS), "new": expected("new", 2, SMALL_ROWS)}
    recovered = expected("recovered", 3, SMALL_ROWS)
    published = settings().warehouse
    seen: list[tuple[str, str]] = []  # (the step it was killed before, the published state)
    staged_seen = False
    for n in range(1, 40):
        published.unlink(missing_ok=True)
        run_id = f"killed_{n}"
        publish_from(templates["small"], run_id, "new", 2, SMALL_ROWS)
        marker = tmp_path / f"paused_{n}.json"
        pid = publisher.start(run_id, n, marker)
        wait_for(marker.exists, f"publish to pause before step {n} (or to finish)")
        steps = json.loads(marker.read_text())
        if isinstance(steps, dict):  # publish ran to its end: n is past its last step
            assert publisher.status() == 0, f"publish failed:\n{steps.get('error')}"
            steps = steps["finished"]
            assert state_of(published, versions) == "new"
            break
        os.kill(pid, signal.SIGKILL)
        assert os.WTERMSIG(publisher.status()) == signal.SIGKILL
        seen.append((steps[-1], state_of(published, versions)))
        staged_seen |= bool(staged_leftovers(published))
        assert seen[-1][1] in versions, (
            "a publish killed mid-way left the published file neither the whole old nor the "
            f"whole new database:\n{killed_at(seen)}")

        # The next run recovers by itself: housekeeping, a build from what is published, publish.
        recover = f"recover_{n}"
        warehouse.housekeeping(recover)
        assert staged_leftovers(published) == [], "housekeeping left a staged publish copy"
        publish_from(templates["small"], recover, "recovered", 3, SMALL_ROWS)
        warehouse.publish(recover)
        assert checksum(published) == recovered, f"no recovery after a kill before {steps[-1]}"
        assert staged_leftovers(published) == []
    else:
        pytest.fail(f"publish did not finish within 40 steps: {steps}")

    report = killed_at(seen)
    print(f"{install}: {len(seen)} kill points, then publish ran to its end\n{report}")
    states = [state for _, state in seen]
    assert states == sorted(states, key=["old", "new"].index), (
        f"the published file went back to the old version:\n{report}")
    assert states[0] == "old" and len(seen) >= 3, report
    if install == "runs-on-other-fs":
        # The fallback stages a copy beside the published file: some kill left it behind, and
        # housekeeping removed it (asserted above).
        assert any("os.rename" in what for what, _ in seen) and staged_seen, report
