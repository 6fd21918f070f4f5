"""Cohesion Open Data (Socrata): snapshots of the AMIF, BMVI and ISF programme finances.

Code: ``source.py`` (Socrata catalogue, metadata and paged CSV), ``checks.py`` and ``suites/``;
staging in ``dbt_project/models/staging/cohesion/``.
"""
from ingest.config import POSITIVE_COUNT, URL, URL_BASE, Setting
from ingest.spec import EVERY_RELEASE, SourceDag, SourceSpec

SETTINGS = (
    Setting("WH_COHESION_URL", URL_BASE, "https://cohesiondata.ec.europa.eu",
            "the Cohesion Open Data platform (Socrata)"),
    # Socrata's catalogue for domains outside North America (cohesiondata is hosted in the EU).
    Setting("WH_SOCRATA_CATALOG_URL", URL, "https://api.eu.socrata.com/api/catalog/v1",
            "Socrata's catalogue API, to find the payment datasets"),
    Setting("WH_SOCRATA_PAGE_ROWS", POSITIVE_COUNT, "5000",
            "rows per page of a Socrata query (explicit $limit)"),
    Setting("WH_SOCRATA_MAX_PAGES", POSITIVE_COUNT, "1000",
            "a paged download asking for more pages than this fails (a server that ignores "
            "$offset would be paged forever)"),
)

DAG = SourceDag(
    dag_id="cohesion_ingest", task_id="land_snapshots", schedule="@weekly",
    tags=("cohesion", "funding"),
    doc="""Land snapshots of the AMIF, BMVI and ISF programme finances from Cohesion Open Data.

Runs weekly (the platform updates its 2021-2027 finance datasets as programmes are adopted and
amended); a dataset whose rows were not updated is not downloaded, and a run that lands nothing is
skipped (no Asset event).""")

SPECS = (
    SourceSpec(
        name="cohesion", title="Cohesion Open Data",
        factory="ingest.sources.cohesion.source:CohesionSource",
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
        enrich="ingest.sources.cohesion.source:add_snapshot_columns",
        release_key=lambda e: (e.dataset, e.release_date or e.url),
        release_key_doc="dataset and snapshot date (the platform's last update of the rows)",
        load_mode=EVERY_RELEASE, dag_id="cohesion_ingest", asset="cohesion_landed",
        url_settings=("cohesion_url", "socrata_catalog_url"),
        feeds=("fct_funding_disbursements",), checks="ingest.sources.cohesion.checks",
        coverage_name="cohesion_open_data", labels="ingest.sources.cohesion.source:label",
        completeness_sql="""select coalesce('PARTIAL: ' || any_value(completeness_note)
                                                filter (where not is_complete_snapshot),
                                            'complete')
                            from raw.cohesion_records
                            where loaded_at = (select max(loaded_at) from raw.cohesion_records)"""),
)
