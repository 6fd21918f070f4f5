"""The object-storage deployment used wrongly, beyond tests/test_storage_cli.py (adversary pass,
issue 20): an endpoint that refuses connections, and reader-sql on a wrong key. Each ends in one
message naming the URL, with no Python traceback. Fast: no Airflow; one S3 server per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


from ingest.config import REPO_ROOT


def cli(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WH_", "AWS_"))}
    clean.update(env)
    clean.setdefault("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    clean["PYTHONPATH"] = str(REPO_ROOT)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=work, env=clean,
                          capture_output=True, text=True, timeout=120)


def test_files_against_an_endpoint_that_is_down_names_it_without_a_traceback(s3_env, tmp_path):
    env = {**s3_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "WH_HTTP_RETRIES": "0"}
    done = cli(env, tmp_path, "files")
    assert done.returncode == 2, (done.returncode, done.stderr[-600:])
    assert "http://127.0.0.1:1" in done.stderr, f"the endpoint is not named: {done.stderr[-600:]}"
    assert "Traceback" not in done.stderr, f"a traceback instead of a message:\n{done.stderr}"
    assert not any((tmp_path / "scratch").rglob("*.*")), "the command left files in scratch"


def test_reader_sql_on_a_wrong_secret_is_one_line(s3_env, tmp_path):
    done = cli({**s3_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, tmp_path, "reader-sql")
    assert done.returncode != 0, (done.returncode, done.stdout[:300])
    assert "403" in done.stderr and "warehouse/CURRENT" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not done.stdout.strip(), f"SQL printed although the store refused: {done.stdout[:300]}"
