"""The measure "storage" of ``make bench`` (issue 20): the pipeline on object storage against
the same pipeline on local files, on the recorded snapshot (1x), and a reader's time to its
first answer.

Runs, interleaved so that a slow minute of the machine hits both sides (the order flips every
repetition): a first ``python -m pipeline.run`` on local files and with
``WH_STORAGE_URL=s3://<fresh bucket>/wh`` on a SeaweedFS the bench starts (tests/s3server.py),
then the no-op rerun of each. Each side's wall and CPU seconds (user + system of the command and
the descendants it waited for, from wait4) are reported as median over the repetitions with
their spread (min to max), s3 against local (ratio). The S3 server's own CPU seconds during an
s3 run (from /proc) are in the note, not in the s3 figure. Bytes: the bucket's objects after the
first run and what the no-op rerun wrote (new or changed objects, from the bucket listing).

The reader: a fresh ``python`` in an empty folder, with only the AWS_* credentials in its
environment (no endpoint: the SQL carries it), runs the SQL ``python -m pipeline.run
reader-sql`` printed and a first query, the newest Frontex release's total; against the same
with the local published file (what reader-sql prints without WH_STORAGE_URL: an ATTACH of the
file). Time to first answer = the process's wall time, start to exit (interpreter start and
``import duckdb`` included: that is what a user waits for); its parts in the note. The two
answers must agree, and the empty folder must stay empty.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIDES = ("local", "s3")
READER_TARGET = "no target (time to first answer, s3 vs local file)"
FIRST_QUERY = ("select release_date::varchar, sum(detections) "
               "from marts.fct_border_crossings_current group by 1")

READER = r'''
import json, sys, time
started = time.perf_counter()
import duckdb
imported = time.perf_counter()
con = duckdb.connect()
con.execute(sys.stdin.read())
attached = time.perf_counter()
answer = con.execute(sys.argv[1]).fetchall()
answered = time.perf_counter()
print(json.dumps({"answer": answer, "import_s": imported - started,
                  "attach_s": attached - imported, "query_s": answered - attached}))
'''


def spread(values: list[float], unit: str = "s") -> str:
    """``median (min to max, n=N)``."""
    return (f"{statistics.median(values):.2f} {unit} ({min(values):.2f} to {max(values):.2f}, "
            f"n={len(values)})")


def server_cpu_s(pid: int) -> float:
    """User + system seconds of ``pid`` and its waited-for children so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime..cstime are fields 14..17.
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def objects_by_area(objs) -> dict[str, tuple[int, int]]:
    """{top-level folder: (objects, bytes)} of a bucket listing."""
    out: dict[str, tuple[int, int]] = {}
    for o in objs:
        area = o.key.split("/", 1)[0]
        n, size = out.get(area, (0, 0))
        out[area] = (n + 1, size + o.size)
    return dict(sorted(out.items()))


def describe_bytes(areas: dict[str, tuple[int, int]]) -> str:
    if not areas:
        return "nothing"
    total_n = sum(n for n, _ in areas.values())
    total_b = sum(b for _, b in areas.values())
    parts = ", ".join(f"{a} {n} ({b / 2**20:.1f} MiB)" for a, (n, b) in areas.items())
    return f"{total_n} objects, {total_b / 2**20:.1f} MiB: {parts}"


def written_by(before, after) -> dict[str, tuple[int, int]]:
    """The objects of ``after`` that are new or changed since ``before`` (key and etag)."""
    seen = {o.key: o.etag for o in before}
    return objects_by_area([o for o in after if seen.get(o.key) != o.etag])


def storage_rows(work: Path, recorded: Path, repeats: int, reader_repeats: int) -> tuple[
        list[dict], list[str]]:
    """The rows of the measure "storage" and the failures (empty when every run succeeded)."""
    from bench import speed
    from ingest import storage
    from tests.s3server import S3Server

    say = speed.say
    here = work / "storage"
    here.mkdir()
    say("storage: starting SeaweedFS (tests/s3server.py) ...")
    server = S3Server().start()
    failures: list[str] = []
    timings: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    server_cpu: dict[str, list[float]] = {}
    first_bytes, noop_bytes = [], []
    envs: dict[str, dict] = {}
    left: dict[str, str] = {}
    try:
        say(f"storage: S3 at {server.endpoint}; {repeats} repetitions of first run + no-op "
            f"rerun, local and s3 interleaved")
        for rep in range(1, repeats + 1):
            order = SIDES if rep % 2 else SIDES[::-1]
            for side in order:
                folder = here / f"{side}-{rep}"
                folder.mkdir()
                if side == "local":
                    envs[side] = speed.clean_env(**speed.folders(folder, recorded))
                else:
                    bucket = server.create_bucket()
                    envs[side] = speed.clean_env(
                        WH_SNAPSHOT_DIR=str(recorded), AIRFLOW_HOME=str(folder / "airflow"),
                        WH_SCRATCH_DIR=str(folder / "scratch"), **server.env(bucket))
            stores, scratch_seen = {}, set()
            for kind in ("pipeline", "noop"):
                for side in order:
                    env = envs[side]
                    label = f"storage {kind} {side} #{rep}"
                    if side == "s3":
                        st = stores.setdefault(side, storage.Store(
                            env["WH_STORAGE_URL"], env["AWS_ENDPOINT_URL"],
                            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                            env["AWS_REGION"]))
                        before = st.list() if kind == "noop" else []
                        cpu_before = server_cpu_s(server.process.pid)
                    say(f"{label}: python -m pipeline.run ...")
                    log = here / f"{side}-{rep}" / f"{kind}.log"
                    code, wall, peak, cpu = speed._watch(
                        [sys.executable, "-m", "pipeline.run"], env, log, label)
                    say(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {peak:,.0f} MiB, "
                        f"exit {code} ({speed._load_average()})")
                    if code != 0:
                        failures.append(f"{label} failed (exit {code}); last lines of {log}:\n"
                                        + speed._tail(log))
                        continue
                    timings.setdefault((kind, side), []).append((wall, cpu, peak))
                    if side == "s3":
                        server_cpu.setdefault(kind, []).append(
                            server_cpu_s(server.process.pid) - cpu_before)
                        after = st.list()
                        if kind == "pipeline":
                            first_bytes.append(objects_by_area(after))
                        else:
                            noop_bytes.append(written_by(before, after))
                        scratch = Path(env["WH_SCRATCH_DIR"])
                        files = {p for p in scratch.rglob("*") if p.is_file()}
                        new = sorted(files - scratch_seen)
                        scratch_seen |= files
                        if new:
                            # Not a failure of the measure, but said: with WH_STORAGE_URL a
                            # task removes its scratch (issue 20).
                            left[kind] = (f"{len(new)} file(s) left in the local scratch, "
                                          f"{sum(p.stat().st_size for p in new) / 2**20:.1f} "
                                          "MiB: " + ", ".join(str(p.relative_to(scratch))
                                                              for p in new[:4]))
                            say(f"{label}: {left[kind]}")
        reader = reader_times(here, envs, reader_repeats, failures) if not failures else None
    finally:
        server.stop()
    rows = pipeline_rows(timings, server_cpu, first_bytes, noop_bytes, repeats, left)
    rows.append(reader or speed.row("storage:reader", 1, None, None, None, READER_TARGET, False,
                                    "FAILED: not run, a pipeline run failed"))
    return rows, failures


def pipeline_rows(timings: dict, server_cpu: dict[str, list[float]], first_bytes: list, noop_bytes: list,
                  repeats: int, left: dict[str, str]) -> list[dict]:
    """storage:pipeline and storage:noop (wall), storage:pipeline-cpu and storage:noop-cpu."""
    from bench import speed

    rows = []
    for kind in ("pipeline", "noop"):
        local, s3 = timings.get((kind, "local"), []), timings.get((kind, "s3"), [])
        what = "first run" if kind == "pipeline" else "no-op rerun (nothing new)"
        incomplete = ("" if len(local) == len(s3) == repeats else
                      f"FAILED: {len(local)} local and {len(s3)} s3 runs of {repeats} "
                      "succeeded. ")
        peak = max((p for _, _, p in s3), default=None)
        if kind == "pipeline":
            extra = (f"bucket after it: {describe_bytes(first_bytes[-1])}" if first_bytes
                     else "")
        else:
            extra = (f"written by it: {describe_bytes(noop_bytes[-1])}" if noop_bytes else "")
        for metric, index in (("", 0), ("-cpu", 1)):
            s3_v = [t[index] for t in s3]
            local_v = [t[index] for t in local]
            unit = "wall" if index == 0 else "CPU (user+system, children included)"
            note = (f"{incomplete}{what}, {unit}: s3 {spread(s3_v) if s3_v else '-'}, local "
                    f"{spread(local_v) if local_v else '-'}")
            if index == 1 and server_cpu.get(kind):
                note += f"; the S3 server's own CPU during the s3 run {spread(server_cpu[kind])}"
            if index == 0 and extra:
                note += f"; {extra}"
            if index == 0 and left.get(kind):
                note += f"; s3 run: {left[kind]}"
            r = speed.row(f"storage:{kind}{metric}", 1,
                          statistics.median(s3_v) if s3_v else None,
                          statistics.median(local_v) if local_v else None,
                          peak if index == 0 else None,
                          "no target (s3 / local, same data)", None, note)
            if incomplete:
                r["met"] = False
            rows.append(r)
    return rows


def reader_sql(env: dict, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "reader-sql"], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"python -m pipeline.run reader-sql failed (exit "
                           f"{done.returncode}): {done.stderr.strip()[-1500:]}")
    return done.stdout


def reader_env(env: dict) -> dict:
    """What the reader process gets: PATH, LANG and the S3 credentials, nothing else (the
    endpoint travels in the SQL)."""
    keep = ("PATH", "LANG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_REGION")
    return {k: env[k] for k in keep if k in env}


def reader_times(here: Path, envs: dict, repeats: int, failures: list[str]) -> dict:
    """storage:reader: a fresh process's time to its first answer, s3 against the local file,
    interleaved; the newest Frontex release's total must be the same on both."""
    from bench import speed
    from ingest.config import REPO_ROOT

    sql, printed_s, runs, answers = {}, {}, {side: [] for side in SIDES}, {}
    try:
        for side in SIDES:
            started = time.perf_counter()
            sql[side] = reader_sql(envs[side], REPO_ROOT)
            printed_s[side] = time.perf_counter() - started
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        failures.append(f"storage reader: {err}")
        return speed.row("storage:reader", 1, None, None, None,
                         READER_TARGET, False,
                         f"FAILED: {err}")
    (here / "reader-s3.sql").write_text(sql["s3"])
    (here / "reader-local.sql").write_text(sql["local"])
    for rep in range(1, repeats + 1):
        for side in SIDES if rep % 2 else SIDES[::-1]:
            empty = here / f"reader-{side}-{rep}"
            empty.mkdir()
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", READER, FIRST_QUERY], input=sql[side],
                                  cwd=empty, env=reader_env(envs[side]), capture_output=True,
                                  text=True, timeout=300)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                failures.append(f"storage reader {side} #{rep} failed (exit {done.returncode}):"
                                f"\n{done.stderr[-2000:]}")
                continue
            out = json.loads(done.stdout)
            runs[side].append((wall, out))
            answers.setdefault(side, out["answer"])
            left = list(empty.iterdir())
            if left:
                failures.append(f"storage reader {side} #{rep} wrote {left} in its empty folder")
    say_parts = {}
    for side in SIDES:
        if runs[side]:
            say_parts[side] = (
                f"{side} {spread([w for w, _ in runs[side]])} = import duckdb "
                f"{statistics.median(o['import_s'] for _, o in runs[side]):.2f} + reader SQL "
                f"{statistics.median(o['attach_s'] for _, o in runs[side]):.2f} + first query "
                f"{statistics.median(o['query_s'] for _, o in runs[side]):.2f} s (medians)")
    agree = answers.get("s3") == answers.get("local") and answers.get("s3")
    if answers and not agree:
        failures.append(f"storage reader: the answers differ: s3 {answers.get('s3')}, local "
                        f"{answers.get('local')}")
    answer = answers.get("s3") or answers.get("local") or []
    shown = ", ".join(f"{d}: {t:,}" for d, t in answer)
    note = (("" if agree and all(len(runs[s]) == repeats for s in SIDES) else "FAILED. ")
            + f"fresh python in an empty folder, reader-sql's SQL + {FIRST_QUERY!r} -> "
            f"{shown or 'no answer'}; " + "; ".join(say_parts.values())
            + "; printing the SQL (python -m pipeline.run reader-sql, once after each publish) "
            + ", ".join(f"{side} {printed_s[side]:.2f} s" for side in SIDES))
    s3 = [w for w, _ in runs["s3"]]
    local = [w for w, _ in runs["local"]]
    r = speed.row("storage:reader", 1, statistics.median(s3) if s3 else None,
                  statistics.median(local) if local else None, None,
                  READER_TARGET, None, note)
    if note.startswith("FAILED"):
        r["met"] = False
    return r
