"""``make run`` with WH_STORAGE_URL against a real S3 server (SeaweedFS on 127.0.0.1): the run
lands, builds, audits and publishes through the object store and keeps nothing on the local disk
(issue 20); a rerun with nothing new changes nothing; a bad file is kept, rejected and the
published warehouse stays as it was, and the next good run recovers.

One installation (one bucket) for the module, in file order, like tests/test_pipeline_e2e.py."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO_ROOT
from tests.test_pipeline_e2e import workbook_with

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def s3_install(tmp_path_factory, snapshot_dir, s3_server):
    root = tmp_path_factory.mktemp("s3e2e")
    bucket = s3_server.create_bucket()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WH_", "AIRFLOW", "AWS_"))}
    env.update(s3_server.env(bucket, prefix="warehouse-prod"))
    env.update({
        "WH_SNAPSHOT_DIR": str(snapshot_dir),
        "WH_SCRATCH_DIR": str(root / "scratch"),
        "AIRFLOW_HOME": str(root / "airflow"),
    })
    work = root / "workdir"  # the run's working directory: nothing may be written here
    work.mkdir()
    from ingest import storage
    store = storage.Store(env["WH_STORAGE_URL"], env["AWS_ENDPOINT_URL"],
                          env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                          env["AWS_REGION"])
    return {"root": root, "env": env, "store": store, "work": work}


def run(install, snapshot: Path | None = None, *args: str) -> subprocess.CompletedProcess:
    env = dict(install["env"])
    if snapshot is not None:
        env["WH_SNAPSHOT_DIR"] = str(snapshot)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=install["work"],
                          env=env, capture_output=True, text=True, timeout=900)


def keys(install) -> list[str]:
    return [o.key for o in install["store"].list()]


def pointer(install) -> str | None:
    got = install["store"].get("warehouse/CURRENT")
    return got[0].decode().strip() if got else None


def published_facts(install, tmp_path: Path) -> dict:
    """The newest Frontex release and its total, read from the published object (downloaded by
    the test into its own folder, opened read-only)."""
    local = tmp_path / "published.duckdb"
    assert install["store"].download(pointer(install), local), "the pointer names no object"
    with duckdb.connect(str(local), read_only=True) as con:
        latest, total = con.execute("""
            select max(release_date)::varchar,
                   sum(detections) filter (where release_date = (select max(release_date)
                                                                  from marts.fct_border_crossings))
            from marts.fct_border_crossings""").fetchone()
    return {"latest": latest, "total": int(total)}


def local_leftovers(install) -> list[str]:
    """Files the runs left on the local disk outside Airflow's home."""
    root = install["root"]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] not in ("airflow", "publisher"))


def manifest(install) -> list[dict]:
    body, _ = install["store"].get("landing/manifest.jsonl")
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def test_first_run_publishes_through_the_object_store_and_keeps_nothing_local(s3_install,
                                                                             tmp_path):
    done = run(s3_install)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Published warehouse:" in done.stdout, done.stdout[-3000:]
    found = keys(s3_install)
    for expected in ("landing/manifest.jsonl", "landing/states.jsonl", "warehouse/CURRENT",
                     "quality/quality_history.duckdb", "reports/quality/latest.html"):
        assert expected in found, f"{expected} is not in the bucket: {found[:40]}"
    assert any(k.startswith("landing/frontex/") for k in found), found[:40]
    assert any(k.startswith("parsed/") for k in found), "no parsed form kept in the bucket"
    assert pointer(s3_install).startswith("warehouse/versions/"), pointer(s3_install)
    runs = {k.split("/")[1] for k in found if k.startswith("runs/") and k.count("/") >= 2}
    assert any(f"runs/{r}/dbt/target/run_results.json" in found for r in runs), \
        "the build artefacts of the transform run are not in the bucket"
    assert local_leftovers(s3_install) == [], \
        f"the run left files on the local disk: {local_leftovers(s3_install)[:20]}"
    assert not any(s3_install["work"].iterdir()), "the run wrote into its working directory"
    assert published_facts(s3_install, tmp_path) == {"latest": "2025-06-03",
                                                     "total": 4_966_869}


def test_make_report_rebuilds_the_report_into_the_bucket(s3_install):
    env = dict(s3_install["env"], PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-m", "pipeline.report"], cwd=s3_install["work"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    prefix = s3_install["env"]["WH_STORAGE_URL"] + "/"
    report = done.stdout.split("Quality report: ", 1)[1].split()[0]
    assert report.startswith(prefix + "reports/quality/"), done.stdout
    page = s3_install["store"].get(report.removeprefix(prefix))
    assert page is not None and b"Published" in page[0], f"{report} is not in the bucket"
    assert local_leftovers(s3_install) == [], local_leftovers(s3_install)


def test_a_rerun_with_nothing_new_changes_nothing_in_the_bucket(s3_install):
    before = pointer(s3_install)
    done = run(s3_install)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Nothing new since the publish of run" in done.stdout, done.stdout[-3000:]
    # Every source asked against the bucket's landing, the lease and the check through the
    # bucket: no Airflow started (decision 74).
    assert "recorded without starting Airflow" in done.stdout, done.stdout[-3000:]
    assert pointer(s3_install) == before, "a run with nothing new moved the published pointer"
    assert local_leftovers(s3_install) == []


def snapshot_of(install, name: str, content: bytes, snapshot_dir: Path) -> Path:
    folder = install["root"] / "publisher" / name  # what the publisher offers, not ours
    (folder / "frontex").mkdir(parents=True)
    (folder / "frontex" / "ibc.xlsx").write_bytes(content)
    for family in ("eurostat", "cohesion", "registries"):
        (folder / family).symlink_to(snapshot_dir / family)
    return folder


def states(install) -> dict[str, str]:
    """sha256 -> its last state event, from the bucket."""
    body, _ = install["store"].get("landing/states.jsonl")
    return {e["sha256"]: e["event"] for e in
            (json.loads(line) for line in body.decode().splitlines() if line.strip())}


def test_bad_then_corrected_release_on_the_object_store(s3_install, tmp_path, snapshot_dir):
    """The lifecycle's good, bad, good and same-release correction, on the object store: a
    workbook that breaks an audit (a negative count) is rejected and kept, the published
    pointer does not move; the next run, a correction of the same release (one cell +5),
    publishes with no hand work."""
    before = pointer(s3_install)

    def negative(rows):
        rows[10][50] = -7
    bad_bytes = workbook_with(snapshot_dir, "Source: FRAN data as of 03JUN25", negative)
    done = run(s3_install, snapshot_of(s3_install, "snapshot_negative", bad_bytes, snapshot_dir))
    assert done.returncode == 1, "a run with a negative count must fail"
    assert "warehouse_transform failed at step 'audit_raw'" in done.stderr, done.stderr[-3000:]
    assert "detections non-negative" in done.stderr and "source_row=12" in done.stderr
    red = done.stderr.split("Quality report (red): ", 1)[1].split()[0]
    assert red.startswith(s3_install["env"]["WH_STORAGE_URL"] + "/reports/quality/"), red
    page = s3_install["store"].get(red.removeprefix(s3_install["env"]["WH_STORAGE_URL"] + "/"))
    assert page is not None and b"FAILED: nothing was published." in page[0], red
    kept_in = s3_install["env"]["WH_STORAGE_URL"] + "/runs/"
    assert f"Build database and audit results kept in {kept_in}" in done.stderr, \
        done.stderr[-2000:]
    assert pointer(s3_install) == before, "a failed run moved the published pointer"
    bad_sha = hashlib.sha256(bad_bytes).hexdigest()
    [kept] = [e for e in manifest(s3_install) if e["sha256"] == bad_sha]
    got = s3_install["store"].get(f"landing/{kept['path']}")
    assert got is not None and got[0] == bad_bytes, "the bad file is not kept for diagnosis"
    assert states(s3_install)[bad_sha] == "rejected"
    found = keys(s3_install)
    assert any(k.startswith("runs/") and k.endswith("/failure.json") for k in found), \
        "the failed run's record is not in the bucket"
    assert local_leftovers(s3_install) == []

    def plus_five(rows):
        rows[10][50] = (rows[10][50] or 0) + 5
    fixed = workbook_with(snapshot_dir, "Source: FRAN data as of 03JUN25", plus_five)
    done = run(s3_install, snapshot_of(s3_install, "snapshot_fixed", fixed, snapshot_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert pointer(s3_install) != before, "the correction after a bad run did not publish"
    assert published_facts(s3_install, tmp_path) == {"latest": "2025-06-03",
                                                     "total": 4_966_869 + 5}
    assert states(s3_install)[bad_sha] == "rejected"
    assert local_leftovers(s3_install) == []
