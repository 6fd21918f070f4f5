"""Situations decision 90 (dbt started ahead, NOT NULL constraints) was not designed for, on
real ``python -m pipeline.run`` runs of one installation, in file order (decision 92).

- A landed file whose rows break a NOT NULL constraint of a mart's contract is treated as the
  not_null test it replaced treated it: the run fails naming the model, the column and the file,
  the file is rejected, and the next run publishes without it. Before, the model's error named
  no file, nothing was rejected, and every later run failed on the same file until someone
  rejected it by hand. The file: a financial plan (Cohesion Open Data 9qee-iv7c) whose programme
  has no ``total``, NULL in marts.fct_funding_disbursements.amount_eur (the raw audit lets an
  empty amount through: amounts are "a number, or empty").
- Ctrl-C (SIGINT to the run's process group, the prestarted dbt in it) while dbt builds: the
  run fails naming the step, publishes nothing and rejects nothing; the next run publishes. Before,
  the step's KeyboardInterrupt was not recorded, so the report and ``make run`` took the run for
  a success: exit 0, "Published warehouse" with the previous publish's figures.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import workbooks
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.airflow

FAMILIES = ("eurostat", "frontex", "registries")
PLAN_WITHOUT_TOTAL = (
    '"ms","cci","fund","total","cci_title","financial_allocation_category",'
    '"last_adoption_date_ecms"\n'
    '"EE","2021EE65BVPR001","BMVI","","Programme of Estonia","EU contribution",'
    '"2023-10-16T00:00:00.000"\n')


@pytest.fixture(scope="module")
def install(tmp_path_factory, snapshot_dir):
    root = tmp_path_factory.mktemp("constraint_culprits")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WH_", "AIRFLOW"))}
    env.update({
        "WH_SNAPSHOT_DIR": str(snapshot_dir),
        "WH_LANDING_DIR": str(root / "landing"),
        "WH_WAREHOUSE": str(root / "warehouse" / "migration.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
    })
    return {"root": root, "env": env, "warehouse": root / "warehouse" / "migration.duckdb",
            "landing": root / "landing", "snapshot": snapshot_dir}


def run_pipeline(install, snapshot: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(install["env"])
    if snapshot is not None:
        env["WH_SNAPSHOT_DIR"] = str(snapshot)
    return subprocess.run([sys.executable, "-m", "pipeline.run"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_of(install, sha256: str) -> tuple[str, str]:
    """(path, state) of the landed file with this sha256, as ``pipeline.run files`` lists it."""
    entries = [json.loads(line) for line in
               (install["landing"] / "manifest.jsonl").read_text().splitlines()]
    [entry] = [e for e in entries if e["sha256"] == sha256]
    listing = subprocess.run([sys.executable, "-m", "pipeline.run", "files"], cwd=REPO_ROOT,
                             env=install["env"], capture_output=True, text=True, timeout=120)
    [line] = [line for line in listing.stdout.splitlines()
              if line.split()[1:2] == [entry["path"]]]
    return entry["path"], line.split()[0]


def test_first_run_publishes(install):
    done = run_pipeline(install)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_a_null_in_a_not_null_column_names_the_file_rejects_it_and_the_next_run_recovers(
        install):
    snapshot = install["root"] / "snapshot_plan_without_total"
    (snapshot / "cohesion").mkdir(parents=True)
    for family in FAMILIES:
        (snapshot / family).symlink_to(install["snapshot"] / family)
    for recorded in (install["snapshot"] / "cohesion").glob("*.csv"):
        (snapshot / "cohesion" / recorded.name).symlink_to(recorded)
    bad = snapshot / "cohesion" / "9qee-iv7c_plan.csv"
    bad.write_text(PLAN_WITHOUT_TOTAL, encoding="utf-8")
    before = sha(install["warehouse"])

    done = run_pipeline(install, snapshot)
    out = done.stdout + done.stderr
    assert done.returncode == 1, f"exit {done.returncode}:\n{out[-4000:]}"
    assert "warehouse_transform failed at step 'dbt_build'" in done.stderr, done.stderr[-4000:]
    assert "fct_funding_disbursements" in done.stderr and "amount_eur" in done.stderr, (
        "the error does not name the model and the column:\n" + done.stderr[-4000:])
    path, state = state_of(install, sha(bad))
    assert f"landing_file={path}" in done.stderr, (
        "the error does not name the file whose rows broke the NOT NULL constraint (the "
        "not_null test it replaced did):\n" + done.stderr[-4000:])
    assert state == "rejected", (
        f"the file whose rows broke the NOT NULL constraint is {state!r}, not rejected: every "
        "later run fails on it until it is rejected by hand")
    assert sha(install["warehouse"]) == before, "a failed build changed the published file"

    again = run_pipeline(install, snapshot)
    assert again.returncode == 0, (
        "the run after the failure did not recover:\n" + again.stdout[-2000:]
        + again.stderr[-4000:])


def published_release(warehouse: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
         "print(c.execute('select max(release_date) from marts.fct_border_crossings').fetchone()[0])",
         str(warehouse)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_ctrl_c_while_dbt_builds_fails_the_run_and_the_next_run_publishes(install):
    import psutil

    header, rows = workbooks.recorded_rows(install["snapshot"] / "frontex" / "ibc.xlsx")
    snapshot = install["root"] / "snapshot_august"
    (snapshot / "frontex").mkdir(parents=True)
    (snapshot / "frontex" / "ibc.xlsx").write_bytes(workbooks.write_workbook(
        header=header, rows=rows, note="Source: FRAN data as of 05AUG25"))
    for family in ("eurostat", "cohesion", "registries"):
        (snapshot / family).symlink_to(install["snapshot"] / family)
    before = sha(install["warehouse"])
    release = published_release(install["warehouse"])
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the run and its dbt.
    env = dict(install["env"], WH_SNAPSHOT_DIR=str(snapshot), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.run"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
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
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=180)
    finally:
        timer.cancel()
    out = "".join(seen) + rest
    assert dbt, "no dbt process was running when Ctrl-C was sent:\n" + out[-3000:]
    assert proc.returncode != 0 and "Published warehouse" not in rest, (
        f"Ctrl-C while dbt built: exit {proc.returncode}, and the run said it published "
        f"(the previous publish's figures):\n{out[-3000:]}")
    assert "PIPELINE FAILED: warehouse_transform failed at step 'dbt_build'" in out, out[-3000:]
    assert "stopped by SIGINT" in out, out[-3000:]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in dbt), (
        "the dbt build of the interrupted run is still running")
    assert sha(install["warehouse"]) == before, "an interrupted run changed the published file"
    assert published_release(install["warehouse"]) == release

    done = run_pipeline(install, snapshot)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert published_release(install["warehouse"]) == "2025-08-05", (
        "the run after the interrupted one did not publish the release")
