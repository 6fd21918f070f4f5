"""How fresh each source is: the age of its newest landed release against the publisher's
release cadence. The cadence is declared once, in each dbt source's YAML
(``dbt_project/models/staging/<source>/_<source>__sources.yml``: ``freshness`` warn_after = late,
error_after = stale, in days; ``loaded_at_field``, the date its rows stand for; ``meta``:
expected cadence, age basis, note), which ``dbt source freshness`` and the model
``reference.source_cadence`` read as well (docs/decisions.md 85). Measured from the landing and
the load log, so a report rebuilt a week later says how fresh the sources are then."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest import catalog
from ingest.config import settings
from ingest.landing import LANDED, Landing
from pipeline import dbt
from pipeline.quality.store import has


@dataclass(frozen=True)
class Cadence:
    source: str
    expected: str
    late_after: int | None
    stale_after: int | None
    note: str = ""
    age_basis: str = ""
    loaded_at_field: str | None = None
    """SQL over the raw table: the date its rows stand for (dbt's ``loaded_at_field``)."""
    dbt_source: str = ""


class CadenceError(ValueError):
    """A dbt source's freshness declared in a way the report cannot read (names the source)."""


def _days(source: str, freshness: dict, when: str) -> int | None:
    after = (freshness or {}).get(when) or {}
    if after.get("count") is None:
        return None
    if after.get("period") != "day":
        raise CadenceError(f"dbt source {source}: freshness {when} must be counted in days "
                           f"(period: day), found {after.get('period')!r}")
    return int(after["count"])


def cadences(project_dir: Path = dbt.PROJECT_DIR) -> dict[str, Cadence]:
    """Each landed source's cadence (by its ``ingest.catalog`` name), from the table config of
    the dbt source that reads its raw table."""
    declared = dbt.declared_sources(project_dir)
    out = {}
    for spec in catalog.sources():
        found = declared.get(spec.raw_table)
        meta = ((found or {}).get("config") or {}).get("meta") or {}
        if not meta.get("expected_cadence"):
            continue
        config = found["config"]
        out[spec.name] = Cadence(
            spec.name, meta["expected_cadence"],
            _days(found["source"], config.get("freshness"), "warn_after"),
            _days(found["source"], config.get("freshness"), "error_after"),
            meta.get("cadence_note") or "", meta.get("age_basis") or "",
            config.get("loaded_at_field"), found["source"])
    return out


def freshness(run_id: str, con: duckdb.DuckDBPyConnection,
              project_dir: Path = dbt.PROJECT_DIR) -> list[tuple]:
    declared = cadences(project_dir)
    landing = Landing(settings().landing_dir)
    today = datetime.now(timezone.utc).date()
    loads = {}
    if has(con, "raw", "load_log"):
        for source, latest, previous in con.execute("""
                with runs as (
                    select source, run_id, max(loaded_at) as loaded_at, sum(rows_loaded) as rows
                    from raw.load_log group by all),
                ranked as (
                    select *, row_number() over (partition by source order by loaded_at desc) as n
                    from runs)
                select source, max(rows) filter (where n = 1), max(rows) filter (where n = 2)
                from ranked group by source""").fetchall():
            loads[source] = (latest, previous)
    # What a source's rows say of themselves: a partial snapshot (``SourceSpec``), and the date
    # they stand for (its dbt source's ``loaded_at_field``, what ``dbt source freshness`` reads),
    # taken when the manifest states no release (a replayed file has none).
    completeness, stated = {}, {}
    for spec in catalog.sources():
        table = spec.raw_table.split(".")
        if spec.completeness_sql:
            completeness[spec.name] = (con.execute(spec.completeness_sql).fetchone()[0]
                                       if has(con, *table) else None)
        field = declared[spec.name].loaded_at_field if spec.name in declared else None
        if field and has(con, *table):
            stated[spec.name] = con.execute(
                f"select max({field})::date from {spec.raw_table}").fetchone()[0]
    rows = []
    for source, cadence in declared.items():
        entries = [e for e in landing.entries(source) if e.status == LANDED]
        newest = max(entries, key=lambda e: (e.release_date or "", e.fetched_at), default=None)
        fetched = max((datetime.fromisoformat(e.fetched_at) for e in entries), default=None)
        release = (newest.release if newest else None) or stated.get(source)
        basis = release or (fetched.date() if fetched else None)
        age = (today - basis).days if basis else None
        if not entries:
            status = "none landed"
        elif cadence.late_after is None:
            status = "curated"
        elif age is not None and cadence.stale_after is not None and age > cadence.stale_after:
            status = "stale"
        elif age is not None and age > cadence.late_after:
            status = "late"
        else:
            status = "fresh"
        latest, previous = loads.get(source, (None, None))
        rows.append((run_id, source, release, fetched, age, cadence.expected, status,
                     len(entries), latest, previous, completeness.get(source)))
    return rows
