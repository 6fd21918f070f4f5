"""The live Frontex path against a real HTTP server: discover, download, validate, land.

``tests/replay_server.py`` serves a page in the shape of the Frontex migratory-map page and the
REAL recorded workbook (read from the snapshot directory, never copied into the repository) over
a socket on 127.0.0.1, and injects the faults the publisher and the network produce: 5xx, 429,
slow answers, HTML error pages with status 200, truncated files, oversized files, missing links.
Nothing in ``requests`` is mocked; the code runs in live mode (``WH_SNAPSHOT_DIR`` unset).

The recorded workbook is ``$WH_SNAPSHOT_DIR/frontex/ibc.xlsx`` (default ``../shared/data``).
If it is missing the tests fail: a skipped check would look like a passing one.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from ingest import http
from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.sources.frontex.source import FrontexSource
from ingest.landing import Landing
from ingest import catalog
from ingest.source import land_new
from tests import workbooks
from tests.replay_server import XLSX_TYPE, ReplayServer, Reply

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "frontex"
PAGE_HTML = (FIXTURES / "migratory_map.html").read_bytes()

PAGE = "/what-we-do/monitoring-and-risk-analysis/migratory-map/"
NEWEST = "/assets/Migratory_routes/2025/Monthly_detections_of_IBC_2025_06_05.xlsx"
NEWEST_NAME = "Monthly_detections_of_IBC_2025_06_05.xlsx"
OLDER = "/assets/Migratory_routes/2025/Monthly_detections_of_IBC_2025_05_07.xlsx"
ARCHIVE = "/assets/Migratory_routes/2024/Monthly_detections_of_IBC_2024_12_03.xlsx"
NOT_CHOSEN = (OLDER, ARCHIVE)

RETRIES = 3
HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Service unavailable</title></head>"
                   b"<body><h1>We'll be back soon</h1><p>The site is under maintenance.</p>"
                   b"</body></html>\n")


def _snapshot_workbook() -> Path:
    default = REPO_ROOT.parent / "shared" / "data"
    return Path(os.environ.get("WH_SNAPSHOT_DIR") or default) / "frontex" / "ibc.xlsx"


@pytest.fixture(scope="session")
def workbook() -> bytes:
    """The real recorded Frontex workbook (read before live mode removes WH_SNAPSHOT_DIR)."""
    path = _snapshot_workbook()
    if not path.is_file():
        pytest.fail(f"recorded Frontex workbook not found at {path}: set WH_SNAPSHOT_DIR to the "
                    "shared data directory (the one holding frontex/ibc.xlsx); it is read from "
                    "there, never copied into the repository", pytrace=False)
    content = path.read_bytes()
    assert content.startswith(b"PK\x03\x04"), f"{path} is not an xlsx file"
    return content


@pytest.fixture
def server():
    with ReplayServer() as srv:
        srv.route(PAGE, Reply(body=PAGE_HTML, headers={"Content-Type": "text/html; charset=utf-8"}))
        # Older releases must never be fetched; if they are, they fail loudly.
        for path in NOT_CHOSEN:
            srv.route(path, Reply(status=410, body=b"older release must not be fetched"))
        yield srv


@pytest.fixture
def live(workbook, server, tmp_path, monkeypatch):
    """Live mode pointed at the replay server, landing in tmp_path, fast retries."""
    monkeypatch.delenv("WH_SNAPSHOT_DIR", raising=False)
    monkeypatch.setenv("WH_FRONTEX_PAGE_URL", server.url(PAGE))
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WH_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("WH_HTTP_RETRIES", str(RETRIES))
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "2")
    monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", "50")
    assert settings().snapshot_dir is None
    return server


def run() -> list:
    """What the frontex_ingest DAG does: land with the source's declared policy."""
    return land_new(FrontexSource(), Landing(settings().landing_dir),
                    catalog.spec("frontex").refetch_landed)


def xlsx(body: bytes, **kw) -> Reply:
    return Reply(body=body, headers={"Content-Type": XLSX_TYPE}, **kw)


def manifest_lines() -> list[dict]:
    path = settings().landing_dir / "manifest.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def landed_files() -> list[Path]:
    root = settings().landing_dir
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and p.name not in ("manifest.jsonl", ".manifest.lock")
                  and p.relative_to(root).parts[0] != "parsed")  # the parse cache


def assert_nothing_landed() -> None:
    assert manifest_lines() == []
    assert landed_files() == []


def assert_not_a_data_error(err: BaseException) -> None:
    # Network failures must stay retryable by the orchestrator: not a DataError.
    assert isinstance(err, requests.RequestException)
    assert not isinstance(err, DataError)


def assert_quarantined(content: bytes, err: DataError) -> dict:
    [entry] = manifest_lines()
    assert entry["status"] == "quarantined"
    assert entry["url"].endswith(NEWEST)
    assert entry["release_date"] is None
    assert entry["error"] == str(err)
    assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert entry["bytes"] == len(content)
    [path] = landed_files()
    assert path == settings().landing_dir / entry["path"]
    assert path.read_bytes() == content, "the quarantined file must be kept byte for byte"
    assert path.stat().st_mode & 0o222 == 0, "landed files are read-only"
    return entry


# -- discovery ----------------------------------------------------------------------------------


def test_discover_picks_newest_link_and_resolves_it_against_the_page(live):
    [cand] = FrontexSource().discover()
    assert cand.source == "frontex"
    assert cand.url == live.url(NEWEST)
    assert not cand.is_local
    assert live.count(PAGE) == 1
    assert [r.headers.get("User-Agent") for r in live.requested(PAGE)] == [http.USER_AGENT]


def test_page_without_workbook_link_is_a_download_error(live):
    live.route(PAGE, Reply(body=b"<html><body><a href='/news/'>News</a>"
                                b"<a href='/assets/report.xlsx'>Other</a></body></html>",
                           headers={"Content-Type": "text/html"}))
    with pytest.raises(DownloadError, match="workbook link") as exc:
        run()
    assert exc.value.file == live.url(PAGE)
    assert live.count(NEWEST) == 0
    assert_nothing_landed()


# -- happy path ---------------------------------------------------------------------------------


def test_happy_path_lands_newest_workbook_once(live, workbook):
    live.route(NEWEST, xlsx(workbook))
    before = datetime.now(timezone.utc)

    [entry] = run()

    assert live.count(NEWEST) == 1
    assert all(live.count(p) == 0 for p in NOT_CHOSEN)
    [line] = manifest_lines()
    assert line["source"] == "frontex"
    assert line["url"] == live.url(NEWEST)
    fetched_at = datetime.fromisoformat(line["fetched_at"])
    assert fetched_at.tzinfo is not None and before <= fetched_at <= datetime.now(timezone.utc)
    assert line["sha256"] == hashlib.sha256(workbook).hexdigest()
    assert line["bytes"] == len(workbook)
    assert line["release_date"] == "2025-06-03"
    assert line["status"] == "landed"
    assert line["error"] is None
    assert entry.path == line["path"] and entry.status == "landed"

    [path] = landed_files()
    assert path == settings().landing_dir / line["path"]
    assert path.parent.name == "frontex" and path.suffix == ".xlsx"
    assert path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == line["sha256"]

    # Second run: the page is read again, the known URL is fetched again (Frontex re-issues
    # corrections under the same name), the same bytes land nothing.
    assert run() == []
    assert live.count(PAGE) == 2
    assert live.count(NEWEST) == 2
    assert len(manifest_lines()) == 1
    assert landed_files() == [path]


def test_correction_reissued_under_the_same_name_lands_as_a_second_file(live, workbook,
                                                                          snapshot_dir):
    """Frontex re-issues a corrected workbook under the same name and release date: the next run
    fetches it again, and the other bytes land beside the first file, same release."""
    live.route(NEWEST, xlsx(workbook))
    [first] = run()
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    rows[0][3] = (rows[0][3] or 0) + 5
    corrected = workbooks.write_workbook(header=header, rows=rows,
                                         note="Source: FRAN data as of 03JUN25")
    live.route(NEWEST, xlsx(corrected))
    [second] = run()
    assert live.count(NEWEST) == 2
    assert (first.release_date, second.release_date) == ("2025-06-03", "2025-06-03")
    assert second.sha256 == hashlib.sha256(corrected).hexdigest() != first.sha256
    assert [e["path"] for e in manifest_lines()] == [first.path, second.path]


def test_renamed_release_with_same_bytes_is_fetched_but_not_landed_again(live, workbook):
    live.route(NEWEST, xlsx(workbook))
    [first] = run()
    renamed = "/assets/Migratory_routes/2025/Monthly_detections_of_IBC_2025_07_02.xlsx"
    live.route(PAGE, Reply(body=PAGE_HTML.replace(NEWEST.encode(), renamed.encode()),
                           headers={"Content-Type": "text/html"}))
    live.route(renamed, xlsx(workbook))

    assert run() == []
    assert live.count(renamed) == 1
    assert [e["path"] for e in manifest_lines()] == [first.path]
    assert len(landed_files()) == 1


# -- retries ------------------------------------------------------------------------------------


def test_503_twice_then_200_is_retried_and_lands(live, workbook):
    live.route(NEWEST, Reply(status=503, body=b"busy"), Reply(status=503, body=b"busy"),
               xlsx(workbook))
    [entry] = run()
    assert live.count(NEWEST) == 3
    assert entry.status == "landed" and entry.sha256 == hashlib.sha256(workbook).hexdigest()
    assert len(manifest_lines()) == 1


def test_429_with_retry_after_0_then_200_lands(live, workbook):
    live.route(NEWEST, Reply(status=429, headers={"Retry-After": "0"}), xlsx(workbook))
    [entry] = run()
    assert live.count(NEWEST) == 2
    assert entry.release_date == "2025-06-03"


def test_429_retry_after_is_honoured(live, workbook):
    live.route(NEWEST, Reply(status=429, headers={"Retry-After": "1"}), xlsx(workbook))
    [entry] = run()
    first, second = live.requested(NEWEST)
    assert second.at - first.at >= 0.9, "the client must wait as long as Retry-After says"
    assert entry.status == "landed"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_status_forever_fails_with_a_requests_error_after_retries(live, status):
    live.route(NEWEST, Reply(status=status, body=b"<html>error</html>",
                             headers={"Content-Type": "text/html"}))
    with pytest.raises(requests.HTTPError) as exc:
        run()
    assert_not_a_data_error(exc.value)
    assert exc.value.response.status_code == status
    assert live.count(NEWEST) == 1 + RETRIES
    assert_nothing_landed()


def test_404_fails_at_once_without_retries(live):
    live.route(NEWEST, Reply(status=404, body=b"not found"))
    with pytest.raises(requests.HTTPError) as exc:
        run()
    assert_not_a_data_error(exc.value)
    assert exc.value.response.status_code == 404
    assert live.count(NEWEST) == 1
    assert_nothing_landed()


# -- timeouts -----------------------------------------------------------------------------------


def test_read_timeout_every_time_is_retried_then_fails(live, workbook, monkeypatch):
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "0.3")
    live.route(NEWEST, xlsx(workbook, delay_s=1.0))
    with pytest.raises(requests.RequestException) as exc:
        run()
    assert_not_a_data_error(exc.value)
    assert "timed out" in str(exc.value).lower()
    assert live.count(NEWEST) == 1 + RETRIES
    assert_nothing_landed()


def test_one_slow_answer_then_fast_lands(live, workbook, monkeypatch):
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "0.3")
    live.route(NEWEST, xlsx(workbook, delay_s=1.0), xlsx(workbook))
    [entry] = run()
    assert live.count(NEWEST) == 2
    assert entry.status == "landed"
    assert len(manifest_lines()) == 1


def test_body_stalling_longer_than_the_timeout_fails_and_lands_nothing(live, workbook,
                                                                       monkeypatch):
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "0.3")
    live.route(NEWEST, xlsx(workbook, pause_after=256 * 1024, pause_s=1.0))
    with pytest.raises(requests.RequestException) as exc:
        run()
    assert_not_a_data_error(exc.value)
    assert_nothing_landed()


def test_connection_dropped_mid_body_fails_and_lands_nothing(live, workbook):
    # A network truncation must not be mistaken for a corrupt file and quarantined.
    live.route(NEWEST, xlsx(workbook, cut_after=len(workbook) // 2))
    with pytest.raises(requests.RequestException) as exc:
        run()
    assert_not_a_data_error(exc.value)
    assert live.count(NEWEST) == settings().http_retries + 1  # retried like any connection error
    assert_nothing_landed()


def test_connection_dropped_mid_body_once_then_complete_lands(live, workbook):
    live.route(NEWEST, xlsx(workbook, cut_after=len(workbook) // 2), xlsx(workbook))
    [entry] = run()
    assert entry.status == "landed" and entry.bytes == len(workbook)
    assert live.count(NEWEST) == 2


# -- bad content --------------------------------------------------------------------------------


def test_html_error_page_with_status_200_is_quarantined(live):
    live.route(NEWEST, Reply(body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"}))
    with pytest.raises(DataError) as exc:
        run()
    assert not isinstance(exc.value, DownloadError)
    message = str(exc.value)
    assert NEWEST_NAME in message
    assert "HTML" in message
    assert exc.value.file == NEWEST_NAME
    assert live.count(NEWEST) == 1
    assert_quarantined(HTML_ERROR_PAGE, exc.value)


def test_truncated_workbook_is_quarantined(live, workbook):
    half = workbook[: len(workbook) // 2]
    live.route(NEWEST, xlsx(half))
    with pytest.raises(DataError, match="truncated or corrupt") as exc:
        run()
    assert NEWEST_NAME in str(exc.value)
    assert_quarantined(half, exc.value)


def test_quarantined_url_is_fetched_again_on_the_next_run(live, workbook):
    live.route(NEWEST, Reply(body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"}),
               xlsx(workbook))
    with pytest.raises(DataError):
        run()
    [entry] = run()
    assert entry.status == "landed"
    assert live.count(NEWEST) == 2


# -- size cap -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_download_over_the_size_cap_is_refused(live, workbook, monkeypatch, chunked):
    monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", "0.5")
    assert len(workbook) > settings().max_download_bytes
    live.route(NEWEST, xlsx(workbook, chunked=chunked))
    with pytest.raises(DownloadError, match="size cap") as exc:
        run()
    assert exc.value.file == live.url(NEWEST)
    expected = "more than" if chunked else "server declares"
    assert expected in str(exc.value)
    assert live.count(NEWEST) == 1
    assert_nothing_landed()


def test_chunked_download_under_the_cap_lands(live, workbook):
    live.route(NEWEST, xlsx(workbook, chunked=True))
    [entry] = run()
    assert entry.bytes == len(workbook)
    assert entry.sha256 == hashlib.sha256(workbook).hexdigest()


def test_a_trickling_server_is_cut_off_at_the_download_deadline(live, workbook, monkeypatch):
    """Each read gets a few bytes well within the per-read timeout, so only a deadline on the
    whole download stops it: a clear error, nothing landed, bounded time; then a good answer
    lands."""
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "5")
    monkeypatch.setenv("WH_DOWNLOAD_DEADLINE_S", "1.5")
    live.route(NEWEST, xlsx(workbook, trickle=(512, 0.05)), xlsx(workbook))
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        run()
    elapsed = time.monotonic() - started
    assert caught.value.rule == "download deadline"
    assert "not complete after 1.5 s" in str(caught.value) and NEWEST_NAME in str(caught.value)
    assert elapsed < 5  # the per-read timeout never fired: the deadline did
    assert live.count(NEWEST) == 1  # a trickle is not retried
    assert_nothing_landed()
    [entry] = run()
    assert entry.status == "landed"


def test_a_redirect_to_another_host_is_refused_before_it_is_followed(live, workbook,
                                                                     monkeypatch):
    # localhost is this very server, under a host name no source is configured with.
    elsewhere = live.url("/moved/ibc.xlsx").replace("127.0.0.1", "localhost")
    live.route(NEWEST, Reply(status=302, headers={"Location": elsewhere}))
    live.route("/moved/ibc.xlsx", xlsx(workbook))
    with pytest.raises(DownloadError) as caught:
        run()
    assert caught.value.rule == "allowed host"
    assert "redirected to " + elsewhere in str(caught.value) and "WH_ALLOWED_HOSTS" in str(
        caught.value)
    assert live.count("/moved/ibc.xlsx") == 0  # never asked for
    assert_nothing_landed()
    # Allowed by configuration, the same redirect lands, and the manifest says where from.
    monkeypatch.setenv("WH_ALLOWED_HOSTS", "localhost")
    live.route(NEWEST, Reply(status=302, headers={"Location": elsewhere}))
    [entry] = run()
    assert entry.url == live.url(NEWEST) and entry.final_url == elsewhere
    [line] = manifest_lines()
    assert line["final_url"] == elsewhere


def test_a_download_without_redirect_records_no_other_final_url(live, workbook):
    live.route(NEWEST, xlsx(workbook))
    [entry] = run()
    assert entry.final_url is None and manifest_lines()[0]["final_url"] is None


# -- conditional checks (docs/decisions.md 85) ---------------------------------------------------

V1 = {"ETag": '"ibc-v1"', "Last-Modified": "Tue, 03 Jun 2025 10:00:00 GMT"}


def ask() -> object:
    """What make run asks before Airflow (``offers_new``), with the source's policy."""
    from ingest.source import offers_new
    return offers_new(FrontexSource(), Landing(settings().landing_dir),
                      catalog.spec("frontex").refetch_landed)


def test_a_check_that_finds_nothing_new_asks_once_and_downloads_no_body(live, workbook):
    """The weekly check after a landing: the page, then one conditional request for the
    workbook, answered 304 with no body; nothing lands, and the question before Airflow says
    nothing new the same way. The request carries the recorded ETag and Last-Modified."""
    live.route(NEWEST, Reply(body=workbook, headers={"Content-Type": XLSX_TYPE, **V1}))
    [first] = run()
    assert live.body_bytes(NEWEST) == len(workbook)
    requests_before, bytes_before = live.count(NEWEST), live.body_bytes(NEWEST)

    assert ask() is None, "the question before Airflow saw something new"
    assert run() == []
    asked = live.requested(NEWEST)[requests_before:]
    assert len(asked) == 2, f"two checks should cost one workbook request each: {asked}"
    assert live.body_bytes(NEWEST) == bytes_before, \
        f"{live.body_bytes(NEWEST) - bytes_before:,} body bytes downloaded for nothing new"
    for request in asked:
        assert request.headers.get("If-None-Match") == V1["ETag"], request.headers
        assert request.headers.get("If-Modified-Since") == V1["Last-Modified"], request.headers
    assert [e["path"] for e in manifest_lines()] == [first.path]


def test_a_server_that_ignores_conditional_headers_still_finds_nothing_new(live, workbook):
    """Always 200 with the whole file: the digest comparison decides, as before (one request,
    the whole body, nothing landed, no validator written again)."""
    live.route(NEWEST, Reply(body=workbook, conditional=False,
                             headers={"Content-Type": XLSX_TYPE, **V1}))
    [first] = run()
    validators = settings().landing_dir / "http_validators.jsonl"
    recorded = validators.read_text(encoding="utf-8")
    requests_before, bytes_before = live.count(NEWEST), live.body_bytes(NEWEST)
    assert ask() is None and run() == []
    assert live.count(NEWEST) - requests_before == 2
    assert live.body_bytes(NEWEST) - bytes_before == 2 * len(workbook)
    assert [e["path"] for e in manifest_lines()] == [first.path]
    assert validators.read_text(encoding="utf-8") == recorded, "validators rewritten for nothing"


def test_a_changed_etag_downloads_and_a_correction_lands(live, workbook, snapshot_dir):
    """A correction under the same name with a new ETag: the conditional request gets the
    whole file, which lands as a second file of the release; the next check sends the new ETag
    and gets 304. A new ETag on the same bytes downloads them, lands nothing, and records the
    new ETag so the check after is a 304 again."""
    live.route(NEWEST, Reply(body=workbook, headers={"Content-Type": XLSX_TYPE, **V1}))
    [first] = run()
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    rows[0][3] = (rows[0][3] or 0) + 5
    corrected = workbooks.write_workbook(header=header, rows=rows,
                                         note="Source: FRAN data as of 03JUN25")
    v2 = {"ETag": '"ibc-v2"', "Last-Modified": "Tue, 10 Jun 2025 10:00:00 GMT"}
    live.route(NEWEST, Reply(body=corrected, headers={"Content-Type": XLSX_TYPE, **v2}))
    assert ask() is not None, "a changed ETag with new bytes was not seen as new"
    [second] = run()
    assert second.sha256 == hashlib.sha256(corrected).hexdigest() != first.sha256
    sent = live.body_bytes(NEWEST)
    assert run() == [] and live.body_bytes(NEWEST) == sent
    assert live.requested(NEWEST)[-1].headers.get("If-None-Match") == v2["ETag"]

    v3 = {"ETag": '"ibc-v3"', "Last-Modified": "Wed, 11 Jun 2025 10:00:00 GMT"}
    live.route(NEWEST, Reply(body=corrected, headers={"Content-Type": XLSX_TYPE, **v3}))
    assert run() == [] and live.body_bytes(NEWEST) == sent + len(corrected)
    assert run() == [] and live.body_bytes(NEWEST) == sent + len(corrected), \
        "the new ETag of the same bytes was not recorded: downloaded again"
    assert live.requested(NEWEST)[-1].headers.get("If-None-Match") == v3["ETag"]
    assert [e["path"] for e in manifest_lines()] == [first.path, second.path]
