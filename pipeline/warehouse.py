"""Build databases and the atomic publish.

A run builds into ``<runs>/<run_id>/build.duckdb``, a byte copy of the published file (so history
in ``raw`` carries over), and only after every audit passes replaces the published file with
``os.replace``. The published file is never opened for writing: BI readers can hold it open
read-only all the while; a new connection sees the new version once none to the old one is
open in its process (docs/bi.md).
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from ingest import duck
from ingest.config import settings
from pipeline import published as remote
from pipeline import scratch
from pipeline.changes import code_fingerprint

log = logging.getLogger(__name__)

FAILURE_FILE = "failure.json"
BUILD_MODE_FILE = "build_mode.json"
NOTICE_FILE = scratch.NOTICE_FILE
"""In a run folder: what the run found and did that its user must hear of (a published file set
aside and rebuilt), printed by ``make run`` and kept as the run's note in the quality history."""
HASH_CHUNK = 1 << 20
STALE_LANDING_S = 86400
"""A file staged in landing/ this long ago belongs to a process that did not finish."""


def safe_run_id(airflow_run_id: str) -> str:
    """A folder name from an Airflow run id (``manual__2026-11-21T14:10:45+00:00``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", airflow_run_id).strip("_")


def run_dir(run_id: str) -> Path:
    return settings().runs_dir / run_id


def build_db(run_id: str) -> Path:
    # Same file name as the published database: DuckDB names its catalog after the file stem and
    # dbt-duckdb writes that catalog into view definitions, so a differently named build file
    # would publish views that point at a catalog BI readers do not have.
    return run_dir(run_id) / settings().warehouse.name


def housekeeping(current_run_id: str) -> dict[str, int]:
    """Start of every transform run: remove what earlier runs left behind.

    - Build databases of failed runs (kept in ``runs/<run_id>/`` for diagnosis) beyond the
      newest ``WH_KEEP_FAILED_BUILDS`` (default 3) that are also older than
      ``WH_KEEP_FAILED_BUILDS_DAYS`` (default 7): the database and its WAL go, the run's
      failure.json, audit results and dbt artefacts (small) stay.
    - Files a killed process staged and never renamed: the publish copy beside the published
      file, dbt's link being switched; in landing/ (landed files, parsed forms) those a day old.
    It runs under the warehouse lease (``pipeline.lock``): no other transform runs, so nothing
    of the transform's own found here is in use."""
    s = settings()
    keep, keep_days = s.keep_failed_builds, s.keep_failed_builds_days
    removed = {"builds": 0, "staged": 0, "bytes": 0, "publishes": 0, "reports": 0}
    store = remote.store()
    if store is not None:
        _housekeeping_objects(store, current_run_id, keep, keep_days, removed)
    builds = sorted((p for p in s.runs_dir.glob(f"*/{s.warehouse.name}")
                     if p.parent.name != current_run_id), key=lambda p: p.stat().st_mtime,
                    reverse=True) if s.runs_dir.is_dir() else []
    now = datetime.now(timezone.utc).timestamp()
    for i, db in enumerate(builds):
        if i < keep or now - db.stat().st_mtime < keep_days * 86400:
            continue
        for path in (db, _wal(db)):
            if path.exists():
                removed["bytes"] += path.stat().st_size
                path.unlink()
        removed["builds"] += 1
        log.info("removed the build database of failed run %s (older than the newest %d and "
                 "than %g days; its failure.json and audit results stay)", db.parent.name, keep,
                 keep_days)
    # The transform's own staging (it is the only writer of these): whatever is there is stale.
    # (.dbt-build links were switched between runs by code before the lease; none are made now.)
    staged = [*s.warehouse.parent.glob(f".{s.warehouse.name}.*.tmp"),
              *(s.runs_dir.glob(".dbt-build*") if s.runs_dir.is_dir() else []),
              *(s.runs_dir.glob(".transform.lease.*.tmp") if s.runs_dir.is_dir() else [])]
    # Landing's (source DAGs may be landing right now): only what is a day old.
    if s.landing_dir.is_dir():
        staged += [p for p in s.landing_dir.rglob("*.part")
                   if now - p.lstat().st_mtime > STALE_LANDING_S]
    for path in staged:
        removed["bytes"] += path.lstat().st_size
        path.unlink()
        removed["staged"] += 1
        log.info("removed %s, staged by a run that did not finish", path)
    retain_publishes(current_run_id, removed, store)
    return removed


REPORT_STAMP = re.compile(r"[0-9]{8}T[0-9]{6}[0-9]*Z")
"""A timestamped report folder's name (``pipeline.report.write``: ``%Y%m%dT%H%M%S%fZ``)."""


def _stamp_time(name: str) -> datetime | None:
    if not REPORT_STAMP.fullmatch(name):
        return None
    fraction = name[15:-1][:6]  # microseconds: a run's report follows its record within one
    try:
        written = datetime.strptime(name[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None  # named like a report, no such time: not a report's folder
    return written + timedelta(microseconds=int(fraction.ljust(6, "0")) if fraction else 0)


def expired_publishes(current_run_id: str, store=None,
                      now: datetime | None = None) -> tuple[list[str], datetime | None]:
    """The published runs whose artefacts retention removes (docs/decisions.md 86): every run
    the quality history records as published, except the newest ``WH_KEEP_PUBLISHES``, those
    recorded within ``WH_KEEP_PUBLISHES_DAYS`` (whichever keeps more), the run whose warehouse
    is published now and the run in progress. Also returns when the oldest kept publish was
    recorded (None when nothing expires): reports written before it link only expired runs."""
    from pipeline.quality import store as quality_store

    s = settings()
    path = quality_store.store_path()
    if not path.exists():
        return [], None
    with duck.connect(str(path), read_only=True) as q:
        if not quality_store.has(q, "quality", "runs"):
            return [], None
        runs = q.execute("""select run_id, recorded_at from quality.runs
                            where state = 'published' order by recorded_at desc""").fetchall()
    if len(runs) <= s.keep_publishes:
        return [], None
    now = now or datetime.now(timezone.utc)
    if store is not None:
        current = remote.current(store)
        published = current.run_id if current is not None else None
    else:
        published = (_read_record(s.warehouse) or {}).get("run_id")
    kept, expired = [], []
    for i, (run_id, recorded_at) in enumerate(runs):
        young = (now - recorded_at).total_seconds() < s.keep_publishes_days * 86400
        if i < s.keep_publishes or young or run_id in (published, current_run_id):
            kept.append(recorded_at)
        else:
            expired.append(run_id)
    return expired, (min(kept) if expired else None)


def retain_publishes(current_run_id: str, removed: dict[str, int], store=None) -> None:
    """Remove the artefacts of ``expired_publishes``: the run folder (dbt target and docs page,
    GX results and Data Docs, marks) and the report's copies of its docs
    (``<reports>/runs/<run_id>/``), and the timestamped reports written before the oldest kept
    publish (their links lead into removed runs). Never the published warehouse or any version
    of it (as-of queries read those), a failed run's folder (``housekeeping``'s own rule), the
    quality history or ``latest.html``."""
    expired, oldest_kept = expired_publishes(current_run_id, store)
    if not expired:
        return
    s = settings()
    if store is not None:
        _retain_objects(store, expired, oldest_kept, removed)
    for run_id in expired:
        found = False
        for folder in (s.runs_dir / run_id, s.reports_dir / "runs" / run_id):
            if folder.is_dir():
                found = _remove_tree(folder, removed) or found
        if found:
            removed["publishes"] += 1
            log.info("removed the artefacts of publish %s (beyond the newest %d publishes and "
                     "older than %g days)", run_id, s.keep_publishes, s.keep_publishes_days)
    if s.reports_dir.is_dir():
        for folder in s.reports_dir.iterdir():
            written = _stamp_time(folder.name)
            if (written is not None and written < oldest_kept and folder.is_dir()
                    and _remove_tree(folder, removed)):
                removed["reports"] += 1
                log.info("removed report %s, written before the oldest publish kept", folder)


def _remove_tree(folder: Path, removed: dict[str, int]) -> bool:
    """Remove ``folder``; what cannot be removed (a report a user holds open on a share that
    refuses to unlink it, a folder that is a link) is passed over with a warning and tried again
    at the next run: retention never fails a run."""
    size = _tree_bytes(folder)
    try:
        shutil.rmtree(folder)
    except OSError as err:
        log.warning("retention: could not remove %s (%s: %s); left for the next run", folder,
                    type(err).__name__, err)
        return False
    removed["bytes"] += size
    return True


def _retain_objects(store, expired: list[str], oldest_kept: datetime,
                    removed: dict[str, int]) -> None:
    """``retain_publishes`` on the object store: ``runs/<run_id>/``, ``reports/quality/runs/
    <run_id>/`` and the timestamped reports before the oldest kept publish."""
    for run_id in expired:
        objects = [*store.list(f"{scratch.RUNS_PREFIX}{run_id}/"),
                   *store.list(f"{scratch.REPORTS_PREFIX}runs/{run_id}/")]
        for obj in objects:
            store.delete(obj.key)
            removed["bytes"] += obj.size
        if objects:
            removed["publishes"] += 1
            log.info("removed the artefacts of publish %s from %s (%d objects)", run_id,
                     store.url, len(objects))
    stamps: set[str] = set()
    for obj in store.list(scratch.REPORTS_PREFIX):
        name = obj.key[len(scratch.REPORTS_PREFIX):].split("/", 1)[0]
        written = _stamp_time(name)
        if written is not None and written < oldest_kept:
            store.delete(obj.key)
            removed["bytes"] += obj.size
            stamps.add(name)
    removed["reports"] += len(stamps)


def _tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir())


def write_build_mode(run_id: str, full_refresh: list[str]) -> Path:
    """Record, for dbt_build, whether this run rebuilds every model and why (decision 76)."""
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BUILD_MODE_FILE
    path.write_text(json.dumps({"full_refresh": bool(full_refresh), "why": full_refresh}) + "\n",
                    encoding="utf-8")
    return path


def build_mode(run_id: str) -> tuple[bool, str]:
    """(full refresh?, why) as check_for_changes recorded it; a run folder without the record (a
    step run by hand) rebuilds everything, which is never wrong."""
    path = run_dir(run_id) / BUILD_MODE_FILE
    if not path.exists():
        return True, f"no {BUILD_MODE_FILE} in the run folder: every model rebuilt"
    mode = json.loads(path.read_text(encoding="utf-8"))
    if mode["full_refresh"]:
        return True, "; ".join(mode["why"])
    return False, "only the releases whose files changed are rebuilt in the incremental facts"


def prepare_build(run_id: str) -> Path:
    """Create the run folder and its build database from the published one (on object storage:
    the version the pointer names, and the pointer's etag recorded for ``publish``)."""
    target = build_db(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    published = settings().warehouse
    for stale in (target, _wal(target)):
        stale.unlink(missing_ok=True)
    store = remote.store()
    if store is not None:
        log.info("build database %s %s", target, remote.prepare(target, store, run_id))
    elif published.exists():
        shutil.copyfile(published, target)
        log.info("build database %s copied from published %s", target, published)
    else:
        duck.connect(str(target)).close()
        log.info("no published warehouse yet at %s: building %s from empty", published, target)
    return target


PUBLISH_LOG_COMMENTS = (
    "comment on table meta.publish_log is 'One row per publish of this warehouse: the run that "
    "built it, when, and the code it was built with.'",
    "comment on column meta.publish_log.run_id is 'The transform run that built and published "
    "this version (quality.runs.run_id).'",
    "comment on column meta.publish_log.published_at is 'When the run published it (UTC).'",
    "comment on column meta.publish_log.code_fingerprint is 'Hash of the code that built it "
    "(dbt project, expectations, ingest, the building part of pipeline, requirements.txt): a "
    "later run with nothing new and the same code changes nothing.'",
)
"""DuckDB comments of meta.publish_log, written at each publish (every published column is
described: tests/test_published_docs.py)."""


def publish(run_id: str, before_checkpoint=None) -> Path | str:
    """Checkpoint and close the build database, then atomically replace the published file
    (on object storage: upload it as a new version and swap the pointer, ``pipeline.published``;
    the s3:// URL of the version is returned). ``before_checkpoint(con)`` adds last tables to
    the build database (the quality history)."""
    source = build_db(run_id)
    published = settings().warehouse
    store = remote.store()
    if store is None:
        published.parent.mkdir(parents=True, exist_ok=True)
    with duck.connect(str(source)) as con:
        con.execute("create schema if not exists meta")
        con.execute("""create table if not exists meta.publish_log (
                           run_id varchar not null, published_at timestamptz not null)""")
        # The code that built it: a later run with nothing new and the same code is a no-op.
        con.execute("alter table meta.publish_log add column if not exists code_fingerprint varchar")
        for statement in PUBLISH_LOG_COMMENTS:
            con.execute(statement)
        con.execute("insert into meta.publish_log (run_id, published_at, code_fingerprint) "
                    "values (?, ?, ?)", [run_id, datetime.now(timezone.utc), code_fingerprint()])
        if before_checkpoint is not None:
            before_checkpoint(con)
        drop_build_internals(con)
        con.execute("checkpoint")
    if _wal(source).exists():
        raise RuntimeError(f"{source}: a WAL file remains after checkpoint; not publishing")
    if store is not None:
        url = remote.publish(run_id, source, store)
        source.unlink()
        (source.parent / remote.BASE_FILE).unlink(missing_ok=True)
        return url
    with source.open("rb") as fh:
        os.fsync(fh.fileno())
    digest = _sha256(source)
    try:
        os.replace(source, published)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        # Runs folder on another filesystem: stage a copy next to the target, then rename.
        staged = published.with_name(f".{published.name}.{run_id}.tmp")
        shutil.copyfile(source, staged)
        os.replace(staged, published)
        source.unlink()
    _fsync_dir(published.parent)
    _write_record(published, run_id, digest)
    log.info("published %s (run %s, sha256 %s)", published, run_id, digest[:12])
    return published


def _housekeeping_objects(store, current_run_id: str, keep: int, keep_days: float,
                          removed: dict[str, int]) -> None:
    """``housekeeping``'s rule for the build databases of failed runs on the object store
    (``runs/<run_id>/migration.duckdb``, pushed there for diagnosis)."""
    name = settings().warehouse.name
    builds = sorted((o for o in store.list(scratch.RUNS_PREFIX)
                     if o.key.count("/") == 2 and o.key.endswith("/" + name)
                     and o.key.split("/")[1] != current_run_id),
                    key=lambda o: o.modified, reverse=True)
    now = datetime.now(timezone.utc)
    for i, obj in enumerate(builds):
        age = now - datetime.fromisoformat(obj.modified.replace("Z", "+00:00"))
        if i < keep or age.total_seconds() < keep_days * 86400:
            continue
        for key in (obj.key, obj.key + ".wal"):
            store.delete(key)
        removed["builds"] += 1
        removed["bytes"] += obj.size
        log.info("removed the build database of failed run %s from %s (older than the newest %d "
                 "and than %g days; its failure.json and audit results stay)",
                 obj.key.split("/")[1], store.url, keep, keep_days)


def published_path() -> Path:
    """The published warehouse for the pipeline's own read-only use (changes, quality history,
    report, summary, landed-file states): the published file, or on object storage a local
    copy of the version the pointer names (``pipeline.published.local_copy``). The path exists
    only when a warehouse is published."""
    store = remote.store()
    if store is None:
        return settings().warehouse
    try:
        return remote.local_copy(store) or remote.absent_path()
    except remote.PublishedMissing as err:
        log.warning("%s", err)
        return remote.absent_path()


def published_label(run_id: str | None = None) -> str:
    """Where the published warehouse is, for messages and records: the file, or the s3:// URL of
    the version (of ``run_id``'s version, about to be published, when given)."""
    store = remote.store()
    if store is not None and run_id is not None:
        return store.uri(remote.planned_key(run_id, run_dir(run_id)))
    return remote.label()


# --- the published file: recorded at publish, checked at the start of the next run -----------

def record_path(published: Path | None = None) -> Path:
    """Beside the published file: what was published (run, sha256, size, mtime)."""
    published = published or settings().warehouse
    return published.with_name(f".{published.name}.published.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_record(published: Path, run_id: str, digest: str) -> None:
    st = published.stat()
    record = {"run_id": run_id, "sha256": digest, "bytes": st.st_size,
              "mtime_ns": st.st_mtime_ns,
              "recorded_at": datetime.now(timezone.utc).isoformat()}
    path = record_path(published)
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(record), encoding="utf-8")
    os.replace(staged, path)


def _read_record(published: Path) -> dict | None:
    try:
        return json.loads(record_path(published).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def published_by(run_id: str) -> bool:
    """Whether the file now published is the one run ``run_id`` published (its record; on
    object storage: the version the pointer names)."""
    store = remote.store()
    if store is not None:
        current = remote.current(store)
        return current is not None and current.run_id == run_id
    record = _read_record(settings().warehouse)
    return bool(record) and record.get("run_id") == run_id


def _last_publish(path: Path) -> str | None:
    """Open ``path`` read-only as DuckDB and read its last publish; raises ``duckdb.Error``."""
    with duck.connect(str(path), read_only=True) as con:
        found = con.execute("""select count(*) from duckdb_tables()
                               where schema_name = 'meta' and table_name = 'publish_log'""")
        if not found.fetchone()[0]:
            return None
        row = con.execute("select run_id from meta.publish_log "
                          "order by published_at desc limit 1").fetchone()
        return row[0] if row else None


def published_problem() -> str | None:
    """What is wrong with the published file, or None. Checked at the start of every transform
    run: the file must exist when a publish was recorded, open as DuckDB, and, when its size or
    mtime differ from what the publish recorded, have the recorded sha256 (the hash is computed
    only then: a no-op run does not read the whole file). On object storage: the pointer names
    a version that is there and opens (``pipeline.published.problem``)."""
    store = remote.store()
    if store is not None:
        return remote.problem(store)
    published = settings().warehouse
    record = _read_record(published)
    if not published.exists():
        if record is None:
            return None
        return (f"the published warehouse {published} is missing (published by run "
                f"{record['run_id']} at {record['recorded_at'][:19]} UTC)")
    try:
        last_run = _last_publish(published)
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0][:300]
        return f"the published warehouse {published} cannot be opened as DuckDB ({first})"
    st = published.stat()
    if record is None:
        # Published by code that kept no record: adopt the file as it is.
        _write_record(published, last_run or "unknown", _sha256(published))
        return None
    if (st.st_size, st.st_mtime_ns) == (record["bytes"], record["mtime_ns"]):
        return None
    digest = _sha256(published)
    if digest == record["sha256"]:
        _write_record(published, record["run_id"], digest)  # touched, not changed
        return None
    if last_run is not None and last_run != record["run_id"]:
        # A publish that stopped between the rename and its record: the file is a newer,
        # complete publish (it opened, and names its own run).
        _write_record(published, last_run, digest)
        return None
    return (f"the published warehouse {published} changed after run {record['run_id']} "
            f"published it: {st.st_size:,} bytes and sha256 {digest[:12]}, recorded "
            f"{record['bytes']:,} bytes and {record['sha256'][:12]}")


def set_aside_if_broken() -> str | None:
    """When the published file is missing or broken (``published_problem``): move a broken
    file aside for diagnosis (``<name>.broken-<UTC time>``, never deleted by the pipeline) and
    return the line that says so; this run then builds the warehouse anew from landing/."""
    problem = published_problem()
    if problem is None:
        return None
    store = remote.store()
    if store is not None:
        line = (f"{problem}; {remote.set_aside(store)}: rebuilding it from landing/ (every "
                "loadable landed file)")
        log.warning("%s", line)
        return line
    published = settings().warehouse
    if published.exists():
        aside = published.with_name(
            f"{published.name}.broken-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
        os.replace(published, aside)
        if _wal(published).exists():
            os.replace(_wal(published), aside.with_name(aside.name + ".wal"))
        _fsync_dir(published.parent)
        problem += f"; set aside as {aside.name}"
    record_path(published).unlink(missing_ok=True)
    line = f"{problem}: rebuilding it from landing/ (every loadable landed file)"
    log.warning("%s", line)
    return line


BUILD_ONLY_SCHEMAS = ("audit_dbt",)
"""Schemas a build writes for diagnosis only: dbt's stored test failures (``store_failures``),
which ``pipeline.dbt`` samples when a build fails (a failed build is never published). They are
dropped from a build database just before it is published, so BI readers never see them."""


def drop_build_internals(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``BUILD_ONLY_SCHEMAS`` (and everything in them) from the build database."""
    for schema in BUILD_ONLY_SCHEMAS:
        con.execute(f"drop schema if exists {schema} cascade")


def _wal(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def record_failure(run_id: str, step: str, err: BaseException) -> Path:
    """Write ``failure.json`` in the run folder: what failed, with the message and the build
    database kept for diagnosis."""
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "step": step,
        "error_type": type(err).__name__,
        "message": str(err) or ("stopped by SIGINT (Ctrl-C)" if isinstance(err, KeyboardInterrupt)
                                else type(err).__name__),
        "build_db": str(build_db(run_id)) if build_db(run_id).exists() else None,
        "failed_at": datetime.now(timezone.utc).isoformat(),
        "traceback": traceback.format_exception(err),
    }
    path = folder / FAILURE_FILE
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path
