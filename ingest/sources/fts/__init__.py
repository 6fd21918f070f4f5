"""Financial Transparency System (FTS): the Commission's yearly workbook of direct-management
commitments (migration and border budget lines).

Code: ``source.py`` (yearly workbooks, column aliases, budget lines), ``checks.py`` and
``suites/``; staging in ``dbt_project/models/staging/fts/``.
"""
from ingest.config import MEGABYTES, TEXT, YEAR, Setting
from ingest.spec import NEWEST_VINTAGE, SourceDag, SourceSpec

SETTINGS = (
    Setting("WH_FTS_URL", TEXT,
            "https://ec.europa.eu/budget/financial-transparency-system/download/"
            "{year}_FTS_dataset_en.xlsx",
            "the yearly Financial Transparency System workbook, {year} filled in"),
    Setting("WH_FTS_FIRST_YEAR", YEAR, "2021",
            "the first year fetched (2021: the 2021-2027 budget)"),
    Setting("WH_FTS_MAX_DOWNLOAD_MB", MEGABYTES, "500",
            "size cap of one FTS workbook (far larger than the other sources' files)",
            attr="fts_max_download_bytes"),
    Setting("WH_FTS_MAX_XLSX_UNPACKED_MB", MEGABYTES, "4096",
            "a FTS workbook whose parts unpack to more is refused (big, and streamed)",
            attr="fts_max_xlsx_unpacked_bytes"),
)

DAG = SourceDag(
    dag_id="fts_ingest", task_id="land_workbooks", schedule="@monthly", tags=("fts", "funding"),
    doc="""Land each year's Financial Transparency System workbook of direct-management
commitments.

Runs monthly: the Commission publishes a year's file in the following year, on no fixed date, so
a yearly run could land it a year late (issue 22). A year already landed is not downloaded
again, and a run that lands nothing is skipped (no Asset event).""")

SPECS = (
    SourceSpec(
        name="fts", title="Financial Transparency System", factory="ingest.sources.fts.source:FtsSource",
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
        enrich="ingest.sources.fts.source:add_year_column",
        release_key=lambda e: (e.dataset,),
        release_key_doc="the year of the workbook",
        load_mode=NEWEST_VINTAGE, dag_id="fts_ingest", asset="fts_landed",
        url_settings=("fts_url",), feeds=("fct_funding_disbursements",),
        checks="ingest.sources.fts.checks"),
)
