"""SIGTERM stops ``make run`` (``kill``, ``timeout``, systemd, ``docker stop``; decision 82).

``make run`` runs every task in its own process (``dag.test()``). At the start of each task
Airflow's task runner sets its own SIGTERM handler, which only calls the operator's ``on_kill``
(nothing, for a ``@task`` step) and is never put back: under ``dag.test()`` no supervisor follows
up, so a ``make run`` given SIGTERM went on to the end and could still publish. Here SIGTERM
raises ``Terminated`` in the main thread instead: the step stops where it is (a dbt build it
started is terminated with it, ``pipeline.dbt.build``), fails and is recorded like any failed
step (the published warehouse is not changed, the lease is given up, the report says where the
run stopped), no later DAG is started, and ``make run`` exits 143. The task wrappers
(``dags/_common.py``) arm it again at the start of every task, after Airflow's own.

Only in the process of a ``make run`` (``WH_RUN_OWNER_PID``): a scheduler's task process is
stopped by its supervisor, the way Airflow means it to be."""
from __future__ import annotations

import os
import signal
import threading

EXIT_CODE = 128 + signal.SIGTERM


class Terminated(Exception):
    """The run was asked to stop (SIGTERM)."""


_received: list[int] = []


def received() -> bool:
    """Whether this process was given SIGTERM."""
    return bool(_received)


def _stop(signum, frame) -> None:
    _received.append(signum)
    raise Terminated(f"stopped by {signal.Signals(signum).name} (the run was asked to stop)")


def arm() -> None:
    """From now on SIGTERM raises ``Terminated`` in this process's main thread (only in the
    process of a ``make run``; elsewhere nothing changes)."""
    if _owner() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)


def _owner() -> bool:
    return os.environ.get("WH_RUN_OWNER_PID") == str(os.getpid())


def noted() -> None:
    """A task's ``on_kill`` under ``make run`` (``pipeline.run`` sets it on every task of the
    DAGs it runs). Airflow's own SIGTERM handler, in place from a task's start until the task
    wrapper arms ours, calls it: the signal is remembered instead of lost, and ``check`` (the
    wrapper, right after arming) or the end of the DAG stops the run (decision 89)."""
    if _owner():
        _received.append(signal.SIGTERM)


def check() -> None:
    """Raise ``Terminated`` if this ``make run`` was given SIGTERM while Airflow's handler was
    in place (``noted``); the task wrappers call it right after ``arm``."""
    if _owner() and _received:
        raise Terminated("stopped by SIGTERM (the run was asked to stop, between two steps)")
