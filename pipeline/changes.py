"""What a transform run would change in the published warehouse, decided before building.

A run with nothing new is nearly free: when every landed, loadable file is already in the
published warehouse, no rejected file is still in it, and the code that builds the warehouse
(dbt project, audits, loaders) is the one that built it, the transform does not rebuild, audit
or publish; the run is recorded as ``unchanged`` and the report says "nothing new since
<publish>". Each publish records the code fingerprint in ``meta.publish_log``.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from ingest import duck
from ingest import catalog
from ingest.config import REPO_ROOT, settings
from ingest.landing import Landing

# What builds the warehouse: a change in any of these files (or in the pinned versions of dbt,
# DuckDB and GX) is a reason to rebuild.
CODE = ("dbt_project", "expectations", "ingest", "pipeline", "requirements.txt")
SKIPPED_DIRS = {"target", "logs", "dbt_packages", "__pycache__", ".user.yml"}
SKIPPED_FILES = {"report.py", "charts.py", "run.py", "airflow_setup.py", "summary.py",
                 "landed_files_cli.py"}
"""Code that reads the warehouse or runs the DAGs but does not build it (pipeline.report, charts,
run and the modules of make run: airflow_setup, summary, landed_files_cli)."""


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for top in CODE:
        root = REPO_ROOT / top
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            rel = path.relative_to(REPO_ROOT)
            if (not path.is_file() or SKIPPED_DIRS.intersection(rel.parts)
                    or path.name in SKIPPED_FILES or path.suffix == ".pyc"):
                continue
            digest.update(rel.as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Pending:
    reasons: list[str] = field(default_factory=list)
    last_run_id: str | None = None
    last_published_at: datetime | None = None
    full_refresh: list[str] = field(default_factory=list)
    """Why every dbt model must be rebuilt from the raw tables rather than from what the published
    warehouse holds (no reason: only what the new files change is built, decision 76)."""

    @property
    def nothing_new(self) -> bool:
        return not self.reasons

    def since(self) -> str:
        if self.last_published_at is None:
            return "the last publish"
        return f"the publish of run {self.last_run_id} ({self.last_published_at:%Y-%m-%d %H:%M} UTC)"


def pending() -> Pending:
    """Why the published warehouse would change if built now (no reasons: it would not)."""
    from pipeline.warehouse import published_path  # (it imports this module)

    s = settings()
    published = published_path()
    if not published.exists():
        return Pending(["no published warehouse yet"], full_refresh=["no published warehouse yet"])
    landing = Landing(s.landing_dir)
    with duck.connect(str(published), read_only=True) as con:
        tables = {t for (t,) in con.execute(
            "select schema_name || '.' || table_name from duckdb_tables()").fetchall()}
        if not {"raw.load_log", "meta.publish_log"} <= tables:
            why = "the published warehouse predates the publish log"
            return Pending([why], full_refresh=[why])
        loaded = {sha for (sha,) in con.execute("select sha256 from raw.load_log").fetchall()}
        columns = {c for (c,) in con.execute(
            """select column_name from duckdb_columns()
               where schema_name = 'meta' and table_name = 'publish_log'""").fetchall()}
        last = con.execute(
            f"""select run_id, published_at,
                       {'code_fingerprint' if 'code_fingerprint' in columns else 'null'}
                from meta.publish_log order by published_at desc limit 1""").fetchone()
    result = Pending(last_run_id=last[0] if last else None,
                     last_published_at=last[1] if last else None)
    new = [e for spec in catalog.SOURCES for e in landing.loadable(spec.name)
           if e.sha256 not in loaded]
    if new:
        result.reasons.append(f"{len(new)} landed file(s) not in the warehouse yet: "
                              + ", ".join(e.path for e in new[:5])
                              + (" ..." if len(new) > 5 else ""))
    gone = [e for e in landing.rejected() if e.sha256 in loaded]
    if gone:
        result.reasons.append(f"{len(gone)} rejected file(s) still in the warehouse: "
                              + ", ".join(e.path for e in gone[:5]))
        # Rows leave the facts: rare, and rebuilt whole rather than by a second, seldom-run path.
        result.full_refresh.append("files leave the warehouse")
    if last is None or last[2] != code_fingerprint():
        why = ("the code that builds the warehouse changed since it was published"
               if last is not None and last[2] else
               "no code fingerprint recorded for the published warehouse")
        result.reasons.append(why)
        result.full_refresh.append(why)
    return result
