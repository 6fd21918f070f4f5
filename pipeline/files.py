"""The state of every landed file, and the rejection of files a run failed on.

States (docs/decisions.md, "Landing states"):

- ``landed``: in landing/, not loaded into a published warehouse yet (the next run loads it);
- ``loaded``: loaded into the build of a run that has not published (running, or failed on
  something that is not the file's fault: the next run loads it again);
- ``published``: its rows are in the published warehouse;
- ``superseded``: published, but a newer file of the same release (``ingest.catalog``:
  ``release_key``) was published after it: a correction. Its rows stay in raw and in the
  revision marts; the marts' current figures come from the correction;
- ``rejected``: failed parsing at landing, an audit or a dbt test, or rejected by hand; kept in
  landing/ for diagnosis, never loaded again until re-admitted (``python -m pipeline.run
  readmit FILE``).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from expectations.audit import AuditFailed
from ingest import duck
from ingest import catalog
from ingest.config import settings
from ingest.landing import (LOADED, PUBLISHED, READMITTED, REJECTED, SUPERSEDED, Landing,
                            ManifestEntry)
from ingest.load import LoadFailed

log = logging.getLogger(__name__)

LANDED_STATE = "landed"
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class FileState:
    entry: ManifestEntry
    state: str
    detail: str = ""

    @property
    def release(self) -> str:
        e = self.entry
        return e.release_date or (f"version {e.version}" if e.version else "undated")


class Rejected(Exception):
    """A transform step failed on data; the files it points at were rejected."""

    def __init__(self, cause: BaseException, rejected: list[ManifestEntry]):
        self.cause = cause
        self.rejected = rejected
        lines = [str(cause), "", "Rejected (kept in landing/ for diagnosis; the next run "
                 "publishes without them):"]
        for e in rejected:
            lines.append(f"  - {e.path} ({e.source}"
                         f"{' ' + e.dataset if e.dataset else ''}, release "
                         f"{e.release_date or e.version or 'undated'}, from {e.url})")
        lines.append("Re-admit a file once the cause is fixed (a seed, a rule): "
                     "python -m pipeline.run readmit FILE")
        super().__init__("\n".join(lines))


# --- which files a failure points at -----------------------------------------------------------

def loaded_in(landing: Landing, run_id: str) -> list[ManifestEntry]:
    """The files this run loaded into its build."""
    shas = {ev.sha256 for ev in landing.events() if ev.event == LOADED and ev.run_id == run_id}
    return [e for e in landing.entries() if e.sha256 in shas]


def reject_culprits(run_id: str, err: BaseException) -> list[ManifestEntry]:
    """Reject the files of this run that ``err`` points at, and return them. Only files this
    run loaded can be culprits: a failure on data that was published before (a changed rule or
    seed) rejects nothing, and the run fails until the rule is fixed."""
    landing = Landing(settings().landing_dir)
    new = {e.sha256: e for e in loaded_in(landing, run_id)}
    if isinstance(err, LoadFailed):
        culprits = [err.entry]
    elif isinstance(err, AuditFailed):
        # A check about given files blames them; a check over a whole table (totals, counts
        # against the previous load) blames what this run loaded of its sources.
        culprits = [e for e in new.values()
                    if any(e.path in c.files if c.files else e.source in c.sources
                           for c in err.failed)]
    elif type(err).__name__ == "DbtBuildFailed":
        culprits = _dbt_culprits(run_id, list(new.values()))
    else:
        culprits = []
    if not culprits:
        if new:
            log.warning("run %s failed, but the failure names none of the %d file(s) it loaded: "
                        "nothing rejected", run_id, len(new))
        return []
    reason = _first_line(err)
    landing.record(culprits, REJECTED, run_id, reason=f"run {run_id}: {reason}")
    return culprits


def _first_line(err: BaseException) -> str:
    """The first three lines of an error, as one line of at most 500 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:3])[:500] or type(err).__name__


def _dbt_culprits(run_id: str, new: list[ManifestEntry]) -> list[ManifestEntry]:
    """The files loaded this run upstream of each failing dbt test, or of each model whose rows
    broke a NOT NULL constraint of its contract; narrowed to the files its failing rows name
    when they have a ``landing_file`` or ``sha256`` column."""
    from pipeline import warehouse

    target = warehouse.run_dir(run_id) / "dbt" / "target"
    results, manifest = _json(target / "run_results.json"), _json(target / "manifest.json")
    if not results or not manifest or not new:
        return []
    culprits: dict[str, ManifestEntry] = {}
    for r in results.get("results", []):
        # Only a test that ran and found rows, or a model that wrote a NULL where its contract
        # has NOT NULL, is evidence against files: a test or model in error otherwise (its SQL
        # failed: a lock, a full disk, a bug) says nothing about the data.
        nulls = null_rows_query(r, manifest)
        if nulls is None and (r["status"] != "fail" or not r["unique_id"].startswith("test.")):
            continue
        tables = _upstream_raw_tables(r["unique_id"], manifest)
        suspects = [e for e in new if (s := catalog.BY_NAME.get(e.source)) is not None
                    and s.raw_table in tables]
        named = _files_named_by_failures(
            run_id, nulls or manifest["nodes"].get(r["unique_id"], {}).get("relation_name"))
        if named:
            suspects = [e for e in suspects if e.path in named or e.sha256 in named]
        culprits.update({e.sha256: e for e in suspects})
    return list(culprits.values())


NOT_NULL_FAILED = re.compile(r"NOT NULL constraint failed: [^\s.]+\.(\w+)")
"""DuckDB's error when a row breaks a NOT NULL constraint: ``... <table>.<column>``."""


def null_rows_query(result: dict, manifest: dict | None = None) -> str | None:
    """For a model that failed on a NOT NULL constraint of its contract (docs/decisions.md 90,
    92), the query of the rows that broke it: the model's compiled SQL where that column is
    NULL (the rows were never written, the insert failed). None for any other result."""
    if result.get("status") != "error" or not result["unique_id"].startswith("model."):
        return None
    found = NOT_NULL_FAILED.search(result.get("message") or "")
    code = result.get("compiled_code") or ((manifest or {}).get("nodes", {}).get(
        result["unique_id"], {}).get("compiled_code"))
    if not found or not code:
        return None
    return f'(select * from (\n{code}\n) as built where "{found.group(1)}" is null)'


def _upstream_raw_tables(node_id: str, manifest: dict) -> set[str]:
    seen, stack, tables = set(), [node_id], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in manifest.get("sources", {}):
            src = manifest["sources"][current]
            tables.add(f"{src['schema']}.{src.get('identifier') or src['name']}")
            continue
        node = manifest["nodes"].get(current) or {}
        stack += node.get("depends_on", {}).get("nodes", [])
    return tables


def _files_named_by_failures(run_id: str, relation: str | None) -> set[str]:
    """Landing files or sha256s in the failing rows a test stored (``store_failures``), or in
    the rows of a ``null_rows_query``."""
    from pipeline import warehouse

    if not relation:
        return set()
    try:
        with duck.connect(str(warehouse.build_db(run_id)), read_only=True) as con:
            columns = [d[0] for d in con.execute(f"select * from {relation} limit 0").description]
            wanted = [c for c in ("landing_file", "sha256") if c in columns]
            if not wanted:
                return set()
            found = set()
            for col in wanted:
                found |= {v for (v,) in con.execute(
                    f"select distinct {col} from {relation} where {col} is not null").fetchall()}
            return found
    except duckdb.Error as err:
        log.warning("could not read the failing rows of %s: %s", relation, err)
        return set()


def failing_rows(db: Path, relation: str, limit: int = SAMPLE_ROWS) -> str:
    """A few failing rows of a dbt test, as ``col=value`` text, for error messages."""
    try:
        with duck.connect(str(db), read_only=True) as con:
            cur = con.execute(f"select * from {relation} limit {limit}")
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
    except duckdb.Error:
        return ""
    return "; ".join(", ".join(f"{n}={v}" for n, v in zip(names, row)) for row in rows)


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# --- states -----------------------------------------------------------------------------------

def published_shas(warehouse: Path | None = None) -> set[str]:
    if warehouse is None:
        from pipeline.warehouse import published_path

        warehouse = published_path()
    path = warehouse
    if not path.exists():
        return set()
    try:
        with duck.connect(str(path), read_only=True) as con:
            has_log = con.execute("""select count(*) from information_schema.tables
                                     where table_schema = 'raw' and table_name = 'load_log'""")
            if not has_log.fetchone()[0]:
                return set()
            return {sha for (sha,) in con.execute("select sha256 from raw.load_log").fetchall()}
    except duckdb.Error as err:
        raise BrokenWarehouse(
            f"the published warehouse {path} cannot be read ({str(err).splitlines()[0][:200]}); "
            "the next transform run (make run) sets it aside and rebuilds it from landing/"
        ) from err


class BrokenWarehouse(RuntimeError):
    """The published file cannot be read: until the next transform run rebuilds it."""


def states(landing: Landing | None = None, warehouse: Path | None = None) -> list[FileState]:
    """Every landed file with its state, oldest landed first."""
    landing = landing or Landing(settings().landing_dir)
    by_sha = landing.events_by_sha()
    published = published_shas(warehouse)
    entries = sorted(landing.entries(), key=lambda e: e.fetched_at)
    # The newest published file of each release supersedes the older ones.
    newest: dict[tuple, ManifestEntry] = {}
    for e in entries:
        spec = catalog.BY_NAME.get(e.source)
        if spec is not None and e.sha256 in published:
            newest[(e.source, *spec.release_key(e))] = e
    out = []
    for e in entries:
        mine = by_sha.get(e.sha256, [])
        reason = landing.rejection(e, mine)
        if reason is not None:
            by = next((ev.by for ev in reversed(mine) if ev.event == REJECTED), "pipeline")
            where = "at landing" if not any(ev.event == REJECTED for ev in mine) else f"by {by}"
            out.append(FileState(e, REJECTED, f"{where}: {reason}"))
        elif e.sha256 in published:
            spec = catalog.BY_NAME.get(e.source)
            latest = newest.get((e.source, *spec.release_key(e))) if spec else None
            if latest is not None and latest.sha256 != e.sha256:
                out.append(FileState(e, SUPERSEDED, f"corrected by {latest.path}"))
            else:
                run = next((ev.run_id for ev in reversed(mine) if ev.event == PUBLISHED), None)
                out.append(FileState(e, PUBLISHED, f"run {run}" if run else ""))
        elif mine and mine[-1].event == LOADED:
            out.append(FileState(e, LOADED, f"into run {mine[-1].run_id}, not published"))
        else:
            readmitted = bool(mine) and mine[-1].event == READMITTED
            out.append(FileState(e, LANDED_STATE, "waiting for the next transform run"
                                 + (" (re-admitted by hand)" if readmitted else "")))
    return out


def reject_by_hand(name: str, reason: str) -> ManifestEntry:
    landing = Landing(settings().landing_dir)
    entry = landing.resolve(name)
    if landing.rejection(entry) is not None:
        raise ValueError(f"{entry.path} is already rejected: {landing.rejection(entry)}")
    landing.record([entry], REJECTED, reason=reason, by="hand")
    return entry


def readmit(name: str, accept_suspicious: bool = False) -> ManifestEntry:
    """Let a rejected file be loaded again. ``accept_suspicious``: the file was held as
    suspicious (a change too big to publish unseen) and is accepted on purpose: the checks
    marked suspicious pass for its sha256 from then on (a state event with the reason
    ``expectations.audit.ACCEPTED_SUSPICIOUS``)."""
    landing = Landing(settings().landing_dir)
    entry = landing.resolve(name)
    reason = landing.rejection(entry)
    if reason is None:
        raise ValueError(f"{entry.path} is not rejected: nothing to re-admit")
    if accept_suspicious:
        from expectations.audit import ACCEPTED_SUSPICIOUS

        if "suspicious:" not in reason:
            raise ValueError(f"{entry.path} was not held as suspicious ({reason[:200]}): "
                             "re-admit it without --accept-suspicious once the cause is fixed")
        landing.record([entry], READMITTED, reason=f"{ACCEPTED_SUSPICIOUS} by hand", by="hand")
    else:
        landing.record([entry], READMITTED, by="hand")
    return entry
