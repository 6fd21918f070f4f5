"""How fresh each source is: the age of its newest landed release against the publisher's
release cadence (seed ``reference.source_cadence``: expected cadence, days after which a source is
late or stale, and a note on when the publisher releases). Measured from the landing and the
load log, so a report rebuilt a week later says how fresh the sources are then."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from ingest import catalog
from ingest.config import SEEDS_DIR, settings
from ingest.landing import LANDED, Landing
from pipeline.quality.store import has

CADENCE_SEED = SEEDS_DIR / "source_cadence.csv"


@dataclass(frozen=True)
class Cadence:
    source: str
    expected: str
    late_after: int | None
    stale_after: int | None
    note: str = ""


def cadences() -> dict[str, Cadence]:
    with CADENCE_SEED.open(encoding="utf-8", newline="") as fh:
        return {r["source"]: Cadence(r["source"], r["expected_cadence"],
                                     int(r["late_after_days"]) if r["late_after_days"] else None,
                                     int(r["stale_after_days"]) if r["stale_after_days"] else None,
                                     r.get("note") or "")
                for r in csv.DictReader(fh)}


def freshness(run_id: str, con: duckdb.DuckDBPyConnection) -> list[tuple]:
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
    # What a source's rows say of themselves (``SourceSpec``): a partial snapshot, and the
    # release date, which beats the manifest's (a replayed file has none).
    completeness, stated = {}, {}
    for spec in catalog.sources():
        table = spec.raw_table.split(".")
        if spec.completeness_sql:
            completeness[spec.name] = (con.execute(spec.completeness_sql).fetchone()[0]
                                       if has(con, *table) else None)
        if spec.stated_release_sql and has(con, *table):
            stated[spec.name] = con.execute(spec.stated_release_sql).fetchone()[0]
    rows = []
    for source, cadence in cadences().items():
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
