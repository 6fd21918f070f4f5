"""Steps on hosts with no shared disk (pipeline.scratch), against a real S3 server: the run
folder travels through the bucket between steps, the scratch space goes with the step, and a
step started again after its worker died says so in the run's notice."""
from __future__ import annotations

import json

import pytest

from ingest import storage
from ingest.config import settings
from pipeline import scratch


@pytest.fixture
def on_s3(s3_env, monkeypatch, tmp_path):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    return storage.configured()


def test_the_run_folder_travels_through_the_bucket_and_scratch_goes(on_s3):
    run_id = "run_a"
    with scratch.task(run_id, "prepare"):
        folder = settings().runs_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "migration.duckdb").write_bytes(b"build v1")
        (folder / "dbt").mkdir()
        (folder / "dbt" / "run_results.json").write_text("{}")
        (folder / "drop.me").write_text("x")
    assert not settings().scratch.exists(), "the step left its scratch space behind"
    names = {o.key for o in on_s3.list(f"runs/{run_id}/")}
    assert {f"runs/{run_id}/migration.duckdb", f"runs/{run_id}/dbt/run_results.json",
            f"runs/{run_id}/drop.me"} <= names, names

    # The next step (another host: nothing local) finds the folder, changes and deletes files.
    with scratch.task(run_id, "load"):
        folder = settings().runs_dir / run_id
        assert (folder / "migration.duckdb").read_bytes() == b"build v1"
        (folder / "migration.duckdb").write_bytes(b"build v2, loaded")
        (folder / "drop.me").unlink()
    assert on_s3.get(f"runs/{run_id}/migration.duckdb")[0] == b"build v2, loaded"
    assert on_s3.head(f"runs/{run_id}/drop.me") is None, "a file the step deleted is still there"
    marks = sorted(o.key for o in on_s3.list(f"runs/{run_id}/attempts/"))
    assert marks == [f"runs/{run_id}/attempts/load.1.json",
                     f"runs/{run_id}/attempts/prepare.1.json"], marks
    assert json.loads(on_s3.get(marks[0])[0])["outcome"] == "done"


def test_a_step_started_again_after_its_worker_died_says_so(on_s3):
    run_id = "run_b"
    folder = settings().runs_dir / run_id
    # The first attempt's host dies right after starting: its mark is uploaded, nothing else.
    scratch.attempt_started(on_s3, run_id, folder, "dbt_build")
    scratch.remove_scratch()
    with scratch.task(run_id, "dbt_build"):
        notice = (settings().runs_dir / run_id / scratch.NOTICE_FILE).read_text()
    assert "step dbt_build was started again on" in notice, notice
    assert "stopped without finishing (its worker died or was killed)" in notice, notice
    kept = on_s3.get(f"runs/{run_id}/{scratch.NOTICE_FILE}")
    assert kept is not None and b"started again" in kept[0], "the notice did not reach the bucket"
    second = json.loads(on_s3.get(f"runs/{run_id}/attempts/dbt_build.2.json")[0])
    assert second["outcome"] == "done"


def test_a_failing_step_still_pushes_its_record_and_removes_scratch(on_s3):
    run_id = "run_c"
    with pytest.raises(RuntimeError):
        with scratch.task(run_id, "audit_raw"):
            folder = settings().runs_dir / run_id
            (folder / "failure.json").write_text('{"step": "audit_raw"}')
            raise RuntimeError("an audit failed")
    assert on_s3.get(f"runs/{run_id}/failure.json")[0] == b'{"step": "audit_raw"}'
    assert json.loads(on_s3.get(f"runs/{run_id}/attempts/audit_raw.1.json")[0])["outcome"] \
        == "failed"
    assert not settings().scratch.exists()


def test_without_object_storage_nothing_moves(monkeypatch, tmp_path):
    monkeypatch.delenv("WH_STORAGE_URL", raising=False)
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    with scratch.task("run_d", "prepare"):
        folder = settings().runs_dir / "run_d"
        folder.mkdir(parents=True)
        (folder / "x").write_text("kept")
    assert (tmp_path / "wh" / "runs" / "run_d" / "x").read_text() == "kept"
    assert not (folder / scratch.ATTEMPTS).exists()


def test_a_try_whose_worker_died_before_the_step_began_is_told_too(on_s3):
    """The worker died between Airflow starting the task and the step leaving its mark: the
    second try finds no mark, but Airflow's try number says it."""
    with scratch.airflow_try(2):
        with scratch.task("run_e", "dbt_build"):
            notice = (settings().runs_dir / "run_e" / scratch.NOTICE_FILE).read_text()
    assert "step dbt_build was started again on" in notice and "Airflow try 2" in notice, notice
    with scratch.task("run_f", "dbt_build"):  # a first try says nothing
        assert not (settings().runs_dir / "run_f" / scratch.NOTICE_FILE).exists()


def test_housekeeping_removes_old_failed_builds_in_the_bucket(on_s3, monkeypatch):
    from pipeline import warehouse

    for run in ("old1", "old2", "old3", "current"):
        on_s3.put(f"runs/{run}/migration.duckdb", b"a failed build")
        on_s3.put(f"runs/{run}/failure.json", b"{}")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "1")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "0")
    removed = warehouse.housekeeping("current")
    left = sorted(o.key for o in on_s3.list("runs/") if o.key.endswith("migration.duckdb"))
    assert removed["builds"] == 2 and len(left) == 2, (removed, left)
    assert "runs/current/migration.duckdb" in left, "the running build was removed"
    assert len([o for o in on_s3.list("runs/") if o.key.endswith("failure.json")]) == 4, \
        "the failure records must stay"
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS_DAYS", "7")
    monkeypatch.setenv("WH_KEEP_FAILED_BUILDS", "0")
    assert warehouse.housekeeping("current")["builds"] == 0, "a build younger than 7 days went"


def test_a_first_publish_killed_before_its_pointer_is_not_claimed_as_published(on_s3):
    """The publish step records its run before it moves the pointer; a first publish killed in
    between left a 'published' claim with no pointer ever written: the next run corrects it."""
    from pipeline import quality, warehouse

    quality.record_run("killed_first", "published")
    assert quality.correct_unpublished(warehouse.published_path()) == ["killed_first"]
    quality.record_run("killed_again", "published")
    on_s3.put("warehouse/CURRENT.broken-20261205T000000Z", b"warehouse/versions/x.duckdb")
    assert quality.correct_unpublished(warehouse.published_path()) == [], \
        "a pointer was once written (set aside as broken): older claims may be genuine"


def test_the_scratch_of_a_dead_process_is_removed_at_the_next_step(on_s3):
    root = settings().scratch_dir
    dead, mine = root / "task-999999999", settings().scratch
    (dead / "landing").mkdir(parents=True)
    (dead / "landing" / "big.xlsx").write_bytes(b"x" * 1000)
    with scratch.task("run_g", "prepare"):
        assert not dead.exists(), "the scratch of a process that is gone was left"
        assert mine.exists()


def test_a_fresh_heartbeat_is_trusted_over_a_pid_this_host_cannot_see(on_s3):
    """Two containers sharing a host name do not see each other's processes: a lease whose
    step beat moments ago is alive, even if its pid is not found here; once silent, it is not."""
    import socket
    import time

    from pipeline import lock

    lease = lock.Lease(run_id="other", host=socket.gethostname(), pid=999999991,
                       owner_pid=999999991, since="2026-12-05T00:00:00+00:00", step="dbt_build",
                       beat=time.time())
    assert lock.stale_reason(lease) is None, "a live run's lease would be taken over"
    silent = lock.Lease(**{**lease.__dict__, "beat": time.time() - 3 * lock.BEAT_S})
    assert lock.stale_reason(silent) == "its process 999999991 is gone"
