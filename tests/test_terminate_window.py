"""SIGTERM while Airflow's own handler is in place (decision 89): at each task's start Airflow's
task runner sets a SIGTERM handler that only calls the operator's ``on_kill``, until the task
wrapper arms ours (decision 82). A signal in that window was lost: the run went on. ``make run``
now sets every task's ``on_kill`` to remember the signal, and the wrapper stops the step right
after arming.

The signal is sent from the task's ``pre_execute`` (Airflow calls it after setting its handler
and before the task's callable, so before the wrapper), in a real ``python -m pipeline.run
--dag`` with a DAG folder of its own (the probe takes the id of a real DAG, the one --dag
accepts): the first step must fail with the signal, the second must
not run, and the run must exit 143."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.airflow

PROBE_DAG = '''
import os
import signal
from datetime import datetime

from airflow.sdk import dag, task

from dags._common import transform_step


def _term_in_airflows_window(context):
    os.kill(os.getpid(), signal.SIGTERM)


@dag(dag_id="frontex_ingest", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def term_probe():
    @task(pre_execute=_term_in_airflows_window)
    @transform_step
    def first():
        with open(os.environ["PROBE_FILE"], "a") as fh:
            fh.write("first ran\\n")

    @task
    @transform_step
    def second():
        with open(os.environ["PROBE_FILE"], "a") as fh:
            fh.write("second ran\\n")

    first() >> second()


term_probe()
'''


def test_sigterm_while_airflows_handler_is_set_stops_the_run(tmp_path: Path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "term_probe.py").write_text(PROBE_DAG, encoding="utf-8")
    probe = tmp_path / "probe.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WH_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               WH_WAREHOUSE=str(tmp_path / "wh" / "migration.duckdb"),
               WH_LANDING_DIR=str(tmp_path / "landing"), PROBE_FILE=str(probe),
               PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "--dag", "frontex_ingest"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    ran = probe.read_text() if probe.exists() else ""
    assert "first ran" not in ran, (
        "the step ran although SIGTERM came before it (while Airflow's handler was set):\n"
        + out[-3000:])
    assert "second ran" not in ran, "a step after the SIGTERM ran:\n" + out[-3000:]
    assert done.returncode == 143, f"exit {done.returncode}, expected 143:\n{out[-3000:]}"
    assert "PIPELINE STOPPED: given SIGTERM during frontex_ingest" in out, out[-3000:]
