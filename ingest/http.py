"""The one HTTP client: timeouts, retries with backoff, a size cap.

Retries cover what is worth retrying (connection errors, read timeouts, 429 honouring
``Retry-After``, 5xx); anything else (404, a page that is not what we asked for) fails at once.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ingest.config import settings
from ingest.errors import DownloadError

log = logging.getLogger(__name__)

USER_AGENT = "migration-warehouse/0.1 (+https://github.com/; open data pipeline)"
CHUNK_BYTES = 1 << 16


_last = threading.local()


_source: contextvars.ContextVar[tuple[str, tuple[str, ...]] | None] = contextvars.ContextVar(
    "source", default=None)


@contextlib.contextmanager
def for_source(name: str, url_settings: tuple[str, ...]):
    """Requests made inside go only to the hosts of this source: those of its configured URLs
    (``url_settings``: Settings attributes, from ingest/catalog.py) and of
    ``WH_ALLOWED_HOSTS_<SOURCE>``, besides ``WH_ALLOWED_HOSTS``."""
    token = _source.set((name, url_settings))
    try:
        yield
    finally:
        _source.reset(token)


def _hosts(value: str) -> set[str]:
    return {h.strip().lower() for h in value.split(",") if h.strip()}


def allowed_hosts() -> frozenset[str]:
    """The hosts a request or a redirect may go to: inside ``for_source``, that source's (see
    there); elsewhere those of every configured URL (``WH_*_URL``); always plus
    ``WH_ALLOWED_HOSTS`` (comma-separated: a publisher's CDN)."""
    s = settings()
    current = _source.get()
    if current is None:
        attributes: tuple[str, ...] = ("frontex_page_url", "eurostat_api_url", "cohesion_url",
                                       "socrata_catalog_url", "fts_url")
        extra = set()
    else:
        name, attributes = current
        extra = _hosts(os.environ.get(f"WH_ALLOWED_HOSTS_{name.upper()}", ""))
    urls = [getattr(s, a) for a in attributes]
    return frozenset({h for u in urls if (h := urlsplit(u).hostname)} | extra
                     | _hosts(os.environ.get("WH_ALLOWED_HOSTS", "")))


def check_host(url: str, via: str | None = None) -> None:
    host = urlsplit(url).hostname
    allowed = allowed_hosts()
    if host not in allowed:
        raise DownloadError(via or url, "allowed host",
                            f"{'redirected to' if via else 'request to'} {url}: {host} is not one "
                            f"of the {_whose()} hosts ({', '.join(sorted(allowed))}; add a host "
                            f"with {_setting()})")


def _whose() -> str:
    current = _source.get()
    return f"source {current[0]}'s" if current else "publishers'"


def _setting() -> str:
    current = _source.get()
    return (f"WH_ALLOWED_HOSTS_{current[0].upper()} or WH_ALLOWED_HOSTS" if current
            else "WH_ALLOWED_HOSTS")


def _check_redirect(resp: requests.Response, *args, **kwargs) -> requests.Response:
    """Response hook, called for every hop: a redirect to another host is refused before it is
    followed."""
    if resp.is_redirect:
        check_host(urljoin(resp.url, resp.headers.get("Location", "")), via=resp.url)
    return resp


def take_final_url() -> str | None:
    """The URL the bytes of the last download on this thread came from, after redirects (and
    forget it)."""
    url = getattr(_last, "final_url", None)
    _last.final_url = None
    return url


def session() -> requests.Session:
    """A requests session with this project's retry policy; every request and every redirect
    hop must go to an allowed host."""
    s = settings()
    retry = Retry(
        total=s.http_retries,
        connect=s.http_retries,
        read=s.http_retries,
        status=s.http_retries,
        backoff_factor=float(os.environ.get("WH_HTTP_BACKOFF_S", "2")),
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    sess = requests.Session()
    sess.headers["User-Agent"] = USER_AGENT
    sess.hooks["response"].append(_check_redirect)
    adapter = HTTPAdapter(max_retries=retry)
    sess.mount("http://", adapter)
    sess.mount("https://", adapter)
    return sess


def get_text(url: str, params: dict | None = None) -> str:
    """GET a page as text; raises ``requests.HTTPError`` on a final error status."""
    check_host(url)
    with session() as sess:
        resp = sess.get(url, params=params, timeout=settings().http_timeout_s)
        resp.raise_for_status()
        return resp.text


def get_json(url: str, params: dict | None = None):
    """GET a JSON document; raises ``requests.HTTPError`` on a final error status and
    ``DownloadError`` when the body is not JSON (an HTML error page served with status 200)."""
    check_host(url)
    with session() as sess:
        resp = sess.get(url, params=params, timeout=settings().http_timeout_s)
        resp.raise_for_status()
        try:
            return resp.json()
        except ValueError as err:
            raise DownloadError(resp.url, "json answer",
                                f"not JSON (starts {resp.content[:60]!r})") from err


def get_bytes(url: str, max_bytes: int | None = None,
              headers: dict[str, str] | None = None) -> tuple[bytes, str]:
    """GET a file with the size cap applied while streaming. Returns (bytes, content type).
    ``max_bytes`` overrides ``WH_MAX_DOWNLOAD_MB`` for sources whose files are larger.

    A connection that drops or stalls in the middle of the body is retried like one that fails
    before it (urllib3's retries only cover the request and the headers)."""
    s = settings()
    backoff = float(os.environ.get("WH_HTTP_BACKOFF_S", "2"))
    for attempt in range(s.http_retries + 1):
        try:
            return _stream(url, max_bytes or s.max_download_bytes, s.http_timeout_s, headers)
        except _BodyInterrupted as interrupted:
            if attempt == s.http_retries:
                raise interrupted.__cause__ from None
            wait = backoff * 2 ** attempt
            log.warning("%s: body interrupted (%s), retrying in %.1f s", url,
                        interrupted.__cause__, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


class _BodyInterrupted(Exception):
    pass


def _chunks(resp: requests.Response):
    """The body as it arrives: each piece one read from the socket (``read1``), so the caller
    can check its deadline between reads even when a server trickles a few bytes at a time
    (``iter_content`` blocks until a whole chunk has come). Network failures in the middle of
    the body surface as ``_BodyInterrupted`` from the requests exception iter_content raises."""
    raw = resp.raw
    while True:
        try:
            chunk = raw.read1(CHUNK_BYTES, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as err:
            raise _BodyInterrupted() from requests.exceptions.ConnectionError(err)
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as err:
            raise _BodyInterrupted() from requests.exceptions.ChunkedEncodingError(err)
        except (OSError, urllib3.exceptions.HTTPError) as err:
            raise _BodyInterrupted() from requests.exceptions.ConnectionError(err)
        if not chunk:
            return
        yield chunk


def _stream(url: str, cap: int, timeout: float,
            headers: dict[str, str] | None = None) -> tuple[bytes, str]:
    check_host(url)
    deadline = settings().download_deadline_s
    started = time.monotonic()
    with session() as sess:
        with sess.get(url, timeout=timeout, stream=True, headers=headers) as resp:
            resp.raise_for_status()
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise DownloadError(
                    url, "size cap", f"server declares {int(declared):,} bytes, cap is {cap:,} "
                    "(raise WH_MAX_DOWNLOAD_MB if the publisher's files really grew)")
            parts: list[bytes] = []
            received = 0
            for chunk in _chunks(resp):
                if time.monotonic() - started > deadline:
                    raise DownloadError(
                        url, "download deadline",
                        f"not complete after {deadline:g} s ({received:,} bytes received, "
                        f"{received / max(time.monotonic() - started, 1e-9):,.0f} bytes/s): the "
                        "server sends too slowly; download aborted (WH_DOWNLOAD_DEADLINE_S)")
                received += len(chunk)
                if received > cap:
                    raise DownloadError(
                        url, "size cap", f"more than {cap:,} bytes received, download "
                        "aborted (raise WH_MAX_DOWNLOAD_MB if the publisher's files really grew)")
                parts.append(chunk)
            _last.final_url = resp.url
            log.info("downloaded %s (%s bytes)%s", url, f"{received:,}",
                     f" from {resp.url}" if resp.url != url else "")
            return b"".join(parts), resp.headers.get("Content-Type", "")
