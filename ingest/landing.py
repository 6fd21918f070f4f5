"""Immutable landing files and their manifest.

Every fetched file is written once under ``<landing>/<source>/`` (read-only, never edited or
deleted by a run) and described by one JSON line in ``<landing>/manifest.jsonl``. A file that
fails parsing is landed too, with ``status: quarantined`` and the reason, so it can be diagnosed.
A file whose sha256 is already in the manifest is not landed again.

With ``WH_STORAGE_URL`` set the same records live in the object store instead (``landing/``
under its prefix; ``ingest.storage``): each landed file is one object written with
``If-None-Match: *`` (never overwritten), the manifest and the state events are the objects
``landing/manifest.jsonl`` and ``landing/states.jsonl``, appended by compare-and-swap
(``Store.update``), so two hosts landing at once never lose each other's lines, and the same
bytes landed by two hosts at once get one entry (the other host's copy is deleted). The local
landing directory is then a scratch cache of the files a task reads (``Landing.file``).

What happens to a landed file afterwards is appended to ``<landing>/states.jsonl``, one event per
line (never rewritten): ``loaded`` into a run's build, ``published`` with that run, ``rejected``
(by the pipeline when the file failed an audit or a dbt test, or by hand, with the reason) and
``readmitted`` (by hand). The state a user sees is derived from these events and the manifest
(see ``Landing.state``); the landed bytes themselves never change.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from ingest import storage
from ingest.errors import DataError

log = logging.getLogger(__name__)

LANDED = "landed"
QUARANTINED = "quarantined"
"""Manifest status of a file that failed parsing at landing (shown as state ``rejected``)."""

# Events of states.jsonl, and the states they lead to.
LOADED = "loaded"
PUBLISHED = "published"
REJECTED = "rejected"
READMITTED = "readmitted"
SUPERSEDED = "superseded"
"""Derived, never an event: a published file whose release was re-issued with other bytes."""


@dataclass(frozen=True)
class StateEvent:
    path: str
    """The landed file, relative to the landing directory."""
    sha256: str
    event: str
    at: str
    run_id: str | None = None
    reason: str | None = None
    by: str = "pipeline"
    """``pipeline`` or ``hand`` (a data engineer, through ``python -m pipeline.run reject``)."""


@dataclass(frozen=True)
class ManifestEntry:
    source: str
    url: str
    fetched_at: str
    sha256: str
    bytes: int
    release_date: str | None
    path: str
    """Relative to the landing directory."""
    status: str
    error: str | None = None
    dataset: str | None = None
    """For sources with several datasets: the dataset the file holds."""
    version: str | None = None
    """The publisher's version marker (an API's ``last update of data``), when it has one."""
    final_url: str | None = None
    """Where the bytes came from after redirects (the last request of a download in several),
    when that is not ``url``."""

    @property
    def release(self) -> date | None:
        return date.fromisoformat(self.release_date) if self.release_date else None


SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""What a name from outside (a dataset id from a catalogue, a source) must be to become a folder
of a landing path: letters, digits, '_', '.', '-', starting with a letter or digit, no '..'."""
SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def safe_part(kind: str, value: str, where: str) -> str:
    """``value`` when it may be one part of a landing path; else a DataError naming it."""
    if not SAFE_PART.fullmatch(value) or ".." in value:
        raise DataError(where, "safe name",
                        f"{kind} {value!r} cannot name a folder of landing/ (expected letters, "
                        "digits, '_', '.' or '-', no '..'): not landed")
    return value


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _sniff_suffix(content: bytes) -> str:
    """A file extension for URLs without one (an API path may end in a dataset code)."""
    if content.startswith(b"PK\x03\x04"):
        return ".xlsx"
    if content.startswith(b"\x1f\x8b"):
        return ".gz"
    first_line = content[:4096].split(b"\n", 1)[0]
    if b"," in first_line or b"\t" in first_line:
        return ".csv"
    return ".bin"


def _landing_path(source: str, url: str, content: bytes, dataset: str | None,
                  fetched_at: datetime, digest: str) -> Path:
    """Where a landed file goes, relative to landing: ``<source>[/<dataset>]/<time>_<sha>``."""
    suffix = PurePosixPath(urlparse(url).path).suffix
    if not SAFE_SUFFIX.fullmatch(suffix):
        suffix = _sniff_suffix(content)
    return Path(safe_part("source", source, url),
                *([safe_part("dataset", dataset, url)] if dataset else []),
                f"{fetched_at:%Y%m%dT%H%M%S%fZ}_{digest[:12]}{suffix}")


def _entry(source: str, url: str, content: bytes, release_date: date | None, error: str | None,
           dataset: str | None, version: str | None, final_url: str | None,
           fetched_at: datetime, rel: Path, digest: str) -> ManifestEntry:
    return ManifestEntry(
        source=source, url=url, fetched_at=fetched_at.isoformat(), sha256=digest,
        bytes=len(content), release_date=release_date.isoformat() if release_date else None,
        path=rel.as_posix(), status=QUARANTINED if error else LANDED, error=error,
        dataset=dataset, version=version,
        final_url=final_url if final_url and final_url != url else None)


OBJECT_PREFIX = "landing/"
"""Where landing lives in the object store (``WH_STORAGE_URL``)."""
MANIFEST_NAME = "manifest.jsonl"
STATES_NAME = "states.jsonl"
VALIDATORS_NAME = "http_validators.jsonl"
"""Per live URL, the ETag and Last-Modified of its last download whose bytes are landed, and
their sha256: what the next check sends as a conditional request (``ingest.source``); appended
only when they change, the last line of a URL wins."""

_CONFIGURED = object()


def _appended(old: bytes | None, lines: bytes) -> bytes:
    text = old or b""
    return text + (b"" if not text or text.endswith(b"\n") else b"\n") + lines


class Landing:
    """The landing of one installation: a local directory, or (``WH_STORAGE_URL``) objects
    under ``landing/`` with ``root`` as the task's scratch cache of the files."""

    def __init__(self, root: Path, store: storage.Store | None | object = _CONFIGURED):
        self.root = root
        self.manifest = root / MANIFEST_NAME
        self.states = root / STATES_NAME
        self.store: storage.Store | None = (storage.configured() if store is _CONFIGURED
                                            else store)  # type: ignore[assignment]

    def location(self) -> str:
        """Where the landed files are, for messages: the folder, or the s3:// prefix."""
        return self.store.uri(OBJECT_PREFIX) if self.store else str(self.root)

    def where(self) -> str:
        """Where the manifest is, for messages."""
        return self.store.uri(OBJECT_PREFIX + MANIFEST_NAME) if self.store else str(self.manifest)

    def _lines(self, local: Path) -> list[str]:
        if self.store is not None:
            got = self.store.get(OBJECT_PREFIX + local.name)
            text = got[0].decode("utf-8") if got else ""
            return [line for line in text.splitlines() if line.strip()]
        if not local.exists():
            return []
        with local.open(encoding="utf-8") as fh:
            return [line for line in fh if line.strip()]

    def entries(self, source: str | None = None) -> list[ManifestEntry]:
        rows = [ManifestEntry(**json.loads(line)) for line in self._lines(self.manifest)]
        return [r for r in rows if source is None or r.source == source]

    def find_sha(self, sha256: str) -> ManifestEntry | None:
        return next((e for e in self.entries() if e.sha256 == sha256), None)

    def find_url(self, url: str, status: str | None = None,
                 version: str | None = None) -> ManifestEntry | None:
        """An entry for ``url`` (and ``version``, when the publisher keeps one URL for every
        release)."""
        return next((e for e in self.entries()
                     if e.url == url and (status is None or e.status == status)
                     and (version is None or e.version == version)), None)

    def file(self, entry: ManifestEntry) -> Path:
        """The landed bytes of ``entry`` as a local file (from the object store: downloaded
        into the scratch cache once)."""
        local = self.root / entry.path
        if self.store is not None and not local.exists():
            if self.store.download(OBJECT_PREFIX + entry.path, local) is None:
                raise DataError(self.store.uri(OBJECT_PREFIX + entry.path), "landed file",
                                "the manifest lists this file but the object store has no such "
                                "object (deleted by hand?)")
        return local

    def land(self, source: str, url: str, content: bytes, release_date: date | None,
             error: str | None = None, dataset: str | None = None,
             version: str | None = None, final_url: str | None = None, *,
             digest: str | None = None) -> tuple[ManifestEntry, bool]:
        """Write ``content`` as an immutable file and append its manifest entry. ``digest``:
        the sha256 of ``content`` when the caller has just computed it (hashing is a pass over
        the bytes: 0.12 s for a 136 MB file), else computed here, once.

        Returns the entry and whether it is new (False: these bytes were landed before)."""
        digest = digest or sha256_of(content)
        if self.store is not None:
            return self._land_object(source, url, content, release_date, error, dataset,
                                     version, final_url, digest)
        with self._locked():
            if (known := self._landed_before(digest, url)) is not None:
                return known, False
            fetched_at = datetime.now(timezone.utc)
            rel = _landing_path(source, url, content, dataset, fetched_at, digest)
            target = self.root / rel
            if not target.resolve().is_relative_to(self.root.resolve()):
                raise DataError(url, "inside landing",
                                f"{rel} resolves outside {self.root}: not landed")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            with tmp.open("wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
            entry = _entry(source, url, content, release_date, error, dataset, version,
                           final_url, fetched_at, rel, digest)
            with self.manifest.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            log.info("landed %s -> %s (%s, %s bytes)", url, rel, entry.status, f"{len(content):,}")
            return entry, True

    def _landed_before(self, digest: str, url: str) -> ManifestEntry | None:
        known = self.find_sha(digest)
        if known is not None:
            log.info("%s: sha256 %s already landed as %s, not landed again",
                     url, digest[:12], known.path)
        return known

    def _land_object(self, source: str, url: str, content: bytes, release_date: date | None,
                     error: str | None, dataset: str | None, version: str | None,
                     final_url: str | None, digest: str) -> tuple[ManifestEntry, bool]:
        """``land`` on the object store: the bytes as a new object (If-None-Match), then the
        manifest line by compare-and-swap. When another task landed the same bytes first, its
        entry stands and this copy is deleted."""
        assert self.store is not None
        if (known := self._landed_before(digest, url)) is not None:
            return known, False
        fetched_at = datetime.now(timezone.utc)
        rel = _landing_path(source, url, content, dataset, fetched_at, digest)
        key = OBJECT_PREFIX + rel.as_posix()
        self.store.put(key, content, if_none_match=True)
        entry = _entry(source, url, content, release_date, error, dataset, version, final_url,
                       fetched_at, rel, digest)
        line = (json.dumps(asdict(entry), ensure_ascii=False) + "\n").encode("utf-8")
        first: list[ManifestEntry] = []

        def append(old: bytes | None) -> bytes | None:
            first.clear()
            for row in (old or b"").decode("utf-8").splitlines():
                if row.strip() and json.loads(row)["sha256"] == digest:
                    first.append(ManifestEntry(**json.loads(row)))
                    return None
            return _appended(old, line)

        self.store.update(OBJECT_PREFIX + MANIFEST_NAME, append)
        if first:
            self.store.delete(key)
            log.info("%s: sha256 %s was landed at the same time by another task as %s, not "
                     "landed again", url, digest[:12], first[0].path)
            return first[0], False
        log.info("landed %s -> %s (%s, %s bytes)", url, self.store.uri(key), entry.status,
                 f"{len(content):,}")
        return entry, True

    # --- HTTP validators of live URLs (conditional requests, docs/decisions.md 85) -----------

    def validators(self, url: str) -> dict[str, str] | None:
        """What ``remember_validators`` last recorded for ``url``: ``etag``, ``last_modified``
        (either may be missing) and ``sha256`` of the bytes they stand for; None if nothing."""
        found = None
        for line in self._lines(self.root / VALIDATORS_NAME):
            record = json.loads(line)
            if record.get("url") == url:
                found = record
        if not found or not (found.get("etag") or found.get("last_modified")):
            return None
        return found

    def remember_validators(self, url: str, validators: dict[str, str] | None,
                            sha256: str) -> None:
        """Record the validators of the download of ``url`` whose bytes (``sha256``) are landed
        (none: the server sent none, and no conditional request is made next time). Nothing is
        written when they are those already recorded."""
        known = self.validators(url)
        record = {"url": url, "etag": (validators or {}).get("etag"),
                  "last_modified": (validators or {}).get("last_modified"), "sha256": sha256}
        if known is None and not (record["etag"] or record["last_modified"]):
            return
        if known is not None and all(known.get(k) == record[k] for k in record):
            return
        record["at"] = datetime.now(timezone.utc).isoformat()
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if self.store is not None:
            self.store.update(OBJECT_PREFIX + VALIDATORS_NAME, lambda old: _appended(old, line))
            return
        with self._locked():
            with (self.root / VALIDATORS_NAME).open("ab") as fh:
                fh.write(line)

    # --- states -------------------------------------------------------------------------------

    def events(self) -> list[StateEvent]:
        return [StateEvent(**json.loads(line)) for line in self._lines(self.states)]

    def record(self, entries: list[ManifestEntry], event: str, run_id: str | None = None,
               reason: str | None = None, by: str = "pipeline") -> None:
        """Append one state event per entry (under the manifest lock)."""
        if not entries:
            return
        at = datetime.now(timezone.utc).isoformat()
        lines = "".join(json.dumps(asdict(StateEvent(e.path, e.sha256, event, at, run_id,
                                                     reason, by)), ensure_ascii=False) + "\n"
                        for e in entries).encode("utf-8")
        if self.store is not None:
            self.store.update(OBJECT_PREFIX + STATES_NAME, lambda old: _appended(old, lines))
        else:
            with self._locked():
                with self.states.open("ab") as fh:
                    fh.write(lines)
                    fh.flush()
                    os.fsync(fh.fileno())
        for e in entries:
            log.info("%s: %s%s%s", e.path, event, f" by {by}" if by != "pipeline" else "",
                     f": {reason}" if reason else "")

    def rejection(self, entry: ManifestEntry,
                  events: list[StateEvent] | None = None) -> str | None:
        """Why ``entry`` is rejected, or None when it may be loaded. A file that failed parsing
        at landing is rejected with its parse error; a rejection (by the pipeline or by hand)
        holds until the file is re-admitted."""
        reason = entry.error if entry.status == QUARANTINED else None
        for ev in events if events is not None else self.events():
            if ev.sha256 != entry.sha256:
                continue
            if ev.event == REJECTED:
                reason = ev.reason or "rejected"
            elif ev.event == READMITTED:
                reason = None
        return reason

    def events_by_sha(self) -> dict[str, list[StateEvent]]:
        by_sha: dict[str, list[StateEvent]] = {}
        for ev in self.events():
            by_sha.setdefault(ev.sha256, []).append(ev)
        return by_sha

    def loadable(self, source: str) -> list[ManifestEntry]:
        """The files of ``source`` that a load may use: landed and not rejected, oldest first."""
        by_sha = self.events_by_sha()
        return sorted((e for e in self.entries(source)
                       if self.rejection(e, by_sha.get(e.sha256, [])) is None),
                      key=lambda e: e.fetched_at)

    def rejected(self, source: str | None = None) -> list[ManifestEntry]:
        by_sha = self.events_by_sha()
        return [e for e in self.entries(source)
                if self.rejection(e, by_sha.get(e.sha256, [])) is not None]

    def resolve(self, name: str) -> ManifestEntry:
        """The entry a user means by ``name``: its landing path, its file name, or a prefix of
        its sha256 (at least 8 characters). Raises ``LookupError`` naming the candidates."""
        entries = self.entries()
        name = name.strip()
        found = [e for e in entries if e.path == name or e.path.endswith("/" + name)
                 or (len(name) >= 8 and e.sha256.startswith(name.lower()))]
        if len(found) == 1:
            return found[0]
        if not found:
            raise LookupError(f"no landed file matches {name!r} in {self.where()} "
                              "(give its landing path, file name or sha256 prefix)")
        raise LookupError(f"{name!r} matches {len(found)} landed files: "
                          + ", ".join(e.path for e in found))

    def newest(self, source: str) -> ManifestEntry | None:
        """The newest good release of a source: latest release date, then latest fetch."""
        good = [e for e in self.entries(source) if e.status == LANDED]
        return max(good, key=lambda e: (e.release_date or "", e.fetched_at), default=None)

    @contextmanager
    def _locked(self):
        # Several source DAGs may land at once; the manifest is appended under a lock.
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".manifest.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
