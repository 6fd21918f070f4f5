"""One transform run at a time (pipeline.lock), with real processes: a second run waits for the
first or fails naming it, blames no file and changes nothing; a run whose process died, or that
went idle under a scheduler, is taken over by the next one; a killed run's files are published
by the next run, never rejected."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import date

import pytest

from ingest.config import settings
from ingest.landing import Landing
from pipeline import files, lock, steps, warehouse
from tests.sources.frontex import test_frontex_layouts as layouts
from tests.conftest import REPO_ROOT, point_installation_at

HOLDER = textwrap.dedent("""
    import os, sys, time
    from pipeline import lock
    run_id, seconds, release = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "release"
    with lock.step(run_id, "dbt_build") as held:
        print("holding", flush=True)
        time.sleep(seconds)
        if release:
            held.release()
    print("done", flush=True)
""")


@pytest.fixture
def runs(tmp_path, monkeypatch, snapshot_dir):
    point_installation_at(monkeypatch, tmp_path, snapshot_dir)
    monkeypatch.delenv(lock.OWNER_PID_VAR, raising=False)
    # The 2020 archive release is dated a year after its newest month (tests/test_lifecycle.py).
    monkeypatch.setenv("WH_FRONTEX_RELEASE_LAG_DAYS", "400")
    return tmp_path


def holder(seconds: float, release: bool = True, run_id: str = "run_a",
           owner: bool = False) -> subprocess.Popen:
    """Another process holding a step of ``run_id``, started and holding when this returns."""
    env = dict(os.environ)
    env.pop(lock.OWNER_PID_VAR, None)
    code = HOLDER
    if owner:  # make run: the whole run in one process, which says so
        code = "import os; os.environ['WH_RUN_OWNER_PID'] = str(os.getpid())\n" + HOLDER
    proc = subprocess.Popen([sys.executable, "-c", code, run_id, str(seconds),
                             "release" if release else "keep"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding", "the holder process did not take the lease"
    return proc


def test_a_second_run_fails_naming_the_first_and_changes_nothing(runs, monkeypatch):
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "1")
    first = holder(30)
    try:
        started = time.monotonic()
        with pytest.raises(lock.AnotherRunBuilding) as refused:
            with lock.step("run_b", "check_for_changes"):
                pytest.fail("run_b got the warehouse while run_a was building")
        waited = time.monotonic() - started
        message = str(refused.value)
        for part in ("run run_a", f"pid {first.pid}", socket.gethostname(), "step dbt_build",
                     "changed nothing", "rejected no file"):
            assert part in message, f"the refusal does not say {part!r}: {message}"
        assert 1 <= waited < 10, f"waited {waited:.1f} s with WH_TRANSFORM_LOCK_WAIT_S=1"
        assert lock.read_lease().run_id == "run_a", "the refused run touched run_a's lease"
    finally:
        first.kill()
        first.wait()


def test_a_second_run_waits_for_the_first_then_builds(runs, monkeypatch):
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "60")
    first = holder(2, release=True)
    started = time.monotonic()
    with lock.step("run_b", "check_for_changes"):
        waited = time.monotonic() - started
        assert lock.read_lease().run_id == "run_b"
        assert first.wait(timeout=10) == 0 and "done" in first.stdout.read(), \
            "run_b got the warehouse while run_a still held its step"
    assert waited >= 1, f"run_b did not wait for run_a ({waited:.2f} s)"


def test_a_run_killed_in_a_step_is_taken_over_at_once(runs, monkeypatch, caplog):
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "30")
    first = holder(60)
    first.send_signal(signal.SIGKILL)
    first.wait()
    started = time.monotonic()
    with lock.step("run_b", "check_for_changes"):
        assert lock.read_lease().run_id == "run_b"
    assert time.monotonic() - started < 5, "a dead run's lease was waited for"
    assert "taking over the warehouse from run run_a" in caplog.text
    assert "ended without finishing" in caplog.text


def test_a_make_run_process_that_died_between_steps_is_taken_over(runs, monkeypatch, caplog):
    """make run keeps the lease between its steps; when its process is gone, so is its run."""
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "30")
    first = holder(0, release=False, owner=True)
    assert first.wait(timeout=10) == 0
    lease = lock.read_lease()
    assert lease.run_id == "run_a" and lease.owner_pid == first.pid and lease.step_ended
    with lock.step("run_b", "check_for_changes"):
        pass
    assert f"its process {first.pid} is gone" in caplog.text


def test_between_scheduled_tasks_the_lease_holds_until_idle_too_long(runs, monkeypatch, caplog):
    """Under a scheduler each task is its own process: between two tasks of a live run no
    process holds anything, and the lease must still hold; an idle one is taken over."""
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "0.5")
    first = holder(0, release=False)
    assert first.wait(timeout=10) == 0
    with pytest.raises(lock.AnotherRunBuilding, match="run run_a"):
        with lock.step("run_b", "check_for_changes"):
            pytest.fail("run_b took a live scheduled run's lease between its tasks")
    monkeypatch.setenv("WH_TRANSFORM_LEASE_IDLE_S", "0.2")
    time.sleep(0.3)
    with lock.step("run_b", "check_for_changes"):
        assert lock.read_lease().run_id == "run_b"
    assert "WH_TRANSFORM_LEASE_IDLE_S=0.2" in caplog.text


def test_a_failed_step_gives_the_lease_up(runs):
    with pytest.raises(RuntimeError):
        with lock.step("run_a", "load"):
            raise RuntimeError("disk full")
    assert lock.read_lease() is None, "a failed run kept the warehouse"


def test_a_bad_wait_setting_is_named(runs, monkeypatch):
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "10min")
    with pytest.raises(ValueError, match=r"WH_TRANSFORM_LOCK_WAIT_S='10min': expected a number"):
        with lock.step("run_a", "load"):
            pass


SMALL_RELEASE = date(2020, 4, 5)


def test_a_refused_run_rejects_nothing_and_its_report_step_writes_nothing(runs, monkeypatch):
    """Through the transform's real first and last steps: the refusal is the run's failure,
    blames no file, and leaves the owner's warehouse and the quality history alone."""
    monkeypatch.setenv("WH_TRANSFORM_LOCK_WAIT_S", "0.5")
    landing = Landing(settings().landing_dir)
    landing.land("frontex", "file:///archive/ibc_2020.xlsx", layouts.archive_2020(), SMALL_RELEASE)
    first = holder(60)
    try:
        with pytest.raises(lock.AnotherRunBuilding):
            steps.check_for_changes("run_b")
        failure = json.loads((warehouse.run_dir("run_b") / warehouse.FAILURE_FILE).read_text())
        assert failure["step"] == "check_for_changes"
        assert failure["error_type"] == "AnotherRunBuilding"
        with pytest.raises(steps.RunFailed, match="did not start: another run is building"):
            steps.report("run_b")
        assert [f.state for f in files.states()] == ["landed"], "a refused run changed a state"
        assert not (runs / "wh" / "quality_history.duckdb").exists(), \
            "the refused run wrote into the quality history"
        assert lock.read_lease().run_id == "run_a", "the refused run's report released run_a"
    finally:
        first.kill()
        first.wait()


KILLED_RUN = textwrap.dedent("""
    import os
    os.environ["WH_RUN_OWNER_PID"] = str(os.getpid())
    from pipeline import steps
    steps.check_for_changes("killed")
    steps.prepare("killed")
    steps.load("killed")
    os.kill(os.getpid(), 9)  # killed between two steps, its files loaded into its build
""")


@pytest.mark.slow  # dbt-builds and publishes in its body
def test_the_files_of_a_killed_run_are_published_by_the_next_run(runs):
    landing = Landing(settings().landing_dir)
    entry, _ = landing.land("frontex", "file:///archive/ibc_2020.xlsx", layouts.archive_2020(),
                            SMALL_RELEASE)
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [state] = files.states()
    assert state.state == "loaded", f"after the killed run: {state}"
    assert lock.read_lease().run_id == "killed"
    for step in (steps.check_for_changes, steps.prepare, steps.load, steps.audit_raw,
                 steps.dbt_build, steps.audit_marts, steps.publish):
        step("next")
    [state] = files.states()
    assert state.state == "published", f"the killed run's file is {state.state}: {state.detail}"
    assert lock.read_lease() is None, "the publish kept the lease"
    assert not landing.rejected(), "a file was rejected because a run was killed"
