"""What a source folder declares (``ingest/sources/<name>/__init__.py``): its sources
(``SourceSpec``), the Airflow DAG that lands them (``SourceDag``) and its settings
(``ingest.config.Setting``). The shared machinery reads these declarations through
``ingest.catalog``, which finds the folders; it never names a source."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ingest.landing import ManifestEntry

EVERY_RELEASE = "every release"
"""Each release is a slice of its own in the marts (monthly releases, dated snapshots)."""
NEWEST_VINTAGE = "newest vintage"
"""Every file is kept in raw; staging reads the newest vintage of each observation."""

LINEAGE_COLUMNS = """
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null"""


def _load(reference: str):
    module, attr = reference.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    """The ``source`` of its landing entries and of ``raw.load_log``."""
    title: str
    """What an analyst calls it (the report, ``make run``'s lines)."""
    factory: str
    """``module:Class`` of the object that discovers, fetches and parses its files."""
    raw_table: str
    columns: str
    """The raw table's own columns (DDL); the lineage columns are added to every table. The dbt
    source of the raw table declares the same columns (tests/test_source_layout.py)."""
    release_key: Callable[[ManifestEntry], tuple]
    """What identifies a release among the landed files: two files with the same key and other
    bytes are a correction and its original (the newest landed supersedes the others)."""
    release_key_doc: str
    load_mode: str
    dag_id: str
    """The source DAG that lands it (``SourceDag`` of the same folder; one DAG may land several
    sources)."""
    asset: str
    """Name of the Asset the DAG emits when it lands something new."""
    feeds: tuple[str, ...] = ()
    """The marts built from its rows: a failed check on one of them can blame its files
    (required by tests/test_source_layout.py: a source nobody reads is not published)."""
    checks: str | None = None
    """Module with ``raw_checks(db, run_id)`` and ``mart_checks(db, run_id)`` (its GX suites are
    in ``suites/`` beside it)."""
    enrich: str | None = None
    """``module:function(entry, parsed)`` adding columns the file alone does not give."""
    added_columns: tuple[str, ...] = ()
    """Columns added to an existing raw table since it was first published (migrations)."""
    url_settings: tuple[str, ...] = ()
    """Settings (``ingest.config``) holding its live URLs: their hosts are the only ones its
    requests and redirects may go to (``ingest.http.for_source``)."""
    refetch_landed: bool = False
    """Fetch a live URL again though it was landed: the publisher re-issues corrected files
    under the same name (the bytes are compared; the same bytes land nothing)."""
    completeness_sql: str | None = None
    """SQL on the warehouse giving a note when its newest load is a partial snapshot, else
    NULL (a row with NULL: complete)."""
    coverage_name: str | None = None
    """Its name in ``quality.current_coverage`` when not ``name``."""
    labels: str | None = None
    """``module:function(identifier) -> str | None``: the plain words an analyst reads for an
    identifier its rows carry (a dataset code, a measure, a funding source key), else None.
    The report shows an identifier nobody labels as code (``ingest.catalog.label``)."""

    def label(self, identifier: str) -> str | None:
        if identifier in (self.name, self.coverage_name, self.title):
            return self.title
        return None if self.labels is None else _load(self.labels)(identifier)

    def source(self):
        return _load(self.factory)()

    def enricher(self):
        return None if self.enrich is None else _load(self.enrich)

    def ddl(self) -> str:
        alters = "".join(f"\nalter table {self.raw_table} add column if not exists {c};"
                         for c in self.added_columns)
        return (f"create table if not exists {self.raw_table} ({self.columns.rstrip().rstrip(',')},"
                f"{LINEAGE_COLUMNS}\n);{alters}")

    def column_names(self) -> list[str]:
        return [line.split()[0] for line in self.columns.strip().splitlines() if line.strip()]


@dataclass(frozen=True)
class SourceDag:
    """The Airflow DAG of a source folder (built by ``dags/source_ingest.py``)."""

    dag_id: str
    task_id: str
    schedule: str
    doc: str
    tags: tuple[str, ...] = ()
    skip_when_nothing_new: bool = True
    """A run that lands nothing is skipped, so no Asset event starts a transform for nothing.
    Off for a source whose every run should start one (docs/decisions.md 11 and 21)."""
