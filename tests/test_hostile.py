"""Hostile servers and files against a published warehouse, through the real steps of the DAGs
(the frontex_ingest step against a server on 127.0.0.1 posing as Frontex's site, then the
transform steps): each case fails with a clear error naming its rule, in bounded time, leaves the
published file byte for byte as it was and writes nothing outside landing/; after all of them a
good release publishes with no hand work.
"""
from __future__ import annotations

import hashlib
import time
from datetime import date

import duckdb
import pytest
import requests

from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import Landing
from pipeline import steps
from tests.sources.frontex import test_frontex_layouts as layouts
from tests import workbooks
from tests.conftest import OTHER_SOURCE_DAGS, point_installation_at
from tests.replay_server import ReplayServer, Reply
from tests.sources.frontex.test_frontex_live import HTML_ERROR_PAGE, NEWEST, PAGE, PAGE_HTML, xlsx

RUNS = iter(range(1000))


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory, snapshot_dir, recorded_workbook):
    """A published warehouse (the 2020 archive release and the other sources' recorded files),
    then live mode against a replay server posing as Frontex's site."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp, ReplayServer() as srv:
        point_installation_at(mp, root, snapshot_dir)
        # The archive's 2020 release (test_frontex_layouts.archive_2020) is dated a year after
        # its newest month (April 2019): beyond the 150 days a real release allows.
        mp.setenv("WH_FRONTEX_RELEASE_LAG_DAYS", "400")
        Landing(root / "landing").land("frontex", "file:///archive/ibc_2020.xlsx",
                                       layouts.archive_2020(), date(2020, 4, 5))
        for dag_id in OTHER_SOURCE_DAGS:
            steps.land("setup", dag_id)
        for step in (steps.prepare, steps.load, steps.audit_raw, steps.dbt_build,
                     steps.audit_marts, steps.publish):
            step("setup")
        mp.delenv("WH_SNAPSHOT_DIR")
        mp.setenv("WH_CURATED_DIR", str(snapshot_dir))
        mp.setenv("WH_FRONTEX_PAGE_URL", srv.url(PAGE))
        mp.setenv("WH_HTTP_BACKOFF_S", "0.01")
        mp.setenv("WH_HTTP_RETRIES", "1")
        mp.setenv("WH_HTTP_TIMEOUT_S", "3")
        mp.setenv("WH_DOWNLOAD_DEADLINE_S", "2")
        mp.setenv("WH_MAX_DOWNLOAD_MB", "8")
        mp.setenv("WH_MAX_XLSX_UNPACKED_MB", "64")
        srv.route(PAGE, Reply(body=PAGE_HTML, headers={"Content-Type": "text/html"}))
        yield {"root": root, "server": srv, "workbook": recorded_workbook,
               "published": settings().warehouse}


def outside_landing(root) -> set[str]:
    """Files under the installation that are not in landing/, the warehouse folder or reports/
    (and, outside the installation, nothing can be written: its parent is checked too)."""
    inside = {"landing", "wh", "reports"}
    found = {str(p.relative_to(root)) for p in root.rglob("*")
             if p.is_file() and p.relative_to(root).parts[0] not in inside}
    return found | {p.name for p in root.parent.iterdir() if p.name.startswith("elsewhere")}


def land_frontex() -> list:
    return steps.land(f"hostile{next(RUNS)}", "frontex_ingest")


CASES = {
    "trickle": (lambda wb: [xlsx(wb, trickle=(512, 0.05))], "download deadline"),
    "redirect elsewhere": (lambda wb: [Reply(status=302, headers={
        "Location": "http://localhost:1/elsewhere/ibc.xlsx"})], "allowed host"),
    "too big": (lambda wb: [xlsx(wb + b"\0" * (9 << 20))], "size cap"),  # cap 8 MB
    "html instead of a workbook": (lambda wb: [Reply(body=HTML_ERROR_PAGE)], "xlsx format"),
    "xlsx bomb": (lambda wb: [xlsx(workbooks.unpacking_to(wb, 200))], "xlsx unpacked size"),
    "truncated body": (lambda wb: [xlsx(wb, cut_after=len(wb) // 3)] * 2, None),
}


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_answer_fails_clearly_and_changes_nothing(site, case):
    replies, rule = CASES[case]
    before = sha(site["published"])
    site["server"].route(NEWEST, *replies(site["workbook"]))
    started = time.monotonic()
    with pytest.raises((DataError, requests.RequestException)) as caught:
        land_frontex()
    elapsed = time.monotonic() - started
    if rule is None:  # the network broke: retryable by Airflow, never a data error
        assert not isinstance(caught.value, DataError), caught.value
    else:
        assert isinstance(caught.value, DataError) and caught.value.rule == rule, caught.value
        assert "Monthly_detections_of_IBC" in str(caught.value) or "ibc" in str(caught.value)
    assert elapsed < 15, f"{case} took {elapsed:.1f} s"
    assert sha(site["published"]) == before
    assert outside_landing(site["root"]) == set()
    # Nothing that failed is loadable: a run now would have nothing new.
    from pipeline import changes
    assert changes.pending().nothing_new


def test_after_the_hostile_answers_a_good_release_publishes(site):
    before = sha(site["published"])
    site["server"].route(NEWEST, xlsx(site["workbook"]))
    [entry] = land_frontex()
    assert entry["release_date"] == "2025-06-03"
    run_id = "after-hostile"
    assert steps.check_for_changes(run_id) is True
    for step in (steps.prepare, steps.load, steps.audit_raw, steps.dbt_build,
                 steps.audit_marts, steps.publish):
        step(run_id)
    assert sha(site["published"]) != before
    with duckdb.connect(str(site["published"]), read_only=True) as con:
        got = con.execute("""select release_date::varchar, count(*), sum(detections)
                             from marts.fct_border_crossings group by 1 order by 1""").fetchall()
    assert got == [("2020-04-05", 19, 4_293), ("2025-06-03", 173_460, 4_966_869)]


def test_the_allowed_hosts_are_those_of_the_source(site, monkeypatch):
    """localhost is a host of another source here (Cohesion's): Frontex may not be redirected
    there, unless Frontex's own list says so."""
    srv = site["server"]
    monkeypatch.setenv("WH_COHESION_URL", srv.url("").replace("127.0.0.1", "localhost"))
    elsewhere = srv.url("/cdn/ibc.xlsx").replace("127.0.0.1", "localhost")
    srv.route(NEWEST, Reply(status=302, headers={"Location": elsewhere}))
    with pytest.raises(DataError) as caught:
        land_frontex()
    assert caught.value.rule == "allowed host"
    assert "source frontex's hosts (127.0.0.1" in str(caught.value)
    assert "WH_ALLOWED_HOSTS_FRONTEX" in str(caught.value)
    assert srv.count("/cdn/ibc.xlsx") == 0
    monkeypatch.setenv("WH_ALLOWED_HOSTS_FRONTEX", "localhost")
    srv.route(NEWEST, Reply(status=302, headers={"Location": elsewhere}))
    srv.route("/cdn/ibc.xlsx", xlsx(site["workbook"]))
    landed = land_frontex()  # nothing new when the good release was landed before
    assert srv.count("/cdn/ibc.xlsx") == 1
    assert all(e["final_url"] == elsewhere for e in landed)
