"""A landed file whose rows break a NOT NULL constraint of a mart's contract (decision 90) is
treated as the not_null test it replaced treated it: the run fails naming the model, the column
and the file, the file is rejected, and the next run publishes without it (decision 92). Before,
the model's error named no file, nothing was rejected, and every later run failed on the same
file until someone rejected it by hand.

Real ``python -m pipeline.run`` runs on one installation, in file order: the recorded snapshot,
then the same with a financial-plan file (Cohesion Open Data 9qee-iv7c) whose programme has no
``total``: its amount is NULL in marts.fct_funding_disbursements, whose contract says NOT NULL
(the raw audit lets an empty amount through: amounts are "a number, or empty")."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
