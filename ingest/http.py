"""The one HTTP client: every call bounded in size and in time.

Retries cover what is worth retrying (connection errors, read timeouts, 429 and 503 honouring
``Retry-After`` up to ``WH_HTTP_MAX_RETRY_AFTER_S``, 5xx); anything else (404, a page that is not
what we asked for) fails at once. Files (``get_bytes``) and pages (``get_text``, ``get_json``) are
all streamed through one path with a size cap (``WH_MAX_DOWNLOAD_MB``, ``WH_MAX_PAGE_MB``) and one
deadline for the whole call, every attempt and every wait between them included
(``WH_DOWNLOAD_DEADLINE_S``, ``WH_PAGE_DEADLINE_S``): a wait that would end past it is not
started, and no read waits past it.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from dataclasses import dataclass
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


_asking: contextvars.ContextVar[bool] = contextvars.ContextVar("asking", default=False)


_revalidate: contextvars.ContextVar[tuple[str, dict[str, str]] | None] = contextvars.ContextVar(
    "revalidate", default=None)


class NotModified(Exception):
    """The server answered 304 Not Modified to a conditional request (``revalidating``): the
    file at the URL is the one the validators were recorded with. No body was sent."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url}: not modified (304)")
        self.url = url


@contextlib.contextmanager
def revalidating(url: str, validators: dict[str, str]):
    """A file download of exactly ``url`` made inside is conditional: ``If-None-Match`` with the
    recorded ETag, ``If-Modified-Since`` with the recorded Last-Modified (``validators``: keys
    ``etag`` and ``last_modified``, from ``take_validators`` of an earlier download). A 304
    raises ``NotModified``; any other answer is read as always (a server that ignores the
    headers sends the whole file again, and the caller compares its digest)."""
    headers = {}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    token = _revalidate.set((url, headers))
    try:
        yield
    finally:
        _revalidate.reset(token)


def take_validators(url: str) -> dict[str, str] | None:
    """The ETag and Last-Modified of the file downloads made on this thread since the last call
    (and forget them), when they were exactly one download of ``url`` that carried either: what
    a later ``revalidating(url, ...)`` sends. None otherwise (a file fetched in several
    requests, pages of an API, has no one validator)."""
    seen = getattr(_last, "validators", None) or []
    _last.validators = []
    if len(seen) != 1 or seen[0][0] != url or not any(seen[0][1].values()):
        return None
    return {k: v for k, v in seen[0][1].items() if v}


@contextlib.contextmanager
def asking():
    """Requests made inside are tried once (no ``WH_HTTP_RETRIES``): for ``make run``'s question
    before Airflow (``pipeline.run.before_airflow``, docs/decisions.md 79). A source that fails
    when asked has its DAG run anyway, and the DAG's requests retry; retrying the question as
    well made a server that is down or hangs cost every retry and backoff twice."""
    token = _asking.set(True)
    try:
        yield
    finally:
        _asking.reset(token)


def _retries() -> int:
    return 0 if _asking.get() else settings().http_retries


@contextlib.contextmanager
def for_source(name: str, url_settings: tuple[str, ...]):
    """Requests made inside go only to the hosts of this source: those of its configured URLs
    (``url_settings``: settings attributes, from the source's spec) and of
    ``WH_ALLOWED_HOSTS_<SOURCE>``, besides ``WH_ALLOWED_HOSTS``."""
    token = _source.set((name, url_settings))
    try:
        yield
    finally:
        _source.reset(token)


def allowed_hosts() -> frozenset[str]:
    """The hosts a request or a redirect may go to: inside ``for_source``, that source's (see
    there); elsewhere those of every configured URL (``WH_*_URL``); always plus
    ``WH_ALLOWED_HOSTS`` (comma-separated: a publisher's CDN)."""
    s = settings()
    current = _source.get()
    if current is None:
        from ingest import catalog
        attributes: tuple[str, ...] = catalog.url_settings()
        extra: frozenset[str] = frozenset()
    else:
        name, attributes = current
        extra = getattr(s, f"allowed_hosts_{name}", frozenset())
    urls = [getattr(s, a) for a in attributes]
    return frozenset({h for u in urls if (h := urlsplit(u).hostname)} | extra
                     | s.allowed_hosts)


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


@dataclass(frozen=True)
class _Limits:
    """What one call may take: bytes (after decompression) and seconds, with the settings that
    set them (named in the errors)."""

    cap: int
    cap_setting: str
    deadline_s: float
    deadline_setting: str


def _file_limits(max_bytes: int | None = None) -> _Limits:
    s = settings()
    return _Limits(max_bytes or s.max_download_bytes, "WH_MAX_DOWNLOAD_MB",
                   s.download_deadline_s, "WH_DOWNLOAD_DEADLINE_S")


def _page_limits() -> _Limits:
    s = settings()
    return _Limits(s.max_page_bytes, "WH_MAX_PAGE_MB", s.page_deadline_s, "WH_PAGE_DEADLINE_S")


class _Budget:
    """The clock of one call: started once, shared by every attempt, retry wait and read."""

    def __init__(self, limits: _Limits) -> None:
        s = settings()
        self.limits = limits
        self.per_read = s.http_timeout_s
        self.max_retry_after = s.http_max_retry_after_s
        self.started = time.monotonic()

    def left(self) -> float:
        return self.started + self.limits.deadline_s - time.monotonic()

    def read_timeout(self) -> float:
        """``WH_HTTP_TIMEOUT_S``, or what is left of the deadline when that is less (never 0:
        urllib3 takes 0 for "fail at once" before even trying)."""
        return max(min(self.per_read, self.left()), 0.001)

    def expired(self, url: str, what: str) -> DownloadError:
        return DownloadError(url, "download deadline",
                             f"not complete after {self.limits.deadline_s:g} s ({what}): "
                             f"download aborted ({self.limits.deadline_setting})")

    def check_wait(self, wait: float, after: str) -> None:
        """A retry whose wait alone would reach the deadline is not started: fail now rather
        than sleep for nothing."""
        left = self.left()
        if wait >= left:
            raise _Refused("download deadline",
                           f"{after}; a retry in {wait:.1f} s could not finish within the "
                           f"{self.limits.deadline_s:g} s deadline of the whole download "
                           f"({max(left, 0):.1f} s left): not started "
                           f"({self.limits.deadline_setting})")


class _Refused(Exception):
    """Raised inside urllib3's retry loop (which does not know the full URL); the adapter turns
    it into a DownloadError naming the URL."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


class _BoundedRetry(Retry):
    """urllib3's retry policy, with its waits bounded: a ``Retry-After`` longer than
    ``WH_HTTP_MAX_RETRY_AFTER_S`` fails at once (urllib3 would sleep up to 6 hours), and no
    wait (``Retry-After`` or backoff) may reach the call's deadline."""

    budget: _Budget

    def new(self, **kw) -> "_BoundedRetry":
        retry = super().new(**kw)
        retry.budget = self.budget
        return retry

    def sleep(self, response=None) -> None:
        asked = self.get_retry_after(response) if response is not None else None
        if asked is not None and asked > self.budget.max_retry_after:
            raise _Refused("retry after",
                           f"answered {response.status} with Retry-After: "
                           f"{response.headers.get('Retry-After')} (a wait of {asked:,.0f} s), "
                           f"longer than the {self.budget.max_retry_after:g} s this client "
                           "waits (WH_HTTP_MAX_RETRY_AFTER_S): not retried")
        wait = asked or self.get_backoff_time()  # Retry-After: 0 means the backoff, as urllib3
        self.budget.check_wait(wait, self._last_failure())
        if wait > 0:
            time.sleep(wait)

    def _last_failure(self) -> str:
        last = self.history[-1] if self.history else None
        if last is None:
            return "failed"
        return f"status {last.status}" if last.status else f"{type(last.error).__name__}"


class _UntilDeadline(urllib3.Timeout):
    """The connect and read timeout of each attempt (urllib3 clones it for every attempt, its
    own retries included): ``WH_HTTP_TIMEOUT_S``, cut to what is left of the deadline."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__(connect=budget.per_read, read=budget.per_read)
        self.budget = budget

    def clone(self) -> urllib3.Timeout:
        seconds = self.budget.read_timeout()
        return urllib3.Timeout(connect=seconds, read=seconds)


class _BoundedAdapter(HTTPAdapter):
    def __init__(self, budget: _Budget) -> None:
        retries = _retries()
        retry = _BoundedRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=settings().http_backoff_s,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            respect_retry_after_header=True,
            retry_after_max=2**62,  # not clamped by urllib3: _BoundedRetry refuses, never shortens
            raise_on_status=False,
        )
        retry.budget = budget
        self.budget = budget
        super().__init__(max_retries=retry)

    def send(self, request, **kwargs):
        kwargs["timeout"] = _UntilDeadline(self.budget)
        try:
            return super().send(request, **kwargs)
        except _Refused as refused:
            raise DownloadError(request.url, refused.rule, refused.detail) from None


def session(budget: _Budget) -> requests.Session:
    """A requests session with this project's retry policy, bounded by ``budget``; every
    request and every redirect hop must go to an allowed host."""
    sess = requests.Session()
    sess.headers["User-Agent"] = USER_AGENT
    sess.hooks["response"].append(_check_redirect)
    adapter = _BoundedAdapter(budget)
    sess.mount("http://", adapter)
    sess.mount("https://", adapter)
    return sess


def get_text(url: str, params: dict | None = None) -> str:
    """GET a page as text (decoded as requests does: the declared charset, else a guess),
    within ``WH_MAX_PAGE_MB`` and ``WH_PAGE_DEADLINE_S``; raises ``requests.HTTPError`` on a
    final error status."""
    return _download(url, _page_limits(), params=params).text


def get_json(url: str, params: dict | None = None):
    """GET a JSON document, within ``WH_MAX_PAGE_MB`` and ``WH_PAGE_DEADLINE_S``; raises
    ``requests.HTTPError`` on a final error status and ``DownloadError`` when the body is not
    JSON (an HTML error page served with status 200)."""
    resp = _download(url, _page_limits(), params=params)
    try:
        return resp.json()
    except ValueError as err:
        raise DownloadError(resp.url, "json answer",
                            f"not JSON (starts {resp.content[:60]!r})") from err


def get_bytes(url: str, max_bytes: int | None = None,
              headers: dict[str, str] | None = None) -> tuple[bytes, str]:
    """GET a file within ``WH_MAX_DOWNLOAD_MB`` and ``WH_DOWNLOAD_DEADLINE_S``. Returns
    (bytes, content type). ``max_bytes`` overrides ``WH_MAX_DOWNLOAD_MB`` for sources whose
    files are larger."""
    conditional = _revalidate.get()
    if conditional is not None and conditional[0] == url and conditional[1]:
        headers = {**(headers or {}), **conditional[1]}
    resp = _download(url, _file_limits(max_bytes), headers=headers)
    _last.final_url = resp.url
    if not hasattr(_last, "validators") or _last.validators is None:
        _last.validators = []
    _last.validators.append((url, {"etag": resp.headers.get("ETag"),
                                   "last_modified": resp.headers.get("Last-Modified")}))
    return resp.content, resp.headers.get("Content-Type", "")


def _download(url: str, limits: _Limits, params: dict | None = None,
              headers: dict[str, str] | None = None) -> requests.Response:
    """GET ``url`` streamed, within ``limits``. Returns the response with its body read, so
    ``.content``, ``.text`` and ``.json()`` behave as requests makes them.

    One deadline covers the whole call: urllib3's retries (connection errors, 429, 5xx) and
    their waits, and ours: a connection that drops or stalls in the middle of the body is
    retried like one that fails before it (urllib3's retries only cover the request and the
    headers)."""
    check_host(url)
    retries = _retries()
    budget = _Budget(limits)
    backoff = settings().http_backoff_s
    for attempt in range(retries + 1):
        try:
            return _attempt(url, params, headers, budget)
        except _BodyInterrupted as interrupted:
            cause = interrupted.__cause__
            if attempt == retries:
                raise cause from None
            wait = backoff * 2 ** attempt
            try:
                budget.check_wait(wait, f"body interrupted ({cause})")
            except _Refused as refused:
                raise DownloadError(url, refused.rule, refused.detail) from cause
            log.warning("%s: body interrupted (%s), retrying in %.1f s", url, cause, wait)
            time.sleep(wait)
        except (requests.ConnectionError, requests.Timeout) as err:
            if budget.left() <= 0:  # the last attempt was cut short by the deadline
                raise budget.expired(url, f"{type(err).__name__}: {err}") from err
            raise
    raise AssertionError("unreachable")


class _BodyInterrupted(Exception):
    pass


def _chunks(resp: requests.Response, budget: _Budget):
    """The body as it arrives: each piece one read from the socket (``read1``), so the caller
    can check its deadline between reads even when a server trickles a few bytes at a time
    (``iter_content`` blocks until a whole chunk has come); no read waits past the deadline.
    Network failures in the middle of the body surface as ``_BodyInterrupted`` from the
    requests exception iter_content raises."""
    raw = resp.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    while True:
        try:
            if sock is not None:
                sock.settimeout(budget.read_timeout())
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


def _attempt(url: str, params: dict | None, headers: dict[str, str] | None,
             budget: _Budget) -> requests.Response:
    cap, cap_setting = budget.limits.cap, budget.limits.cap_setting
    started = time.monotonic()
    received = 0
    with session(budget) as sess:
        with sess.get(url, params=params, headers=headers, stream=True) as resp:
            if resp.status_code == 304 and headers and (
                    "If-None-Match" in headers or "If-Modified-Since" in headers):
                log.info("%s: not modified since the recorded download (304)", url)
                raise NotModified(url)
            resp.raise_for_status()
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise DownloadError(
                    url, "size cap", f"server declares {int(declared):,} bytes, cap is {cap:,} "
                    f"(raise {cap_setting} if the publisher's files really grew)")
            parts: list[bytes] = []

            def progress() -> str:
                seconds = max(time.monotonic() - started, 1e-9)
                return f"{received:,} bytes received, {received / seconds:,.0f} bytes/s"

            try:
                for chunk in _chunks(resp, budget):
                    if budget.left() <= 0:
                        raise budget.expired(url, f"{progress()}: the server sends too slowly")
                    received += len(chunk)
                    if received > cap:
                        raise DownloadError(
                            url, "size cap", f"more than {cap:,} bytes received, download "
                            f"aborted (raise {cap_setting} if the publisher's files really grew)")
                    parts.append(chunk)
            except _BodyInterrupted:
                if budget.left() <= 0:  # the read was cut at the deadline
                    raise budget.expired(url, f"{progress()}, then no more before the "
                                              "deadline") from None
                raise
            # The body as requests keeps it, so .text and .json() decode it as requests does.
            resp._content = b"".join(parts)
            resp._content_consumed = True
            log.info("downloaded %s (%s bytes)%s", url, f"{received:,}",
                     f" from {resp.url}" if resp.url != url else "")
            return resp
