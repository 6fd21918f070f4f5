"""What `make run` decides before it starts Airflow (``pipeline.run.before_airflow``, decisions
78 and 79), in situations a user meets: a publisher's server that fails or hangs when asked, and
the warehouse lease of a run that was killed. No Airflow and no dbt: only the question."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ingest import catalog
from pipeline import lock, run
from tests.conftest import point_installation_at
from tests.replay_server import ReplayServer, Reply
from tests.sources.frontex.test_frontex_live import PAGE


@pytest.fixture
def live(tmp_path, snapshot_dir, monkeypatch):
    """An empty installation whose sources are all live against a server on 127.0.0.1 that
    answers 404 to everything (a source fails at once) unless a test routes a path."""
    with ReplayServer() as srv:
        point_installation_at(monkeypatch, tmp_path, snapshot_dir)
        monkeypatch.delenv("WH_SNAPSHOT_DIR")
        monkeypatch.setenv("WH_CURATED_DIR", str(snapshot_dir))
        for attribute in catalog.url_settings():
            monkeypatch.setenv(f"WH_{attribute.upper()}", srv.url(f"/{attribute}/"))
        monkeypatch.setenv("WH_FRONTEX_PAGE_URL", srv.url(PAGE))
        monkeypatch.setenv("WH_FTS_URL", srv.url("/fts/{year}.xlsx"))
        monkeypatch.setenv("WH_HTTP_RETRIES", "3")
        monkeypatch.setenv("WH_HTTP_BACKOFF_S", "1")
        monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "2")
        yield srv


@pytest.mark.parametrize("reply", [Reply(status=503, body=b"down"),
                                   Reply(body=b"late", delay_s=30)], ids=["503", "hangs"])
def test_a_source_that_fails_when_asked_is_asked_once_and_its_dag_runs(live, capsys, reply):
    """Its DAG runs whatever the question's failure was (and retries there): retrying the
    question too made a server that is down or hangs cost every retry and backoff twice."""
    live.route(PAGE, reply)
    started = time.monotonic()
    decided = run.before_airflow()
    elapsed = time.monotonic() - started
    said = capsys.readouterr().out
    assert "source frontex failed when asked" in said, said
    assert decided.dags is not None and "frontex_ingest" in decided.dags, decided
    assert decided.dags[-1] == run.TRANSFORM_DAG_ID, decided
    asked = live.count(PAGE)
    assert asked == 1, (f"Frontex's page was requested {asked} times before Airflow "
                        "(WH_HTTP_RETRIES=3 applied to the question; its DAG retries anyway)")
    assert elapsed < 6, f"asking took {elapsed:.1f} s (retries and backoff before Airflow)"


def test_the_question_leaves_the_dags_retries_alone(live):
    """Outside the question a request retries as WH_HTTP_RETRIES says (what the DAG's task
    does)."""
    from ingest import http

    live.route("/file.xlsx", Reply(status=503), Reply(body=b"PK\x03\x04 fine"))
    with http.for_source("frontex", ("frontex_page_url",)):
        content, _ = http.get_bytes(live.url("/file.xlsx"))
    assert content == b"PK\x03\x04 fine" and live.count("/file.xlsx") == 2


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_lease_left_by_a_killed_run_is_taken_over_not_said_to_be_held(tmp_path, snapshot_dir,
                                                                        monkeypatch, capsys):
    """A `make run` killed (SIGKILL, OOM) while it owned the warehouse leaves its lease. The next
    run must not say that run holds the warehouse: its process is gone, and the transform takes
    the lease over (pipeline.lock.stale_reason)."""
    point_installation_at(monkeypatch, tmp_path, snapshot_dir)
    monkeypatch.setattr(catalog, "SOURCES", ())  # no source has anything new
    pid = dead_pid()
    assert not lock._alive(pid)
    runs = tmp_path / "wh" / "runs"
    runs.mkdir(parents=True)
    (runs / lock.LEASE_FILE).write_text(json.dumps({
        "run_id": "killed_run", "host": socket.gethostname(), "pid": pid, "owner_pid": pid,
        "since": "2026-12-05T23:17:08+00:00", "step": "dbt_build", "step_ended": None,
        "beat": None}), encoding="utf-8")
    decided = run.before_airflow()
    said = capsys.readouterr().out
    assert "is held by run killed_run" not in said, (
        f"a run whose process {pid} is gone was said to hold the warehouse:\n{said}")
    assert f"its process {pid} is gone" in said, said
    # No published warehouse here: the transform has something to do (its first build).
    assert decided.dags == (run.TRANSFORM_DAG_ID,), decided
    assert lock.read_lease() is None, "the dead run's lease was neither taken over nor given up"


def test_a_lease_of_a_live_run_is_still_waited_for(tmp_path, snapshot_dir, monkeypatch, capsys):
    point_installation_at(monkeypatch, tmp_path, snapshot_dir)
    monkeypatch.setattr(catalog, "SOURCES", ())
    runs = tmp_path / "wh" / "runs"
    runs.mkdir(parents=True)
    lease = {"run_id": "live_run", "host": socket.gethostname(), "pid": os.getppid(),
             "owner_pid": os.getppid(), "since": "2026-12-05T23:17:08+00:00",
             "step": "dbt_build", "step_ended": None, "beat": None}
    (runs / lock.LEASE_FILE).write_text(json.dumps(lease), encoding="utf-8")
    decided = run.before_airflow()
    said = capsys.readouterr().out
    assert "is held by run live_run" in said and decided.dags == (run.TRANSFORM_DAG_ID,), said
    assert lock.read_lease().run_id == "live_run", "a live run's lease was touched"


def test_quarantined_bytes_offered_again_are_not_said_to_be_new(live, capsys):
    """The DAG runs (it reports the skipped bytes), but the line before Airflow must not say the
    source has something new: the same run ends "nothing new since ...", which it then is."""
    from ingest.config import settings
    from ingest.landing import Landing
    from tests.sources.frontex.test_frontex_live import HTML_ERROR_PAGE, NEWEST, PAGE_HTML

    live.route(PAGE, Reply(body=PAGE_HTML, headers={"Content-Type": "text/html"}))
    live.route(NEWEST, Reply(body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"}))
    entry, _ = Landing(settings().landing_dir).land(
        "frontex", live.url(NEWEST), HTML_ERROR_PAGE, None,
        error="[xlsx format] an HTML page, not an xlsx workbook")
    decided = run.before_airflow()
    said = capsys.readouterr().out
    assert "frontex_ingest" in decided.dags, decided
    line = next(l for l in said.splitlines() if "frontex" in l)
    assert "frontex has something new" not in line, (
        f"quarantined bytes offered again were said to be new before Airflow:\n{line}")
    assert f"quarantined as {entry.path}" in line, line
