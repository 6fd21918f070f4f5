"""Tasks on hosts with no shared disk: the run folder and the reports travel through the object
store, and a task leaves no data behind on its host.

With ``WH_STORAGE_URL`` unset nothing here does anything: the run folders, the reports, landing
and the warehouse are the local directories they always were.

With it set, every local path the pipeline uses (``WH_LANDING_DIR``, ``WH_WAREHOUSE``,
``WH_RUNS_DIR``, ``WH_QUALITY_DB``, ``WH_REPORTS_DIR``) defaults to a folder of this process's
scratch space (``WH_SCRATCH_DIR``, see ``ingest.config``), and each step of a run is wrapped in
``task``:

- before it, the run's folder (``runs/<run_id>/``: its build database, audit results, dbt
  artefacts, failure record) is downloaded when this host does not have it (the previous step
  ran on another worker, or this process removed it);
- it leaves a mark that it started (``attempts/<step>.<n>.json``, uploaded at once): when
  Airflow retries a step whose worker died, the retry finds the mark without an end, and says
  so in the run's notice (its report and the quality history show it);
- after it, successful or not, what the step added or changed in the run folder is uploaded
  (and what it deleted is deleted), the reports it wrote go to ``reports/quality/``, and the
  scratch space is removed.

Landing, the parsed cache, the quality history, the lease and the published warehouse talk to
the object store themselves (``ingest.landing``, ``ingest.parsed``, ``pipeline.quality.store``,
``pipeline.lock``, ``pipeline.warehouse``); what they download into scratch is a cache that
goes with it.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

from ingest import dead_folders, storage
from ingest.config import settings

log = logging.getLogger(__name__)

RUNS_PREFIX = "runs/"
ATTEMPTS = "attempts"
NOTICE_FILE = "notice.txt"
"""pipeline.warehouse.NOTICE_FILE (not imported: warehouse imports this module)."""
REPORTS_PREFIX = "reports/quality/"

_depth = threading.local()


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every file under ``root``."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.endswith((".part", ".tmp"))}


def pull_run(remote: storage.Store, run_id: str, folder: Path) -> None:
    """The run folder from the object store, when this host lacks it."""
    prefix = f"{RUNS_PREFIX}{run_id}/"
    found = remote.list(prefix)
    for obj in found:
        target = folder / obj.key[len(prefix):]
        if not target.exists():
            remote.download(obj.key, target)
    if found:
        log.info("run folder %s: %d file(s) from %s", folder, len(found), remote.uri(prefix))


def push(remote: storage.Store, prefix: str, root: Path,
         before: dict[str, tuple[int, int]]) -> int:
    """Upload what changed under ``root`` since ``before`` to ``prefix``; delete what went.
    Returns the number of objects written or deleted."""
    now = _files(root)
    changed = [rel for rel, stat in now.items() if before.get(rel) != stat]
    for rel in changed:
        remote.put(prefix + rel, root / rel)
    gone = [rel for rel in before if rel not in now]
    for rel in gone:
        remote.delete(prefix + rel)
    return len(changed) + len(gone)


def attempt_started(remote: storage.Store, run_id: str, folder: Path, step: str) -> Path:
    """Mark that ``step`` of ``run_id`` starts here (uploaded at once, so that a retry on another
    host sees it even if this one dies); earlier attempts that never ended go into the run's
    notice. Returns the mark, for ``attempt_ended``."""
    marks = folder / ATTEMPTS
    marks.mkdir(parents=True, exist_ok=True)
    earlier = [json.loads(p.read_text(encoding="utf-8"))
               for p in sorted(marks.glob(f"{step}.*.json"))]
    me = {"step": step, "host": socket.gethostname(), "pid": os.getpid(),
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    mark = marks / f"{step}.{len(earlier) + 1}.json"
    mark.write_text(json.dumps(me), encoding="utf-8")
    remote.put(f"{RUNS_PREFIX}{run_id}/{ATTEMPTS}/{mark.name}", mark)
    lines = [f"step {step} was started again on {me['host']}: its attempt on {gone['host']} "
             f"(pid {gone['pid']}, from {gone['started'][:19].replace('T', ' ')} UTC) stopped "
             "without finishing (its worker died or was killed)"
             for gone in earlier if "ended" not in gone]
    tried = getattr(_attempt, "number", 1)
    if not lines and tried > len(earlier) + 1:
        lines.append(f"step {step} was started again on {me['host']} (Airflow try {tried}): "
                     "an earlier try stopped before the step began (its worker died or was "
                     "killed)")
    for line in lines:
        log.warning("run %s: %s", run_id, line)
        with (folder / NOTICE_FILE).open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return mark


_attempt = threading.local()


@contextlib.contextmanager
def airflow_try(number: int, task_id: str | None = None):
    """Around a task: which Airflow try this is (``ti.try_number``), so that a step started
    again after its worker died says so even when the dead try never reached the step; and the
    task's id, which names the step in what the user reads (Airflow shows tasks, not steps)."""
    _attempt.number, _attempt.task = number, task_id
    try:
        yield
    finally:
        _attempt.number, _attempt.task = 1, None


def attempt_ended(mark: Path, outcome: str) -> None:
    entry = json.loads(mark.read_text(encoding="utf-8"))
    entry.update(ended=datetime.now(timezone.utc).isoformat(timespec="seconds"), outcome=outcome)
    mark.write_text(json.dumps(entry), encoding="utf-8")


@contextlib.contextmanager
def task(run_id: str, step: str = "step"):
    """Around one step of ``run_id`` (re-entrant: only the outermost call moves files)."""
    remote = storage.configured()
    depth = getattr(_depth, "n", 0)
    if remote is None or depth:
        _depth.n = depth + 1
        try:
            yield
        finally:
            _depth.n = depth
        return
    s = settings()
    reap_dead(s.scratch_dir)
    folder = s.runs_dir / run_id
    pull_run(remote, run_id, folder)
    before_run, before_reports = _files(folder), _files(s.reports_dir)
    mark = attempt_started(remote, run_id, folder, getattr(_attempt, "task", None) or step)
    _depth.n = 1
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        _depth.n = 0
        try:
            attempt_ended(mark, outcome)
            moved = push(remote, f"{RUNS_PREFIX}{run_id}/", folder, before_run)
            moved += push(remote, REPORTS_PREFIX, s.reports_dir, before_reports)
            log.info("run %s: %d object(s) written to %s", run_id, moved, remote.url)
        finally:
            remove_scratch()


def location(path: Path) -> str:
    """Where a user finds ``path`` (a file of a run folder or a report): the path itself, or
    with WH_STORAGE_URL the s3:// URL of the object the step uploaded it to."""
    remote = storage.configured()
    if remote is None:
        return str(path)
    s = settings()
    for root, prefix in ((s.runs_dir, RUNS_PREFIX), (s.reports_dir, REPORTS_PREFIX)):
        if Path(path).is_relative_to(root):
            return remote.uri(prefix + Path(path).relative_to(root).as_posix())
    return str(path)


def fetch_run(run_id: str) -> Path:
    """The run folder of ``run_id`` to read after its DAG ran (``make run``'s messages): with
    WH_STORAGE_URL pulled from the object store into scratch space (removed at exit)."""
    folder = settings().runs_dir / run_id
    remote = storage.configured()
    if remote is not None:
        pull_run(remote, run_id, folder)
    return folder


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """What is under ``root`` now (to push what a command adds: ``push_reports``)."""
    return _files(root)


def push_reports(before: dict[str, tuple[int, int]]) -> None:
    """With WH_STORAGE_URL: upload the reports written since ``before`` (``make report``)."""
    remote = storage.configured()
    if remote is not None:
        push(remote, REPORTS_PREFIX, settings().reports_dir, before)


STORAGE_VARIABLES = ("WH_STORAGE_URL, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
                     "AWS_SECRET_ACCESS_KEY, AWS_REGION")


def check_storage() -> str | None:
    """Before a command works on the object store (WH_STORAGE_URL): the bucket answers with
    these credentials and the scratch folder can be written; else what is wrong, in one
    message naming what to check. None when all is well (or on local files)."""
    remote = storage.configured()
    if remote is None:
        return None
    scratch_dir = settings().scratch_dir
    try:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        probe = scratch_dir / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return (f"Configuration error: WH_SCRATCH_DIR={scratch_dir} cannot be written "
                f"({err.strerror or err}): with WH_STORAGE_URL set, every task works in a folder "
                "of its own there")
    try:
        remote.list("warehouse/CURRENT")
    except storage.StorageError as err:
        return (f"Storage error: {err}\nCheck {STORAGE_VARIABLES} (python -m pipeline.run "
                "settings lists the WH_* ones); nothing was read or written.")
    return None


DEAD_SCRATCH_S = 86400.0


def reap_dead(scratch_dir: Path, prefix: str = "task-",
              max_age_s: float | None = DEAD_SCRATCH_S) -> None:
    """Remove the scratch folders (``<prefix><pid>``) of processes that died without removing
    their own (a worker killed mid-task): their pid is gone on this host, or (``max_age_s``)
    they are older than that (``ingest.dead_folders``)."""
    dead_folders.reap_dead(scratch_dir, prefix, max_age_s)


def remove_scratch() -> None:
    """This process's scratch space, gone (with WH_STORAGE_URL set; else nothing to remove)."""
    root = settings().scratch
    if root is not None and root.exists():
        shutil.rmtree(root, ignore_errors=True)


def in_task(step):
    """Decorator for steps whose first argument is the run id."""
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        with task(run_id, step.__name__):
            return step(run_id, *args, **kwargs)
    return wrapper
