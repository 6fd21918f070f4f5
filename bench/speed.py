"""Speed and memory goals side by side (issues #10 and #21): time and peak memory of the
warehouse's paths at 1x, 10x and 100x the recorded data, each against an anchor doing the same
work, every measure repeated, in one run.

Measures (each sample in a fresh subprocess; time and peak memory are the subprocess's own):
  land        landing (ingest.source.land_new) of the generated Frontex workbook and Eurostat
              files: fetch, parse, validate, keep the file and its parsed Parquet.
              Anchor: DuckDB read_csv of the same rows (the rows the load produced, without
              lineage, written as CSV, types given) into a table. Target: <= 1.5x (issue 21,
              "workbook-to-table"). land also runs load (its anchor's CSV is the loaded rows).
  load        the raw load (ingest.load.load_source) of what was landed, into a fresh DuckDB
              file. It reads the Parquet landing kept, so its anchor is DuckDB read_parquet of
              the same Parquet files into a table. Target: <= 1.25x.
  audit       the raw audit (expectations.audit.run_checks on suites_by_stage.raw_checks) of
              that load. Targets: <= 1.0x the load (anchor: the load's median) and peak
              <= 1024 MiB.
  pipeline    a first `python -m pipeline.run` (= make run) on fresh folders: at 1x on the
              recorded snapshot itself, at N x on a generated one (N Frontex releases).
              Target at 1x: <= 45 s.
  noop        then a second run on the same folders with nothing new. Target: <= 0.10 of the
              first run (issue 21; anchor: the first run of the same repetition).
  new-release then a run on the same folders with ONE more Frontex release (bench/_gen.py
              next_release: a month later, with the months up to it). Target: <= 0.25 of the
              first run at 10x (issue 21).
  figures     (with pipeline) the published marts checked: release 2025-06-03 of the first run
              against the known figures (173,460 rows, 4,966,869 detections, 9 routes, Jan 2009 -
              Apr 2025; EU28 2015 ordered to leave 533,395; at 1x 57,474 returns rows); the no-op
              run leaves every mart as it was; the new release leaves every earlier release's
              rows and detections, and the Eurostat marts, as they were.
  storage     (issue 20; bench/object_storage.py) at 1x on the recorded snapshot only, whatever
              --scales says: a first run and a no-op rerun with WH_STORAGE_URL on a SeaweedFS
              the bench starts against the same runs on local files, interleaved,
              --storage-repeats times each, and a reader's first answer. No target.
  linear:*    derived, when two scales or more were measured: seconds per million rows of land,
              load, audit (and pipeline) at each scale against the smallest scale.
              Targets: s/Mrow <= 1.5 x that of the smallest scale; peak <= 2048 MiB.

Repetition: --repeats samples of each measure (default 3). land/load/audit and their anchors
are interleaved round by round, the order flipping each round (round 1: project then anchor,
round 2: anchor then project, ...), so a busy minute hits both sides. A pipeline repetition is a
first run, its no-op rerun and its new-release run on fresh folders. Each row gives the median
(project_s, anchor_s), the spread (min and max of each side, and of the ratio sample by sample),
n, and the 1-minute load average (os.getloadavg) before and after each sample.

Peak memory: each subprocess and all its descendants are polled from /proc every 0.25 s, each
process's own high-water mark (VmHWM) kept, and wait4's ru_maxrss as well. peak_mib is the
largest single process (named in `process`), tree_peak_mib the largest sum of resident sets of
the tree at one poll. Times exclude the interpreter's start and imports for land/load/audit
(Great Expectations' import is in the audit's note); the pipeline's are wall-clock of the whole
command (its CPU seconds in the note).

Caps: the generated data is bigger than the project's defaults allow for one download
(WH_MAX_DOWNLOAD_MB) and one workbook unpacked (WH_MAX_XLSX_UNPACKED_MB: the 100x workbook
unpacks to about 590 MB). The bench runs every child without the caller's WH_* settings and sets
these two for its own data, computed from the generated files (10% above the largest, never
below the default); the values and why are printed and written under "settings".

Data (bench/_gen.py; generated once per scale under bench/.data, git-ignored, and reused).
The pipeline is measured at scales up to --pipeline-max-scale (default 10).

Results: a table on stdout and --out (default bench/results/latest.json): an object with
"rows" (one per measure and scale: measure, scale, project_s, anchor_s, ratio, peak_mib, target,
met, note, n, the spread, load averages, tree_peak_mib, process), "goals" (issue 21's goals:
goal, scale, target, measured, unit, met, note; met null when not measured), "peak_memory" (per
scale, the largest process), "settings" (the caps per scale) and "runs" (each run whose rows
the file holds: commit, machine, arguments, time, and which rows). Rows measured replace those of
the same measure and scale, the others are kept; goals are computed from the rows of the file.
A run in which anything failed (a child, a pipeline run, published figures that could not be
read, an interruption or SIGTERM) never touches --out: it writes failed-<UTC time>.json beside
it. Timings are never asserted by tests.

Usage: python -m bench.speed [--scales 1,10,100] [--repeats 3]
                             [--only land,load,audit,pipeline,noop,new-release,storage]
                             [--pipeline-max-scale 10] [--storage-repeats 2]
                             [--reader-repeats 5] [--out bench/results/latest.json] [--keep]
(`make bench ARGS="--scales 1"` for a quick run, `make bench ARGS="--only storage"` for object
storage against local files only.)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import REPO_ROOT

MEASURES = ("land", "load", "audit", "pipeline", "noop", "new-release", "storage")
NEEDS = {"land": ("load",), "load": ("land",), "audit": ("land", "load"),
         "noop": ("pipeline",), "new-release": ("pipeline",)}
SOURCES = ("frontex", "eurostat")
LINEAGE = ("landing_file", "sha256", "release_date", "loaded_at")
RUN_ID = "bench"
SCHEMA = 2

LAND_RATIO = 1.5
LOAD_RATIO = 1.25
AUDIT_RATIO = 1.0
AUDIT_PEAK_MIB = 1024
NOOP_RATIO = 0.10
NEW_RELEASE_RATIO = 0.25
NEW_RELEASE_SCALE = 10
PEAK_GOAL_MIB = 2048
PEAK_GOAL_SCALE = 100
PIPELINE_S = 45.0
LINEAR_RATIO = 1.5
LINEAR_PEAK_MIB = 2048
HEARTBEAT_S = 30
POLL_S = 0.25
CAPPED = ("WH_MAX_DOWNLOAD_MB", "WH_MAX_XLSX_UNPACKED_MB")

# The published figures of the recorded release (tests/test_pipeline_e2e.py, README).
RECORDED_RELEASE = "2025-06-03"
KNOWN = {"rows": 173_460, "detections": 4_966_869, "routes": 9, "first": "2009-01-01",
         "last": "2025-04-01", "eu28_2015_ordered_to_leave": 533_395}
KNOWN_1X = {"returns_rows": 57_474}
EUROSTAT_MARTS = ("fct_returns", "rpt_return_rates", "rpt_returns_reconciliation")

_STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f} s] {message}", flush=True)


# --- children: one measurement each, in a fresh process ---------------------------------------

def child(kind: str, spec: dict) -> dict:
    """Run one measurement here (a fresh process); returns what the parent records."""
    import logging

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The project's own messages (parsed forms used or parsed again, rows loaded, checks run)
    # go to the measurement's log, for diagnosis.
    for name in ("ingest", "expectations"):
        logging.getLogger(name).setLevel(logging.INFO)
    if kind == "land":
        from ingest import catalog
        from ingest.landing import Landing
        from ingest.source import land_new

        landing = Landing(Path(spec["landing"]))
        sources = {name: catalog.spec(name) for name in SOURCES}
        objects = {name: s.source() for name, s in sources.items()}  # imports its modules
        parts, files = {}, 0
        for name, s in sources.items():
            started = time.perf_counter()
            files += len(land_new(objects[name], landing, s.refetch_landed))
            parts[name] = time.perf_counter() - started
        return {"seconds": sum(parts.values()), "parts": parts, "files": files}
    if kind == "load":
        import duckdb

        from ingest import catalog
        from ingest.landing import Landing
        from ingest.load import load_source

        landing = Landing(Path(spec["landing"]))
        for name in SOURCES:
            catalog.spec(name).source()  # imports the parser modules, as a loaded DAG has
        parts, rows = {}, {}
        started = time.perf_counter()
        con = duckdb.connect(spec["db"])
        for name in SOURCES:
            at = time.perf_counter()
            results = load_source(con, landing, catalog.spec(name), RUN_ID)
            parts[name] = time.perf_counter() - at
            rows[name] = sum(r.rows_loaded for r in results)
        con.close()
        return {"seconds": time.perf_counter() - started, "parts": parts, "rows": rows}
    if kind in ("read_csv", "read_parquet"):
        import duckdb

        started = time.perf_counter()
        con = duckdb.connect(spec["db"])
        parts = {}
        for name, what in spec["tables"].items():
            at = time.perf_counter()
            if kind == "read_csv":
                path, columns = what
                struct = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns) + "}"
                source = f"read_csv('{path}', columns={struct}, header=true)"
            else:
                source = "read_parquet([" + ", ".join(f"'{p}'" for p in what) + "])"
            con.execute(f"create table {name} as select * from {source}")
            parts[name] = time.perf_counter() - at
        con.close()
        return {"seconds": time.perf_counter() - started, "parts": parts}
    if kind == "audit":
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        at = time.perf_counter()
        import great_expectations  # noqa: F401  (imported once per process; reported apart)

        gx_import = time.perf_counter() - at
        from expectations import audit, suites_by_stage

        db = Path(spec["db"])
        started = time.perf_counter()
        checks = suites_by_stage.raw_checks(db, RUN_ID)
        error = None
        try:
            summary = audit.run_checks(db, checks, Path(spec["out"]), "raw")
            validated = sum(c["rows"] for c in summary["checks"])
        except audit.AuditFailed as err:
            error, validated = str(err).splitlines()[0], None
        return {"seconds": time.perf_counter() - started, "gx_import_s": gx_import,
                "checks": len(checks), "rows_validated": validated, "error": error}
    raise SystemExit(f"unknown child {kind!r}")


class ChildFailed(Exception):
    pass


# --- watching a process tree ------------------------------------------------------------------

@dataclass
class Watched:
    code: int
    wall: float
    peak_mib: float
    """The largest single process of the tree: its VmHWM polled, or wait4's ru_maxrss."""
    cpu: float
    """User + system seconds of the process and the descendants it waited for."""
    tree_peak_mib: float = 0.0
    """The largest sum of resident sets of the tree at one poll."""
    process: str = ""
    """The command of the largest process."""
    load_before: float = 0.0
    load_after: float = 0.0


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def _load_average() -> str:
    """The machine's 1-minute load average: other work on the machine skews the timings."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children_map(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def _memory_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of ``pid`` in KiB; zeros when it is gone."""
    hwm = rss = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return hwm, rss


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    argv = [a.decode(errors="replace") for a in argv if a]
    if not argv:
        return "?"
    name = Path(argv[0]).name
    if name.startswith("python") and len(argv) > 2 and argv[1] == "-P":
        argv = argv[:1] + argv[2:]  # -P (script folder off sys.path): pipeline/dbt_warm.py
    if name.startswith("python") and len(argv) > 1 and Path(argv[1]).name == "dbt_warm.py":
        return "dbt build (prestarted, pipeline/dbt_warm.py)"
    if name.startswith("python") and len(argv) > 2 and argv[1] == "-m":
        name = f"python -m {argv[2]}" + (f" {argv[3]}" if len(argv) > 3
                                         and not argv[3].startswith("-") else "")
        if "--child" in argv[3:-1]:
            name += f" --child {argv[argv.index('--child') + 1]}"
    elif name.startswith("python") and len(argv) > 1 and not argv[1].startswith("-"):
        # A script (dbt, airflow): its name and its subcommand.
        name = Path(argv[1]).name + (f" {argv[2]}" if len(argv) > 2
                                     and not argv[2].startswith("-") else "")
    elif name.startswith("python") and len(argv) > 1:
        name = f"python {argv[1]}"
    elif len(argv) > 1 and not argv[1].startswith("-"):
        name = f"{name} {argv[1]}"
    return name


def watch(cmd: list[str], env: dict, log: Path, label: str) -> Watched:
    """Run ``cmd`` with its output in ``log``, its process tree polled for memory; a heartbeat
    line every HEARTBEAT_S."""
    before = load1()
    started = time.perf_counter()
    beat = started + HEARTBEAT_S
    hwm: dict[int, tuple[int, str]] = {}
    tree_peak = 0
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                total = 0
                for p in _tree(proc.pid):
                    high, rss = _memory_kib(p)
                    total += rss
                    if high > hwm.get(p, (0, ""))[0]:
                        hwm[p] = (high, hwm.get(p, (0, ""))[1] or _command(p))
                tree_peak = max(tree_peak, total)
                now = time.perf_counter()
                if now >= beat:
                    say(f"  ... {label} still running ({now - started:.0f} s)")
                    beat = now + HEARTBEAT_S
                time.sleep(POLL_S)
        except BaseException:
            # Interrupted: stop what this started (the tree, leaves first), then say so.
            for p in reversed(_tree(proc.pid)):
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
            proc.wait(timeout=30)
            raise
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss: kilobytes on Linux; the largest of the process and its waited-for children.
    biggest, process = max(hwm.values(), default=(0, ""))
    peak = max(biggest, usage.ru_maxrss)
    if usage.ru_maxrss > biggest or not process:
        # Its peak came between two polls: wait4 says it was the process or a child it waited
        # for (the root, for the bench's children, which start none).
        process = hwm.get(proc.pid, (0, ""))[1] or _command_of(cmd)
    return Watched(proc.returncode, wall, peak / 1024, usage.ru_utime + usage.ru_stime,
                   max(tree_peak, peak) / 1024, process, before, load1())


def _command_of(cmd: list[str]) -> str:
    name = " ".join([Path(cmd[0]).name, *cmd[1:3]])
    if "--child" in cmd[:-1]:
        name += f" --child {cmd[cmd.index('--child') + 1]}"
    return name


def _watch(cmd: list[str], env: dict, log: Path,
           label: str) -> tuple[int, float, float, float]:
    """``watch`` as (exit code, wall seconds, peak MiB, CPU seconds) (bench/object_storage.py)."""
    w = watch(cmd, env, log, label)
    return w.code, w.wall, w.peak_mib, w.cpu


def run_child(kind: str, spec: dict, env: dict, log: Path, label: str) -> dict:
    """``child(kind, spec)`` in a fresh interpreter; adds what ``watch`` saw of it."""
    result = log.with_suffix(".json")
    cmd = [sys.executable, "-m", "bench.speed", "--child", kind, "--spec", json.dumps(spec),
           "--result", str(result)]
    w = watch(cmd, env, log, label)
    if w.code != 0:
        raise ChildFailed(f"{label} failed (exit {w.code}); last lines of {log}:\n" + _tail(log))
    out = json.loads(result.read_text())
    out.update(peak_mib=w.peak_mib, tree_peak_mib=w.tree_peak_mib, process=w.process,
               wall_s=w.wall, load_before=w.load_before, load_after=w.load_after)
    return out


# --- the parent: data, measurements, rows --------------------------------------------------------

def clean_env(**settings: str) -> dict:
    """This environment without the warehouse's and Airflow's settings, then ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WH_", "AIRFLOW_", "AIRFLOW__"))}
    env.update(settings)
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def folders(work: Path, snapshot: Path) -> dict:
    return {"WH_SNAPSHOT_DIR": str(snapshot), "WH_LANDING_DIR": str(work / "landing"),
            "WH_WAREHOUSE": str(work / "warehouse" / "migration.duckdb"),
            "WH_RUNS_DIR": str(work / "runs"), "WH_REPORTS_DIR": str(work / "reports"),
            "AIRFLOW_HOME": str(work / "airflow")}


def _default_mb(name: str) -> int:
    from ingest import config

    return int(next(s for s in config.declared() if s.name == name).default)


def caps_for(snapshot: Path) -> dict:
    """WH_MAX_DOWNLOAD_MB and WH_MAX_XLSX_UNPACKED_MB for the files of ``snapshot``: 10% above
    the largest file and the largest workbook unpacked, never below the project's default.
    Returns {"env": {...}, "why": text}."""
    largest = unpacked = 0
    largest_name = unpacked_name = ""
    files = [Path(d) / f for d, _, names in os.walk(snapshot, followlinks=True) for f in names]
    for path in sorted(files):
        if not path.is_file() or path.name.startswith("."):
            continue
        size = path.stat().st_size
        if size > largest:
            largest, largest_name = size, path.name
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as archive:
                total = sum(i.file_size for i in archive.infolist())
            if total > unpacked:
                unpacked, unpacked_name = total, path.name
    mib = 2 ** 20
    env, why = {}, []
    for name, need, what, of in (("WH_MAX_DOWNLOAD_MB", largest, "largest file", largest_name),
                                 ("WH_MAX_XLSX_UNPACKED_MB", unpacked, "largest workbook "
                                  "unpacked", unpacked_name)):
        default = _default_mb(name)
        value = max(default, math.ceil(need * 1.1 / mib))
        env[name] = str(value)
        why.append(f"{name}={value} ({what} {need / mib:,.1f} MiB, {of}; default {default}"
                   + (", RAISED" if value > default else "") + ")")
    return {"env": env, "why": "; ".join(why)}


def export_csv(db: Path, target: Path) -> dict:
    """The rows of each raw table the load filled, without lineage, as CSV; with their types."""
    import duckdb

    from ingest import catalog

    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for name in SOURCES:
            table = catalog.spec(name).raw_table
            columns = [(c, t) for c, t, *_ in con.execute(f"describe {table}").fetchall()
                       if c not in LINEAGE]
            path = target / f"{name}.csv"
            listed = ", ".join(f'"{c}"' for c, _ in columns)
            con.execute(f"copy (select {listed} from {table}) to '{path}' (header, delimiter ',')")
            out[name] = (str(path), columns)
    return out


def parquet_files(landing: Path) -> dict[str, list[str]]:
    """The parsed Parquet files landing kept, per source (what the load reads)."""
    out = {}
    for name in SOURCES:
        files = sorted(str(p) for p in (landing / "parsed").rglob("*.parquet")
                       if name in p.relative_to(landing / "parsed").parts)
        if not files:
            raise ChildFailed(f"no parsed Parquet of {name} under {landing / 'parsed'}")
        out[name] = files
    return out


EXTRA = ("n", "project_min", "project_max", "anchor_min", "anchor_max", "ratio_min",
         "ratio_max", "ratio_median", "load_before", "load_after", "tree_peak_mib", "process",
         "cpu_s", "anchor_cpu_s")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def row(measure: str, scale: float, project_s: float | None, anchor_s: float | None,
        peak_mib: float | None, target: str, met: bool | None, note: str, **extra) -> dict:
    project = _r(project_s)
    anchor = _r(anchor_s)
    ratio = round(project / anchor, 3) if project is not None and anchor else None
    out = {"measure": measure, "scale": scale, "project_s": project, "anchor_s": anchor,
           "ratio": ratio, "peak_mib": None if peak_mib is None else round(peak_mib),
           "target": target, "met": met, "note": note}
    out.update({k: None for k in EXTRA})
    unknown = set(extra) - set(EXTRA)
    if unknown:
        raise TypeError(f"unknown row fields {sorted(unknown)}")
    out.update(extra)
    return out


def sampled_row(measure: str, scale: float, project: list[dict], anchor: list[dict] | None,
                target: str, note: str, anchor_key: str = "seconds") -> dict:
    """A row from samples ({seconds, peak_mib, tree_peak_mib, process, load_before,
    load_after}): medians, spread, ratio sample by sample, load averages, the largest process."""
    p = [s["seconds"] for s in project]
    a = [s[anchor_key] for s in anchor] if anchor else []
    biggest = max(project, key=lambda s: s["peak_mib"])
    ratios = [x / y for x, y in zip(p, a) if y]
    return row(measure, scale, statistics.median(p), statistics.median(a) if a else None,
               biggest["peak_mib"], target, None, note, n=len(p),
               project_min=_r(min(p)), project_max=_r(max(p)),
               anchor_min=_r(min(a)) if a else None, anchor_max=_r(max(a)) if a else None,
               ratio_min=_r(min(ratios)) if ratios else None,
               ratio_max=_r(max(ratios)) if ratios else None,
               ratio_median=_r(statistics.median(ratios)) if ratios else None,
               load_before=[s["load_before"] for s in project],
               load_after=[s["load_after"] for s in project],
               tree_peak_mib=round(max(s["tree_peak_mib"] for s in project)),
               process=biggest["process"],
               cpu_s=_r(statistics.median(s["cpu"] for s in project))
               if all("cpu" in s for s in project) else None,
               anchor_cpu_s=_r(statistics.median(s["cpu"] for s in anchor))
               if anchor and all("cpu" in s for s in anchor) else None)


def judge(r: dict, limit_ratio: float | None = None, limit_peak: float | None = None,
          limit_s: float | None = None) -> dict:
    """Set ``met`` and, where missed, say by how much in the note."""
    missed = []
    # The median of the ratios sample by sample when there are samples, else the ratio.
    ratio = r.get("ratio_median") if r.get("ratio_median") is not None else r["ratio"]
    if limit_ratio is not None and ratio is not None and ratio > limit_ratio:
        missed.append(f"ratio {ratio:.2f} vs {limit_ratio:g} "
                      f"({(ratio / limit_ratio - 1) * 100:+.0f}%)")
    if limit_peak is not None and r["peak_mib"] is not None and r["peak_mib"] > limit_peak:
        missed.append(f"peak {r['peak_mib']:,} MiB vs {limit_peak:,} "
                      f"({(r['peak_mib'] / limit_peak - 1) * 100:+.0f}%)")
    if limit_s is not None and r["project_s"] is not None and r["project_s"] > limit_s:
        missed.append(f"{r['project_s']:.1f} s vs {limit_s:g} s "
                      f"({(r['project_s'] / limit_s - 1) * 100:+.0f}%)")
    r["met"] = not missed
    if missed:
        r["note"] = "MISSED " + "; ".join(missed) + (f". {r['note']}" if r["note"] else "")
    return r


def _split(parts: dict) -> str:
    return " + ".join(f"{k} {v:.2f} s" for k, v in parts.items())


def _median_parts(samples: list[dict]) -> str:
    names = samples[0]["parts"]
    return _split({k: statistics.median(s["parts"][k] for s in samples) for k in names})


def measure_scale(scale: float, wanted: set[str], work: Path, data: Path, facts: dict,
                  repeats: int, settings: dict) -> list[dict]:
    """land, load, audit and their anchors at one scale, ``repeats`` interleaved rounds;
    ``facts`` collects row counts and times for the linear rows, ``settings`` the caps."""
    from bench import _gen

    label = _gen.scale_label(scale)
    snapshot, info = _gen.scale_snapshot(scale, log=say, data_dir=data)
    say(f"{label}: data {snapshot} (Frontex {info['frontex_rows']:,} rows in "
        f"{info['frontex_bytes'] / 2**20:.1f} MiB xlsx, Eurostat {info['eurostat_rows']:,} rows "
        f"in {len(info['eurostat_files'])} SDMX-CSV files; generated in {info['seconds']:.0f} s)")
    caps = caps_for(snapshot)
    settings[label] = caps
    say(f"  caps for the generated data: {caps['why']}")
    here = work / f"scale_{label}"
    here.mkdir()
    env = clean_env(**folders(here, snapshot), **caps["env"])
    samples: dict[str, list[dict]] = {}

    def step(kind: str, spec: dict, round_: int) -> dict:
        tag = f"{kind} @{label} #{round_ + 1}"
        say(f"{tag} ...")
        out = run_child("land" if kind == "land" else kind, spec, env,
                        here / f"{kind}-{round_ + 1}.log", tag)
        say(f"{tag}: {out['seconds']:.2f} s, peak {out['peak_mib']:,.0f} MiB "
            f"({out['process']}), load average {out['load_before']:.1f} -> "
            f"{out['load_after']:.1f}")
        samples.setdefault(kind, []).append(out)
        return out

    # Not "raw.duckdb": DuckDB names the catalog after the stem, and "raw" is a schema.
    landing0, db0 = here / "landing_1", here / "build_1.duckdb"
    csvs = parquets = None
    for r in range(repeats):
        landing = here / f"landing_{r + 1}"
        db = here / f"build_{r + 1}.duckdb"
        land = ("land", {"landing": str(landing)})
        load = ("load", {"landing": str(landing0), "db": str(db)})
        if r == 0:
            step(*land, r)
            load_out = step(*load, r)
            total = sum(load_out["rows"].values())
            say(f"  exporting {total:,} loaded rows as CSV for the anchor ...")
            csvs = export_csv(db0, here)
            parquets = parquet_files(landing0)
            facts.setdefault("rows", {})[scale] = total
        pairs = [[land, ("read_csv", {"db": str(here / f"anchor_csv_{r + 1}.duckdb"),
                                       "tables": csvs})],
                 [load, ("read_parquet", {"db": str(here / f"anchor_parquet_{r + 1}.duckdb"),
                                          "tables": parquets})]]
        for pair in pairs:
            todo = pair[1:] if r == 0 else (pair if r % 2 == 0 else pair[::-1])
            for kind, spec in todo:
                step(kind, spec, r)
        if "audit" in wanted:
            step("audit", {"db": str(db0), "out": str(here / f"audit-{r + 1}")}, r)
        for leftover in (here / f"anchor_csv_{r + 1}.duckdb",
                         here / f"anchor_parquet_{r + 1}.duckdb"):
            leftover.unlink(missing_ok=True)
        if r > 0:
            shutil.rmtree(landing, ignore_errors=True)
            db.unlink(missing_ok=True)
            shutil.rmtree(here / f"audit-{r + 1}", ignore_errors=True)

    total = facts["rows"][scale]
    rows: list[dict] = []
    land_s, csv_s = samples["land"], samples["read_csv"]
    csv_peak = max(s["peak_mib"] for s in csv_s)
    rows.append(judge(sampled_row(
        "land", scale, land_s, csv_s,
        f"<= {LAND_RATIO:g}x DuckDB read_csv of the same rows", f"{total:,} rows; "
        f"{_median_parts(land_s)}; {land_s[0]['files']} files; anchor read_csv "
        f"{_median_parts(csv_s)}, peak {csv_peak:,.0f} MiB"), limit_ratio=LAND_RATIO))
    load_s, pq_s = samples["load"], samples["read_parquet"]
    pq_peak = max(s["peak_mib"] for s in pq_s)
    rows.append(judge(sampled_row(
        "load", scale, load_s, pq_s,
        f"<= {LOAD_RATIO:g}x DuckDB read_parquet of the same Parquet",
        f"{total:,} rows; {_median_parts(load_s)}; anchor read_parquet of "
        f"{sum(len(v) for v in parquets.values())} files {_median_parts(pq_s)}, peak "
        f"{pq_peak:,.0f} MiB"), limit_ratio=LOAD_RATIO))
    if "audit" in samples:
        audit = samples["audit"]
        errors = [s["error"] for s in audit if s["error"]]
        outcome = (f"FAILED: {errors[0]}" if errors else
                   f"{audit[0]['rows_validated']:,} rows validated")
        gx = statistics.median(s["gx_import_s"] for s in audit)
        rows.append(judge(sampled_row(
            "audit", scale, audit, load_s,
            f"<= {AUDIT_RATIO:g}x load; peak <= {AUDIT_PEAK_MIB} MiB",
            f"{audit[0]['checks']} checks, {outcome}; GX import {gx:.1f} s not counted"),
            limit_ratio=AUDIT_RATIO, limit_peak=AUDIT_PEAK_MIB))
    for r_ in rows:
        facts.setdefault(r_["measure"], {})[scale] = (r_["project_s"], r_["peak_mib"])
    return rows


# --- the pipeline: first run, no-op rerun, new-release run, figures ---------------------------

FIGURES_SQL = {
    "releases": "select release_date::varchar, count(*), sum(detections)::bigint "
                "from marts.fct_border_crossings group by 1 order by 1",
    "recorded": "select count(*), sum(detections)::bigint, count(distinct route), "
                "min(month)::varchar, max(month)::varchar from marts.fct_border_crossings "
                f"where release_date = '{RECORDED_RELEASE}'",
    "eu28_2015": "select persons from marts.fct_returns where period = '2015' and geo = 'EU28' "
                 "and citizen = 'TOTAL' and measure = 'ordered_to_leave'",
    "returns_rows": "select count(*) from marts.fct_returns",
}


def figures(warehouse: Path) -> dict:
    """What the published file says: per release rows and detections, the recorded release's
    figures, and a fingerprint (rows, an order-free hash of every row) of every mart."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        releases = {d: [int(n), int(s)] for d, n, s in
                    con.execute(FIGURES_SQL["releases"]).fetchall()}
        rows, total, routes, first, last = con.execute(FIGURES_SQL["recorded"]).fetchone()
        eu28 = con.execute(FIGURES_SQL["eu28_2015"]).fetchone()
        returns = con.execute(FIGURES_SQL["returns_rows"]).fetchone()[0]
        marts = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by 1").fetchall()]
        prints = {t: [int(n), str(h)] for t in marts for n, h in [con.execute(
            f"select count(*), coalesce(sum(hash(x::varchar)::hugeint), 0) from marts.{t} x"
        ).fetchone()]}
    return {"releases": releases, "recorded": {
        "rows": rows, "detections": int(total or 0), "routes": routes, "first": first,
        "last": last, "eu28_2015_ordered_to_leave": eu28 and int(eu28[0]),
        "returns_rows": returns}, "marts": prints}


def check_figures(scale: float, first: dict, noop: dict | None, new: dict | None,
                  new_release: str | None) -> list[str]:
    """What differs from what must hold; empty when every figure is as it must be."""
    wrong = []
    known = {**KNOWN, **(KNOWN_1X if scale == 1 else {})}
    for key, value in known.items():
        if first["recorded"].get(key) != value:
            wrong.append(f"first run: release {RECORDED_RELEASE} {key} "
                         f"{first['recorded'].get(key)!r}, known {value!r}")
    if noop is not None and noop["marts"] != first["marts"]:
        changed = sorted(t for t in set(first["marts"]) | set(noop["marts"])
                         if first["marts"].get(t) != noop["marts"].get(t))
        wrong.append(f"no-op run changed marts {', '.join(changed)}")
    if new is not None:
        for release, figure in first["releases"].items():
            if new["releases"].get(release) != figure:
                wrong.append(f"new release: release {release} {new['releases'].get(release)} "
                             f"(rows, detections), was {figure}")
        if new_release not in new["releases"]:
            wrong.append(f"new release: {new_release} not published")
        for t in EUROSTAT_MARTS:
            if new["marts"].get(t) != first["marts"].get(t):
                wrong.append(f"new release: {t} changed (no Eurostat file changed)")
    return wrong


def pipeline_rows(scale: float, wanted: set[str], work: Path, recorded: Path, data: Path,
                  facts: dict, repeats: int, keep: bool, failures: list[str],
                  settings: dict) -> list[dict]:
    """``repeats`` times: a first ``python -m pipeline.run`` on fresh folders, a no-op rerun
    and a run with one new Frontex release on the same folders."""
    from bench import _gen

    label = _gen.scale_label(scale)
    if scale == 1:
        snapshot, releases = recorded, 1
        what = f"recorded snapshot {recorded}"
    else:
        snapshot, info = _gen.pipeline_snapshot(scale, recorded, log=say, data_dir=data)
        releases = info["frontex_releases"]
        what = (f"generated snapshot: {releases} Frontex releases, Eurostat "
                f"{info['eurostat_rows']:,} rows")
    kinds = ["pipeline"] + [k for k in ("noop", "new-release") if k in wanted]
    plus = plus_info = None
    if "new-release" in wanted:
        plus, plus_info = _gen.new_release_snapshot(snapshot, releases, recorded, data)
        what_new = (f"one more release {plus_info['release']} ({plus_info['frontex_rows']:,} "
                    f"rows, up to {plus_info['months'][-1]}) beside the {releases} of the first")
    caps = caps_for(plus or snapshot)
    settings[f"pipeline {label}"] = caps
    say(f"pipeline @{label}: caps {caps['why']}")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    wrong: list[str] = []
    failed: list[str] = []
    cmd = [sys.executable, "-m", "pipeline.run"]
    for r in range(repeats):
        here = work / f"pipeline_{label}-{r + 1}"
        here.mkdir()
        seen = {}
        for kind in kinds:
            env = clean_env(**folders(here, plus if kind == "new-release" else snapshot),
                            **caps["env"])
            tag = f"{kind} @{label} #{r + 1}"
            say(f"{tag}: python -m pipeline.run ({what_new if kind == 'new-release' else what})"
                " ...")
            w = watch(cmd, env, here / f"{kind}.log", tag)
            say(f"{tag}: {w.wall:.1f} s (CPU {w.cpu:.1f} s), peak {w.peak_mib:,.0f} MiB "
                f"({w.process}), exit {w.code}, load average {w.load_before:.1f} -> "
                f"{w.load_after:.1f}")
            if w.code != 0:
                failed.append(f"{tag} FAILED (exit {w.code}), see {here / (kind + '.log')}:\n"
                              + _tail(here / f"{kind}.log"))
                break
            runs[kind].append({"seconds": w.wall, "cpu": w.cpu, "peak_mib": w.peak_mib,
                               "tree_peak_mib": w.tree_peak_mib, "process": w.process,
                               "load_before": w.load_before, "load_after": w.load_after})
            try:
                seen[kind] = figures(Path(env["WH_WAREHOUSE"]))
            except Exception as err:  # noqa: BLE001 - said as a failure
                failed.append(f"{tag}: the published figures could not be read: {err}")
                break
        if "pipeline" in seen:
            wrong += [f"#{r + 1} {w_}" for w_ in check_figures(
                scale, seen["pipeline"], seen.get("noop"), seen.get("new-release"),
                plus_info and plus_info["release"])]
            facts.setdefault("rows_pipeline", {})[scale] = sum(
                n for n, _ in seen["pipeline"]["releases"].values())
        if not keep and not failed:
            shutil.rmtree(here, ignore_errors=True)
    failures += failed
    out: list[dict] = []
    first = runs["pipeline"]
    if not first:
        out.append(row("pipeline", scale, None, None, None, "", False,
                       f"FAILED: no first run succeeded; {failed[0].splitlines()[0]}"))
        return out
    failed_note = f"FAILED: {len(failed)} run(s), see the log. " if failed else ""
    cpu = statistics.median(s["cpu"] for s in first)
    note = (f"{failed_note}{what}; first run on fresh folders (includes airflow db migrate); "
            f"CPU {cpu:.1f} s")
    if scale == 1:
        r_ = judge(sampled_row("pipeline", scale, first, None, f"<= {PIPELINE_S:g} s", note),
                   limit_s=PIPELINE_S)
    else:
        r_ = sampled_row("pipeline", scale, first, None,
                         f"no target at {label} (the {PIPELINE_S:g} s target is the recorded 1x)",
                         note)
    if failed:
        r_["met"] = False
    out.append(r_)
    facts.setdefault("pipeline", {})[scale] = (r_["project_s"], r_["peak_mib"])
    for kind, limit, text in (("noop", NOOP_RATIO, "second run on the same folders, nothing "
                               "new"),
                              ("new-release", NEW_RELEASE_RATIO, "run on the same folders with "
                               + (what_new if plus_info else ""))):
        if kind not in runs:
            continue
        done = runs[kind]
        if not done:
            out.append(row(kind, scale, None, None, None, f"<= {limit:g} of the first run", False,
                           "FAILED: not run or failed, see the log"))
            continue
        paired = first[:len(done)]
        cpu_ratio = statistics.median(d["cpu"] / f["cpu"] for d, f in zip(done, paired))
        r_ = judge(sampled_row(kind, scale, done, paired, f"<= {limit:g} of the first run",
                               f"{failed_note}{text}; CPU ratio {cpu_ratio:.2f} (median)"),
                   limit_ratio=limit)
        if failed:
            r_["met"] = False
        out.append(r_)
    checked = len(first)
    out.append(row("figures", scale, None, None, None,
                   "every published figure unchanged", not wrong and not failed,
                   ("WRONG: " + "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else ""))
                   if wrong else
                   f"{checked} first run(s): release {RECORDED_RELEASE} {KNOWN['rows']:,} rows, "
                   f"{KNOWN['detections']:,} detections, {KNOWN['routes']} routes, "
                   f"{KNOWN['first'][:7]} to {KNOWN['last'][:7]}, EU28 2015 ordered to leave "
                   f"{KNOWN['eu28_2015_ordered_to_leave']:,}"
                   + (f", {KNOWN_1X['returns_rows']:,} returns rows" if scale == 1 else "")
                   + ("; no-op: every mart as it was" if "noop" in runs else "")
                   + ("; new release: every earlier release and the Eurostat marts as they were"
                      if "new-release" in runs else ""),
                   n=checked))
    return out


def linear_rows(facts: dict) -> list[dict]:
    """Seconds per million rows at each scale against the smallest scale measured."""
    out = []
    for kind in ("land", "load", "audit", "pipeline"):
        timings = facts.get(kind, {})
        counts = facts.get("rows_pipeline" if kind == "pipeline" else "rows", {})
        scales = sorted(s for s in timings if counts.get(s) and timings[s][0])
        if len(scales) < 2:
            continue
        base = scales[0]
        base_rate = timings[base][0] / counts[base] * 1e6
        for scale in scales:
            seconds, peak = timings[scale]
            rate = seconds / counts[scale] * 1e6
            out.append(judge(row(
                f"linear:{kind}", scale, rate, base_rate, peak,
                f"s/Mrow <= {LINEAR_RATIO:g}x that at {base:g}x; peak <= {LINEAR_PEAK_MIB} MiB",
                None, f"seconds per million rows ({counts[scale]:,} rows, median {seconds:.1f} s)"),
                limit_ratio=LINEAR_RATIO, limit_peak=LINEAR_PEAK_MIB))
    return out


# --- goals (issue 21), from the rows of the results file ----------------------------------------

def _goal(goal: str, scale: float | None, target: str, measured, unit: str, met: bool | None,
          note: str) -> dict:
    return {"goal": goal, "scale": scale, "target": target, "measured": measured, "unit": unit,
            "met": met, "note": note}


def goals(rows: list[dict]) -> list[dict]:
    """Issue 21's goals, each with the value measured and met true/false (null: not measured
    in the rows at hand, with why)."""
    by = {(r["measure"], r["scale"]): r for r in rows}
    out = []

    def paired(r: dict | None) -> float | None:
        """The median of the ratios sample by sample (each project sample against the anchor
        sample beside it, so a busy minute hits both), else the ratio of the medians."""
        if not r:
            return None
        return r.get("ratio_median") if r.get("ratio_median") is not None else r["ratio"]

    def spread(r: dict) -> str:
        if r.get("ratio_min") is None:
            return ""
        cpu = (f"; CPU {r['cpu_s']:.1f} s against {r['anchor_cpu_s']:.1f} s, ratio "
               f"{r['cpu_s'] / r['anchor_cpu_s']:.3f}" if r.get("cpu_s") and r.get("anchor_cpu_s")
               else "")
        median = (f"median {r['ratio_median']:.3f}, " if r.get("ratio_median") is not None
                  else "")
        return (f"sample by sample {median}{r['ratio_min']:.3f} to {r['ratio_max']:.3f} (n="
                f"{r['n']}; ratio of the medians {r['ratio']:.3f}; 1-minute load average "
                f"{min(r['load_before'] or [0]):.1f} to {max(r['load_after'] or [0]):.1f}){cpu}")

    r = by.get(("new-release", NEW_RELEASE_SCALE))
    out.append(_goal(
        f"a run with one new release <= {NEW_RELEASE_RATIO:g} of a first run at "
        f"{NEW_RELEASE_SCALE}x history", NEW_RELEASE_SCALE, f"<= {NEW_RELEASE_RATIO:g}",
        paired(r), "ratio of wall seconds", None if paired(r) is None
        else paired(r) <= NEW_RELEASE_RATIO,
        spread(r) if r and r["ratio"] is not None else
        f"not measured (make bench with {NEW_RELEASE_SCALE} in --scales and new-release in "
        "--only)"))
    others = sorted(s for (m, s) in by if m == "new-release" and s != NEW_RELEASE_SCALE)
    if others:
        out[-1]["note"] += "; at " + ", ".join(
            f"{s:g}x {paired(by[('new-release', s)])}" for s in others) + " (no goal)"
    noops = sorted(s for (m, s) in by if m == "noop")
    for s in noops or [None]:
        r = by.get(("noop", s))
        out.append(_goal(f"a no-op rerun <= {NOOP_RATIO:g} of a first run", s,
                         f"<= {NOOP_RATIO:g}", paired(r), "ratio of wall seconds",
                         None if paired(r) is None else paired(r) <= NOOP_RATIO,
                         spread(r) if r and r["ratio"] is not None else "not measured"))
    at = [r for r in rows if r["scale"] == PEAK_GOAL_SCALE and r["peak_mib"] is not None
          and not r["measure"].startswith("linear:")]
    biggest = max(at, key=lambda r: r["peak_mib"], default=None)
    measured = sorted({r["measure"] for r in at})
    out.append(_goal(
        f"peak memory of any process <= {PEAK_GOAL_MIB // 1024} GiB at {PEAK_GOAL_SCALE}x",
        PEAK_GOAL_SCALE, f"<= {PEAK_GOAL_MIB} MiB", biggest and biggest["peak_mib"], "MiB",
        None if biggest is None else biggest["peak_mib"] <= PEAK_GOAL_MIB,
        (f"largest: {biggest['measure']} ({biggest.get('process')}); processes measured at "
         f"{PEAK_GOAL_SCALE}x: {', '.join(measured)} and their anchors"
         + ("" if "pipeline" in measured else
            f"; the pipeline (dbt, the mart audit) is not run at {PEAK_GOAL_SCALE}x "
            f"(--pipeline-max-scale), so this does not cover it")) if biggest else
        f"not measured ({PEAK_GOAL_SCALE} not in --scales)"))
    lands = sorted(s for (m, s) in by if m == "land")
    for s in lands or [None]:
        r = by.get(("land", s))
        out.append(_goal(f"workbook-to-table <= {LAND_RATIO:g}x DuckDB reading the same rows "
                         "(read_csv)", s, f"<= {LAND_RATIO:g}", paired(r),
                         "ratio of seconds", None if paired(r) is None
                         else paired(r) <= LAND_RATIO,
                         spread(r) if r and r["ratio"] is not None else "not measured"))
    checked = sorted((r for r in rows if r["measure"] == "figures"), key=lambda r: r["scale"])
    out.append(_goal(
        "every published figure unchanged", None, "known figures at every scale; no-op and new "
        "release change no earlier figure", None if not checked else
        sum(1 for r in checked if r["met"]), f"of {len(checked)} scales checked",
        None if not checked else all(r["met"] for r in checked),
        "; ".join(f"{r['scale']:g}x: {'ok' if r['met'] else r['note']}" for r in checked)
        or "not measured (the pipeline was not run)"))
    return out


def peak_memory(rows: list[dict]) -> dict:
    """Per scale, the largest process measured and the largest of each measure."""
    out: dict[str, dict] = {}
    for r in rows:
        if r["peak_mib"] is None or r["measure"].startswith("linear:"):
            continue
        at = out.setdefault(f"{r['scale']:g}x", {"max_mib": 0, "measure": None,
                                                 "process": None, "by_measure": {}})
        at["by_measure"][r["measure"]] = r["peak_mib"]
        if r["peak_mib"] > at["max_mib"]:
            at.update(max_mib=r["peak_mib"], measure=r["measure"], process=r.get("process"))
    return out


def table(rows: list[dict]) -> str:
    def fmt(v, spec=""):
        return "-" if v is None else format(v, spec)

    def spread(lo, hi):
        return "-" if lo is None else f"{lo:.2f}-{hi:.2f}"

    def loads(r):
        if not r.get("load_before"):
            return "-"
        return f"{min(r['load_before']):.1f}-{max(r['load_after']):.1f}"

    header = ["measure", "scale", "n", "project_s", "spread", "anchor_s", "spread", "ratio",
              "ratio spread", "peak_MiB", "load avg", "target", "met", "note"]
    lines = [[r["measure"], f"{r['scale']:g}x", fmt(r.get("n")), fmt(r["project_s"], ".2f"),
              spread(r.get("project_min"), r.get("project_max")), fmt(r["anchor_s"], ".2f"),
              spread(r.get("anchor_min"), r.get("anchor_max")), fmt(r["ratio"], ".2f"),
              spread(r.get("ratio_min"), r.get("ratio_max")), fmt(r["peak_mib"], ","),
              loads(r), r["target"], {True: "yes", False: "NO", None: "-"}[r["met"]], r["note"]]
             for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    widths[-1] = 0
    render = [" | ".join(str(x).ljust(w) if i < len(widths) - 1 else str(x)
                         for i, (x, w) in enumerate(zip(cells, widths)))
              for cells in [header, *lines]]
    render.insert(1, "-+-".join("-" * w for w in widths[:-1]) + "-+-" + "-" * 4)
    return "\n".join(render)


def goals_table(found: list[dict]) -> str:
    return "\n".join(
        f"  {'MET ' if g['met'] else 'n/a ' if g['met'] is None else 'MISS'} "
        f"{g['goal']}" + (f" @{g['scale']:g}x" if g["scale"] is not None else "")
        + f": {g['measured'] if g['measured'] is not None else '-'} {g['unit']} "
        f"(target {g['target']}). {g['note']}" for g in found)


def row_order(r: dict) -> tuple:
    """Measures in MEASURES order (storage:* with storage), figures after new-release,
    linear:* last; then by scale."""
    group, _, name = r["measure"].rpartition(":")
    order = {m: i for i, m in enumerate(MEASURES)}
    order["figures"] = order["new-release"] + 0.5
    if group == "storage":
        return (0, order["storage"], r["measure"], r["scale"])
    return (group == "linear", order.get(name, len(MEASURES)), r["measure"], r["scale"])


def run_facts(args_text: str, started: str) -> dict:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        import duckdb
        duck = duckdb.__version__
    except ImportError:
        duck = None
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text()
                .splitlines() if line.startswith("MemTotal:")), None)
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref",
                                                              "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "arguments": args_text, "cpus": os.cpu_count(), "memory_mib": mem,
            "python": platform.python_version(), "duckdb": duck}


def document(rows: list[dict], settings: dict, runs: list[dict]) -> dict:
    rows = sorted(rows, key=row_order)
    return {"schema": SCHEMA, "runs": runs, "goals": goals(rows),
            "peak_memory": peak_memory(rows), "settings": settings, "rows": rows}


def _label(r: dict) -> str:
    return f"{r['measure']}@{r['scale']:g}x"


def _earlier(out: Path) -> tuple[list[dict], dict, list[dict]]:
    """The rows, settings and runs of the results file (a bare list: the format before
    schema 2)."""
    try:
        earlier = json.loads(out.read_text())
    except FileNotFoundError:
        return [], {}, []
    except ValueError as err:
        raise SystemExit(f"{out}: not bench results ({err}); move it away or give --out")
    runs: list[dict] = []
    if isinstance(earlier, list):
        # Before schema 2: one sample per row and a load anchor of other work. Only the
        # storage rows (bench/object_storage.py, measured as they still are) are kept.
        rows, settings = [r for r in earlier if isinstance(r, dict)
                          and str(r.get("measure", "")).startswith("storage:")], {}
        for r in rows:
            for key in EXTRA:
                r.setdefault(key, None)
    elif isinstance(earlier, dict) and isinstance(earlier.get("rows"), list):
        rows, settings = earlier["rows"], earlier.get("settings") or {}
        runs = earlier.get("runs") or ([earlier["run"]] if earlier.get("run") else [])
    else:
        raise SystemExit(f"{out}: not a list of bench rows nor bench results; move it away or "
                         "give --out")
    if not all(isinstance(r, dict) and "measure" in r and "scale" in r for r in rows):
        raise SystemExit(f"{out}: not a list of bench rows; move it away or give --out")
    return rows, settings, runs


def write_rows(rows: list[dict], out: Path, failed: bool, settings: dict | None = None,
               run: dict | None = None, failures: list[str] | None = None) -> Path:
    """The results into ``out``: its rows of the same measure and scale replaced, the others
    kept, goals computed again; written atomically. When anything failed, ``out`` is never
    touched: this run's results go to failed-<UTC time>.json beside it. Returns the file
    written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = dict(settings or {})
    run = dict(run or run_facts("", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    run["rows"] = sorted({_label(r) for r in rows})
    if failed:
        target = out.with_name(f"failed-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
        doc = document(rows, settings, [run])
        doc["failures"] = failures or ["see the rows marked FAILED"]
        target.write_text(json.dumps(doc, indent=1) + "\n")
        return target
    measured = {(r["measure"], r["scale"]) for r in rows}
    earlier, earlier_settings, earlier_runs = _earlier(out)
    kept = [r for r in earlier if (r["measure"], r["scale"]) not in measured]
    # Each run that still owns rows of the file stays listed, with the rows it owns.
    owned = {_label(r) for r in kept}
    runs = []
    for old in earlier_runs:
        old = {**old, "rows": sorted(set(old.get("rows") or ()) & owned)}
        if old["rows"]:
            runs.append(old)
    if kept and not earlier_runs:
        runs.append({"rows": sorted(owned), "note": "rows of an earlier results file that did "
                     "not say which run wrote them"})
    doc = document(kept + rows, {**earlier_settings, **settings}, [*runs, run])
    staged = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(staged, out)
    return out


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return value


def parse_scales(text: str) -> list[float]:
    scales = []
    for part in text.split(","):
        value = float(part)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"scale {part!r} must be positive")
        if value >= 1 and not value.is_integer():
            raise argparse.ArgumentTypeError(f"scale {part!r}: above 1x, whole numbers only")
        scales.append(int(value) if value.is_integer() else value)
    return sorted(set(scales))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=parse_scales, default=[1, 10, 100],
                        help="comma-separated multiples of the recorded size (default 1,10,100; "
                             "below 1: the first rows only)")
    parser.add_argument("--only", default=",".join(MEASURES),
                        help="comma-separated measures among " + ", ".join(MEASURES)
                             + " (default all); land and load run together, audit runs them "
                               "too, noop and new-release run pipeline; storage runs at 1x only, "
                               "whatever --scales says (make bench ARGS=\"--only storage\": just "
                               "that)")
    parser.add_argument("--repeats", type=_positive, default=3,
                        help="samples of each measure, interleaved with their anchors (default "
                             "3); a pipeline repetition is a first run, its no-op rerun and its "
                             "new-release run")
    parser.add_argument("--storage-repeats", type=_positive, default=2,
                        help="storage: first run + no-op rerun on each side this many times, "
                             "interleaved (default 2)")
    parser.add_argument("--reader-repeats", type=_positive, default=5,
                        help="storage: reader processes on each side (default 5)")
    parser.add_argument("--pipeline-max-scale", type=float, default=10,
                        help="largest scale at which pipeline, noop and new-release run "
                             "(default 10)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "latest.json",
                        help="where the results are written (default bench/results/latest.json;"
                             " never touched by a run in which something failed)")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "bench" / ".data",
                        help="where generated data is kept and reused (default bench/.data)")
    parser.add_argument("--work", type=Path, help="folder under which each run makes its own "
                        "folder of landing, warehouses and logs, kept (default: a temporary "
                        "folder, removed after the run unless --keep or a measurement failed)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.result.write_text(json.dumps(child(args.child, json.loads(args.spec))))
        return 0

    from bench import _gen

    only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in only if m not in MEASURES]
    if unknown:
        parser.error(f"unknown measure(s) {unknown}; measures: {', '.join(MEASURES)}")
    wanted = set(only)
    for m in only:
        wanted.update(NEEDS.get(m, ()))
    recorded = _gen.recorded_dir()
    if not (recorded / "frontex").is_dir():
        parser.error(f"no recorded files in {recorded} (set WH_SNAPSHOT_DIR to a folder laid "
                     "out like ../shared/data)")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args_text = " ".join(sys.argv[1:] if argv is None else argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-speed-", dir=args.work))
    say(f"bench.speed: scales {', '.join(_gen.scale_label(s) for s in args.scales)}; measures "
        f"{', '.join(m for m in MEASURES if m in wanted)}; {args.repeats} samples each; "
        f"{_load_average()}; work {work}")
    rows: list[dict] = []
    facts: dict = {}
    settings: dict = {}
    failures: list[str] = []

    def terminated(signum, frame):
        raise SystemExit(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    try:
        for scale in args.scales:
            if wanted & {"land", "load", "audit"}:
                try:
                    rows += measure_scale(scale, wanted, work, args.data, facts, args.repeats,
                                          settings)
                except ChildFailed as err:
                    failures.append(str(err))
                    say(str(err))
            if wanted & {"pipeline", "noop", "new-release"}:
                if scale < 1 or scale > args.pipeline_max_scale:
                    say(f"pipeline @{_gen.scale_label(scale)}: not run (pipeline scales: 1x to "
                        f"{args.pipeline_max_scale:g}x)")
                else:
                    rows += pipeline_rows(scale, wanted, work, recorded, args.data, facts,
                                          args.repeats, args.keep or args.work is not None,
                                          failures, settings)
        rows += linear_rows(facts)
        if "storage" in wanted:
            from bench import object_storage

            storage_rows, storage_failures = object_storage.storage_rows(
                work, recorded, args.storage_repeats, args.reader_repeats)
            rows += storage_rows
            failures += storage_failures
            for failure in storage_failures:
                say(failure)
    except BaseException as err:
        # Interrupted or broken: what was measured goes beside the results, never into them.
        failures.append(f"bench interrupted: {type(err).__name__}: {err}")
        written = write_rows(rows, args.out, True, settings, run_facts(args_text, started),
                             failures)
        say(f"{written} written ({args.out} left as it was)")
        raise
    finally:
        if args.keep or failures or args.work is not None:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=row_order)
    failed = bool(failures) or any("FAILED" in r["note"] for r in rows)
    try:
        out = write_rows(rows, args.out, failed, settings, run_facts(args_text, started),
                         failures)
    except BaseException as err:
        # What was measured is never lost to a results file that could not be merged.
        failures.append(f"results not written to {args.out}: {type(err).__name__}: {err}")
        written = write_rows(rows, args.out, True, settings, run_facts(args_text, started),
                             failures)
        say(f"{written} written ({args.out} left as it was)")
        raise
    print()
    print(table(rows))
    print()
    if settings:
        print("Caps set for the bench's generated data (RAISED where the defaults would refuse "
              "it):")
        for label, caps in settings.items():
            print(f"  {label}: {caps['why']}")
        print()
    print("Goals (issue 21), from the rows of " + str(out) + ":")
    print(goals_table(json.loads(out.read_text())["goals"]))
    print()
    missed = [r for r in rows if r["met"] is False]
    say(f"{len(rows)} rows, {len(missed)} target(s) missed; written to {out}"
        + (f" ({args.out} left as it was: something failed)" if failed else ""))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
