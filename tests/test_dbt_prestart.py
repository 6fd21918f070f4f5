"""The dbt process ``make run`` starts ahead of its build (pipeline.dbt.prestart, pipeline/dbt_warm.py,
docs/decisions.md 90): it runs the command the build gives it, in the build's folder and with the
build's environment, exactly as a dbt started then would; unused, it ends on its own; turned off
or dead, the build starts dbt as before."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline import dbt
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # starts dbt


@pytest.fixture
def project(tmp_path):
    """A one-model dbt project on an in-memory DuckDB whose SQL reads an environment variable."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(textwrap.dedent("""\
        name: probe
        version: "1.0"
        profile: probe
        model-paths: [models]
        """))
    (root / "profiles.yml").write_text(textwrap.dedent("""\
        probe:
          target: dev
          outputs:
            dev: {type: duckdb, path: ":memory:", threads: 1}
        """))
    (root / "models" / "probe.sql").write_text("select '{{ env_var(\"WH_PROBE_VALUE\") }}' as value\n")
    return root


@pytest.fixture
def no_warm():
    yield
    if dbt._warm is not None:
        dbt._warm.kill()
        dbt._warm.wait()
        dbt._warm = None


def compile_cmd(project: Path, cwd: Path) -> list[str]:
    # A relative log path (dbt takes it from the folder it runs in): where the log lands says
    # which folder dbt ran in.
    return [dbt.dbt_executable(), "compile", "--project-dir", str(project), "--profiles-dir",
            str(project), "--target-path", str(cwd / "target-here"), "--log-path", "logs-here"]


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out = proc.stdout.read()
    return proc.wait(timeout=120), out


def compiled(cwd: Path) -> str:
    assert (cwd / "logs-here" / "dbt.log").exists(), f"dbt did not run in {cwd}"
    return next((cwd / "target-here" / "compiled").rglob("probe.sql")).read_text()


def test_the_prestarted_process_runs_the_builds_command_in_its_folder_and_environment(
        project, tmp_path, no_warm, monkeypatch):
    monkeypatch.setenv("WH_PROBE_VALUE", "from the parent at prestart")
    dbt.prestart()
    warm = dbt._warm
    assert warm is not None and warm.poll() is None, "no dbt process was prestarted"
    cwd = tmp_path / "build-folder"
    cwd.mkdir()
    env = {**os.environ, "WH_PROBE_VALUE": "from the build", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = dbt._started(compile_cmd(project, cwd), cwd, env)
    assert proc is warm, "the build started a new dbt instead of using the prestarted one"
    code, out = finish(proc)
    assert code == 0, f"the prestarted dbt failed:\n{out[-2000:]}"
    assert "Running with dbt" in out, f"dbt's output did not reach the build:\n{out[-2000:]}"
    sql = compiled(cwd)
    assert "from the build" in sql, f"dbt did not run with the build's environment: {sql!r}"
    assert dbt._warm is None, "a used process stays registered for the next build"


def test_a_build_with_no_prestarted_process_starts_dbt_as_before(project, tmp_path, no_warm):
    cwd = tmp_path / "cold"
    cwd.mkdir()
    env = {**os.environ, "WH_PROBE_VALUE": "cold start"}
    proc = dbt._started(compile_cmd(project, cwd), cwd, env)
    code, out = finish(proc)
    assert code == 0, out[-2000:]
    assert proc.args[0] == dbt.dbt_executable(), proc.args
    assert "cold start" in compiled(cwd)


def test_a_prestarted_process_that_died_is_replaced(project, tmp_path, no_warm):
    dbt.prestart()
    dead = dbt._warm
    dead.kill()
    dead.wait()
    cwd = tmp_path / "after-death"
    cwd.mkdir()
    proc = dbt._started(compile_cmd(project, cwd), cwd, {**os.environ, "WH_PROBE_VALUE": "replaced"})
    assert proc is not dead
    code, out = finish(proc)
    assert code == 0, out[-2000:]
    assert "replaced" in compiled(cwd)


def test_turned_off_nothing_is_prestarted(no_warm, monkeypatch):
    monkeypatch.setenv("WH_DBT_PRESTART", "false")
    dbt.prestart()
    assert dbt._warm is None, "WH_DBT_PRESTART=false still prestarted dbt"


def test_an_unused_prestarted_process_ends_with_its_run(tmp_path):
    """A run that ends before its build (a failed audit, nothing to build) leaves no dbt behind:
    the prestarted process reads the end of its input and exits having run nothing."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pipeline import dbt; "
            "dbt.prestart(); print(dbt._warm.pid, flush=True)")
    done = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":  # ended; its new parent has not reaped it yet
            return
        time.sleep(0.2)
    pytest.fail(f"the prestarted dbt process {pid} still runs 60 s after its run ended")
