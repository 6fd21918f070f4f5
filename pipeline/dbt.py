"""Run dbt against a build database, as a subprocess so its logging stays its own."""
from __future__ import annotations

import collections
import contextlib
import hashlib
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


EVERY_RUN_TAG = "every_run"
"""Models that read the date (dim_country_eu_membership: one row per year up to the current one):
built by every run, whatever its new files."""


class DbtBuildFailed(Exception):
    pass


def declared_sources(project_dir: Path = PROJECT_DIR) -> dict[str, dict]:
    """The dbt sources the project's YAML declares, by relation (``raw.frontex_detections`` for
    a table of schema raw): ``{"source": "<source>.<table>", "config": <the table's config>}``.
    A table's ``config`` (``loaded_at_field``, ``freshness``, ``meta``) is read as written at
    the table: the one place the sources' cadence is declared (docs/decisions.md 85; the
    reference.source_cadence model reads the same from dbt's graph, and a test compares)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 10x faster
    known: dict[str, dict] = {}
    for path in sorted((project_dir / "models").rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        if not text.startswith("sources:") and "\nsources:" not in text:
            continue  # models' YAML only (most of the bytes): no top-level sources key
        document = yaml.load(text, Loader=loader) or {}
        for source in document.get("sources") or []:
            for table in source.get("tables") or []:
                relation = f"{source.get('schema', source['name'])}.{table.get('identifier') or table['name']}"
                known[relation] = {"source": f"{source['name']}.{table['name']}",
                                   "config": table.get("config") or {}}
    return known


def source_selectors(raw_tables: set[str]) -> list[str] | None:
    """The dbt selectors that build what reads ``raw_tables`` and everything downstream
    (``source:<source>.<table>+``), from the sources the dbt project declares; None when a
    table is no dbt source (then everything is built)."""
    known = declared_sources()
    if not raw_tables <= known.keys():
        return None
    return sorted(f"source:{known[t]['source']}+" for t in raw_tables)


def _in_place(build_db: Path) -> tuple[Path, str]:
    """Where dbt runs and the database path its profile gets: dbt runs in the build database's
    own folder with the path as a bare file name (``migration.duckdb``). The profile is then the
    same for every run (dbt's partial parsing starts over whenever the profile changes, and
    reuses the previous parse when it does not: about 2 s), and every run's dbt works on its own
    files only: nothing is shared between runs (two runs at once never meet in dbt)."""
    return build_db.parent, build_db.name


def dbt_env(build_db: Path | str, cwd: Path | None = None) -> dict[str, str]:
    """dbt's environment: the build database (a bare file name when dbt runs in its folder,
    ``_in_place``), no network calls, and the DuckDB limit and spill folder of its profile
    (a link in ``cwd``, where dbt runs, when given: ``duck.dbt_settings``)."""
    env = dict(os.environ)
    env.update({
        "WH_BUILD_DB": str(build_db),
        # Offline machines and CI: no usage statistics, no version check over the network.
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DO_NOT_TRACK": "1",
    })
    # dbt's log file (``<run>/dbt/logs/dbt.log``) at info: every node's start, result and
    # error, without the debug lines of every query and event (decision 81: about 1 s of a
    # new-release run at 10x). DBT_LOG_LEVEL_FILE=debug in the environment brings them back.
    env.setdefault("DBT_LOG_LEVEL_FILE", "info")
    return duck.dbt_settings(env, cwd)  # memory_limit and temp_directory of dbt's profile


@contextlib.contextmanager
def _dbt_in(build_db: Path):
    """(cwd, env) for a dbt process on ``build_db`` (``_in_place``, ``dbt_env``); the spill
    folder's link dbt_env makes in cwd is removed when the block ends (after dbt has)."""
    cwd, db = _in_place(build_db)
    try:
        yield cwd, dbt_env(db, cwd)
    finally:
        (cwd / duck.SPILL_LINK).unlink(missing_ok=True)


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


WARM_SCRIPT = Path(__file__).with_name("dbt_warm.py")
_warm: subprocess.Popen | None = None


def prestart() -> None:
    """Start the next ``build``'s dbt process now (``pipeline/dbt_warm.py``): it imports dbt while
    this process does the steps before the build, and runs the build's command when ``build``
    sends it. For ``make run``, whose tasks all run in this process (docs/decisions.md 90); a
    process that never builds leaves it to exit at the end of its input. WH_DBT_PRESTART=false
    turns it off."""
    global _warm
    from ingest.config import value

    if not value("WH_DBT_PRESTART") or (_warm and _warm.poll() is None):
        return
    # -P: the script's folder (pipeline/, which holds a dbt.py) stays off sys.path.
    _warm = subprocess.Popen([sys.executable, "-P", str(WARM_SCRIPT)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _started(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """dbt running ``cmd`` in ``cwd`` with ``env``: the prestarted process when there is one
    still waiting (it is given the command), else a new one."""
    global _warm
    warm, _warm = _warm, None
    if warm is not None and warm.poll() is None and cmd[0] == dbt_executable() != "dbt":
        try:
            assert warm.stdin is not None
            warm.stdin.write(json.dumps({"argv": cmd[1:], "cwd": str(cwd), "env": env}) + "\n")
            warm.stdin.close()
            return warm
        except OSError as err:  # it died meanwhile: start one as usual
            log.warning("dbt: the prestarted process could not take the command (%s)", err)
            warm.kill()
            warm.wait()
    return subprocess.Popen(cmd, cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def build(build_db: Path, run_dir: Path, args: list[str] | None = None,
          project_dir: Path = PROJECT_DIR) -> dict:
    """``dbt build`` (seeds, models, tests) into ``build_db``; artefacts under ``run_dir/dbt``.

    Streams dbt's progress to the log; raises ``DbtBuildFailed`` naming the failing nodes."""
    target = run_dir / "dbt"
    cmd = [dbt_executable(), "build", "--project-dir", str(project_dir),
           "--profiles-dir", str(project_dir), "--target-path", str(target / "target"),
           "--log-path", str(target / "logs"), *(args or [])]
    log.info("running %s", " ".join(cmd))
    parse_cache = run_dir.parent / PARTIAL_PARSE_CACHE
    saved = target / "target" / PARTIAL_PARSE_FILE
    if parse_cache.exists():
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parse_cache, saved)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with _dbt_in(build_db) as (cwd, env):
        proc = _started(cmd, cwd, env)
        assert proc.stdout is not None
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


FRESHNESS_STATES = {"pass": "fresh", "warn": "late", "error": "stale"}
"""``dbt source freshness``'s status of a source and the report's word for it (the thresholds:
the source's ``freshness`` warn_after and error_after, docs/decisions.md 85)."""


def source_freshness(build_db: Path, run_dir: Path, project_dir: Path = PROJECT_DIR) -> dict:
    """``dbt source freshness`` of every source that declares it, against ``build_db`` (only
    selects: ``max(loaded_at_field)`` per source); ``sources.json`` under ``run_dir/dbt``.
    Returns ``{"<source>.<table>": {"status": pass|warn|error, "max_loaded_at": ...,
    "age_days": ...}}``; dbt's exit status (1 when a source is past error_after) is not an
    error here: a stale source is what the caller asks about."""
    target = run_dir / "dbt" / "target"
    cmd = [dbt_executable(), "source", "freshness", "--project-dir", str(project_dir),
           "--profiles-dir", str(project_dir), "--target-path", str(target),
           "--log-path", str(run_dir / "dbt" / "logs")]
    (target / "sources.json").unlink(missing_ok=True)
    with _dbt_in(build_db) as (cwd, env):
        done = subprocess.run(cmd, cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = _run_results(target / "sources.json").get("results")
    if results is None or done.returncode not in (0, 1):
        raise DbtBuildFailed(f"dbt source freshness failed (exit {done.returncode}) on "
                             f"{build_db}:\n  " + "\n  ".join(
                                 done.stdout.splitlines()[-TAIL_LINES:]))
    out = {}
    for r in results:
        name = ".".join(r["unique_id"].split(".")[-2:])
        if r["status"] in ("runtime error",):
            raise DbtBuildFailed(f"dbt source freshness of {name} on {build_db}: "
                                 f"{r.get('error') or r}")
        out[name] = {"status": r["status"], "max_loaded_at": r.get("max_loaded_at"),
                     "age_days": (r.get("max_loaded_at_time_ago_in_s") or 0) / 86400}
    return out


DOCS_PAGE = "static_index.html"
DOCS_FINGERPRINT = "docs_fingerprint.json"
DOCS_PAGE_SHA = "docs_page.sha256"
"""Beside the fingerprint: the sha256 of the page as this run wrote it. The report's copy of the
page is a hard link (decision 86): a page edited in place through it no longer has it, and is
not copied into a later publish."""
"""In ``<run>/dbt/``: the fingerprint of what the run's dbt docs page shows (``docs_fingerprint``)
and which run generated the page (this run, or the earlier publish it was copied from)."""
VOLATILE = frozenset({"created_at", "generated_at", "invocation_id", "invocation_started_at",
                      "run_started_at", "build_path", "compiled_path"})
"""Keys of dbt's manifest that change at every invocation whatever the project (times, ids, and
the paths of compiled files, which name the run folder); the docs page does not show them."""
CATALOG_SQL = """
    select t.schema_name, t.name, t.kind, t.comment, c.column_index, c.column_name,
           c.data_type, c.comment
    from (select schema_name, table_name as name, 'table' as kind, comment
          from duckdb_tables() where database_name = current_database()
          union all
          select schema_name, view_name, 'view', comment
          from duckdb_views() where database_name = current_database() and not internal) t
    join duckdb_columns() c
      on c.database_name = current_database() and c.schema_name = t.schema_name
     and c.table_name = t.name
    where list_contains(?, t.schema_name)
    order by all"""
"""What dbt-duckdb's catalog holds of each relation (its ``get_catalog`` macro: schema, name,
table or view, comment, and per column its position, name, type and comment; no row counts or
other statistics: ``has_stats`` is false), for the relations of the schemas dbt catalogs: those
of the manifest's nodes and sources."""


COMPILED = frozenset({"compiled", "compiled_code", "extra_ctes", "extra_ctes_injected"})
"""Keys of a manifest node that dbt fills only for the nodes a command compiled: a build that
selects what its new files feed (decision 76) leaves them out for every other node, and the
macros a node calls at run time join its ``depends_on.macros`` then. They follow from the node's
SQL (``raw_code``) and the macros' own SQL, both in the fingerprint, so they are left out of it:
else every selective build would look like a change of the documentation (measured: 160 nodes
differed, and ``dbt docs generate`` ran again at every new release, 5.8 s at 10x)."""


SHOWN_TYPES = frozenset({"model", "seed", "snapshot", "source"})
"""The nodes whose relation's columns the docs page shows from the catalog."""


def _without_volatile(value):
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def _referenced_name(to: str) -> str:
    """The model a foreign key points at, as written (``ref('dim_country')``) or as compiling
    resolves it (``"migration"."marts"."dim_country"``): ``dim_country`` either way."""
    name = to.strip()
    if name.startswith("ref("):
        return name[4:].rstrip(")").strip().strip("'\"")
    return name.rsplit(".", 1)[-1].strip('"')


def _as_written(node: dict) -> dict:
    """A manifest node without what compiling it adds (``COMPILED``, ``depends_on.macros``, the
    relation a foreign key constraint's ``to: ref(...)`` resolves to: compiled nodes only)."""
    node = {k: v for k, v in node.items() if k not in COMPILED}
    if isinstance(node.get("depends_on"), dict):
        node["depends_on"] = {k: v for k, v in node["depends_on"].items() if k != "macros"}
    if node.get("constraints"):
        node["constraints"] = [{**c, "to": _referenced_name(c["to"])} if c.get("to") else c
                               for c in node["constraints"]]
    return node


def docs_fingerprint(build_db: Path, target: Path) -> str | None:
    """A fingerprint of what ``dbt docs generate --static`` would show for this build: dbt's
    manifest of the build (models, columns, descriptions, SQL, tests, lineage) without what
    changes at every invocation (timestamps, invocation ids) or with what was selected
    (``COMPILED``: a full and a selective build of the same project give one fingerprint), and
    the catalog dbt would read from the build database (``CATALOG_SQL``) of the relations the
    page shows (the manifest's nodes and sources). None without a manifest."""
    import hashlib

    import duckdb

    manifest = target / "manifest.json"
    if not manifest.exists():
        return None
    digest = hashlib.sha256()
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["nodes"] = {k: _as_written(n) for k, n in data.get("nodes", {}).items()}
    digest.update(json.dumps(_without_volatile(data), sort_keys=True, default=str).encode())
    shown = {(n["schema"].lower(), (n.get("identifier") or n.get("alias") or n["name"]).lower())
             for n in (*data.get("nodes", {}).values(), *data.get("sources", {}).values())
             if n.get("schema") and n.get("name") and n.get("resource_type") in SHOWN_TYPES}
    schemas = sorted({schema for schema, _ in shown})
    with duck.connect(str(build_db), read_only=True) as con:
        for row in con.execute(CATALOG_SQL, [schemas]).fetchall():
            # Only relations the page shows: publish adds tables of its own (meta.publish_log,
            # the quality history) after the docs, so the first publish's build lacks them; the
            # failing rows a test stores (audit_dbt) are dropped at publish, and a build that
            # selects keeps those of its own tests only.
            if (row[0].lower(), row[1].lower()) in shown:
                digest.update(json.dumps(row, default=str).encode())
    return digest.hexdigest()


def _previous_docs(build_db: Path, run_dir: Path) -> tuple[str, dict] | None:
    """The previous publish of the warehouse this build started from (the last row of its
    ``meta.publish_log``) and its ``DOCS_FINGERPRINT`` record, when it has one; on object
    storage read from the bucket (``runs/<run>/dbt/``)."""
    import duckdb

    from ingest import storage

    with duck.connect(str(build_db), read_only=True) as con:
        if not con.execute("""select count(*) from duckdb_tables()
                              where schema_name = 'meta' and table_name = 'publish_log'
                                and database_name = current_database()""").fetchone()[0]:
            return None
        last = con.execute("select run_id from meta.publish_log "
                           "order by published_at desc limit 1").fetchone()
    if last is None:
        return None
    previous = last[0]
    remote = storage.configured()
    if remote is None:
        record = run_dir.parent / previous / "dbt" / DOCS_FINGERPRINT
        found = record.read_bytes() if record.exists() else None
    else:
        from pipeline import scratch

        got = remote.get(f"{scratch.RUNS_PREFIX}{previous}/dbt/{DOCS_FINGERPRINT}")
        found = got[0] if got is not None else None
    return (previous, json.loads(found)) if found else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_previous_page(previous: str, run_dir: Path, page: Path) -> bool:
    """The previous publish's page copied to ``page`` (staged, then renamed)."""
    from ingest import storage

    staged = page.with_name(f".{page.name}.{os.getpid()}.tmp")
    remote = storage.configured()
    if remote is None:
        source = run_dir.parent / previous / "dbt" / "target" / DOCS_PAGE
        if not source.is_file():
            return False
        shutil.copyfile(source, staged)
        written = run_dir.parent / previous / "dbt" / DOCS_PAGE_SHA
        if written.is_file() and _sha256(staged) != written.read_text().strip():
            staged.unlink()
            log.warning("dbt docs: the page of run %s was changed after it was written (edited "
                        "through the report's hard link?); generating the page", previous)
            return False
    else:
        from pipeline import scratch

        if remote.download(f"{scratch.RUNS_PREFIX}{previous}/dbt/target/{DOCS_PAGE}",
                           staged) is None:
            staged.unlink(missing_ok=True)
            return False
    os.replace(staged, page)
    return True


def docs(build_db: Path, run_dir: Path) -> Path | None:
    """The dbt docs page of the build database about to be published: one HTML file with the
    manifest and the catalog inside (``run_dir/dbt/target/static_index.html``), which opens
    offline; the report links it. When what the page shows is what the previous publish's page
    shows (``docs_fingerprint``: the same models, columns, types, descriptions and SQL), that
    page is copied (decision 74); else ``dbt docs generate --static --no-compile`` (reusing the
    manifest of this run's build) writes it. Its failure does not stop a publish (the
    documentation is not the data): it is logged and the report has no link."""
    target = run_dir / "dbt" / "target"
    page = target / DOCS_PAGE
    record = run_dir / "dbt" / DOCS_FINGERPRINT
    try:
        fingerprint = docs_fingerprint(build_db, target)
        previous = _previous_docs(build_db, run_dir) if fingerprint else None
    except Exception as err:  # noqa: BLE001 - the documentation is not the data
        log.warning("dbt docs: no fingerprint (%s: %s); generating them", type(err).__name__, err)
        fingerprint = previous = None
    if (fingerprint and previous and previous[1].get("fingerprint") == fingerprint
            and _copy_previous_page(previous[0], run_dir, page)):
        generated_by = previous[1].get("generated_by", previous[0])
        record.write_text(json.dumps({"fingerprint": fingerprint, "generated_by": generated_by,
                                      "copied_from": previous[0]}), encoding="utf-8")
        (run_dir / "dbt" / DOCS_PAGE_SHA).write_text(_sha256(page), encoding="utf-8")
        log.info("dbt docs of the build: %s, the page of run %s (generated by run %s): what it "
                 "shows did not change", page, previous[0], generated_by)
        return page
    cmd = [dbt_executable(), "docs", "generate", "--static", "--no-compile",
           "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--target-path", str(target),
           "--log-path", str(run_dir / "dbt" / "logs")]
    with _dbt_in(build_db) as (cwd, env):
        done = subprocess.run(cmd, cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not page.exists():
        log.warning("dbt docs generate failed (exit %s); the report will have no dbt docs:\n%s",
                    done.returncode, "\n".join(done.stdout.splitlines()[-TAIL_LINES:]))
        return None
    (run_dir / "dbt" / DOCS_PAGE_SHA).write_text(_sha256(page), encoding="utf-8")
    if fingerprint:
        record.write_text(json.dumps({"fingerprint": fingerprint,
                                      "generated_by": run_dir.name}), encoding="utf-8")
    log.info("dbt docs of the build: %s (generated%s)", page,
             "" if previous is None else f"; what they show changed since run {previous[0]}")
    return page


def _failing_rows(build_db: Path, result: dict, manifest: dict) -> str:
    """Sample failing rows a test stored (``store_failures``), or the rows of a model that
    break a NOT NULL constraint of its contract (``files.null_rows_query``), naming the landing
    file and the release when they have them, so the message says which file broke the rule."""
    from pipeline.files import failing_rows, null_rows_query

    nulls = null_rows_query(result, {"nodes": manifest})
    if nulls is not None:
        rows = failing_rows(build_db, nulls)
        return f"\n    rows that break it: {rows}" if rows else ""
    relation = result.get("relation_name") or manifest.get(result["unique_id"], {}).get(
        "relation_name")
    if not relation or not result["unique_id"].startswith("test."):
        return ""
    rows = failing_rows(build_db, relation)
    return f"\n    failing rows ({relation}): {rows}" if rows else ""


def _run_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}
