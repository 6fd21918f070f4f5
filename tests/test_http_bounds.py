"""Every network call is bounded: in time (Retry-After, one deadline for the whole call, retries
and their waits included), in size (files and pages alike), and in where it may go (exact host
names, on the first request and on every redirect hop).

Real HTTP on 127.0.0.1 (``tests/replay_server.py``) through the real client (``ingest.http``);
nothing in requests or urllib3 is mocked. Caps and deadlines are made small through the
environment (``settings()`` reads it on every call), so every case ends in a few seconds; a
call that would not end is run in a thread and reported as a failure after a bounded wait.
"""
from __future__ import annotations

import email.utils
import threading
import time

import pytest
import requests

from ingest import http
from ingest.config import settings
from ingest.errors import DownloadError
from tests.replay_server import ReplayServer, Reply

FETCHES = {
    "get_bytes": lambda url: http.get_bytes(url)[0],
    "get_text": http.get_text,
    "get_json": http.get_json,
}
JSON_BODY = b'{"rows": [1, 2, 3], "name": "caf\xc3\xa9"}'


@pytest.fixture
def srv(monkeypatch):
    """A replay server whose host (127.0.0.1) is the only allowed one besides the publishers'
    defaults; fast retries; generous limits that each test narrows."""
    with ReplayServer() as server:
        for name in ("WH_ALLOWED_HOSTS", "WH_ALLOWED_HOSTS_FRONTEX", "WH_SNAPSHOT_DIR",
                     "WH_HTTP_MAX_RETRY_AFTER_S", "WH_MAX_PAGE_MB", "WH_PAGE_DEADLINE_S"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("WH_FRONTEX_PAGE_URL", server.url("/page"))
        monkeypatch.setenv("WH_HTTP_BACKOFF_S", "0.01")
        monkeypatch.setenv("WH_HTTP_RETRIES", "3")
        monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "2")
        monkeypatch.setenv("WH_DOWNLOAD_DEADLINE_S", "30")
        yield server


def within(seconds: float, call, what: str):
    """Run ``call()`` in a thread; (its result or the exception it raised, elapsed seconds).
    A call still running after ``seconds`` fails the test (the thread is left to finish on its
    own: a daemon, sleeping or reading)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["value"] = err

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what}: still running after {seconds:g} s; the client waits or reads "
                    "without bound", pytrace=False)
    return outcome["value"], time.monotonic() - started


def refused(value, rule: str, what: str) -> DownloadError:
    assert isinstance(value, DownloadError), (
        f"{what}: expected a DownloadError [{rule}], got {type(value).__name__}: "
        f"{str(value)[:300]}")
    assert value.rule == rule, f"{what}: refused by rule {value.rule!r}, not {rule!r}: {value}"
    return value


# -- Retry-After ----------------------------------------------------------------------------------


def http_date(seconds_ahead: int) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


@pytest.mark.parametrize("fetch, status, header", [
    ("get_bytes", 429, "86400"),
    ("get_bytes", 503, "86400"),
    ("get_bytes", 503, "date"),
    ("get_text", 429, "86400"),
    ("get_json", 503, "86400"),
])
def test_a_retry_after_longer_than_the_cap_fails_at_once(srv, monkeypatch, fetch, status, header):
    monkeypatch.setenv("WH_HTTP_MAX_RETRY_AFTER_S", "5")
    value = http_date(86400) if header == "date" else header
    srv.route("/busy", Reply(status=status, headers={"Retry-After": value}),
              Reply(body=JSON_BODY, headers={"Content-Type": "application/json"}))
    url = srv.url("/busy")
    got, elapsed = within(8, lambda: FETCHES[fetch](url),
                          f"{fetch} answered {status} with Retry-After: {value}")
    err = refused(got, "retry after", f"{fetch}, {status} with Retry-After: {value}")
    message = str(err)
    for part in (url, str(status), "WH_HTTP_MAX_RETRY_AFTER_S", "5 s"):
        assert part in message, f"the error does not name {part!r}: {message}"
    assert "86,400 s" in message or "86,399 s" in message, \
        f"the error does not name the wait asked for: {message}"
    assert elapsed < 2, f"refusing a Retry-After took {elapsed:.1f} s: it must not wait"
    assert srv.count("/busy") == 1, "a Retry-After over the cap must not be retried at all"


def test_a_retry_after_up_to_the_cap_is_waited_for_and_one_beyond_it_is_not(srv, monkeypatch):
    monkeypatch.setenv("WH_HTTP_MAX_RETRY_AFTER_S", "1")
    srv.route("/file", Reply(status=429, headers={"Retry-After": "1"}), Reply(body=b"data"))
    got, elapsed = within(8, lambda: http.get_bytes(srv.url("/file")), "Retry-After: 1")
    assert got == (b"data", ""), f"a Retry-After equal to the cap must be waited for: {got!r}"
    first, second = srv.requested("/file")
    assert second.at - first.at >= 0.9, "the client must wait as long as Retry-After says"

    srv.route("/other", Reply(status=429, headers={"Retry-After": "2"}), Reply(body=b"data"))
    got, elapsed = within(8, lambda: http.get_bytes(srv.url("/other")), "Retry-After: 2")
    refused(got, "retry after", "Retry-After: 2 with WH_HTTP_MAX_RETRY_AFTER_S=1")
    assert elapsed < 0.9 and srv.count("/other") == 1, \
        f"a Retry-After over the cap was slept on ({elapsed:.1f} s, {srv.count('/other')} requests)"


@pytest.mark.parametrize("name, value", [
    ("WH_HTTP_MAX_RETRY_AFTER_S", "two minutes"),
    ("WH_HTTP_MAX_RETRY_AFTER_S", "-1"),
    ("WH_HTTP_MAX_RETRY_AFTER_S", "inf"),
    ("WH_MAX_PAGE_MB", "0"),
    ("WH_MAX_PAGE_MB", "20MB"),
    ("WH_PAGE_DEADLINE_S", "nan"),
    ("WH_PAGE_DEADLINE_S", "-5"),
])
def test_a_bad_bound_fails_naming_its_variable(monkeypatch, name, value):
    """A typo must not turn a bound off (or make it negative): the setting is refused by name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as caught:
        settings()
    assert name in str(caught.value) and repr(value) in str(caught.value), \
        f"the error does not name {name} and its value: {caught.value}"


def test_zero_means_never_wait_for_a_retry_after(srv, monkeypatch):
    monkeypatch.setenv("WH_HTTP_MAX_RETRY_AFTER_S", "0")
    assert settings().http_max_retry_after_s == 0
    srv.route("/busy", Reply(status=503, headers={"Retry-After": "1"}), Reply(body=b"data"))
    got, _ = within(8, lambda: http.get_bytes(srv.url("/busy")), "Retry-After: 1, cap 0")
    refused(got, "retry after", "Retry-After: 1 with WH_HTTP_MAX_RETRY_AFTER_S=0")


# -- one deadline for the whole download -----------------------------------------------------------


def test_the_deadline_covers_every_retry_of_a_body_that_stalls(srv, monkeypatch):
    """Each attempt sends 1 KB then stalls past the per-read timeout: retried, but the deadline
    is that of the whole download, not restarted by each attempt."""
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "0.8")
    monkeypatch.setenv("WH_DOWNLOAD_DEADLINE_S", "2")
    monkeypatch.setenv("WH_HTTP_RETRIES", "4")
    srv.route("/stall", Reply(body=b"x" * 65536, pause_after=1024, pause_s=5))
    got, elapsed = within(10, lambda: http.get_bytes(srv.url("/stall")), "a stalling body")
    err = refused(got, "download deadline", "a body stalling on every attempt")
    assert "2 s" in str(err) and "WH_DOWNLOAD_DEADLINE_S" in str(err), str(err)
    assert elapsed < 2.6, f"a 2 s download deadline let the retries run {elapsed:.1f} s"
    assert 2 <= srv.count("/stall") <= 3, f"{srv.count('/stall')} attempts in 2 s"


def test_the_deadline_covers_the_retries_of_slow_error_answers(srv, monkeypatch):
    """503 after 0.7 s, every time: urllib3's own retries (before any body) count against the
    deadline, and the attempt running when it comes is cut off, not waited for."""
    monkeypatch.setenv("WH_DOWNLOAD_DEADLINE_S", "2")
    monkeypatch.setenv("WH_HTTP_RETRIES", "4")
    srv.route("/slow", Reply(status=503, delay_s=0.7))
    got, elapsed = within(10, lambda: http.get_bytes(srv.url("/slow")), "slow 503s")
    refused(got, "download deadline", "503 after 0.7 s, five times, with a 2 s deadline")
    assert elapsed < 2.6, f"a 2 s download deadline let the retries run {elapsed:.1f} s"


@pytest.mark.parametrize("case", ["backoff", "retry-after", "body retry"])
def test_a_retry_that_could_not_finish_before_the_deadline_is_not_started(srv, monkeypatch, case):
    monkeypatch.setenv("WH_DOWNLOAD_DEADLINE_S", "3")
    monkeypatch.setenv("WH_HTTP_BACKOFF_S", "4")  # urllib3: 0 s, then 8 s; ours: 4 s, 8 s
    good = Reply(body=b"data")
    replies = {
        "backoff": [Reply(status=503), Reply(status=503), good],
        "retry-after": [Reply(status=429, headers={"Retry-After": "30"}), good],
        "body retry": [Reply(body=b"x" * 4096, cut_after=100), good],
    }[case]
    srv.route("/f", *replies)
    got, elapsed = within(6, lambda: http.get_bytes(srv.url("/f")), f"{case} past the deadline")
    err = refused(got, "download deadline", f"a {case} wait longer than the deadline")
    assert "not started" in str(err), f"the error does not say the retry was not started: {err}"
    assert elapsed < 1, f"the client waited {elapsed:.1f} s for a retry it could not finish"
    assert srv.count("/f") == len(replies) - 1, "the retry past the deadline was made"


# -- pages: streamed, capped, on a deadline ----------------------------------------------------


@pytest.mark.parametrize("fetch", ["get_text", "get_json"])
def test_an_endless_page_is_cut_at_the_page_cap(srv, monkeypatch, fetch):
    monkeypatch.setenv("WH_MAX_PAGE_MB", "1")
    monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", "500")  # the file cap does not apply to pages
    srv.route("/endless", Reply(body=b"[" * 65536, repeat=1024,  # 64 MB, chunked
                                headers={"Content-Type": "application/json"}))
    got, elapsed = within(8, lambda: FETCHES[fetch](srv.url("/endless")), "an endless page")
    err = refused(got, "size cap", f"{fetch} of a page that never ends")
    assert "more than 1,048,576 bytes" in str(err) and "WH_MAX_PAGE_MB" in str(err), str(err)
    assert elapsed < 5, f"cutting an endless page at 1 MB took {elapsed:.1f} s"

    srv.route("/declared", Reply(body=b" " * (2 << 20), headers={"Content-Type": "text/html"}))
    got, _ = within(8, lambda: FETCHES[fetch](srv.url("/declared")), "a 2 MB page")
    err = refused(got, "size cap", f"{fetch} of a page declaring 2 MB")
    assert "server declares 2,097,152 bytes" in str(err), str(err)


@pytest.mark.parametrize("fetch", ["get_text", "get_json"])
def test_a_trickling_page_is_cut_at_the_page_deadline(srv, monkeypatch, fetch):
    """256 bytes every 20 ms, well within the per-read timeout: only a deadline on the whole
    page stops it (the whole body would take 3 s)."""
    monkeypatch.setenv("WH_HTTP_TIMEOUT_S", "5")
    monkeypatch.setenv("WH_PAGE_DEADLINE_S", "1")
    body = b"[" + b"0," * 20_000 + b"0]"
    srv.route("/trickle", Reply(body=body, trickle=(256, 0.02),
                                headers={"Content-Type": "application/json"}))
    got, elapsed = within(8, lambda: FETCHES[fetch](srv.url("/trickle")), "a trickling page")
    err = refused(got, "download deadline", f"{fetch} of a page sent at 12 KB/s")
    assert "not complete after 1 s" in str(err) and "WH_PAGE_DEADLINE_S" in str(err), str(err)
    assert elapsed < 1.6, f"a 1 s page deadline let the page run {elapsed:.1f} s"


PAGES = {
    "utf-8 declared": (b"<p>Fran\xc3\xa7ais \xe2\x82\xac</p>", "text/html; charset=utf-8"),
    "latin-1 declared": (b"<p>Fran\xe7ais</p>", "text/html; charset=ISO-8859-1"),
    "text without charset": (b"<p>Fran\xc3\xa7ais</p>", "text/plain"),
    "no content type": ("Détections aux frontières extérieures de l'Union, "
                        "par route et nationalité".encode("utf-8") * 4, None),
    "json": (JSON_BODY, "application/json"),
}


def test_pages_decode_as_requests_does_and_a_byte_over_the_cap_is_refused(srv, monkeypatch):
    """get_text gives exactly requests' ``.text`` (declared charset, HTTP's ISO-8859-1 default
    for text/*, else a guess), get_json requests' ``.json()``, up to the cap byte for byte."""
    for i, (name, (body, content_type)) in enumerate(PAGES.items()):
        srv.route(f"/page{i}", Reply(body=body, headers={"Content-Type": content_type}
                                     if content_type else {}))
        url = srv.url(f"/page{i}")
        expected = requests.get(url, timeout=5)
        assert http.get_text(url) == expected.text, f"{name}: decoded unlike requests"
        if name == "json":
            assert http.get_json(url) == expected.json() == {"rows": [1, 2, 3], "name": "café"}
    srv.route("/html", Reply(body=b"<html>Service unavailable</html>"))
    with pytest.raises(DownloadError, match="not JSON") as caught:
        http.get_json(srv.url("/html"))
    assert caught.value.rule == "json answer"

    monkeypatch.setenv("WH_MAX_PAGE_MB", str(65536 / 1048576))  # 0.0625 MB: 65,536 bytes
    srv.route("/at-cap", Reply(body=b"a" * 65536, chunked=True))
    assert http.get_text(srv.url("/at-cap")) == "a" * 65536, "a page of exactly the cap refused"
    srv.route("/over", Reply(body=b"a" * 65537, chunked=True))
    got, _ = within(8, lambda: http.get_text(srv.url("/over")), "a page one byte over the cap")
    refused(got, "size cap", "a page of 65,537 bytes with a cap of 65,536")


def test_a_page_whose_connection_drops_is_fetched_again(srv):
    """Pages go through the same streaming code as files: a body cut by the network is
    retried like a failed connection."""
    body = b"<html>" + b"<a href='/x.xlsx'>x</a>" * 1000 + b"</html>"
    srv.route("/page", Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8"},
                             cut_after=len(body) // 2),
              Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8"}))
    got, _ = within(8, lambda: http.get_text(srv.url("/page")), "a page cut once")
    assert got == body.decode(), f"a page cut once was not fetched again: {got!r:.200}"
    assert srv.count("/page") == 2


# -- where requests go: exact host names ----------------------------------------------------------

PUBLISHER_LOOK_ALIKES = [
    "https://www.frontex.europa.eu.attacker.example/what-we-do/",  # allowed host as a prefix
    "https://frontex.europa.eu.attacker.example/",
    "https://evil-ec.europa.eu/eurostat/api/dissemination",  # as a suffix
    "https://attacker-www.frontex.europa.eu/",
    "https://ec.europa.eu.evil.example/eurostat/",
    "https://ec.europa.eu@evil.example/eurostat/",  # userinfo: the host is evil.example
    "https://ec.europa.eu:443@evil.example/",
    "https://evil.example/ec.europa.eu/eurostat/",  # in the path
    "https://evil.example/?next=https://ec.europa.eu/",  # in the query
    "https://evil.example#ec.europa.eu",
    "https://europa.eu/",  # a parent domain of allowed hosts
    "https://c.europa.eu/",  # a piece of an allowed host
    "https://frontex.europa.eu/",  # www. dropped: another host
    "https://ec.europa.eu./eurostat/",  # trailing dot: refused (add it to WH_ALLOWED_HOSTS)
    "https://socrata.com/",
    "file:///etc/passwd",
]


@pytest.fixture
def publishers(monkeypatch):
    """The publishers' default URLs (no test server): the hosts real runs allow."""
    for name in ("WH_FRONTEX_PAGE_URL", "WH_EUROSTAT_API_URL", "WH_COHESION_URL",
                 "WH_SOCRATA_CATALOG_URL", "WH_FTS_URL", "WH_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    assert http.allowed_hosts() == {"www.frontex.europa.eu", "ec.europa.eu",
                                    "cohesiondata.ec.europa.eu", "api.eu.socrata.com"}


@pytest.mark.parametrize("url", PUBLISHER_LOOK_ALIKES)
def test_a_look_alike_of_a_publishers_host_is_refused(publishers, url):
    for via in (None, "https://ec.europa.eu/eurostat/api/dissemination/x"):
        with pytest.raises(DownloadError) as caught:
            http.check_host(url, via=via)
        assert caught.value.rule == "allowed host", f"{url}: {caught.value}"
        assert ("redirected to" if via else "request to") in str(caught.value), caught.value
    with http.for_source("eurostat", ("eurostat_api_url",)), pytest.raises(DownloadError):
        http.check_host(url)


@pytest.mark.parametrize("url", [
    "https://EC.EUROPA.EU/eurostat/api/dissemination/catalogue/toc/txt",
    "HTTPS://Www.Frontex.Europa.EU/what-we-do/",
    "https://ec.europa.eu:443/eurostat/",
    "https://user@ec.europa.eu/eurostat/",
])
def test_the_publishers_hosts_themselves_are_allowed_in_any_case(publishers, url):
    """Host names are compared as DNS compares them: case does not matter, port and userinfo
    are not part of the host."""
    http.check_host(url)
    http.check_host(url, via="https://www.frontex.europa.eu/")


def look_alikes_of_the_server(srv) -> dict[str, str]:
    """Look-alikes of 127.0.0.1 (the allowed host here): names that cannot resolve (a substring
    or prefix match would let them through to a DNS error) and names that DO reach this server
    (another spelling of the same address: only an exact match refuses them)."""
    port = srv.url("/").split(":")[2].rstrip("/")
    return {
        "prefix": f"http://127.0.0.1.attacker.example:{port}/prefix",
        "suffix": f"http://evil-127.0.0.1:{port}/suffix",
        "piece": f"http://0.0.1:{port}/piece",
        "userinfo": f"http://127.0.0.1@localhost:{port}/userinfo",
        "userinfo with port": f"http://127.0.0.1:{port}@localhost:{port}/userinfo-port",
        "localhost": f"http://localhost:{port}/localhost",
        "uppercase other host": f"http://LOCALHOST:{port}/uppercase",
        "decimal address": f"http://2130706433:{port}/decimal",
        "short address": f"http://127.1:{port}/short",
        "trailing dot": f"http://127.0.0.1.:{port}/trailing-dot",
        "path": f"http://localhost:{port}/127.0.0.1/path",
    }


@pytest.mark.parametrize("fetch", FETCHES)
def test_a_first_request_to_a_look_alike_is_refused_before_it_is_made(srv, fetch):
    for name, url in look_alikes_of_the_server(srv).items():
        path = url.split(":")[-1].split("/", 1)[1]
        srv.route(f"/{path}", Reply(body=b"[]"))
        got, _ = within(8, lambda: FETCHES[fetch](url), f"{fetch} {url}")
        err = refused(got, "allowed host", f"{fetch} to {name} look-alike {url}")
        assert f"request to {url}" in str(err), f"{name}: the error does not name the URL: {err}"
        assert srv.count(f"/{path}") == 0, f"{name}: the server received the refused request"


@pytest.mark.parametrize("fetch", FETCHES)
def test_a_redirect_to_a_look_alike_is_refused_before_it_is_followed(srv, fetch):
    for name, url in look_alikes_of_the_server(srv).items():
        path = url.split(":")[-1].split("/", 1)[1]
        srv.route(f"/{path}", Reply(body=b"[]"))
        srv.route("/start", Reply(status=302, headers={"Location": url}))
        before = srv.count("/start")
        got, _ = within(8, lambda: FETCHES[fetch](srv.url("/start")), f"{fetch} -> {url}")
        err = refused(got, "allowed host", f"{fetch} redirected to {name} look-alike {url}")
        assert f"redirected to {url}" in str(err), f"{name}: the error does not name the hop: {err}"
        assert err.file == srv.url("/start"), f"{name}: the error does not name the page: {err}"
        assert srv.count("/start") == before + 1 and srv.count(f"/{path}") == 0, \
            f"{name}: the redirect was followed"


def test_an_allowed_host_matches_in_any_case_through_the_client(srv, monkeypatch):
    port = srv.url("/").split(":")[2].rstrip("/")
    monkeypatch.setenv("WH_ALLOWED_HOSTS", "LocalHost")
    srv.route("/ok", Reply(body=b"[1]"))
    srv.route("/start", Reply(status=302, headers={"Location": f"http://LOCALHOST:{port}/ok"}))
    assert http.get_json(f"http://localhost:{port}/ok") == [1]
    assert http.get_json(srv.url("/start")) == [1]
    assert srv.count("/ok") == 2
