"""The commands with WH_STORAGE_URL set, when the object store or the scratch space is wrong:
one message naming what to check, exit 2, no traceback, nothing written (found by trying
them as an adversary would)."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def command(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def base_env(s3_env: dict, tmp_path) -> dict:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WH_", "AWS_"))}
    return {**env, **s3_env, "WH_SCRATCH_DIR": str(tmp_path / "scratch")}


def test_a_wrong_secret_key_is_one_message_naming_the_variables(s3_env, tmp_path):
    env = {**base_env(s3_env, tmp_path), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    done = command(env, "files")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Storage error:" in done.stderr and "SignatureDoesNotMatch" in done.stderr, done.stderr
    assert "AWS_SECRET_ACCESS_KEY" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_missing_bucket_is_one_message(s3_env, tmp_path):
    env = {**base_env(s3_env, tmp_path), "WH_STORAGE_URL": "s3://no-such-bucket-here/wh"}
    done = command(env, "files")
    assert done.returncode == 2 and "NoSuchBucket" in done.stderr, done.stderr[-2000:]
    assert "s3://no-such-bucket-here/wh" in done.stderr and "Traceback" not in done.stderr


def test_an_unwritable_scratch_folder_is_named(s3_env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {**base_env(s3_env, tmp_path), "WH_SCRATCH_DIR": str(blocker / "scratch")}
    done = command(env, "files")
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"WH_SCRATCH_DIR={blocker / 'scratch'} cannot be written" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_files_on_an_empty_bucket_names_the_bucket_not_a_scratch_folder(s3_env, tmp_path):
    done = command(base_env(s3_env, tmp_path), "files")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"no landed files in {s3_env['WH_STORAGE_URL']}/landing/", \
        done.stdout
    assert not any((tmp_path / "scratch").rglob("*.*")), "the command left files in scratch"
