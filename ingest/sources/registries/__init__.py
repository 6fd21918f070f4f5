"""Curated registries: funding commitments and readmission cooperation events, hand-compiled
with a citation on every row (no live endpoint: read from ``WH_CURATED_DIR``).

Code: ``source.py`` (both registries, validated row by row), ``checks.py`` and ``suites/``;
staging in ``dbt_project/models/staging/registries/``.
"""
from ingest.spec import NEWEST_VINTAGE, SourceDag, SourceSpec

DAG = SourceDag(
    dag_id="registries_ingest", task_id="land_registries", schedule="@daily",
    tags=("registries", "funding"),
    doc="""Land a curated registry when its content changes.

Runs daily and compares the file's sha256 with what is landed: an unchanged registry lands
nothing and the run is skipped (no Asset event); an edit lands a new version, validated row by
row (a broken row is quarantined and fails the task, naming the file, the row and the rule).""")

CHECKS = "ingest.sources.registries.checks"

SPECS = (
    SourceSpec(
        name="funding_registry", title="Funding registry (curated)",
        factory="ingest.sources.registries.source:FundingRegistrySource",
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
        load_mode=NEWEST_VINTAGE, dag_id="registries_ingest", asset="registries_landed",
        feeds=("fct_funding_disbursements",), checks=CHECKS, coverage_name="registry",
        labels="ingest.sources.registries.source:label"),
    SourceSpec(
        name="readmission_registry", title="Readmission registry (curated)",
        factory="ingest.sources.registries.source:ReadmissionRegistrySource",
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
        load_mode=NEWEST_VINTAGE, dag_id="registries_ingest", asset="registries_landed",
        feeds=("fct_readmission_cooperation",), checks=CHECKS),
)
