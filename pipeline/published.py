"""The published warehouse on object storage (``WH_STORAGE_URL``): design (a) of issue 20.

The transform builds and audits a local DuckDB file exactly as with local files; the publish then
uploads it as one immutable object and moves a small pointer object to it with a conditional
write (docs/decisions.md, "published warehouse on object storage"). Under the store's prefix:

    warehouse/versions/<run_id>.duckdb   one object per publish, written once (If-None-Match)
    warehouse/CURRENT                    the pointer: its body is the key of the published version;
                                         replaced with If-Match = the etag the run read when it
                                         prepared its build (If-None-Match for the first publish)

So nothing unaudited is visible (a version is only named once it is complete), a reader never
sees half a publish (S3 objects appear whole; a reader attached to a version keeps reading that
immutable object), and two runs never both publish (the second swap gets 412: ``PublishConflict``).
Readers attach the version the pointer names (``reader_sql``); DuckDB cannot take an ATTACH path
from an expression, so the pointer is resolved when the SQL is printed.

The pipeline's own readers of "the published warehouse" (changes, the quality history and report,
the summary, the landed-file states) read a local read-only copy of the current version,
downloaded into ``WH_SCRATCH_DIR`` once per process and version (``local_copy``).
"""
from __future__ import annotations

import atexit
import email.utils
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from ingest import duck
from ingest.config import settings

log = logging.getLogger(__name__)

POINTER = "warehouse/CURRENT"
VERSIONS = "warehouse/versions/"
SUFFIX = ".duckdb"
BASE_FILE = "published_base.json"
"""In a run folder (object storage): the pointer as ``prepare_build`` read it (its etag and the
version it named); ``publish`` swaps the pointer only if it still has that etag."""


class PublishConflict(RuntimeError):
    """Another run published after this build was prepared: this build is not published."""


class PublishedMissing(RuntimeError):
    """The pointer is unreadable or names a version that is not there."""


class NothingPublished(RuntimeError):
    """No warehouse has been published yet (reader-sql)."""


def store():
    """The object store of ``WH_STORAGE_URL``, or None (local files)."""
    from ingest import storage

    return storage.configured()


AGAIN = "--"
"""Between a run id and the number of a later build of the same run id (``<run>--2``): a run
that Airflow runs again under the same id (a cleared DAG run) never writes over a version an
earlier build of it published."""


def version_key(run_id: str, again: int = 1) -> str:
    return f"{VERSIONS}{run_id}{f'{AGAIN}{again}' if again > 1 else ''}{SUFFIX}"


def run_of(key: str) -> str:
    return key.removeprefix(VERSIONS).removesuffix(SUFFIX).split(AGAIN)[0]


def free_version_key(run_id: str, st) -> str:
    """The key this build of ``run_id`` publishes under: ``versions/<run_id>.duckdb``, or
    ``<run_id>--<n>`` when an earlier build of the same run id left one (published or not)."""
    taken = {o.key for o in st.list(f"{VERSIONS}{run_id}")}
    again = 1
    while version_key(run_id, again) in taken:
        again += 1
    return version_key(run_id, again)


def planned_key(run_id: str, folder: Path) -> str:
    """The key ``prepare`` chose for this build (``BASE_FILE`` in the run folder)."""
    base = folder / BASE_FILE
    if base.exists():
        return json.loads(base.read_text(encoding="utf-8")).get("version") or version_key(run_id)
    return version_key(run_id)


@dataclass(frozen=True)
class Current:
    key: str
    """The version the pointer names (``warehouse/versions/<run_id>.duckdb``)."""
    etag: str
    """The pointer object's etag (what a publish must still find to swap it)."""

    @property
    def run_id(self) -> str:
        return run_of(self.key)


def current(st=None) -> Current | None:
    """What ``warehouse/CURRENT`` names now, or None when nothing was published."""
    st = st or store()
    got = st.get(POINTER)
    if got is None:
        return None
    body, etag = got
    key = body.decode("utf-8", "replace").strip()
    name = run_of(key)
    if not (key.startswith(VERSIONS) and key.endswith(SUFFIX)) or not name or "/" in name:
        raise PublishedMissing(
            f"the pointer {st.uri(POINTER)} should hold the key of a published version "
            f"({VERSIONS}<run_id>{SUFFIX}) but holds {body[:120]!r}")
    return Current(key, etag)


# --- the pipeline's local read-only copy --------------------------------------------------------

_cleanup_registered = False


def _cache_root() -> Path:
    return settings().scratch_dir / f"published-{os.getpid()}"


def _remove_cache() -> None:
    shutil.rmtree(_cache_root(), ignore_errors=True)


def _remove_dead_caches() -> None:
    """Copies left by processes that ended without their atexit (killed)."""
    from pipeline import scratch

    scratch.reap_dead(settings().scratch_dir, prefix="published-", max_age_s=None)


def cached_copy(key: str) -> Path:
    """Where this process keeps its copy of version ``key``: the warehouse's own file name, so
    the catalog is named as the views expect (DuckDB names it after the file)."""
    return _cache_root() / key.removeprefix(VERSIONS).removesuffix(SUFFIX) / \
        settings().warehouse.name


def local_copy(st=None) -> Path | None:
    """A local read-only copy of the version the pointer names now (None: nothing published),
    downloaded once per process and version; an earlier version's copy is removed (an open
    connection to it keeps reading it). Raises ``PublishedMissing`` when the pointer names a
    version that is not there."""
    global _cleanup_registered
    st = st or store()
    cur = current(st)
    if cur is None:
        return None
    path = cached_copy(cur.key)
    if path.exists():
        return path
    if not _cleanup_registered:
        _remove_dead_caches()
        atexit.register(_remove_cache)
        _cleanup_registered = True
    for other in _cache_root().glob("*") if _cache_root().is_dir() else ():
        shutil.rmtree(other, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if st.download(cur.key, path) is None:
        raise PublishedMissing(f"the pointer {st.uri(POINTER)} names {st.uri(cur.key)}, which "
                               "is not there")
    path.chmod(0o444)
    log.info("read the published warehouse %s into %s", st.uri(cur.key), path)
    return path


def absent_path() -> Path:
    """A path that does not exist: "no published warehouse" for callers that test ``exists()``."""
    return _cache_root() / "none" / settings().warehouse.name


# --- build and publish ----------------------------------------------------------------------------

def prepare(target: Path, st=None, run_id: str | None = None) -> str:
    """Download the version the pointer names into ``target`` (or create an empty database when
    nothing was published) and record the pointer's etag beside it; returns what it started
    from, for the log."""
    st = st or store()
    cur = current(st)
    if cur is None:
        duck.connect(str(target)).close()
        started = f"nothing published yet at {st.uri(POINTER)}: building from empty"
    else:
        cached = cached_copy(cur.key)
        if cached.exists():
            shutil.copyfile(cached, target)
            target.chmod(0o644)
        elif st.download(cur.key, target) is None:
            raise PublishedMissing(f"the pointer {st.uri(POINTER)} names {st.uri(cur.key)}, "
                                   "which is not there")
        started = f"copied from the published {st.uri(cur.key)}"
    base = {"pointer": st.uri(POINTER), "etag": cur.etag if cur else None,
            "key": cur.key if cur else None,
            "version": free_version_key(run_id or target.parent.name, st),
            "read_at": datetime.now(timezone.utc).isoformat()}
    (target.parent / BASE_FILE).write_text(json.dumps(base), encoding="utf-8")
    return started


def publish(run_id: str, source: Path, st=None) -> str:
    """Upload the checkpointed, closed build ``source`` as ``warehouse/versions/<run_id>.duckdb``
    (If-None-Match), then move the pointer to it (If-Match = the etag recorded by ``prepare``).
    Returns the version's s3:// URL. A 412 on the pointer raises ``PublishConflict``: the
    version stays, unpublished, for diagnosis; nothing readers see changed."""
    from ingest.storage import PreconditionFailed

    st = st or store()
    base_file = source.parent / BASE_FILE
    if not base_file.exists():
        raise PublishedMissing(f"{base_file} is missing: the build of run {run_id} was not "
                               "prepared from the published pointer (prepare_build), so it "
                               "cannot be published safely")
    base = json.loads(base_file.read_text(encoding="utf-8"))
    key = base.get("version") or version_key(run_id)
    try:
        st.put(key, source, if_none_match=True)
    except PreconditionFailed:
        # An earlier attempt of this build (the same run folder: a retried publish) uploaded it.
        now = current(st)
        if now is not None and now.key == key:
            log.info("%s is already the published version (an earlier attempt of run %s)",
                     st.uri(key), run_id)
            return st.uri(key)
        if (now.etag if now is not None else None) == base["etag"]:
            # The pointer has not moved since this build was prepared, so it never named that
            # upload: no reader was given it. Replace it with this attempt's bytes.
            log.warning("%s was uploaded by an earlier attempt of run %s and never published: "
                        "replacing it", st.uri(key), run_id)
            st.delete(key)
            st.put(key, source, if_none_match=True)
        # Else the pointer moved: the swap below fails with PublishConflict, and the object
        # (which the pointer may have named for a while) is left exactly as it is.
    try:
        if base["etag"] is None:
            st.put(POINTER, key.encode(), if_none_match=True)
        else:
            st.put(POINTER, key.encode(), if_match=base["etag"])
    except PreconditionFailed:
        try:
            now = current(st)
        except PublishedMissing as err:
            now_text = str(err)
        else:
            now_text = (f"now names {st.uri(now.key)} (published by run {now.run_id})"
                        if now else "is gone")
        raise PublishConflict(
            f"run {run_id} was not published: another run published after this build was "
            f"prepared. The build started from "
            f"{st.uri(base['key']) if base['key'] else 'no published warehouse'} (pointer etag "
            f"{base['etag']}); the pointer {st.uri(POINTER)} {now_text}. This build stays, "
            f"unpublished, at {st.uri(key)} for diagnosis; nothing readers see changed. The "
            "next transform run builds on top of the new publish.") from None
    log.info("published %s (run %s; pointer %s)", st.uri(key), run_id, st.uri(POINTER))
    try:
        prune_versions(st, keep=key)
    except Exception:  # noqa: BLE001 - the publish is done; old versions wait for the next one
        log.exception("could not remove old published versions (the next publish tries again)")
    return st.uri(key)


def _when(modified: str) -> datetime:
    try:
        return datetime.fromisoformat(modified.replace("Z", "+00:00"))
    except ValueError:
        return email.utils.parsedate_to_datetime(modified)


def prune_versions(st=None, keep: str | None = None, now: datetime | None = None) -> list[str]:
    """Delete old versions: each beyond the newest ``WH_KEEP_PUBLISHED_VERSIONS`` that was
    replaced (the next version written) more than ``WH_KEEP_REPLACED_VERSIONS_DAYS`` ago. The
    version the pointer names (and ``keep``) are never deleted. Returns the deleted keys."""
    st = st or store()
    s = settings()
    now = now or datetime.now(timezone.utc)
    cur = current(st)
    protected = {k for k in (keep, cur.key if cur else None) if k}
    versions = sorted((o for o in st.list(VERSIONS) if o.key.endswith(SUFFIX)),
                      key=lambda o: (_when(o.modified), o.key))
    deleted = []
    for i, obj in enumerate(versions):
        newer = versions[i + 1:]
        if obj.key in protected or len(newer) < s.keep_published_versions:
            continue
        replaced_at = _when(newer[0].modified)
        if (now - replaced_at).total_seconds() < s.keep_replaced_versions_days * 86400:
            continue
        st.delete(obj.key)
        deleted.append(obj.key)
        log.info("removed the old published version %s (replaced %s; the newest %d are kept)",
                 st.uri(obj.key), replaced_at.isoformat(timespec="seconds"),
                 s.keep_published_versions)
    return deleted


def problem(st=None) -> str | None:
    """What is wrong with the published warehouse on object storage, or None: the pointer
    must name a version that is there and opens as DuckDB."""
    st = st or store()
    try:
        path = local_copy(st)
    except PublishedMissing as err:
        return str(err)
    if path is None:
        return None
    try:
        with duck.connect(str(path), read_only=True) as con:
            con.execute("select count(*) from duckdb_tables()").fetchone()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0][:300]
        return (f"the published warehouse {st.uri(current(st).key)} cannot be opened as DuckDB "
                f"({first})")
    return None


def set_aside(st=None) -> str:
    """Keep the pointer's body as ``warehouse/CURRENT.broken-<UTC time>`` and remove the pointer
    (under the warehouse lease: no other run publishes meanwhile); the run rebuilds from empty."""
    st = st or store()
    got = st.get(POINTER)
    if got is None:
        return "the pointer is gone"
    aside = f"{POINTER}.broken-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    st.put(aside, got[0])
    st.delete(POINTER)
    return f"the pointer set aside as {st.uri(aside)}"


# --- what a reader runs ------------------------------------------------------------------------

def _text(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reader_sql(alias: str | None = None, secret: bool = True, credentials: bool = False) -> str:
    """The SQL that attaches the published warehouse read-only in a fresh DuckDB session."""
    from ingest import storage

    s = settings()
    alias = alias or s.warehouse.stem
    catalog_note = ("" if alias == s.warehouse.stem else
                    f"-- NOTE: the warehouse's views name their catalog {_text(s.warehouse.stem)};"
                    f" attached as {_ident(alias)} they fail (its tables work).\n")
    st = store()
    if st is None:
        if not s.warehouse.exists():
            raise NothingPublished(f"no published warehouse at {s.warehouse} yet (make run "
                                   "publishes it)")
        return (f"-- the published warehouse (local files, WH_WAREHOUSE); each new session sees "
                f"the newest publish\n{catalog_note}"
                f"ATTACH {_text(s.warehouse)} AS {_ident(alias)} (READ_ONLY);\n"
                f"USE {_ident(alias)};\n")
    cur = current(st)
    if cur is None:
        raise NothingPublished(f"nothing is published yet at {st.uri(POINTER)} (make run "
                               "publishes the warehouse)")
    if st.head(cur.key) is None:
        raise PublishedMissing(f"the pointer {st.uri(POINTER)} names {st.uri(cur.key)}, which "
                               "is not there")
    endpoint = urlsplit(st.endpoint)
    region = os.environ.get("AWS_REGION", "").strip() or "us-east-1"
    lines = [
        f"-- the warehouse published by run {cur.run_id}, on object storage ({st.url})",
        "SET autoinstall_known_extensions = false;  -- no network but the S3 endpoint",
        f"LOAD {_text(storage.httpfs_extension())};  -- duckdb-extension-httpfs, from its file",
    ]
    if secret:
        params = ["TYPE s3"]
        if credentials:
            params += [f"KEY_ID {_text(os.environ.get('AWS_ACCESS_KEY_ID', ''))}",
                       f"SECRET {_text(os.environ.get('AWS_SECRET_ACCESS_KEY', ''))}"]
            if os.environ.get("AWS_SESSION_TOKEN", "").strip():
                params.append(f"SESSION_TOKEN {_text(os.environ['AWS_SESSION_TOKEN'])}")
            lines.append("-- this SQL contains credentials: share it as you would the keys")
        else:
            lines.append("-- credentials: DuckDB reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                         "(and AWS_SESSION_TOKEN) from the reader's environment")
        params += [f"ENDPOINT {_text(endpoint.netloc + endpoint.path.rstrip('/'))}",
                   "URL_STYLE 'path'",
                   f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}",
                   f"REGION {_text(region)}", f"SCOPE {_text(st.url)}"]
        lines.append(f"CREATE OR REPLACE SECRET wh_storage ({', '.join(params)});")
    lines += [
        "-- DuckDB cannot ATTACH a path computed in SQL, so this names the version published now",
        f"-- ({st.uri(POINTER)}); after a new publish, run reader-sql again for it",
        *([catalog_note.rstrip("\n")] if catalog_note else []),
        f"ATTACH {_text(st.uri(cur.key))} AS {_ident(alias)} (READ_ONLY);",
        f"USE {_ident(alias)};",
    ]
    return "\n".join(lines) + "\n"


def label() -> str:
    """Where the published warehouse is, for messages and the quality history."""
    st = store()
    if st is None:
        return str(settings().warehouse)
    try:
        cur = current(st)
    except PublishedMissing:
        cur = None
    return st.uri(cur.key) if cur else st.uri(POINTER)
