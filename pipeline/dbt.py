"""Run dbt against a build database, as a subprocess so its logging stays its own."""
from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ingest import duck
from ingest.config import REPO_ROOT

log = logging.getLogger(__name__)

PROJECT_DIR = REPO_ROOT / "dbt_project"
TAIL_LINES = 25
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
PARTIAL_PARSE_CACHE = ".dbt-partial-parse.msgpack"
"""In the runs folder: dbt's parse of the last build, copied into each run's target folder so
that dbt parses only what changed (dbt checks the files, versions and profile itself and parses
everything again when they differ)."""


class DbtBuildFailed(Exception):
    pass


def _in_place(build_db: Path) -> tuple[Path, str]:
    """Where dbt runs and the database path its profile gets: dbt runs in the build database's
    own folder with the path as a bare file name (``migration.duckdb``). The profile is then the
    same for every run (dbt's partial parsing starts over whenever the profile changes, and
    reuses the previous parse when it does not: about 2 s), and every run's dbt works on its own
    files only: nothing is shared between runs (two runs at once never meet in dbt)."""
    return build_db.parent, build_db.name


def dbt_env(build_db: Path | str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "WH_BUILD_DB": str(build_db),
        # Offline machines and CI: no usage statistics, no version check over the network.
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DO_NOT_TRACK": "1",
    })
    return duck.dbt_settings(env)  # memory_limit and temp_directory of dbt's profile


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def build(build_db: Path, run_dir: Path, args: list[str] | None = None) -> dict:
    """``dbt build`` (seeds, models, tests) into ``build_db``; artefacts under ``run_dir/dbt``.

    Streams dbt's progress to the log; raises ``DbtBuildFailed`` naming the failing nodes."""
    target = run_dir / "dbt"
    cmd = [dbt_executable(), "build", "--project-dir", str(PROJECT_DIR),
           "--profiles-dir", str(PROJECT_DIR), "--target-path", str(target / "target"),
           "--log-path", str(target / "logs"), *(args or [])]
    log.info("running %s", " ".join(cmd))
    parse_cache = run_dir.parent / PARTIAL_PARSE_CACHE
    saved = target / "target" / PARTIAL_PARSE_FILE
    if parse_cache.exists():
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parse_cache, saved)
    cwd, db = _in_place(build_db)
    proc = subprocess.Popen(cmd, cwd=cwd, env=dbt_env(db),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        for line in proc.stdout:
            log.info("dbt | %s", line.rstrip())
            tail.append(line.rstrip())
    except BaseException:
        # Interrupted (Ctrl-C, a task timeout): dbt stops before the step's files move on.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    code = proc.wait()
    if saved.exists():
        staged = parse_cache.with_name(f"{parse_cache.name}.{os.getpid()}.part")
        shutil.copyfile(saved, staged)
        os.replace(staged, parse_cache)
    results = _run_results(target / "target" / "run_results.json")
    if code != 0:
        manifest = _run_results(target / "target" / "manifest.json").get("nodes", {})
        failed = [f"{r['unique_id']} ({r['status']}): {(r.get('message') or '').strip()}"
                  + _failing_rows(build_db, r, manifest)
                  for r in results.get("results", []) if r["status"] in ("error", "fail")]
        # No failed node (a parse or compilation error): dbt's own last words say what broke.
        detail = "\n  ".join(failed) or "\n  ".join(tail)
        raise DbtBuildFailed(f"dbt build failed (exit {code}) on {build_db}:\n  {detail}")
    return {"nodes": len(results.get("results", [])),
            "elapsed_s": round(results.get("elapsed_time", 0.0), 1)}


def docs(build_db: Path, run_dir: Path) -> Path | None:
    """``dbt docs generate --static --no-compile`` (reusing the manifest of this run's build) on
    the build database about to be published: one HTML file with the manifest and the catalog
    inside (``run_dir/dbt/target/static_index.html``), which opens offline; the report links it. Its failure does not stop a publish (the
    documentation is not the data): it is logged and the report has no link."""
    target = run_dir / "dbt" / "target"
    cmd = [dbt_executable(), "docs", "generate", "--static", "--no-compile",
           "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--target-path", str(target),
           "--log-path", str(run_dir / "dbt" / "logs")]
    cwd, db = _in_place(build_db)
    done = subprocess.run(cmd, cwd=cwd, env=dbt_env(db),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    page = target / "static_index.html"
    if done.returncode != 0 or not page.exists():
        log.warning("dbt docs generate failed (exit %s); the report will have no dbt docs:\n%s",
                    done.returncode, "\n".join(done.stdout.splitlines()[-TAIL_LINES:]))
        return None
    log.info("dbt docs of the build: %s", page)
    return page


def _failing_rows(build_db: Path, result: dict, manifest: dict) -> str:
    """Sample failing rows a test stored (``store_failures``), naming the landing file and the
    release when the test keeps them, so the message says which file broke the rule."""
    relation = result.get("relation_name") or manifest.get(result["unique_id"], {}).get(
        "relation_name")
    if not relation or not result["unique_id"].startswith("test."):
        return ""
    from pipeline.files import failing_rows

    rows = failing_rows(build_db, relation)
    return f"\n    failing rows ({relation}): {rows}" if rows else ""


def _run_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}
