"""Soak (issue 18, item 7): scheduled-style runs in a row on the recorded snapshot, with random
faults, then the published warehouse against a clean run's.

It creates a fresh installation in a temporary folder (WH_LANDING_DIR, WH_WAREHOUSE, WH_RUNS_DIR,
WH_QUALITY_DB, WH_REPORTS_DIR and AIRFLOW_HOME all inside it) and starts `python -m pipeline.run`
(what `make run` calls) --runs times, each a separate process as a scheduler would start it. Each
run replays a snapshot folder laid out like ../shared/data: the recorded Eurostat, Cohesion and
registry files, and every good Frontex workbook offered so far (the recorded release first; a
run killed before landing a file finds it again next time). Each run draws one fault:

  none   no fault; it may offer a new Frontex release (the recorded rows re-written under a later
         "Source: FRAN data as of DDMONYY" note, with a few cells of the last months revised), a
         correction of a release already offered (same date, one more cell changed), or nothing;
  kill   starts the run and SIGKILLs its whole process group at a random moment: after a random
         delay, or when a step's log line appears (a landing, "=== warehouse_transform", each
         transform task starting, "dbt |" plus up to 25 s, the publish's quality record, its
         dbt docs, "] published /" (after the rename), the lease released, the report); nine
         kill runs in ten offer a new good file so that there is a build to kill;
  bad    offers a broken Frontex workbook for a new release date: truncated bytes (quarantined
         at landing), a negative count (fails audit_raw) or an unmapped nationality (fails the
         dbt test); sometimes beside a new good release;
  slow   live mode for Frontex against tests/replay_server.py, run in this process: a page
         linking a new release that is trickled past WH_DOWNLOAD_DEADLINE_S=3 (or, one time in
         four, trickled slowly but within the deadline: it must land and publish). A slow run is
         a scheduled Frontex run: `--dag frontex_ingest --dag warehouse_transform` (the other
         sources' DAGs need the internet live; every other run replays them). A release that
         failed to download is offered by the snapshot from the next run on;
  two    two `python -m pipeline.run` started a second apart on the same snapshot (usually
         with a new release): both must succeed, one building what the other finds built.

The code under test is a copy of the work tree as git sees it (tracked and new files), made at
the start like `make mutate` does, so that edits made during the soak do not change what its runs
execute (a changed code fingerprint would also make the next run rebuild); --in-place runs the
work tree itself. The commit and the changed files are recorded in the results.

Release dates stay plausible: after the recorded 2025-06-03, no later than 2025-07-30 (120 days
after April 2025, the newest month), never in the future; once they run out, runs offer
corrections. After the runs, one final run with no fault; then a clean installation replays only
the good workbooks, in the order the soak landed them (correction numbers follow landing order),
in one run, and the published marts of both are compared.

Checked after every run (a violation fails the soak, naming the run, its fault and its log):
  - the published file is byte-identical to before the run (sha256), or a complete publish (it
    opens, meta.publish_log has a new row), and agrees with what the run printed; nothing is
    set aside as broken;
  - no planted bad file is in the published raw.load_log; `pipeline.run files --state rejected`
    lists only planted bad files, and every planted bad file is rejected after its run;
  - exit codes: 0 for no fault, two at once (both) and a slow download within the deadline;
    non-zero for a bad file and a download past the deadline; a killed run leaves no process
    of its group behind;
  - after a successful run every good file offered so far (in a slow run: the one downloaded
    and those landed before) is in the published warehouse;
  - the quality history (WH_QUALITY_DB, quality.runs: the report's run history) records as
    published only runs that did publish (meta.publish_log of the published warehouse).
At the end: the final run succeeds; every good file is published or superseded; each table (and
one-argument table macro, called with current_date) of schema marts has the same row count and
the same order-independent hash of its rows as in the clean installation. Columns that differ
between installations by design are left out (EXCLUDED_COLUMNS: landing_file, loaded_at,
landed_at, counts_from, run_id); doubles are compared rounded to 6 decimals. A difference is
shown with sample rows.

Output: a line per run as it ends, a table of runs (n, fault, exit code, seconds, published /
unchanged / failed / killed, warehouse changed?), the comparison, a verdict; the same in
bench/results/soak-<UTC time>.json (written only when the soak completes). Exit code 0 when
nothing broke, 1 on any violation (the installation folder is then kept), 2 on bad usage.
Interrupted (Ctrl-C, SIGTERM), it kills the runs under way and writes no results.

Cost: ~10 s for a run with nothing new, ~60-70 s for a build, on 2 cores: 30 runs take about
half an hour, and about 2 GB of disk (reports, run folders, failed builds). Not for CI. Run one
soak at a time on a shared machine.
Replay a soak with --seed (faults, files and kill points are drawn from it; how far a run has
got after a random delay depends on the machine).

Usage: python -m bench.soak [--runs 30] [--seed S] [--keep] [--dir TMP] [--faults kill,bad,...]
                            [--in-place] [--snapshot DIR] [--run-timeout S] [--out FILE]
       make soak ARGS="--runs 4"
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"

FAULTS = {"none": 0.30, "kill": 0.32, "bad": 0.15, "slow": 0.11, "two": 0.12}
"""Fault of a run and its weight."""
RECORDED_RELEASE = date(2025, 6, 3)
LAST_RELEASE = date(2025, 7, 30)
"""120 days after April 2025, the newest month of the recorded workbook."""
OTHER_FAMILIES = ("eurostat", "cohesion", "registries")

KILL_POINTS = [
    # (name, log line that triggers the kill (None: a random delay), extra delay range in s)
    ("landing", "landed file:", (0.0, 0.5)),
    ("transform start", "=== warehouse_transform", (0.0, 1.0)),
    ("prepare_build", "starting task_id=prepare_build", (0.0, 0.3)),
    ("load_raw", "starting task_id=load_raw", (0.0, 1.0)),
    ("audit_raw", "starting task_id=audit_raw", (0.0, 4.0)),
    ("dbt", "dbt |", (0.0, 25.0)),
    ("audit_marts", "starting task_id=audit_marts", (0.0, 3.0)),
    ("publish", "starting task_id=publish", (0.0, 1.0)),
    ("publish: quality recorded", "recorded as published", (0.0, 0.5)),
    ("publish: dbt docs done", "dbt docs of the build", (0.0, 0.3)),
    ("publish: renamed", "] published /", (0.0, 0.05)),
    ("lease released", "released the warehouse", (0.0, 0.2)),
    ("report", "starting task_id=report", (0.0, 2.0)),
    ("random delay", None, (1.0, 70.0)),
]

EXCLUDED_COLUMNS = {
    "landing_file": "the landing path starts with the fetch time "
                    "(frontex/20261205T064158980434Z_878d70785032.xlsx)",
    "loaded_at": "when the raw load ran",
    "landed_at": "when the file was landed (read from the landing path)",
    "counts_from": "of a correction or an undated file: the day it was landed",
    "run_id": "the run that loaded the file",
}
"""Columns of marts tables that differ between two installations fed the same files."""
FLOAT_DECIMALS = 6

PAGE = "/what-we-do/monitoring-and-risk-analysis/migratory-map/"
SLOW_DEADLINE_S = 3.0
SLOW_TRICKLE = (4096, 0.1)       # ~40 KB/s: a ~470 KB workbook needs ~12 s
SLOW_OK_DEADLINE_S = 120.0
SLOW_OK_TRICKLE = (32768, 0.1)   # ~320 KB/s: ~1.5 s

PUBLISHED_LINE = re.compile(r"\] published /\S+ \(run (\S+), sha256")
TASK_LINE = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")
EXCERPT_NOISE = ("Pushing xcom", "::endgroup::", "::group::", "running task <TaskInstance",
                 "Returned value was")
EXCERPT_KEYS = ("PIPELINE FAILED", "[error", "Traceback", "failed at step", "Rejected (",
                "taking over", "was not changed", "Published warehouse:", "Nothing new since",
                "migrate failed", "] published /", "nothing published", "recorded as published",
                "IntegrityError")

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f} s] {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def note_of(day: date) -> str:
    """The workbook's release note, as Frontex writes it: "Source: FRAN data as of 03JUN25"."""
    return f"Source: FRAN data as of {day.day:02d}{MONTHS[day.month - 1]}{day:%y}"


# --- the Frontex workbooks the soak offers ----------------------------------------------------

@dataclass
class Offer:
    seq: int
    kind: str
    """recorded, release, correction (good); truncated, negative, unmapped (bad)."""
    release: str
    path: Path
    sha256: str
    good: bool
    run: int
    """The run that first offered it (0: before the first run)."""
    via: str = "snapshot"
    changes: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.seq:03d}-{self.kind}-{self.release}.xlsx"

    def record(self) -> dict:
        return {"name": self.name, "kind": self.kind, "release": self.release,
                "sha256": self.sha256, "good": self.good, "run": self.run, "via": self.via}


class Publisher:
    """Writes the Frontex workbooks of the soak into ``folder``, from the recorded rows."""

    def __init__(self, rng: random.Random, recorded: Path, folder: Path):
        from tests import workbooks

        self.workbooks = workbooks
        self.rng = rng
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.header, self.rows = workbooks.recorded_rows(recorded)
        self.months = list(range(3, len(self.header)))
        self.last_date = RECORDED_RELEASE
        self.offers: list[Offer] = [Offer(0, "recorded", RECORDED_RELEASE.isoformat(), recorded,
                                          sha256_of(recorded), True, 0)]
        self.by_release: dict[str, dict] = {RECORDED_RELEASE.isoformat(): {}}
        """Release date -> the cell changes of its newest good file."""

    @property
    def good(self) -> list[Offer]:
        return [o for o in self.offers if o.good]

    @property
    def bad(self) -> list[Offer]:
        return [o for o in self.offers if not o.good]

    def _next_date(self) -> date | None:
        day = self.last_date + timedelta(days=self.rng.randint(1, 4))
        if day > LAST_RELEASE or day > date.today():
            return None
        self.last_date = day
        return day

    def _cell(self) -> tuple[int, int]:
        """A cell of the last six months with a count."""
        while True:
            r = self.rng.randrange(len(self.rows))
            c = self.rng.choice(self.months[-6:])
            if isinstance(self.rows[r][c], int) and self.rows[r][c] > 0:
                return r, c

    def _write(self, kind: str, day: str, changes: dict, run: int, good: bool,
               rename: int | None = None, truncate: float | None = None) -> Offer:
        rows = [list(row) for row in self.rows]
        for (r, c), value in changes.items():
            rows[r][c] = value
        if rename is not None:
            rows[rename][2] = "Atlantis"
        content = self.workbooks.write_workbook(header=self.header, rows=rows,
                                                note=note_of(date.fromisoformat(day)))
        if truncate is not None:
            content = content[:int(len(content) * truncate)]
        offer = Offer(len(self.offers), kind, day, Path(), "", good, run, changes=changes)
        offer.path = self.folder / offer.name
        offer.path.write_bytes(content)
        offer.sha256 = hashlib.sha256(content).hexdigest()
        self.offers.append(offer)
        if good:
            self.by_release[day] = changes
        return offer

    def release(self, run: int) -> Offer | None:
        """A new release: the recorded rows with one to three cells of the last months revised."""
        day = self._next_date()
        if day is None:
            return None
        changes = {}
        for _ in range(self.rng.randint(1, 3)):
            r, c = self._cell()
            changes[(r, c)] = max(0, self.rows[r][c] + self.rng.randint(-3, 6))
        return self._write("release", day.isoformat(), changes, run, True)

    def correction(self, run: int) -> Offer:
        """A re-issue of a release already offered (mostly the newest two): one more cell."""
        days = sorted(self.by_release)
        day = self.rng.choice(days[-2:] if self.rng.random() < 0.8 else days)
        changes = dict(self.by_release[day])
        r, c = self._cell()
        changes[(r, c)] = changes.get((r, c), self.rows[r][c]) + self.rng.randint(1, 9)
        return self._write("correction", day, changes, run, True)

    def new_good(self, run: int) -> Offer:
        return self.release(run) or self.correction(run)

    def broken(self, run: int, kind: str) -> Offer:
        day = self._next_date() or self.last_date
        if kind == "truncated":
            return self._write(kind, day.isoformat(), {}, run, False,
                               truncate=self.rng.uniform(0.2, 0.9))
        if kind == "negative":
            r, c = self._cell()
            return self._write(kind, day.isoformat(), {(r, c): -self.rng.randint(1, 9)}, run,
                               False)
        return self._write(kind, day.isoformat(), {}, run, False,
                           rename=self.rng.randrange(len(self.rows)))


# --- one installation --------------------------------------------------------------------------

@dataclass
class Published:
    sha256: str | None
    publishes: int
    shas: set[str]
    error: str | None = None


class Installation:
    def __init__(self, root: Path, recorded_root: Path, code: Path):
        self.root = root
        self.recorded_root = recorded_root
        self.code = code
        """The project code its runs execute (a copy of the work tree, or the work tree)."""
        self.warehouse = root / "wh" / "migration.duckdb"
        self.landing = root / "landing"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def env(self, snapshot: Path | None, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WH_", "AIRFLOW_", "AIRFLOW__"))}
        env.update({
            "WH_LANDING_DIR": str(self.landing),
            "WH_WAREHOUSE": str(self.warehouse),
            "WH_RUNS_DIR": str(self.root / "wh" / "runs"),
            "WH_QUALITY_DB": str(self.root / "wh" / "quality_history.duckdb"),
            "WH_REPORTS_DIR": str(self.root / "reports"),
            "AIRFLOW_HOME": str(self.root / "airflow"),
            "PYTHONUNBUFFERED": "1",
            "GX_ANALYTICS_ENABLED": "False",
        })
        if snapshot is not None:
            env["WH_SNAPSHOT_DIR"] = str(snapshot)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.code), env.get("PYTHONPATH"))
                                            if p)
        env.update(extra)
        return env

    def snapshot(self, name: str, offers: list[Offer], names: list[str] | None = None) -> Path:
        """A folder laid out like ../shared/data: ``offers`` as frontex/*.xlsx (symlinks, sorted
        by name in the order given) and the other recorded families."""
        folder = self.root / "snapshots" / name
        (folder / "frontex").mkdir(parents=True)
        for i, offer in enumerate(offers):
            link = names[i] if names else offer.name
            (folder / "frontex" / link).symlink_to(offer.path)
        for family in OTHER_FAMILIES:
            (folder / family).symlink_to(self.recorded_root / family)
        return folder

    def published(self) -> Published:
        if not self.warehouse.exists():
            return Published(None, 0, set())
        digest = sha256_of(self.warehouse)
        try:
            with duckdb.connect(str(self.warehouse), read_only=True) as con:
                publishes = con.execute("select count(*) from meta.publish_log").fetchone()[0]
                shas = {s for (s,) in con.execute("select distinct sha256 from raw.load_log")
                        .fetchall()}
        except duckdb.Error as err:
            return Published(digest, 0, set(), str(err).splitlines()[0][:300])
        return Published(digest, publishes, shas)

    def manifest(self) -> list[dict]:
        path = self.landing / "manifest.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]

    def states(self) -> tuple[dict[str, tuple[str, str]], str | None]:
        """sha256 -> (state, detail), from ``python -m pipeline.run files``; or an error."""
        done = subprocess.run([sys.executable, "-m", "pipeline.run", "files"], cwd=self.code,
                              env=self.env(None), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return {}, f"pipeline.run files exited {done.returncode}: {done.stderr.strip()[-500:]}"
        by_path = {e["path"]: e["sha256"] for e in self.manifest()}
        found = {}
        for line in done.stdout.splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 2 and parts[1] in by_path:
                found[by_path[parts[1]]] = (parts[0], parts[4] if len(parts) > 4 else "")
        return found, None

    def rejected(self) -> tuple[dict[str, str], str | None]:
        """sha256 -> detail of what ``python -m pipeline.run files --state rejected`` lists."""
        done = subprocess.run([sys.executable, "-m", "pipeline.run", "files", "--state",
                               "rejected"], cwd=self.code, env=self.env(None),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return {}, f"pipeline.run files exited {done.returncode}: {done.stderr.strip()[-500:]}"
        by_path = {e["path"]: e["sha256"] for e in self.manifest()}
        found = {}
        for line in done.stdout.splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 2 and parts[0] == "rejected" and parts[1] in by_path:
                found[by_path[parts[1]]] = parts[4] if len(parts) > 4 else ""
        return found, None

    def published_only_in_history(self) -> list[str]:
        """Runs the quality history (WH_QUALITY_DB) records as published that are not publishes
        of the published warehouse (meta.publish_log)."""
        history = self.root / "wh" / "quality_history.duckdb"
        if not history.exists() or not self.warehouse.exists():
            return []
        try:
            with duckdb.connect(str(history), read_only=True) as con:
                said = {r for (r,) in con.execute(
                    "select run_id from quality.runs where state = 'published'").fetchall()}
            with duckdb.connect(str(self.warehouse), read_only=True) as con:
                logged = {r for (r,) in con.execute("select run_id from meta.publish_log")
                          .fetchall()}
        except duckdb.Error as err:
            return [f"(could not compare: {str(err).splitlines()[0][:200]})"]
        return sorted(said - logged)

    def broken_files(self) -> list[str]:
        return sorted(p.name for p in self.warehouse.parent.glob(f"{self.warehouse.name}.broken-*"))


# --- processes ---------------------------------------------------------------------------------

def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Run:
    """One ``python -m pipeline.run`` in its own process group, its output in ``log``; kills it
    when ``marker`` appears in its output (after ``delay`` s), or ``delay`` s after the start
    when the marker is None and a kill is asked for."""

    active: set["Run"] = set()
    """Runs not finished yet (killed when the soak is interrupted)."""

    def __init__(self, label: str, args: list[str], env: dict, log: Path, cwd: Path,
                 kill: tuple[str | None, float] | None = None):
        self.label = label
        self.log = log
        self.kill = kill
        self.killed_after: float | None = None
        self.marker_at: float | None = None
        self.survivors: list[int] = []
        self._out = log.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        Run.active.add(self)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        self.seconds = 0.0

    def _read(self) -> None:
        marker = self.kill[0].encode() if self.kill and self.kill[0] else None
        for line in iter(self.proc.stdout.readline, b""):
            self._out.write(line)
            if marker is not None and self.marker_at is None and marker in line:
                self.marker_at = time.monotonic()
        self._out.flush()

    def poll(self) -> bool:
        """Kill when due; True once the process has ended."""
        if self.proc.poll() is not None:
            return True
        if self.kill is not None and self.killed_after is None:
            marker, delay = self.kill
            since = self.started if marker is None else self.marker_at
            if since is not None and time.monotonic() - since >= delay:
                self.killed_after = time.monotonic() - self.started
                self._kill_group()
        return False

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, timeout_s: float) -> None:
        while not self.poll():
            if time.monotonic() - self.started > timeout_s:
                self.killed_after = -1.0  # timed out
                self._kill_group()
            time.sleep(0.05)
        self.proc.wait()
        Run.active.discard(self)
        self._pump.join(timeout=30)
        self._out.close()
        self.seconds = time.monotonic() - self.started
        time.sleep(0.3)
        self.survivors = group_members(self.proc.pid)
        if self.survivors:  # ours: they were started in this run's process group
            self._kill_group()

    @property
    def code(self) -> int:
        return self.proc.returncode

    @property
    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def published_run(self) -> str | None:
        """The run id this process published, from pipeline.warehouse's log line
        ("published /path/migration.duckdb (run <id>, sha256 ...)"), or None."""
        found = PUBLISHED_LINE.search(self.text)
        return found.group(1) if found else None

    @property
    def last_task(self) -> str | None:
        """The DAG and task that started last (where a killed run was)."""
        dag = task = None
        for line in self.text.splitlines():
            if line.startswith("=== ") and ": running" in line:
                dag, task = line[4:].split(":")[0], None
            found = TASK_LINE.search(line)
            if found:
                task = found.group(1)
        return f"{dag}.{task}" if dag and task else dag

    @property
    def said(self) -> str:
        """What the run's summary said: published, unchanged, or failed."""
        text = self.text
        if "Published warehouse:" in text:
            return "published"
        if "warehouse unchanged" in text:
            return "unchanged"
        return "failed" if self.code else "no summary"

    @property
    def summary_line(self) -> str:
        return next((line for line in self.text.splitlines()
                     if line.startswith(("Published warehouse:", "Nothing new since"))), "")

    @property
    def result(self) -> str:
        """What the run did: killed, published (its log says so), else what it said."""
        if self.killed_after is not None and self.code == -signal.SIGKILL:
            return "killed"
        if self.published_run:
            return "published"
        return self.said

    def excerpt(self, lines: int = 12, tail: int = 4) -> str:
        """The lines that say what happened (failures, rejections, take-overs, publishes, the
        summary), then the last lines of the log (where a killed run was)."""
        every = [line for line in self.text.splitlines()
                 if line.strip() and not any(n in line for n in EXCERPT_NOISE)]
        picked = [i for i, line in enumerate(every) if any(k in line for k in EXCERPT_KEYS)]
        chosen = sorted(set(picked[-lines:]) | set(range(max(0, len(every) - tail), len(every))))
        return "\n".join(every[i][:300] for i in chosen)


# --- comparing two published warehouses ---------------------------------------------------------

def _relations(con) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(label, SQL of the relation, [(column, type)]) of every table and view of schema marts and
    every one-argument table macro there (called with current_date)."""
    found = []
    for (name,) in con.execute("""select table_name from information_schema.tables
                                  where table_schema = 'marts' order by 1""").fetchall():
        found.append((f"marts.{name}", f'marts."{name}"'))
    for name, params in con.execute("""select function_name, parameters from duckdb_functions()
                                       where schema_name = 'marts'
                                         and function_type = 'table_macro'
                                       order by 1""").fetchall():
        if len(params) == 1:
            found.append((f"marts.{name}(current_date)", f'marts."{name}"(current_date)'))
    out = []
    for label, sql in found:
        columns = [(c, t) for c, t, *_ in con.execute(f"describe select * from {sql}").fetchall()]
        out.append((label, sql, columns))
    return out


def _expressions(columns: list[tuple[str, str]]) -> list[str]:
    """Compared columns in name order, doubles rounded (sums may differ in the last bits)."""
    exprs = []
    for name, kind in sorted(columns):
        if name in EXCLUDED_COLUMNS:
            continue
        if kind.upper() in ("DOUBLE", "FLOAT", "REAL") or kind.upper().startswith("DECIMAL"):
            exprs.append(f'round("{name}"::double, {FLOAT_DECIMALS}) + 0.0 as "{name}"')
        else:
            exprs.append(f'"{name}"')
    return exprs


def fingerprint(path: Path) -> dict[str, dict]:
    """Per relation of schema marts: row count and an order-independent hash of its rows (the sum
    of each row's hash over the compared columns), the compared and excluded columns."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        for label, sql, columns in _relations(con):
            exprs = _expressions(columns)
            names = ", ".join(f'"{c}"' for c, _ in sorted(columns) if c not in EXCLUDED_COLUMNS)
            if exprs:
                rows, digest = con.execute(
                    f"select count(*), coalesce(sum(hash({names})), 0)::varchar "
                    f"from (select {', '.join(exprs)} from {sql})").fetchone()
            else:
                rows, digest = con.execute(f"select count(*), '0' from {sql}").fetchone()
            out[label] = {"rows": rows, "hash": digest,
                          "columns": sorted(c for c, _ in columns if c not in EXCLUDED_COLUMNS),
                          "excluded": sorted(c for c, _ in columns if c in EXCLUDED_COLUMNS)}
    return out


def _rows(path: Path, label: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        [(_, sql, columns)] = [r for r in _relations(con) if r[0] == label]
        names = [c for c, _ in sorted(columns) if c not in EXCLUDED_COLUMNS]
        return names, con.execute(f"select {', '.join(_expressions(columns))} from {sql}").fetchall()


def _samples(soak: Path, clean: Path, label: str, limit: int = 3) -> str:
    """Rows of one relation found in one warehouse and not the other (both ways), as text."""
    from collections import Counter

    try:
        names, mine = _rows(soak, label)
        _, theirs = _rows(clean, label)
    except Exception as err:  # noqa: BLE001 - samples are a help, never the verdict
        return f" (no sample rows: {type(err).__name__}: {str(err)[:300]})"
    a, b = Counter(map(repr, mine)), Counter(map(repr, theirs))
    text = ""
    for side, only in (("soak's", a - b), ("clean", b - a)):
        for row in sorted(only)[:limit]:
            text += f"\n      only in the {side} warehouse: {row[:600]}"
    return text + f"\n      columns: {', '.join(names)}"


def compare(soak: Path, clean: Path) -> tuple[list[str], dict, dict]:
    """Differences between the marts of two published warehouses (empty: the same), and the
    fingerprints of both."""
    a, b = fingerprint(soak), fingerprint(clean)
    differences = []
    for label in sorted(set(a) | set(b)):
        if label not in b:
            differences.append(f"{label}: only in the soak's warehouse")
            continue
        if label not in a:
            differences.append(f"{label}: only in the clean warehouse")
            continue
        if a[label]["columns"] != b[label]["columns"]:
            differences.append(f"{label}: columns differ: soak {a[label]['columns']}, clean "
                               f"{b[label]['columns']}")
            continue
        if (a[label]["rows"], a[label]["hash"]) != (b[label]["rows"], b[label]["hash"]):
            differences.append(f"{label}: {a[label]['rows']:,} rows in the soak's warehouse, "
                               f"{b[label]['rows']:,} in the clean one; contents differ"
                               + _samples(soak, clean, label))
    return differences, a, b


# --- the code under test --------------------------------------------------------------------

def code_provenance() -> dict:
    """The work tree's commit and the files changed or new against it (git status)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=False).stdout
    return {"commit": git("rev-parse", "HEAD").strip() or "unknown",
            "changed": [line[3:] for line in git("status", "--porcelain").splitlines()]}


def code_copy(target: Path) -> tuple[Path, dict]:
    """The work tree as git sees it (tracked and new files, nothing ignored) copied to ``target``
    (mutate.run.clean_copy): other people's edits during the soak do not change the code its
    runs execute."""
    from mutate.run import clean_copy

    provenance = code_provenance()
    clean_copy(target)
    return target, provenance


# --- the soak ---------------------------------------------------------------------------------

@dataclass
class Violation:
    run: int | str
    fault: str
    what: str
    log: str | None = None
    excerpt: str | None = None


class Soak:
    def __init__(self, args, root: Path, recorded_root: Path, code: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.root = root
        self.recorded_root = recorded_root
        self.inst = Installation(root, recorded_root, code)
        self.publisher = Publisher(self.rng, recorded_root / "frontex" / "ibc.xlsx",
                                   root / "offered")
        self.runs: list[dict] = []
        self.violations: list[Violation] = []
        self.server = None
        self.history_reported: set[str] = set()

    # -- drawing a run ---------------------------------------------------------------------

    def draw(self, n: int) -> dict:
        faults = {f: w for f, w in FAULTS.items() if f in self.args.faults}
        fault = self.rng.choices(list(faults), weights=list(faults.values()))[0]
        plan: dict = {"fault": fault, "new": [], "detail": ""}
        if fault == "none":
            pick = self.rng.random()
            if pick < 0.55:
                plan["new"].append(self.publisher.new_good(n))
            elif pick < 0.80:
                plan["new"].append(self.publisher.correction(n))
        elif fault == "kill":
            name, marker, (low, high) = self.rng.choice(KILL_POINTS)
            plan["kill"] = (marker, round(self.rng.uniform(low, high), 2))
            plan["detail"] = f"at {name}" + (f" +{plan['kill'][1]:g} s" if marker else
                                              f" {plan['kill'][1]:g} s")
            if self.rng.random() < 0.9:  # most kill points are in a build: give it one
                plan["new"].append(self.publisher.new_good(n))
        elif fault == "bad":
            kind = self.rng.choices(["truncated", "negative", "unmapped"], [0.4, 0.4, 0.2])[0]
            if self.rng.random() < 0.3:
                plan["new"].append(self.publisher.new_good(n))
            plan["bad"] = self.publisher.broken(n, kind)
            plan["detail"] = kind
        elif fault == "slow":
            plan["live"] = self.publisher.release(n) or self.publisher.correction(n)
            plan["live"].via = "live"
            plan["within"] = self.rng.random() < 0.25
            plan["detail"] = "within the deadline" if plan["within"] else "past the deadline"
        elif fault == "two":
            if self.rng.random() < 0.8:
                plan["new"].append(self.publisher.new_good(n))
        return plan

    # -- running one -------------------------------------------------------------------------

    def start_server(self):
        if self.server is None:
            from tests.replay_server import ReplayServer
            self.server = ReplayServer().start()
        return self.server

    def run(self, n: int, plan: dict, label: str | None = None) -> dict:
        label = label or f"{n:02d}"
        fault = plan["fault"]
        before = self.inst.published()
        landed_before = {e["sha256"] for e in self.inst.manifest() if e["status"] == "landed"}
        good_offered = [o for o in self.publisher.good
                        if o.run < n or any(o is x for x in plan["new"]) or fault == "final"]
        if fault == "slow":
            good_offered = [o for o in good_offered if o is not plan["live"]]
        offered = list(good_offered) + ([plan["bad"]] if "bad" in plan else [])
        offered.sort(key=lambda o: o.seq)
        args: list[str] = []
        snapshot = self.inst.snapshot(f"run-{label}", offered)
        env = self.inst.env(snapshot)
        if fault == "slow":
            live = plan["live"]
            srv = self.start_server()
            day = date.fromisoformat(live.release)
            # Frontex names the file by its date (..._YYYY_MM_DD.xlsx); one folder per run keeps
            # every link new (a live URL already landed is not fetched again).
            link = f"/assets/Migratory_routes/run{n}/Monthly_detections_of_IBC_{day:%Y_%m_%d}.xlsx"
            from tests.replay_server import XLSX_TYPE, Reply
            srv.route(PAGE, Reply(body=(f'<html><body><h1>Migratory map</h1><a href="{link}">'
                                        'Monthly detections of IBC</a></body></html>').encode(),
                                  headers={"Content-Type": "text/html; charset=utf-8"}))
            srv.route(link, Reply(body=live.path.read_bytes(), headers={"Content-Type": XLSX_TYPE},
                                  trickle=SLOW_OK_TRICKLE if plan["within"] else SLOW_TRICKLE))
            env.pop("WH_SNAPSHOT_DIR")
            env.update({"WH_CURATED_DIR": str(snapshot), "WH_FRONTEX_PAGE_URL": srv.url(PAGE),
                        "WH_DOWNLOAD_DEADLINE_S": str(SLOW_OK_DEADLINE_S if plan["within"]
                                                      else SLOW_DEADLINE_S),
                        "WH_HTTP_TIMEOUT_S": "10", "WH_HTTP_RETRIES": "1",
                        "WH_HTTP_BACKOFF_S": "0.01"})
            args = ["--dag", "frontex_ingest", "--dag", "warehouse_transform"]
        new_names = [o.name for o in plan["new"]] + ([plan["live"].name] if "live" in plan else [])
        say(f"run {label}: {fault}{' ' + plan['detail'] if plan['detail'] else ''}"
            + (f"; new: {', '.join(new_names)}" if new_names else "; nothing new offered")
            + (f"; bad: {plan['bad'].name}" if "bad" in plan else ""))
        procs = [Run(f"{label}", args, env, self.inst.logs / f"run-{label}.log", self.inst.code,
                     kill=plan.get("kill"))]
        if fault == "two":
            time.sleep(1.0)
            procs.append(Run(f"{label}b", args, env, self.inst.logs / f"run-{label}b.log",
                             self.inst.code))
        for p in procs:
            p.finish(self.args.run_timeout)
        after = self.inst.published()
        record = {
            "n": label, "fault": fault, "detail": plan["detail"],
            "new": new_names, "bad": plan["bad"].name if "bad" in plan else None,
            "exit": [p.code for p in procs], "seconds": round(max(p.seconds for p in procs), 1),
            "result": "+".join(p.result for p in procs),
            "warehouse_changed": after.sha256 != before.sha256,
            "sha256_before": before.sha256, "sha256_after": after.sha256,
            "publishes_before": before.publishes, "publishes_after": after.publishes,
            "killed_after_s": (round(procs[0].killed_after, 2)
                               if procs[0].killed_after is not None else None),
            "kill_marker_seen": (procs[0].marker_at is not None) if plan.get("kill") and
            plan["kill"][0] else None,
            "killed_in": procs[0].last_task if procs[0].result == "killed" else None,
            "logs": [str(p.log) for p in procs],
        }
        self.check_run(n, plan, procs, before, after, landed_before, good_offered, record)
        self.runs.append(record)
        changed = "changed" if record["warehouse_changed"] else "same"
        say(f"run {label}: exit {','.join(map(str, record['exit']))} in {record['seconds']:.0f} s, "
            f"{record['result']}, warehouse {changed}"
            + (f" (killed after {record['killed_after_s']:.1f} s, in {record['killed_in']})"
               if record["killed_after_s"] and record["killed_after_s"] > 0 else "")
            + (f"; {len(record['violations'])} VIOLATION(S)" if record["violations"] else ""))
        return record

    def violation(self, n, fault: str, what: str, proc: Run | None, record: dict) -> None:
        v = Violation(n, fault, what, str(proc.log) if proc else None,
                      proc.excerpt() if proc else None)
        self.violations.append(v)
        record.setdefault("violations", []).append(what)
        say(f"  VIOLATION run {n} ({fault}): {what}")

    def check_run(self, n: int, plan: dict, procs: list[Run], before: Published,
                  after: Published, landed_before: set[str], good_offered: list[Offer],
                  record: dict) -> None:
        record["violations"] = []
        fault = plan["fault"]
        first = procs[0]

        def bad(what: str, proc: Run | None = first) -> None:
            self.violation(record["n"], fault, what, proc, record)

        for p in procs:
            if p.killed_after == -1.0:
                bad(f"timed out after {self.args.run_timeout:g} s and was killed", p)
            if p.survivors:
                bad(f"processes of its group outlived it: {p.survivors}", p)
        # The published file: byte-identical, or a complete publish.
        changed = after.sha256 != before.sha256
        if changed:
            if after.sha256 is None:
                bad("the published warehouse disappeared")
            elif after.error:
                bad(f"the published warehouse changed and does not open: {after.error}")
            elif after.publishes <= before.publishes:
                bad(f"the published warehouse changed without a new publish "
                    f"({before.publishes} -> {after.publishes} rows in meta.publish_log)")
        for p in procs:
            if p.published_run and not changed:
                bad(f"the log says run {p.published_run} published, but the published file is "
                    "byte-identical", p)
            if p.said == "published" and not p.published_run:
                bad(f"the summary says it published ({p.summary_line[:200]!r}), but this run "
                    "did not publish (no publish line in its log)", p)
            if p.published_run and p.said == "unchanged":
                bad(f"this run published (run {p.published_run}), but its summary says "
                    f"{p.summary_line[:300]!r}", p)
        if changed and not any(p.result in ("published", "killed") for p in procs):
            bad("the published file changed, though no run published or was killed")
        if self.inst.broken_files():
            bad(f"a published file was set aside as broken: {self.inst.broken_files()}")
        claimed = set(self.inst.published_only_in_history()) - self.history_reported
        if claimed:
            self.history_reported |= claimed
            bad(f"the quality history ({self.inst.root / 'wh' / 'quality_history.duckdb'}, "
                f"table quality.runs; the report's run history) records run(s) {sorted(claimed)} "
                "as published, but the published warehouse has no such publish "
                "(meta.publish_log)")
        planted = {o.sha256: o for o in self.publisher.bad}
        leaked = [planted[s].name for s in after.shas & set(planted)]
        if leaked:
            bad(f"a planted bad file is in the published warehouse: {leaked}")
        # Exit codes.
        codes = [p.code for p in procs]
        if fault in ("none", "two", "final") and any(codes):
            bad(f"exit codes {codes}, expected 0 (fault: {fault})",
                next(p for p in procs if p.code))
        if fault == "kill":
            if first.killed_after is None and first.code != 0:
                bad(f"the kill point was never reached and the run exited {first.code}")
            record["kill_reached"] = first.killed_after is not None
        if fault == "bad" and first.code == 0:
            bad(f"a run offering a bad file ({plan['bad'].name}) exited 0")
        if fault == "slow":
            if plan["within"] and first.code != 0:
                bad(f"a slow download within the deadline failed: exit {first.code}")
            if not plan["within"] and first.code == 0:
                bad("a download trickled past WH_DOWNLOAD_DEADLINE_S did not fail the run")
            live_landed = any(e["sha256"] == plan["live"].sha256 for e in self.inst.manifest())
            if not plan["within"] and live_landed:
                bad("a download stopped by the deadline was landed")
            record["live_landed"] = live_landed
        # Every good file offered is published after a successful run.
        if all(c == 0 for c in codes):
            if fault == "slow":
                expected = {plan["live"].sha256} | {o.sha256 for o in good_offered
                                                    if o.sha256 in landed_before}
            else:
                expected = {o.sha256 for o in good_offered}
            missing = [o.name for o in self.publisher.good if o.sha256 in expected - after.shas]
            if missing:
                bad(f"the run succeeded, but good files offered are not in the published "
                    f"warehouse: {missing}")
        # States: only planted bad files rejected; this run's bad file rejected.
        rejected, error = self.inst.rejected()
        if error:
            bad(error)
        good = {o.sha256: o for o in self.publisher.good}
        for sha, detail in rejected.items():
            if sha in good:
                bad(f"good file {good[sha].name} (offered in run {good[sha].run}) is rejected: "
                    f"{detail[:500]}")
            elif sha not in planted:
                bad(f"a file the soak did not plant is rejected: {sha[:12]} {detail[:300]}")
        if "bad" in plan and plan["bad"].sha256 not in rejected:
            bad(f"the bad file {plan['bad'].name} is not rejected after its run")
        record["rejected"] = sorted(planted[s].name if s in planted else s for s in rejected)

    # -- the whole soak ----------------------------------------------------------------------

    def soak(self) -> dict:
        for n in range(1, self.args.runs + 1):
            self.run(n, self.draw(n))
        self.run(self.args.runs + 1, {"fault": "final", "new": [], "detail": "no fault"},
                 label="final")
        return self.final_checks()

    def final_checks(self) -> dict:
        out: dict = {}
        states, error = self.inst.states()
        if error:
            self.violations.append(Violation("end", "-", error))
        for o in self.publisher.good:
            state = states.get(o.sha256, ("never landed", ""))[0]
            if state not in ("published", "superseded"):
                self.violations.append(Violation(
                    "end", "-", f"good file {o.name} (offered in run {o.run}) is {state} after "
                    f"the final run: {states.get(o.sha256, ('', ''))[1][:300]}"))
        out["states"] = {o.name: states.get(o.sha256, ("never landed", ""))[0]
                         for o in self.publisher.offers}
        rejected, error = self.inst.rejected()
        planted = {o.sha256: o.name for o in self.publisher.bad}
        out["rejected"] = sorted(planted.get(s, s) for s in rejected)
        out["planted_bad"] = sorted(planted.values())
        out["good_rejected"] = sorted(o.name for o in self.publisher.good if o.sha256 in rejected)
        not_rejected = sorted(name for s, name in planted.items() if s not in rejected)
        if not_rejected:
            self.violations.append(Violation("end", "-", f"planted bad files not rejected: "
                                                         f"{not_rejected}"))
        if out["good_rejected"]:
            self.violations.append(Violation("end", "-", f"good files rejected: "
                                                         f"{out['good_rejected']}"))
        out["clean"] = self.clean_comparison()
        return out

    def clean_comparison(self) -> dict:
        """A clean installation fed only the good workbooks, in the soak's landing order, in
        one run; its marts against the soak's."""
        landed = sorted((e for e in self.inst.manifest()
                         if e["source"] == "frontex" and e["status"] == "landed"),
                        key=lambda e: e["path"])
        by_sha = {o.sha256: o for o in self.publisher.good}
        order = [by_sha[e["sha256"]] for e in landed if e["sha256"] in by_sha]
        missing = [o.name for o in self.publisher.good if o not in order]
        if missing:
            self.violations.append(Violation("end", "-", f"good files never landed by the soak: "
                                                         f"{missing}"))
            order += [o for o in self.publisher.good if o not in order]
        clean = Installation(self.root / "clean", self.recorded_root, self.inst.code)
        snapshot = clean.snapshot("clean", order, names=[f"{i:03d}-{o.name}"
                                                         for i, o in enumerate(order)])
        say(f"clean installation: one run over the {len(order)} good Frontex workbooks in the "
            f"soak's landing order ({', '.join(o.name for o in order)})")
        proc = Run("clean", [], clean.env(snapshot), clean.logs / "run-clean.log", clean.code)
        proc.finish(self.args.run_timeout)
        say(f"clean run: exit {proc.code} in {proc.seconds:.0f} s, {proc.result}")
        out = {"order": [o.name for o in order], "exit": proc.code,
               "seconds": round(proc.seconds, 1), "log": str(proc.log)}
        if proc.code != 0 or not clean.warehouse.exists():
            self.violations.append(Violation("clean", "-", f"the clean run failed (exit "
                                                           f"{proc.code})", str(proc.log),
                                             proc.excerpt()))
            return out
        differences, soak_fp, clean_fp = compare(self.inst.warehouse, clean.warehouse)
        out["differences"] = differences
        out["tables"] = {label: {"rows": fp["rows"], "hash": fp["hash"],
                                 "same": clean_fp.get(label) == fp,
                                 "excluded": fp["excluded"]}
                         for label, fp in soak_fp.items()}
        for d in differences:
            self.violations.append(Violation("compare", "-", d))
        return out


def table(runs: list[dict]) -> str:
    lines = [f"{'n':>5}  {'fault':<56} {'exit':>6} {'secs':>6}  {'result':<19} warehouse"]
    for r in runs:
        fault = r["fault"] + (f" {r['detail']}" if r["detail"] else "")
        if r["new"]:
            fault += f" +{len(r['new'])} new"
        if r.get("kill_reached") is False:
            fault += " (not reached)"
        elif r.get("killed_in"):
            fault += f" in {r['killed_in'].split('.')[-1]}"
        exits = ",".join(map(str, r["exit"]))
        mark = "  <- " + "; ".join(r["violations"])[:200] if r["violations"] else ""
        lines.append(f"{r['n']:>5}  {fault[:56]:<56} {exits:>6} {r['seconds']:>6.0f}  "
                     f"{r['result'][:19]:<19} {'changed' if r['warehouse_changed'] else 'same'}"
                     f"{mark}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30, help="runs with random faults (default 30), "
                   "then one final run with none")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: a random one, printed, to replay a soak)")
    p.add_argument("--faults", default=",".join(FAULTS),
                   help=f"the faults drawn from, comma-separated (default all: "
                        f"{','.join(FAULTS)})")
    p.add_argument("--keep", action="store_true",
                   help="keep the installation folder (it is kept anyway on a violation)")
    p.add_argument("--dir", type=Path, default=None,
                   help="where to create the installation folder (default: the system's temp)")
    p.add_argument("--snapshot", type=Path, default=None,
                   help="the recorded files (default: WH_SNAPSHOT_DIR, else ../shared/data)")
    p.add_argument("--in-place", action="store_true",
                   help="run the work tree's code itself (default: a copy of the work tree as git "
                        "sees it, made at the start, so that edits made during the soak do not "
                        "change the code under test)")
    p.add_argument("--run-timeout", type=float, default=1200.0,
                   help="seconds after which a run counts as hung and is killed (default 1200)")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default bench/results/soak-<UTC time>.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(args.faults) - set(FAULTS))
    if unknown or not args.faults:
        print(f"--faults: unknown {unknown}; choose from {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    recorded = (args.snapshot or Path(os.environ.get("WH_SNAPSHOT_DIR")
                                      or REPO_ROOT.parent / "shared" / "data")).resolve()
    if not (recorded / "frontex" / "ibc.xlsx").is_file():
        print(f"recorded snapshot not found: {recorded / 'frontex' / 'ibc.xlsx'} "
              "(--snapshot DIR, or WH_SNAPSHOT_DIR)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="soak-", dir=args.dir))
    started_at = datetime.now(timezone.utc)
    replay = f"--runs {args.runs} --seed {args.seed}" + (
        f" --faults {','.join(args.faults)}" if set(args.faults) != set(FAULTS) else "")
    say(f"soak: {args.runs} runs + a final one, seed {args.seed} (replay: make soak "
        f"ARGS=\"{replay}\"); installation {root}; recorded files "
        f"{recorded}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    code, provenance = (REPO_ROOT, code_provenance()) if args.in_place else \
        code_copy(root / "code")
    say(f"code under test: {code} (commit {provenance['commit'][:12]}, "
        f"{len(provenance['changed'])} file(s) changed or new against it)")
    soak = Soak(args, root, recorded, code)

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        end = soak.soak()
    except KeyboardInterrupt:
        for run in list(Run.active):
            run._kill_group()
        say(f"interrupted: the runs under way were killed; no results written; installation "
            f"kept in {root}")
        return 130
    finally:
        if soak.server is not None:
            soak.server.stop()
    seconds = time.monotonic() - _STARTED
    print(f"\nRuns ({replay}; {seconds / 60:.1f} min):\n{table(soak.runs)}")
    clean = end["clean"]
    if "tables" in clean:
        same = sum(1 for t in clean["tables"].values() if t["same"])
        print(f"\nPublished marts against a clean installation fed the {len(clean['order'])} "
              f"good workbooks: {same} of {len(clean['tables'])} relations identical "
              f"(rows and hash; excluded columns: {', '.join(EXCLUDED_COLUMNS)})")
    print(f"Rejected at the end: {len(end['rejected'])} ({', '.join(end['rejected']) or 'none'}); "
          f"planted bad files: {len(end['planted_bad'])}; good files rejected: "
          f"{len(end['good_rejected'])}")
    verdict = "PASS" if not soak.violations else "FAIL"
    if soak.violations:
        print(f"\nVERDICT: FAIL, {len(soak.violations)} violation(s) ({replay}):")
        for v in soak.violations:
            print(f"- run {v.run} ({v.fault}): {v.what}" + (f"\n  log: {v.log}" if v.log else ""))
            if v.excerpt:
                print("  " + v.excerpt.replace("\n", "\n  "))
    else:
        print(f"\nVERDICT: PASS: {len(soak.runs)} runs, every one published or left the "
              "published file byte-identical; no good file rejected; the published marts equal "
              "the clean installation's")
    out = args.out or RESULTS_DIR / f"soak-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "verdict": verdict, "seed": args.seed, "runs_asked": args.runs,
        "faults": args.faults, "replay": f"make soak ARGS=\"{replay}\"",
        "started_at": started_at.isoformat(), "minutes": round(seconds / 60, 1),
        "cpus": os.cpu_count(), "installation": str(root), "code": provenance,
        "excluded_columns": EXCLUDED_COLUMNS, "float_decimals": FLOAT_DECIMALS,
        "offers": [o.record() for o in soak.publisher.offers],
        "runs": soak.runs, "end": end,
        "violations": [v.__dict__ for v in soak.violations],
    }, indent=1, default=str), encoding="utf-8")
    print(f"Results: {out}")
    if soak.violations or args.keep:
        print(f"Installation kept: {root}")
    else:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
