"""Settings in one typed place (issue 19, item 3): every WH_* variable the code or the docs name
is declared once; a bad value names the variable and what it expects."""
from __future__ import annotations

import os
import re

import pytest

from ingest import config
from ingest.config import REPO_ROOT

NAME = re.compile(r"\bWH_[A-Z0-9_]*[A-Z0-9]\b")
PATTERNS = {"WH_ALLOWED_HOSTS_", "WH_"}
"""Prefixes the code builds names from (WH_ALLOWED_HOSTS_<SOURCE>), not variables."""


def _declared() -> set[str]:
    return {s.name for s in config.declared()}


def test_each_setting_is_declared_once():
    names = [s.name for s in config.declared()]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"declared more than once: {twice}"
    keys = [s.key for s in config.declared()]
    assert len(keys) == len(set(keys)), "two settings share an attribute of settings()"


@pytest.mark.parametrize("top", ["ingest", "pipeline", "expectations", "dags", "bench"])
def test_every_variable_the_code_names_is_declared(top):
    undeclared = []
    for path in sorted((REPO_ROOT / top).rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in NAME.findall(line):
                if (name not in _declared() and name not in PATTERNS
                        and not name.startswith(config.NOT_SETTINGS)):
                    undeclared.append(f"{path.relative_to(REPO_ROOT)}:{number} {name}")
    assert not undeclared, ("variables read or named without a declaration in ingest/config.py "
                            "or a source folder's SETTINGS:\n" + "\n".join(undeclared))


def _test_harness_variables() -> set[str]:
    """Variables the test suite itself reads (WH_SHARED_DIR, the topology's hosts): documented
    for whoever runs the tests, not settings of the pipeline."""
    found = set()
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "environ" in line or "getenv" in line:
                found.update(NAME.findall(line))
    return found - _declared()


def test_every_variable_the_docs_name_is_declared():
    harness = _test_harness_variables()
    undeclared = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        if path.name == "decisions.md":  # history: names as they were then
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in NAME.findall(line):
                if (name not in _declared() and name not in harness
                        and not name.startswith("WH_ALLOWED_HOSTS_")):
                    undeclared.append(f"{path.name}:{number} {name}")
    assert not undeclared, "documented variables that are not declared:\n" + "\n".join(undeclared)


@pytest.mark.parametrize("name, value, expected", [
    ("WH_MAX_DOWNLOAD_MB", "10MB", "expected a number of megabytes, more than zero (default 50)"),
    ("WH_MAX_DOWNLOAD_MB", "1e-9", "expected a number of megabytes"),
    ("WH_HTTP_RETRIES", "1_000", "expected a whole number"),
    ("WH_FTS_FIRST_YEAR", "0999", "expected a year"),
    ("WH_FTS_FIRST_YEAR", "2_21", "expected a year"),
    ("WH_ALLOWED_HOSTS", "https://cdn.example.org/path", "expected host names separated by commas"),
    ("WH_ALLOWED_HOSTS_FRONTEX", "a b", "expected host names"),
    ("WH_SUSPICIOUS_CHANGE_SHARE", "50", "at most 1"),
    ("WH_FRONTEX_PAGE_URL", "https://exa mple.org/", "expected an http(s) URL"),
    ("WH_FRONTEX_PAGE_URL", "https://example.org:99999/", "expected an http(s) URL"),
    ("WH_LANDING_DIR", "~no_such_user_here/x", "expected a file or folder path"),
    ("WH_HTTP_RETRIES", "-1", "expected a whole number, 0 or more (default 4)"),
    ("WH_FTS_FIRST_YEAR", "21", "expected a year (four digits) (default 2021)"),
    ("WH_EUROSTAT_API_URL", "ftp://example.org", "expected an http(s) URL"),
    ("WH_KEEP_FAILED_BUILDS_DAYS", "a week", "expected a number of days, zero or more"),
    ("WH_SUSPICIOUS_CHANGE_SHARE", "5%", "expected a share, more than 0"),
    ("WH_TRANSFORM_LOCK_WAIT_S", "nan", "expected a number of seconds, zero or more"),
])
def test_a_bad_value_names_the_variable_and_what_it_expects(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(config.SettingError) as caught:
        config.settings()
    assert str(caught.value).startswith(f"{name}={value!r}: "), caught.value
    assert expected in str(caught.value), caught.value


def test_values_are_typed_and_defaults_hold(monkeypatch, tmp_path):
    for s in config.declared():
        monkeypatch.delenv(s.name, raising=False)
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_MAX_DOWNLOAD_MB", " 1.5 ")
    monkeypatch.setenv("WH_EUROSTAT_API_URL", "http://127.0.0.1:8000/api/")
    s = config.settings()
    assert s.max_download_bytes == int(1.5 * 1024 * 1024)
    assert s.eurostat_api_url == "http://127.0.0.1:8000/api", "a base URL loses its trailing /"
    assert s.runs_dir == tmp_path / "wh" / "runs", "runs/ defaults to beside the warehouse"
    assert s.quality_db == tmp_path / "wh" / "quality_history.duckdb"
    assert s.curated_dir is None and s.snapshot_dir is None
    assert s.http_retries == 4 and isinstance(s.http_retries, int)
    with pytest.raises(AttributeError, match="no setting 'not_a_setting'"):
        s.not_a_setting


def test_the_listing_shows_every_user_setting(monkeypatch):
    monkeypatch.setenv("WH_HTTP_RETRIES", "7")
    text = config.listing()
    for s in config.declared():
        assert (s.name in text) != s.internal, f"{s.name} listed={s.name in text}"
    assert "  WH_HTTP_RETRIES  [count]  default 4  = 7\n" in text, text
    monkeypatch.setenv("WH_HTTP_RETRIES", "seven")
    assert text != (bad := config.listing())
    assert bad.startswith("ERROR WH_HTTP_RETRIES='seven'"), bad[:200]


def test_the_command_lists_settings_and_any_command_stops_on_a_bad_value(tmp_path):
    """`python -m pipeline.run settings` is what --help points to; a bad value stops a command
    before it touches anything, exit 2, naming the variable (not 'could not convert string')."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "WH_LANDING_DIR": str(tmp_path / "landing")}
    listed = subprocess.run([sys.executable, "-m", "pipeline.run", "settings"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for s in config.declared():
        assert (s.name in listed.stdout) != s.internal, f"{s.name} in the listing: {not s.internal}"
    assert "WH_LANDING_DIR  [path]  default <checkout>/landing (with WH_STORAGE_URL: " \
        f"<WH_SCRATCH_DIR>/task-<pid>/landing)  = {tmp_path / 'landing'}" \
        in listed.stdout, listed.stdout[:1600]
    env["WH_MAX_DOWNLOAD_MB"] = "10MB"
    bad = subprocess.run([sys.executable, "-m", "pipeline.run", "files"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, (bad.returncode, bad.stderr)
    assert "WH_MAX_DOWNLOAD_MB='10MB': expected a number of megabytes" in bad.stderr, bad.stderr
    assert "could not convert" not in bad.stderr and not (tmp_path / "landing").exists()


def test_a_typo_in_a_variable_name_is_said_not_ignored(monkeypatch):
    monkeypatch.setenv("WH_MAX_DOWNLOADS_MB", "10")
    assert "WH_MAX_DOWNLOADS_MB" in config.undeclared()
    assert "WARNING WH_MAX_DOWNLOADS_MB is set but no setting has that name" in config.listing()
    monkeypatch.setenv("WH_SHARED_DIR", "/tmp")
    assert "WH_SHARED_DIR" not in config.undeclared(), "the test suite's own variable"


def test_resolved_paths_are_written_into_the_given_environment(monkeypatch, tmp_path):
    """deploy/airflow-local.sh calls export_resolved({}) to get this process's paths as
    absolute exports: they come from the environment, not from the empty dict."""
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    out = config.export_resolved({})
    assert out["WH_WAREHOUSE"] == str(tmp_path / "wh" / "migration.duckdb"), out
    assert out["WH_RUNS_DIR"] == str(tmp_path / "wh" / "runs"), out


def test_with_object_storage_the_local_data_paths_are_the_task_scratch(monkeypatch, tmp_path):
    for name in config.LOCAL_DATA:  # whatever an earlier test or the shell left set
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "local" / "migration.duckdb"))
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "local" / "landing"))
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    assert config.settings().landing_dir == tmp_path / "local" / "landing"
    assert config.settings().scratch is None, "no scratch folder without WH_STORAGE_URL"
    monkeypatch.setenv("WH_STORAGE_URL", "s3://wh-bucket/prod")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s = config.settings()
    scratch = tmp_path / "scratch" / f"task-{os.getpid()}"
    assert s.scratch == scratch
    for path in (s.landing_dir, s.warehouse, s.runs_dir, s.quality_db, s.reports_dir):
        assert path.is_relative_to(scratch), f"{path} is outside this task's scratch {scratch}"
    assert config.ignored_with_storage() == ["WH_LANDING_DIR", "WH_WAREHOUSE"]
    exported = config.export_resolved({})
    assert not set(exported) & set(config.LOCAL_DATA), \
        f"scratch paths exported to subprocesses: {sorted(set(exported) & set(config.LOCAL_DATA))}"
