"""The source interface and the one routine that lands what a source finds."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlparse

from ingest import http, parsed
from ingest.config import settings
from ingest.errors import DataError, DownloadError
from ingest.landing import LANDED, QUARANTINED, Landing, ManifestEntry, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A file a source could fetch: ``url`` is http(s) when live, ``file://`` when replayed."""

    source: str
    url: str
    dataset: str | None = None
    """For sources with several datasets: which one, when known before fetching."""
    version: str | None = None
    """The publisher's version marker when the URL stays the same across releases (an API's
    ``last update of data``); None when every release has its own URL."""

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")


@dataclass(frozen=True)
class Parsed:
    """A parsed source file: its release date and its rows (a pandas DataFrame)."""

    release_date: date | None
    rows: Any
    dataset: str | None = None
    """The dataset the file holds, as the file itself says (or its name, for legacy exports)."""


class Source(Protocol):
    name: str

    def discover(self) -> list[Candidate]:
        """What could be new: the files the publisher offers now."""

    def fetch(self, candidate: Candidate) -> bytes:
        """The bytes of one live (http/https) candidate; ``file://`` candidates are read by
        ``ingest.source.fetch``, never by the source."""

    def parse(self, content: bytes, file_name: str, dataset: str | None = None) -> Parsed:
        """A pure function of the bytes; raises ``DataError`` naming file, row and rule.
        ``dataset`` is what discovery knew before fetching (None when it did not)."""


def file_name(url: str) -> str:
    """The name errors use for a fetched file: the last part of its URL's path."""
    return PurePosixPath(urlparse(url).path).name or url


def fetch(source: Source, candidate: Candidate) -> bytes:
    """The bytes of a candidate, by one of two interchangeable fetchers: a replayed or curated
    file (``file://``) is read from disk here, the same way for every source; a live one is
    fetched by the source itself (its HTTP API, paging and caps)."""
    if candidate.is_local:
        path = Path(candidate.url.removeprefix("file://"))
        cap = getattr(source, "max_download_bytes", None) or settings().max_download_bytes
        size = path.stat().st_size
        if size > cap:
            raise DownloadError(path.name, "size cap",
                                f"{size:,} bytes, the cap is {cap:,} (WH_MAX_DOWNLOAD_MB, as for "
                                "downloads): not read")
        return path.read_bytes()
    return source.fetch(candidate)


@dataclass(frozen=True)
class _Fetched:
    content: bytes | None
    """None: the server said the bytes did not change (304) since the download of ``sha256``."""
    sha256: str
    final_url: str | None = None
    validators: dict[str, str] | None = None


def _fetch_checked(source: Source, cand: Candidate, landing: Landing) -> _Fetched:
    """The bytes of ``cand`` and their sha256. A live URL whose last download left validators
    (ETag, Last-Modified: ``Landing.remember_validators``) for bytes still in the manifest is
    asked conditionally: a 304 answers without a body, and the result is those bytes' sha256
    (``content`` None). A server that ignores the headers sends the file, compared by digest as
    before; a multi-request fetch has no validators and is never conditional."""
    http.take_final_url()
    known = None if cand.is_local else landing.validators(cand.url)
    if known is not None and landing.find_sha(known["sha256"]) is None:
        known = None  # the bytes it stood for are not landed here (a landing started anew)
    if not cand.is_local:
        http.take_validators(cand.url)  # forget what earlier downloads on this thread left
    try:
        if known is not None:
            with http.revalidating(cand.url, known):
                content = fetch(source, cand)
        else:
            content = fetch(source, cand)
    except http.NotModified:
        log.info("%s: not modified since its download of %s (304): nothing new", cand.url,
                 known["sha256"][:12])
        return _Fetched(None, known["sha256"])
    final_url = http.take_final_url()
    validators = None if cand.is_local else http.take_validators(cand.url)
    return _Fetched(content, sha256_of(content), final_url, validators)


def _remember(landing: Landing, cand: Candidate, got: _Fetched) -> None:
    """The validators of a download whose bytes are now landed (any state), for the next
    check's conditional request."""
    if not cand.is_local and got.content is not None:
        landing.remember_validators(cand.url, got.validators, got.sha256)


def _landed_url(cand: Candidate, landing: Landing, refetch_landed: bool) -> ManifestEntry | None:
    """The landed entry of a live URL not to fetch again (see ``land_new``), or None."""
    if cand.is_local or refetch_landed:
        return None
    return landing.find_url(cand.url, status=LANDED, version=cand.version)


@dataclass(frozen=True)
class Offer:
    """What ``offers_new`` found: a candidate whose bytes are not landed, or (``quarantined``)
    bytes that were quarantined, offered again."""

    url: str
    quarantined: ManifestEntry | None = None

    def __str__(self) -> str:
        if self.quarantined is None:
            return f"something new ({self.url})"
        return (f"the bytes quarantined as {self.quarantined.path} offered again ({self.url}; "
                "skipped, not new)")


def offers_new(source: Source, landing: Landing, refetch_landed: bool = False) -> Offer | None:
    """Whether ``land_new`` would land (or quarantine, or skip as quarantined) anything of
    ``source`` now, asked the way ``land_new`` asks: discover, skip a live URL already landed,
    fetch the others and compare their sha256 with landing's. Nothing is landed, parsed or kept:
    the first candidate whose bytes are not landed (or are quarantined: ``land_new`` reports
    those, and the Offer says so) is returned, and the rest is not fetched; None when every
    candidate is known. ``make run`` asks this of every source before it starts Airflow
    (``pipeline.run``): a run with nothing new then starts no DAG at all."""
    for cand in source.discover():
        if _landed_url(cand, landing, refetch_landed) is not None:
            continue
        got = _fetch_checked(source, cand, landing)
        known = landing.find_sha(got.sha256)
        if known is None:
            return Offer(cand.url)
        _remember(landing, cand, got)
        if known.status == QUARANTINED:
            return Offer(cand.url, quarantined=known)
    return None


def land_new(source: Source, landing: Landing, refetch_landed: bool = False,
             skipped: list[ManifestEntry] | None = None) -> list[ManifestEntry]:
    """Fetch what is new, validate it by parsing, land it with its parsed form
    (``ingest.parsed``: the raw load reads that, never parses again). Returns the newly landed
    entries.

    A live URL already landed is not fetched again (the publisher renames the file for every
    release), unless ``refetch_landed`` (``ingest.catalog``: a publisher that re-issues
    corrections under the same name): then the bytes are compared, and other bytes land as a
    correction; when its last download left an ETag or Last-Modified, it is asked conditionally
    and a 304 (no body) means the same bytes (``_fetch_checked``, docs/decisions.md 85). A URL whose file was quarantined is fetched again, since the publisher may have
    fixed it. A file that does not parse is landed as quarantined, then the error is raised. The
    same bad bytes found again are skipped with a warning and added to ``skipped``: they were
    reported when they were quarantined, and a source that keeps offering them must not fail
    every later run (it would hold back the other sources). Bytes already landed land nothing,
    whatever their state (a rejected file stays rejected until re-admitted by hand).
    """
    new: list[ManifestEntry] = []
    errors: list[DataError] = []
    for cand in source.discover():
        known = _landed_url(cand, landing, refetch_landed)
        if known is not None:
            log.info("%s: already landed as %s%s, not fetched again", cand.url, known.path,
                     f" (version {cand.version})" if cand.version else "")
            continue
        got = _fetch_checked(source, cand, landing)
        content, final_url, digest = got.content, got.final_url, got.sha256
        if (known := landing.find_sha(digest)) is not None:
            _remember(landing, cand, got)
            if known.status == QUARANTINED:
                log.warning("%s: the same bytes as %s, quarantined at %s (%s); skipped until the "
                            "publisher changes them", cand.url, known.path, known.fetched_at[:19],
                            known.error)
                if skipped is not None:
                    skipped.append(known)
            else:
                rejected = landing.rejection(known)
                log.info("%s: same bytes as %s, nothing new%s", cand.url, known.path,
                         f" (that file is rejected: {rejected})" if rejected else "")
            continue
        try:
            result = source.parse(content, file_name(cand.url), cand.dataset)
        except DataError as err:
            entry, _ = landing.land(source.name, cand.url, content, None, error=str(err),
                                    dataset=cand.dataset, version=cand.version,
                                    final_url=final_url, digest=digest)
            log.error("quarantined %s: %s", entry.path, err)
            _remember(landing, cand, got)
            errors.append(err)
            continue
        entry, is_new = landing.land(source.name, cand.url, content, result.release_date,
                                     dataset=result.dataset or cand.dataset,
                                     version=cand.version, final_url=final_url,
                                     digest=digest)
        _remember(landing, cand, got)
        if is_new:
            # Parse once: the load reads these rows instead of parsing the bytes again.
            parsed.write(landing, entry, result.rows, result.release_date,
                         result.dataset or cand.dataset)
            new.append(entry)
    if errors:
        raise errors[0]
    return new
