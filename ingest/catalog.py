"""Every source, declared once.

A declaration says what the rest of the pipeline needs to know about a source: its name (the
``source`` of its landing entries), the module that finds, fetches and parses its files, the raw
table its rows go to and that table's columns, how a release is identified (files of the same
release with other bytes are corrections: the newest supersedes the others), the load mode, the
Airflow DAG and schedule that land it and the Asset that DAG emits.

Landing (``pipeline.steps.land``), the raw load (``ingest.load``), the DAGs (``dags/``),
``make run`` (``pipeline.run``) and the file states (``pipeline.files``) all read this list;
none of them names a source. Adding a source: see "Adding a source" in docs/architecture.md.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ingest.landing import ManifestEntry

EVERY_RELEASE = "every release"
"""Each release is a slice of its own in the marts (Frontex releases, Cohesion snapshots)."""
NEWEST_VINTAGE = "newest vintage"
"""Every file is kept in raw; staging reads the newest vintage of each observation."""

LINEAGE_COLUMNS = """
    source_row integer not null,
    landing_file varchar not null,
    sha256 varchar not null,
    release_date date,
    loaded_at timestamptz not null"""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    """The ``source`` of its landing entries and of ``raw.load_log``."""
    factory: str
    """``module:Class`` of the object that discovers, fetches and parses its files."""
    raw_table: str
    columns: str
    """The raw table's own columns (DDL); the lineage columns are added to every table."""
    release_key: Callable[[ManifestEntry], tuple]
    """What identifies a release among the landed files: two files with the same key and other
    bytes are a correction and its original (the newest landed supersedes the others)."""
    release_key_doc: str
    load_mode: str
    dag_id: str
    """The source DAG that lands it (several sources may share one DAG)."""
    schedule: str
    asset: str
    """Name of the Asset the DAG emits when it lands something new."""
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

    def source(self):
        module, cls = self.factory.split(":")
        return getattr(importlib.import_module(module), cls)()

    def enricher(self):
        if self.enrich is None:
            return None
        module, func = self.enrich.split(":")
        return getattr(importlib.import_module(module), func)

    def ddl(self) -> str:
        alters = "".join(f"\nalter table {self.raw_table} add column if not exists {c};"
                         for c in self.added_columns)
        return (f"create table if not exists {self.raw_table} ({self.columns.rstrip().rstrip(',')},"
                f"{LINEAGE_COLUMNS}\n);{alters}")


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        name="frontex", factory="ingest.frontex:FrontexSource",
        raw_table="raw.frontex_detections",
        columns="""
    route varchar not null,
    route_as_published varchar,
    border_type varchar not null,
    nationality varchar not null,
    month date not null,
    detections bigint not null,""",
        added_columns=("route_as_published varchar",),
        release_key=lambda e: (e.release_date,),
        release_key_doc="the release date stated in the workbook (FRAN data as of ...)",
        load_mode=EVERY_RELEASE, dag_id="frontex_ingest", schedule="@monthly",
        asset="frontex_landed", refetch_landed=True,
        url_settings=("frontex_page_url",)),
    SourceSpec(
        name="eurostat", factory="ingest.eurostat:EurostatSource",
        raw_table="raw.eurostat_observations",
        columns="""
    dataset varchar not null,
    source_format varchar not null,
    freq varchar not null,
    time_period varchar not null,
    geo varchar,
    geo_label varchar,
    citizen varchar,
    citizen_label varchar,
    dimensions varchar not null,
    dimension_labels varchar,
    obs_value double,
    obs_flag varchar,
    conf_status varchar,
    last_update timestamp,""",
        release_key=lambda e: (e.dataset, e.version or e.url),
        release_key_doc="dataset and the table of contents' update date (a replayed file: its name)",
        load_mode=NEWEST_VINTAGE, dag_id="eurostat_ingest", schedule="@monthly",
        asset="eurostat_landed", url_settings=("eurostat_api_url",)),
    SourceSpec(
        name="eurostat_published", factory="ingest.eurostat:EurostatPublishedSource",
        raw_table="raw.eurostat_published_figures",
        columns="""
    period varchar not null,
    geo varchar not null,
    citizen varchar not null,
    indicator varchar not null,
    value double not null,
    source_url varchar not null,
    source_title varchar,
    extracted_date_or_data_date varchar,
    note varchar,""",
        release_key=lambda e: (e.dataset,),
        release_key_doc="the curated file (each new version supersedes the last)",
        load_mode=NEWEST_VINTAGE, dag_id="eurostat_ingest", schedule="@monthly",
        asset="eurostat_landed"),
    SourceSpec(
        name="cohesion", factory="ingest.cohesion:CohesionSource",
        raw_table="raw.cohesion_records",
        columns="""
    dataset_id varchar not null,
    ms varchar,
    cci varchar,
    fund varchar not null,
    record varchar not null,
    is_complete_snapshot boolean not null,
    completeness_note varchar not null,
    snapshot_date date,
    snapshot_date_basis varchar not null,""",
        enrich="ingest.cohesion:add_snapshot_columns",
        release_key=lambda e: (e.dataset, e.release_date or e.url),
        release_key_doc="dataset and snapshot date (the platform's last update of the rows)",
        load_mode=EVERY_RELEASE, dag_id="cohesion_ingest", schedule="@weekly",
        asset="cohesion_landed", url_settings=("cohesion_url", "socrata_catalog_url")),
    SourceSpec(
        name="fts", factory="ingest.fts:FtsSource",
        raw_table="raw.fts_commitments",
        columns="""
    fts_year integer not null,
    year integer,
    beneficiary_name varchar,
    amount_eur double,
    budget_line_number varchar,
    budget_line_name varchar,
    programme_name varchar,
    subject varchar,
    beneficiary_country varchar,
    action_location varchar,
    commitment_total_eur double,
    commitment_reference varchar,
    responsible_department varchar,
    management_type varchar,
    funding_type varchar,
    fund varchar not null,
    matched_by varchar not null,""",
        enrich="ingest.fts:add_year_column",
        release_key=lambda e: (e.dataset,),
        release_key_doc="the year of the workbook",
        load_mode=NEWEST_VINTAGE, dag_id="fts_ingest", schedule="@yearly",
        asset="fts_landed", url_settings=("fts_url",)),
    SourceSpec(
        name="funding_registry", factory="ingest.registries:FundingRegistrySource",
        raw_table="raw.funding_commitments",
        columns="""
    as_of_date date not null,
    as_of_precision varchar not null,
    instrument varchar not null,
    fund_code varchar not null,
    action_title varchar not null,
    beneficiary_or_partner varchar,
    direction varchar not null,
    stage varchar not null,
    amount_eur double,
    period varchar,
    source varchar not null,
    quote varchar not null,
    note varchar,""",
        release_key=lambda e: (e.dataset,),
        release_key_doc="the registry (each new version supersedes the last)",
        load_mode=NEWEST_VINTAGE, dag_id="registries_ingest", schedule="@daily",
        asset="registries_landed"),
    SourceSpec(
        name="readmission_registry", factory="ingest.registries:ReadmissionRegistrySource",
        raw_table="raw.readmission_events",
        columns="""
    third_country varchar,
    iso2 varchar,
    instrument_type varchar not null,
    title varchar not null,
    status varchar not null,
    event_date date not null,
    event_date_precision varchar not null,
    event_date_last date not null,
    scope varchar not null,
    effect varchar not null,
    legal_reference varchar,
    source varchar not null,
    note varchar,
    has_caveat boolean not null,""",
        release_key=lambda e: (e.dataset,),
        release_key_doc="the registry (each new version supersedes the last)",
        load_mode=NEWEST_VINTAGE, dag_id="registries_ingest", schedule="@daily",
        asset="registries_landed"),
)

BY_NAME = {s.name: s for s in SOURCES}


def spec(name: str) -> SourceSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no source {name!r} in ingest/catalog.py (sources: "
                       f"{', '.join(BY_NAME)})") from None


def dag_ids() -> tuple[str, ...]:
    """The source DAGs, in declaration order."""
    return tuple(dict.fromkeys(s.dag_id for s in SOURCES))


def of_dag(dag_id: str) -> tuple[SourceSpec, ...]:
    return tuple(s for s in SOURCES if s.dag_id == dag_id)


def by_table(raw_table: str) -> SourceSpec | None:
    return next((s for s in SOURCES if s.raw_table == raw_table), None)
