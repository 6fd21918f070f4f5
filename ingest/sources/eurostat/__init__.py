"""Eurostat: returns of third-country nationals (enforcement datasets, SDMX API) and Eurostat's
own published headline figures (curated, to reconcile against).

Code: ``source.py`` (table of contents, SDMX structure and data), ``formats.py`` (every export
format read the same way), ``sdmx_csv_duckdb.py`` (DuckDB's reader for SDMX-CSV 1.0 with codes),
``codes.py`` (code lists and labels), ``checks.py`` and ``suites/``; staging in
``dbt_project/models/staging/eurostat/``.
"""
from ingest.config import URL_BASE, Setting
from ingest.spec import NEWEST_VINTAGE, SourceDag, SourceSpec

SETTINGS = (
    Setting("WH_EUROSTAT_API_URL", URL_BASE, "https://ec.europa.eu/eurostat/api/dissemination",
            "base of Eurostat's dissemination API (table of contents, SDMX 2.1 structure and "
            "data)"),
)

DAG = SourceDag(
    dag_id="eurostat_ingest", task_id="land_datasets", schedule="@monthly", tags=("eurostat",),
    doc="""Land Eurostat's returns datasets (and context) when updated.

Runs monthly: Eurostat publishes the annual return statistics once a year and the quarterly ones
once a quarter, and the table of contents says which datasets changed, so a month without updates
downloads nothing but the table of contents. When nothing new was landed the task is skipped, so
no Asset event starts a transform for nothing. Trigger it by hand to check sooner.""")

CHECKS = "ingest.sources.eurostat.checks"

SPECS = (
    SourceSpec(
        name="eurostat", title="Eurostat",
        factory="ingest.sources.eurostat.source:EurostatSource",
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
        load_mode=NEWEST_VINTAGE, dag_id="eurostat_ingest", asset="eurostat_landed",
        url_settings=("eurostat_api_url",), labels="ingest.sources.eurostat.codes:label",
        feeds=("fct_returns",), checks=CHECKS),
    SourceSpec(
        name="eurostat_published", title="Eurostat published figures",
        factory="ingest.sources.eurostat.source:EurostatPublishedSource",
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
        load_mode=NEWEST_VINTAGE, dag_id="eurostat_ingest", asset="eurostat_landed",
        feeds=("fct_returns",), checks=CHECKS),
)
