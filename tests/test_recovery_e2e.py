"""What a user lives through, with ``python -m pipeline.run`` (what ``make run`` calls) in
separate processes on one installation, in file order: two runs at once, a source whose file
fails parsing beside another source with a new file, and a published file that is found
truncated. Every time the run either publishes correct data or changes nothing, and the next
run recovers with no hand work."""
from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from tests import workbooks
from tests.conftest import REPO_ROOT
from tests.test_pipeline_e2e import facts, install, manifest, run_pipeline, snapshot_with  # noqa: F401

pytestmark = pytest.mark.airflow

NEW_RELEASE_NOTE = "Source: FRAN data as of 03JUL25"
"""A re-issue of the recorded release (June 2025) a month later, with the same figures."""
STACKS_AFTER_S = 300


def pipeline_process(install, snapshot: Path) -> subprocess.Popen:
    env = dict(install["env"], WH_SNAPSHOT_DIR=str(snapshot))
    return subprocess.Popen([sys.executable, "-m", "pipeline.run"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def two_at_once(install, snapshot: Path, apart_s: float, what: str) -> list[tuple[str, str]]:
    """Two pipeline runs started ``apart_s`` seconds apart; both must exit 0. Their (stdout,
    stderr)."""
    first = pipeline_process(install, snapshot)
    time.sleep(apart_s)
    second = pipeline_process(install, snapshot)
    procs = (first, second)
    # Two runs take about a minute here; when they take far longer, each prints where its
    # threads are (pipeline.run dumps its stacks on SIGUSR1) so that the failure shows the hang.
    watchdog = threading.Timer(STACKS_AFTER_S, lambda: [p.send_signal(signal.SIGUSR1)
                                                       for p in procs if p.poll() is None])
    watchdog.start()
    try:
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        watchdog.cancel()
    if any(proc.returncode != 0 for proc in procs):
        raise AssertionError(f"{what} failed (exit codes {[p.returncode for p in procs]}):\n"
                             + "\n".join(f"--- run {i} (exit {proc.returncode}) ---\n"
                                          f"{out[-1500:]}\n{err[-6000:]}"
                                          for i, (proc, (out, err)) in
                                          enumerate(zip(procs, outs), 1)))
    return outs


def files_states(install) -> dict[str, str]:
    """sha256 -> state, as ``python -m pipeline.run files`` prints them."""
    listing = subprocess.run([sys.executable, "-m", "pipeline.run", "files"], cwd=REPO_ROOT,
                             env=install["env"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    by_path = {e["path"]: e["sha256"] for e in manifest(install)}
    return {by_path[line.split()[1]]: line.split()[0] for line in listing.stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1] in by_path}


def loaded_shas(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {s for (s,) in con.execute("select sha256 from raw.load_log").fetchall()}


def test_two_first_runs_at_once_on_a_fresh_installation(install, snapshot_dir):
    """Both set up a new Airflow home (migration, DAGs written) and build from empty: they take
    turns (the soak saw one crash on 'UNIQUE constraint failed' when they did not)."""
    outs = two_at_once(install, snapshot_dir, 0.3, "a first run")
    published = [out for out, _ in outs if "Published warehouse:" in out]
    assert len(published) == 1, "expected one first run to publish and the other to find it " \
        "built: " + " | ".join(out[-300:] for out, _ in outs)
    assert facts(install["warehouse"])["total"] == 4_966_869


def test_two_runs_at_once_publish_the_new_release_once_and_reject_nothing(install,
                                                                        snapshot_dir):
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    snapshot = snapshot_with(install, "snapshot_july",
                             workbooks.write_workbook(header=header, rows=rows,
                                                      note=NEW_RELEASE_NOTE))
    outs = two_at_once(install, snapshot, 1.0, "a concurrent run")
    published = [out for out, _ in outs if "Published warehouse:" in out]
    unchanged = [out for out, _ in outs if "Nothing new since the publish of run" in out]
    assert len(published) == 1 and len(unchanged) == 1, \
        "expected one run to publish the new release and the other to find it built: " \
        + " | ".join(out[-300:] for out, _ in outs)
    got = facts(install["warehouse"])
    assert got["latest"] == "2025-07-03" and got["total"] == 4_966_869, got
    states = files_states(install)
    assert "rejected" not in states.values(), f"a concurrent run rejected a file: {states}"
    july = [e["sha256"] for e in manifest(install) if e["release_date"] == "2025-07-03"]
    assert len(july) == 1 and states[july[0]] == "published", (july, states)


def _registry_edited(install, snapshot_dir: Path) -> Path:
    """A copy of the recorded registries whose readmission registry has one note changed."""
    folder = install["root"] / "registries_edited"
    shutil.copytree(snapshot_dir / "registries", folder)
    path = folder / "readmission_instruments.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = lines[-1].rstrip("\n") + " Checked again.\n"
    path.write_text("".join(lines), encoding="utf-8")
    return folder


def test_a_file_that_fails_parsing_holds_back_no_other_source(install, snapshot_dir,
                                                              recorded_workbook):
    truncated = recorded_workbook[: len(recorded_workbook) // 2]
    snapshot = snapshot_with(install, "snapshot_bad_frontex", truncated)
    (snapshot / "registries").unlink()
    (snapshot / "registries").symlink_to(_registry_edited(install, snapshot_dir))
    before = facts(install["warehouse"])
    done = run_pipeline(install, snapshot)
    assert done.returncode == 1, "a run with a quarantined file must fail"
    assert "frontex_ingest failed at step 'land'" in done.stderr, done.stderr[-3000:]
    assert "ibc.xlsx" in done.stderr and "python -m pipeline.run readmit FILE" in done.stderr
    assert "Published warehouse:" in done.stdout, \
        "the registry's new version was not published beside the failed Frontex file:\n" \
        + done.stdout[-3000:]
    edited = hashlib.sha256((install["root"] / "registries_edited"
                             / "readmission_instruments.csv").read_bytes()).hexdigest()
    assert edited in {e["sha256"] for e in manifest(install)}, "the new registry was not landed"
    assert edited in loaded_shas(install["warehouse"]), "the new registry was not published"
    assert facts(install["warehouse"])["total"] == before["total"]
    [bad] = [e for e in manifest(install) if e["status"] == "quarantined"
             and e["bytes"] == len(truncated)]
    assert files_states(install)[bad["sha256"]] == "rejected"

    # The source still offers the same bad bytes: skipped with a note, not an error any more.
    again = run_pipeline(install, snapshot)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"NOTE: frontex_ingest: still offered and skipped, quarantined at landing: " \
           f"{bad['path']}" in again.stdout, again.stdout[-3000:]
    assert "Nothing new since the publish of run" in again.stdout
    assert len([e for e in manifest(install) if e["bytes"] == len(truncated)]) == 1


def test_a_truncated_published_file_is_set_aside_and_rebuilt(install, snapshot_dir):
    warehouse = install["warehouse"]
    before = facts(warehouse)
    size = warehouse.stat().st_size
    with warehouse.open("r+b") as fh:
        fh.truncate(size // 3)
    listing = subprocess.run([sys.executable, "-m", "pipeline.run", "files"], cwd=REPO_ROOT,
                             env=install["env"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 2 and "cannot be read" in listing.stderr \
        and "rebuilds it from landing/" in listing.stderr, listing.stderr
    snapshot = install["root"] / "snapshot_july"
    done = run_pipeline(install, snapshot)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cannot be opened as DuckDB" in done.stdout and "rebuilding it from landing/" \
        in done.stdout, "make run did not say that it rebuilt the published file:\n" \
        + done.stdout[-3000:]
    aside = list(warehouse.parent.glob(f"{warehouse.name}.broken-*"))
    assert len(aside) == 1 and aside[0].stat().st_size == size // 3, \
        "the broken file was not kept for diagnosis"
    after = facts(warehouse)
    for key in ("latest", "rows", "total", "first", "last", "returns", "eu28_2015"):
        assert after[key] == before[key], f"{key} after the rebuild: {after[key]} != {before[key]}"
    assert after["fingerprint"] == before["fingerprint"], "a mart differs after the rebuild"


def test_sigterm_stops_a_run_mid_build_and_the_next_run_publishes(install, snapshot_dir):
    """``kill <pid>`` (a cron ``timeout``, systemd stop): SIGTERM while the transform's dbt build
    runs stops the run there (decision 82). Airflow's task runner sets a SIGTERM handler of its
    own at each task that does nothing under dag.test(), so before, the run went on and
    published. Now: exit 143, the dbt it started is gone, nothing published, the report says
    where it stopped; the next run publishes the release with no hand work."""
    import psutil

    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    snapshot = snapshot_with(install, "snapshot_august", workbooks.write_workbook(
        header=header, rows=rows, note="Source: FRAN data as of 05AUG25"))
    before = hashlib.sha256(install["warehouse"].read_bytes()).hexdigest()
    rejected_before = {k for k, v in files_states(install).items() if v == "rejected"}
    # Unbuffered: each line arrives when it is written, so the signal lands while dbt builds
    # (a piped stdout is written in blocks: the first dbt line could arrive after dbt ended and
    # the signal land anywhere after it; a fresh-clone CI run saw that).
    env = dict(install["env"], WH_SNAPSHOT_DIR=str(snapshot), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.run"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    timer = threading.Timer(600, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            seen.append(line)
            if "dbt | " in line and " START " in line:  # dbt builds its first node
                break
        dbt = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "dbt" in " ".join(p.cmdline())]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=180)
    finally:
        timer.cancel()
    out = "".join(seen) + rest
    assert dbt, "no dbt process was running when SIGTERM was sent:\n" + out[-3000:]
    assert proc.returncode == 143, f"exit {proc.returncode}, expected 143:\n{out[-4000:]}"
    assert "PIPELINE STOPPED: given SIGTERM during warehouse_transform" in out, out[-4000:]
    assert "warehouse_transform failed at step 'dbt_build'" in out, out[-4000:]
    assert "Terminated: stopped by SIGTERM" in out, out[-4000:]
    assert "The published warehouse was not changed" in out, out[-4000:]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in dbt), (
        "the dbt build the stopped run started is still running")
    assert hashlib.sha256(install["warehouse"].read_bytes()).hexdigest() == before
    rejected = {k for k, v in files_states(install).items() if v == "rejected"}
    assert rejected == rejected_before, f"a stopped run rejected {rejected - rejected_before}"

    done = run_pipeline(install, snapshot)
    assert done.returncode == 0, done.stderr[-3000:]
    assert facts(install["warehouse"])["latest"] == "2025-08-05"
