"""One transform run at a time: the warehouse lease.

A transform run owns the warehouse from its first step to its last: from ``check_for_changes``
(or whichever step it starts with) until it publishes, fails or finds nothing new. Two runs that
overlap (two ``make run``, a manual trigger beside a scheduled run, ``make run`` beside
``deploy/airflow-local.sh``) would otherwise build from the same published file, switch each
other's files and publish over each other.

Two files in the runs folder carry it:

- ``.transform.lock``: an ``flock`` held by the step that is running, for as long as it runs
  (released by the kernel when its process dies, however it dies);
- ``.transform.lease``: which run owns the warehouse between its steps (JSON: run id, host, pid,
  the process that owns the whole run when there is one, since, last step and when it ended).

A step of another run waits (``WH_TRANSFORM_LOCK_WAIT_S``, default 600 s, with a line every
30 s) while the lease is held by a live run, then fails with ``AnotherRunBuilding`` naming that
run; that failure blames no file and changes nothing. A lease is given up at publish, at a
failure and when nothing was new. It is taken over when its run cannot be alive any more:

- the run's owning process (``make run`` runs every task in one process and says so through
  ``WH_RUN_OWNER_PID``) no longer exists on this host;
- the run was left unfinished by the very process that now runs a step of another run (it runs
  one step at a time: a test, or ``make run`` after a step of its own run failed oddly);
- or, for runs whose tasks are separate processes (a scheduler), no step has run for
  ``WH_TRANSFORM_LEASE_IDLE_S`` (default 1,800 s; between two tasks of a live run there are
  seconds).

With ``WH_STORAGE_URL`` (hosts with no shared disk) the lease is the object
``runs/.transform.lease``, taken, updated and given up by compare-and-swap (``If-Match``) instead
of under a file lock; a running step rewrites its ``beat`` every ``BEAT_S`` seconds, and a lease
whose step has not beaten for ``STALE_BEAT_S`` belongs to a host or process that died.

Under a scheduler the transform DAG also has ``max_active_runs=1`` and the one-slot pool
``warehouse_writer``; the lease is what holds between deployments that do not share a metadata
database, and when a run's tasks are retried on another worker.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ingest import storage
from ingest.config import settings

log = logging.getLogger(__name__)

LOCK_FILE = ".transform.lock"
LEASE_FILE = ".transform.lease"
OWNER_PID_VAR = "WH_RUN_OWNER_PID"
"""Set by ``make run`` (pipeline.run): the process in which every task of the run executes."""
POLL_S = 0.5
PROGRESS_S = 30.0
LEASE_KEY = "runs/.transform.lease"
"""The lease in the object store (``WH_STORAGE_URL``)."""
BEAT_S = 15.0
STALE_BEAT_S = 120.0


class AnotherRunBuilding(Exception):
    """Another transform run owns the warehouse. Not a data error: no file is blamed."""


@dataclass(frozen=True)
class Lease:
    run_id: str
    host: str
    pid: int
    owner_pid: int | None
    """The process that runs every step of the run (``make run``), when there is one."""
    since: str
    step: str
    step_ended: float | None = None
    """Epoch seconds when the last step of the run ended (None while one runs)."""
    beat: float | None = None
    """On the object store: epoch seconds of the running step's last heartbeat."""

    def describe(self) -> str:
        where = f"pid {self.owner_pid or self.pid} on {self.host}"
        step = f"step {self.step}" if self.step_ended is None else \
            f"no step since {self.step} ended {time.time() - self.step_ended:,.0f} s ago"
        return f"run {self.run_id} ({where}, since {self.since[:19].replace('T', ' ')} UTC, " \
               f"{step})"


def _paths() -> tuple[Path, Path]:
    runs = settings().runs_dir
    runs.mkdir(parents=True, exist_ok=True)
    return runs / LOCK_FILE, runs / LEASE_FILE


def _parse(body: bytes, where: str) -> Lease | None:
    if not body.strip():
        return None  # given up
    try:
        return Lease(**json.loads(body))
    except (ValueError, TypeError) as err:
        log.warning("unreadable lease %s (%s): treated as free", where, err)
        return None


def _read_remote(remote: storage.Store) -> tuple[Lease | None, str | None]:
    got = remote.get(LEASE_KEY)
    if got is None:
        return None, None
    return _parse(got[0], remote.uri(LEASE_KEY)), got[1]


def read_lease() -> Lease | None:
    remote = storage.configured()
    if remote is not None:
        return _read_remote(remote)[0]
    path = _paths()[1]
    try:
        return Lease(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as err:
        log.warning("unreadable lease %s (%s): treated as free", path, err)
        return None


def _write(lease: Lease | None) -> None:
    path = _paths()[1]
    if lease is None:
        path.unlink(missing_ok=True)
        return
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    staged.write_text(json.dumps(asdict(lease)), encoding="utf-8")
    os.replace(staged, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM
    return True


def _owner_pid() -> int | None:
    value = os.environ.get(OWNER_PID_VAR)
    return int(value) if value and value.isdigit() else None


def stale_reason(lease: Lease, now: float | None = None) -> str | None:
    """Why ``lease`` (of another run, no step of which holds the lock now) cannot belong to a
    live run any more, or None when it may."""
    now = time.time() if now is None else now
    if (lease.beat is not None and lease.step_ended is None
            and now - lease.beat < 2 * BEAT_S):
        # The object store: a step that beat moments ago is alive, whatever this host sees of
        # its pid (two containers may share a host name and not each other's processes).
        return None
    if lease.host == socket.gethostname() and os.getpid() in (lease.pid, lease.owner_pid):
        # This process runs one step at a time and runs none of that run's now.
        return "this process left it unfinished"
    if lease.owner_pid is not None and lease.host == socket.gethostname():
        if not _alive(lease.owner_pid):
            return f"its process {lease.owner_pid} is gone"
        return None
    if lease.step_ended is None:
        if lease.beat is not None:  # the object store: no lock to tell, a heartbeat does
            silent = now - lease.beat
            if silent > STALE_BEAT_S:
                return (f"its step {lease.step} on {lease.host} has not beaten for "
                        f"{silent:,.0f} s (its host or process died)")
            return None
        # A step was running and nobody holds the lock: that step's process died.
        return f"its step {lease.step} ended without finishing (the process died)"
    idle = now - lease.step_ended
    limit_s = settings().transform_lease_idle_s
    if idle > limit_s:
        return f"no step for {idle:,.0f} s (WH_TRANSFORM_LEASE_IDLE_S={limit_s:g})"
    return None


def owner_gone(lease: Lease) -> str | None:
    """Why ``lease`` cannot belong to a live run, told by its owning process alone: the process
    of the ``make run`` that ran every step (``WH_RUN_OWNER_PID``) no longer exists on this host.
    None when it may be alive or this host cannot tell (no owning process: a scheduler's tasks;
    another host; the object store, whose heartbeat ``step`` reads). For what a run says before
    it starts (``pipeline.run.before_airflow``); ``step`` decides the take-over itself."""
    if lease.owner_pid is None or lease.beat is not None or lease.host != socket.gethostname():
        return None
    return None if _alive(lease.owner_pid) else f"its process {lease.owner_pid} is gone"


@contextlib.contextmanager
def step(run_id: str, name: str):
    """Run one transform step of ``run_id`` as the owner of the warehouse: take the lock (and the
    lease, when free or stale), or wait for another run, then fail with ``AnotherRunBuilding``.
    The lease stays with the run after the step; ``release`` gives it up."""
    remote = storage.configured()
    if remote is not None:
        with _remote_step(remote, run_id, name) as held:
            yield held
        return
    lock_path, _ = _paths()
    wait = settings().transform_lock_wait_s
    started = time.monotonic()
    last_note = started
    holder: Lease | None = None
    with lock_path.open("a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                locked = False
            if locked:
                holder = read_lease()
                if holder is None or holder.run_id == run_id:
                    break
                reason = stale_reason(holder)
                if reason is not None:
                    log.warning("taking over the warehouse from %s: %s; its build is "
                                "abandoned (its files are loaded again by this run)",
                                holder.describe(), reason)
                    break
                fcntl.flock(fh, fcntl.LOCK_UN)
            else:
                holder = read_lease() or holder
            waited = time.monotonic() - started
            if waited >= wait:
                raise _refused(holder, waited, run_id)
            if time.monotonic() - last_note >= PROGRESS_S:
                last_note = time.monotonic()
                log.info("waiting for %s to finish (%.0f s of %g s)",
                         holder.describe() if holder else "another run", waited, wait)
            time.sleep(POLL_S)
        now = datetime.now(timezone.utc).isoformat()
        mine = holder if holder is not None and holder.run_id == run_id else None
        _write(Lease(run_id=run_id, host=socket.gethostname(), pid=os.getpid(),
                     owner_pid=_owner_pid(), since=mine.since if mine else now, step=name))
        held = Held(run_id)
        try:
            yield held
        except BaseException:
            held.release()  # a failed step ends its run: the next run may build
            raise
        finally:
            current = read_lease()
            if current is not None and current.run_id == run_id:
                if held.releasing:
                    _write(None)
                    log.info("run %s released the warehouse", run_id)
                else:
                    _write(Lease(**{**asdict(current), "step_ended": time.time()}))
            fcntl.flock(fh, fcntl.LOCK_UN)


def _refused(holder: Lease | None, waited: float, run_id: str) -> AnotherRunBuilding:
    who = holder.describe() if holder else "a run whose lease is being written"
    return AnotherRunBuilding(
        f"another run is building the warehouse: {who}. Waited {waited:,.0f} s "
        f"(WH_TRANSFORM_LOCK_WAIT_S). This run ({run_id}) changed nothing and "
        "rejected no file; what it landed is built by the next run (make run, or "
        "the next scheduled transform).")


def _lease_json(lease: Lease | None) -> bytes:
    return b"" if lease is None else json.dumps(asdict(lease)).encode()


@contextlib.contextmanager
def _remote_step(remote: storage.Store, run_id: str, name: str):
    """``step`` on the object store: the lease taken by compare-and-swap, kept alive by a
    heartbeat while the step runs, given up or marked idle by compare-and-swap at its end."""
    wait = settings().transform_lock_wait_s
    started = last_note = time.monotonic()
    while True:
        holder, etag = _read_remote(remote)
        reason = None
        if holder is not None and holder.run_id != run_id:
            reason = stale_reason(holder)
        if holder is None or holder.run_id == run_id or reason is not None:
            now = time.time()
            mine = Lease(run_id=run_id, host=socket.gethostname(), pid=os.getpid(),
                         owner_pid=_owner_pid(),
                         since=holder.since if holder is not None and holder.run_id == run_id
                         else datetime.now(timezone.utc).isoformat(),
                         step=name, beat=now)
            try:
                etag = remote.put(LEASE_KEY, _lease_json(mine), if_match=etag,
                                  if_none_match=etag is None)
            except storage.PreconditionFailed:
                continue  # another run wrote it meanwhile: look again
            if reason is not None:
                log.warning("taking over the warehouse from %s: %s; its build is abandoned "
                            "(its files are loaded again by this run)", holder.describe(),
                            reason)
            break
        waited = time.monotonic() - started
        if waited >= wait:
            raise _refused(holder, waited, run_id)
        if time.monotonic() - last_note >= PROGRESS_S:
            last_note = time.monotonic()
            log.info("waiting for %s to finish (%.0f s of %g s)", holder.describe(), waited,
                     wait)
        time.sleep(POLL_S)

    state = {"etag": etag, "lost": False}
    guard = threading.Lock()
    stop = threading.Event()

    def rewrite(lease: Lease | None) -> None:
        """Write ``lease`` over ours; when another run took it over, leave it alone."""
        with guard:
            if state["lost"]:
                return
            try:
                state["etag"] = remote.put(LEASE_KEY, _lease_json(lease), if_match=state["etag"])
            except storage.PreconditionFailed:
                state["lost"] = True
                log.error("run %s lost the warehouse lease %s: another run took it over",
                          run_id, remote.uri(LEASE_KEY))

    def beat() -> None:
        while not stop.wait(BEAT_S):
            rewrite(Lease(**{**asdict(mine), "beat": time.time()}))

    beating = threading.Thread(target=beat, name=f"lease-beat-{run_id}", daemon=True)
    beating.start()
    held = Held(run_id)
    try:
        yield held
    except BaseException:
        held.release()
        raise
    finally:
        stop.set()
        beating.join()
        if held.releasing:
            rewrite(None)
            log.info("run %s released the warehouse", run_id)
        else:
            rewrite(Lease(**{**asdict(mine), "beat": None, "step_ended": time.time()}))


class Held:
    """The lease inside a step: ``release()`` gives it up when the step ends (publish done,
    nothing new)."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.releasing = False

    def release(self) -> None:
        self.releasing = True


def release(run_id: str) -> bool:
    """Give up the lease of ``run_id`` outside its steps (the report task, last of every run,
    in case a step could not). A lease of another run is left alone. Returns whether one was
    released. Never call it inside ``step`` (the lock is held there: use ``Held.release``)."""
    remote = storage.configured()
    if remote is not None:
        while True:
            current, etag = _read_remote(remote)
            if current is None or current.run_id != run_id:
                return False
            try:
                remote.put(LEASE_KEY, b"", if_match=etag)
            except storage.PreconditionFailed:
                continue
            log.info("run %s released the warehouse", run_id)
            return True
    lock_path, _ = _paths()
    current = read_lease()
    if current is None or current.run_id != run_id:
        return False  # not ours: never wait for the lock of the run that owns it
    with lock_path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            current = read_lease()
            if current is None or current.run_id != run_id:
                return False
            _write(None)
            log.info("run %s released the warehouse", run_id)
            return True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
