"""Speed goals side by side (issue #10): time and peak memory of the warehouse's paths at 1x, 10x
and 100x the recorded data, each against its anchor, in one run.

Measures (each in a fresh subprocess; time and peak RSS are the subprocess's own):
  land      landing (ingest.source.land_new) of the generated Frontex workbook and Eurostat
            files: fetch, parse, validate, keep (and whatever landing writes beside the file).
            No target; anchor: DuckDB read_csv of the same rows (how far parsing is from it).
  load      the raw load (ingest.load.load_source) of what was landed, into a fresh DuckDB file.
            Target: <= 1.25 x the anchor.
  audit     the raw audit (expectations.audit.run_checks on suites_by_stage.raw_checks) of that
            load. Targets: <= 1.0 x the load (anchor: the load's seconds) and peak <= 1024 MiB.
  pipeline  a first `python -m pipeline.run` (= make run) on fresh folders: at 1x on the recorded
            snapshot itself, at N x on a generated one. Target at 1x: <= 45 s.
  noop      a second `python -m pipeline.run` on the same folders, with nothing new.
            Target: <= 15 % of the first run (anchor: the pipeline's seconds).
  storage   (issue 20; bench/object_storage.py) at 1x on the recorded snapshot only, whatever
            --scales says: a first run and a no-op rerun with WH_STORAGE_URL on a SeaweedFS the
            bench starts (tests/s3server.py) against the same runs on local files, interleaved,
            --storage-repeats times each (default 2): rows storage:pipeline and storage:noop
            (wall) and storage:pipeline-cpu, storage:noop-cpu (user + system seconds, children
            included), project_s = the s3 median, anchor_s = the local median, ratio s3/local;
            spread, the S3 server's own CPU and the objects written in the note. storage:reader:
            a fresh python in an empty folder running reader-sql's SQL and a first query (the
            newest Frontex release's total), s3 against the local file, time to first answer
            (--reader-repeats, default 5). No target: side by side only.
  linear:*  derived, when two scales or more were measured: seconds per million rows of land,
            load, audit (and pipeline) at each scale against the smallest scale.
            Targets: s/Mrow <= 1.5 x that of the smallest scale; peak <= 2048 MiB.

The anchor of land and load: `create table t as select * from read_csv(path, columns={...},
header=true)` into a fresh DuckDB file, in a fresh process, of the very rows the load produced
(the raw tables without their lineage columns) written as CSV, with their types given
explicitly. Measured times exclude the interpreter's start and module imports (Great
Expectations' import is reported in the audit's note); the pipeline's times are wall-clock of
the whole command. Peak memory is the largest resident set among the process and its
descendants (wait4's ru_maxrss: the biggest single process, not their sum).

Data (bench/_gen.py; generated once per scale under bench/.data, git-ignored, and reused):
Frontex as one workbook in the recorded layout with N x the recorded rows (nationalities of
copies suffixed: they load and pass the raw audit, not dbt), Eurostat as SDMX-CSV 1.0 files with
N x the recorded observations (years shifted so keys stay unique). The pipeline at N x > 1 reads
N Frontex releases (each the recorded rows) so that dbt maps every nationality, the Eurostat
files at N x, and the other sources' recorded files. The pipeline is measured only at scales up
to --pipeline-max-scale (default 10): the 10x pipeline already takes minutes on 2 cores (100
Frontex releases would be landed, loaded, audited and built one by one at 100x).

Results: a table on stdout and the same rows in --out (default bench/results/latest.json): a
list of {measure, scale, project_s, anchor_s, ratio, peak_mib, target, met, note}; met is null
for a row without target. The rows measured replace those of the same measure and scale in
--out, the others are kept (so `--only storage` updates the storage rows only). A run in which
something failed leaves --out as it is and writes its rows beside it, failed-<UTC time>.json.
Timings are never asserted by tests.

Usage: python -m bench.speed [--scales 1,10,100]
                             [--only land,load,audit,noop,pipeline,storage]
                             [--storage-repeats 2] [--reader-repeats 5]
                             [--out bench/results/latest.json] [--keep]
(`make bench ARGS="--scales 1"` for a quick run, `make bench ARGS="--only storage"` for object
storage against local files only; the older audit benchmark is `python -m bench.audit_bench`.)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest.config import REPO_ROOT

MEASURES = ("land", "load", "audit", "pipeline", "noop", "storage")
NEEDS = {"load": ("land",), "audit": ("land", "load"), "noop": ("pipeline",)}
SOURCES = ("frontex", "eurostat")
LINEAGE = ("landing_file", "sha256", "release_date", "loaded_at")
RUN_ID = "bench"

LOAD_RATIO = 1.25
AUDIT_RATIO = 1.0
AUDIT_PEAK_MIB = 1024
NOOP_RATIO = 0.15
PIPELINE_S = 45.0
LINEAR_RATIO = 1.5
LINEAR_PEAK_MIB = 2048
HEARTBEAT_S = 30

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
    if kind == "anchor":
        import duckdb

        started = time.perf_counter()
        con = duckdb.connect(spec["db"])
        parts = {}
        for name, (path, columns) in spec["csv"].items():
            at = time.perf_counter()
            struct = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns) + "}"
            con.execute(f"create table {name} as select * from read_csv('{path}', "
                        f"columns={struct}, header=true)")
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


def run_child(kind: str, spec: dict, env: dict, log: Path, label: str) -> dict:
    """``child(kind, spec)`` in a fresh interpreter; adds its peak RSS (MiB)."""
    result = log.with_suffix(".json")
    cmd = [sys.executable, "-m", "bench.speed", "--child", kind, "--spec", json.dumps(spec),
           "--result", str(result)]
    code, wall, peak, _cpu = _watch(cmd, env, log, label)
    if code != 0:
        raise ChildFailed(f"{label} failed (exit {code}); last lines of {log}:\n"
                          + _tail(log))
    out = json.loads(result.read_text())
    out.update(peak_mib=peak, wall_s=wall)
    return out


class ChildFailed(Exception):
    pass


def _load_average() -> str:
    """The machine's 1-minute load average: other work on the machine skews the timings."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _watch(cmd: list[str], env: dict, log: Path,
           label: str) -> tuple[int, float, float, float]:
    """Run ``cmd`` with its output in ``log``; a heartbeat line every HEARTBEAT_S. Returns exit
    code, wall seconds, the peak RSS (MiB) of the process and its children, and its CPU seconds
    (user + system, the descendants it waited for included)."""
    started = time.perf_counter()
    beat = started + HEARTBEAT_S
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now >= beat:
                say(f"  ... {label} still running ({now - started:.0f} s)")
                beat = now + HEARTBEAT_S
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss: kilobytes on Linux; the largest of the process and its waited-for children.
    return (proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024,
            usage.ru_utime + usage.ru_stime)


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


def row(measure: str, scale: float, project_s: float | None, anchor_s: float | None,
        peak_mib: float | None, target: str, met: bool | None, note: str) -> dict:
    project = None if project_s is None else round(project_s, 3)
    anchor = None if anchor_s is None else round(anchor_s, 3)
    ratio = round(project / anchor, 3) if project is not None and anchor else None
    return {"measure": measure, "scale": scale, "project_s": project, "anchor_s": anchor,
            "ratio": ratio, "peak_mib": None if peak_mib is None else round(peak_mib),
            "target": target, "met": met, "note": note}


def judge(r: dict, limit_ratio: float | None = None, limit_peak: float | None = None,
          limit_s: float | None = None) -> dict:
    """Set ``met`` and, where missed, say by how much in the note."""
    missed = []
    if limit_ratio is not None and r["ratio"] is not None and r["ratio"] > limit_ratio:
        missed.append(f"ratio {r['ratio']:.2f} vs {limit_ratio:g} "
                      f"({(r['ratio'] / limit_ratio - 1) * 100:+.0f}%)")
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


def measure_scale(scale: float, wanted: set[str], work: Path, data: Path,
                  facts: dict) -> list[dict]:
    """land, load (and its anchor), audit at one scale; ``facts`` collects rows counts and times
    for the linear rows."""
    from bench import _gen

    label = _gen.scale_label(scale)
    snapshot, info = _gen.scale_snapshot(scale, log=say, data_dir=data)
    say(f"{label}: data {snapshot} (Frontex {info['frontex_rows']:,} rows in "
        f"{info['frontex_bytes'] / 2**20:.1f} MiB xlsx, Eurostat {info['eurostat_rows']:,} rows "
        f"in {len(info['eurostat_files'])} SDMX-CSV files; generated in {info['seconds']:.0f} s)")
    here = work / f"scale_{label}"
    here.mkdir()
    env = clean_env(**folders(here, snapshot))
    rows: list[dict] = []
    results: dict[str, dict] = {}

    def step(kind: str, spec: dict) -> dict:
        say(f"{kind} @{label} ...")
        out = run_child(kind, spec, env, here / f"{kind}.log", f"{kind} @{label}")
        say(f"{kind} @{label}: {out['seconds']:.2f} s, peak {out['peak_mib']:,.0f} MiB "
            f"({_load_average()})")
        results[kind] = out
        return out

    # Not "raw.duckdb": DuckDB names the catalog after the stem, and "raw" is a schema.
    landing, db = here / "landing", here / "build.duckdb"
    step("land", {"landing": str(landing)})
    if wanted & {"load", "audit"}:
        load = step("load", {"landing": str(landing), "db": str(db)})
        total_rows = sum(load["rows"].values())
        facts.setdefault("rows", {})[scale] = total_rows
        say(f"  exporting {total_rows:,} loaded rows as CSV for the anchor ...")
        csvs = export_csv(db, here)
        anchor = step("anchor", {"db": str(here / "anchor.duckdb"), "csv": csvs})
    else:
        total_rows = info["frontex_rows"] + info["eurostat_rows"]
        facts.setdefault("rows", {})[scale] = total_rows
        anchor = None
    if "audit" in wanted:
        step("audit", {"db": str(db), "out": str(here / "audit")})

    land = results["land"]
    rows.append(row("land", scale, land["seconds"], anchor and anchor["seconds"],
                    land["peak_mib"], "no target (parse + validate + keep)", None,
                    f"{total_rows:,} rows; {_split(land['parts'])}; {land['files']} files"))
    if "load" in results:
        load = results["load"]
        rows.append(judge(row(
            "load", scale, load["seconds"], anchor["seconds"], load["peak_mib"],
            f"<= {LOAD_RATIO:g}x DuckDB read_csv", None,
            f"{total_rows:,} rows; {_split(load['parts'])}; anchor {_split(anchor['parts'])}, "
            f"peak {anchor['peak_mib']:,.0f} MiB"), limit_ratio=LOAD_RATIO))
    if "audit" in results:
        audit = results["audit"]
        outcome = (f"FAILED: {audit['error']}" if audit["error"] else
                   f"{audit['rows_validated']:,} rows validated")
        rows.append(judge(row(
            "audit", scale, audit["seconds"], results["load"]["seconds"], audit["peak_mib"],
            f"<= {AUDIT_RATIO:g}x load; peak <= {AUDIT_PEAK_MIB} MiB", None,
            f"{audit['checks']} checks, {outcome}; GX import {audit['gx_import_s']:.1f} s "
            "not counted"), limit_ratio=AUDIT_RATIO, limit_peak=AUDIT_PEAK_MIB))
    for kind in ("land", "load", "audit"):
        if kind in results:
            facts.setdefault(kind, {})[scale] = (results[kind]["seconds"],
                                                 results[kind]["peak_mib"])
    return rows


def pipeline_rows(scale: float, wanted: set[str], work: Path, recorded: Path, data: Path,
                  facts: dict) -> list[dict]:
    """First and second ``python -m pipeline.run`` at one scale."""
    from bench import _gen

    label = _gen.scale_label(scale)
    if scale == 1:
        snapshot, what = recorded, f"recorded snapshot {recorded}"
    else:
        snapshot, info = _gen.pipeline_snapshot(scale, recorded, log=say, data_dir=data)
        what = (f"generated snapshot: {info['frontex_releases']} Frontex releases, Eurostat "
                f"{info['eurostat_rows']:,} rows")
    here = work / f"pipeline_{label}"
    here.mkdir()
    env = clean_env(**folders(here, snapshot))
    cmd = [sys.executable, "-m", "pipeline.run"]
    out: list[dict] = []
    runs = {}
    for kind in ("pipeline", "noop") if "noop" in wanted else ("pipeline",):
        say(f"{kind} @{label}: python -m pipeline.run ({what}) ...")
        code, wall, peak, _cpu = _watch(cmd, env, here / f"{kind}.log", f"{kind} @{label}")
        runs[kind] = (code, wall, peak)
        say(f"{kind} @{label}: {wall:.1f} s, peak {peak:,.0f} MiB, exit {code} "
            f"({_load_average()})")
        if code != 0:
            break
    code, wall, peak = runs["pipeline"]
    failed = f"FAILED (exit {code}), see {here / 'pipeline.log'}. " if code else ""
    loaded = _rows_published(Path(env["WH_WAREHOUSE"])) if not code else None
    if loaded:
        facts.setdefault("rows_pipeline", {})[scale] = loaded
        facts.setdefault("pipeline", {})[scale] = (wall, peak)
    note = f"{failed}{what}; {loaded or 0:,} rows loaded; first run (includes airflow db migrate)"
    if scale == 1:
        out.append(judge(row("pipeline", scale, wall, None, peak, f"<= {PIPELINE_S:g} s", None,
                             note), limit_s=PIPELINE_S))
        if code:
            out[-1]["met"] = False
    else:
        out.append(row("pipeline", scale, wall, None, peak,
                       f"no target at {label} (the {PIPELINE_S:g} s target is the recorded 1x)",
                       None, note))
    if "noop" in runs:
        ncode, nwall, npeak = runs["noop"]
        nfailed = f"FAILED (exit {ncode}), see {here / 'noop.log'}. " if ncode else ""
        out.append(judge(row("noop", scale, nwall, wall, npeak,
                             f"<= {NOOP_RATIO:.0%} of the first run", None,
                             f"{nfailed}second run on the same folders, nothing new"),
                         limit_ratio=NOOP_RATIO))
        if ncode:
            out[-1]["met"] = False
    elif "noop" in wanted:
        out.append(row("noop", scale, None, wall, None, f"<= {NOOP_RATIO:.0%} of the first run",
                       False, "not run: the first run failed"))
    return out


def _rows_published(warehouse: Path) -> int | None:
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return int(con.execute("select sum(rows_loaded) from raw.load_log").fetchone()[0])
    except Exception:  # no warehouse published: the run failed
        return None


def linear_rows(facts: dict) -> list[dict]:
    """Seconds per million rows at each scale against the smallest scale measured."""
    out = []
    for kind in ("land", "load", "audit", "pipeline"):
        timings = facts.get(kind, {})
        counts = facts.get("rows_pipeline" if kind == "pipeline" else "rows", {})
        scales = sorted(s for s in timings if counts.get(s))
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
                None, f"seconds per million rows ({counts[scale]:,} rows, {seconds:.1f} s)"),
                limit_ratio=LINEAR_RATIO, limit_peak=LINEAR_PEAK_MIB))
    return out


def table(rows: list[dict]) -> str:
    def fmt(v, spec=""):
        return "-" if v is None else format(v, spec)

    header = ["measure", "scale", "project_s", "anchor_s", "ratio", "peak_MiB", "target", "met",
              "note"]
    lines = [[r["measure"], f"{r['scale']:g}x", fmt(r["project_s"], ".2f"),
              fmt(r["anchor_s"], ".2f"), fmt(r["ratio"], ".2f"), fmt(r["peak_mib"], ","),
              r["target"], {True: "yes", False: "NO", None: "-"}[r["met"]], r["note"]]
             for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    widths[-1] = 0
    render = [" | ".join(str(x).ljust(w) if i < len(widths) - 1 else str(x)
                         for i, (x, w) in enumerate(zip(cells, widths)))
              for cells in [header, *lines]]
    render.insert(1, "-+-".join("-" * w for w in widths[:-1]) + "-+-" + "-" * 4)
    return "\n".join(render)


def row_order(r: dict) -> tuple:
    """Measures in MEASURES order (storage:* with storage), linear:* last; then by scale."""
    group, _, name = r["measure"].rpartition(":")
    order = {m: i for i, m in enumerate(MEASURES)}
    if group == "storage":
        return (0, order["storage"], r["measure"], r["scale"])
    return (group == "linear", order.get(name, len(MEASURES)), r["measure"], r["scale"])


def write_rows(rows: list[dict], out: Path, failed: bool) -> Path:
    """The rows into ``out``, replacing those of the same measure and scale and keeping the
    others; when something failed, into failed-<UTC time>.json beside it instead (``out`` is
    left as it was). Returns the file written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if failed:
        target = out.with_name(f"failed-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
        target.write_text(json.dumps(rows, indent=1) + "\n")
        return target
    measured = {(r["measure"], r["scale"]) for r in rows}
    try:
        earlier = json.loads(out.read_text())
        if not isinstance(earlier, list):
            raise TypeError(f"a {type(earlier).__name__}, not a list")
        kept = [r for r in earlier if (r["measure"], r["scale"]) not in measured]
    except FileNotFoundError:
        kept = []
    except (ValueError, TypeError, KeyError) as err:
        raise SystemExit(f"{out}: not a list of bench rows ({err}); move it away or give --out")
    out.write_text(json.dumps(sorted(kept + rows, key=row_order), indent=1) + "\n")
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
                             + " (default all); load and audit also run land (and load), noop "
                               "runs pipeline; storage runs at 1x only, whatever --scales "
                               "says (make bench ARGS=\"--only storage\": just that)")
    parser.add_argument("--storage-repeats", type=_positive, default=2,
                        help="storage: first run + no-op rerun on each side this many times, "
                             "interleaved (default 2)")
    parser.add_argument("--reader-repeats", type=_positive, default=5,
                        help="storage: reader processes on each side (default 5)")
    parser.add_argument("--pipeline-max-scale", type=float, default=10,
                        help="largest scale at which pipeline and noop run (default 10)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "latest.json",
                        help="where the rows are written (default bench/results/latest.json)")
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
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-speed-", dir=args.work))
    say(f"bench.speed: scales {', '.join(_gen.scale_label(s) for s in args.scales)}; measures "
        f"{', '.join(m for m in MEASURES if m in wanted)}; {_load_average()}; work {work}")
    rows: list[dict] = []
    facts: dict = {}
    failures: list[str] = []
    try:
        for scale in args.scales:
            if wanted & {"land", "load", "audit"}:
                try:
                    rows += measure_scale(scale, wanted, work, args.data, facts)
                except ChildFailed as err:
                    failures.append(str(err))
                    say(str(err))
            if wanted & {"pipeline", "noop"}:
                if scale < 1 or scale > args.pipeline_max_scale:
                    say(f"pipeline @{_gen.scale_label(scale)}: not run (pipeline scales: 1x to "
                        f"{args.pipeline_max_scale:g}x)")
                else:
                    rows += pipeline_rows(scale, wanted, work, recorded, args.data, facts)
        rows += linear_rows(facts)
        if "storage" in wanted:
            from bench import object_storage

            storage_rows, storage_failures = object_storage.storage_rows(
                work, recorded, args.storage_repeats, args.reader_repeats)
            rows += storage_rows
            failures += storage_failures
            for failure in storage_failures:
                say(failure)
    finally:
        if args.keep or failures or args.work is not None:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=row_order)
    failed = bool(failures) or any("FAILED" in r["note"] for r in rows)
    out = write_rows(rows, args.out, failed)
    print()
    print(table(rows))
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
