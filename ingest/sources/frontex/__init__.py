"""Frontex: monthly detections of irregular border crossings (one workbook per release).

Code: ``source.py`` (the migratory-map page, the workbook and its layouts), ``checks.py`` and
``suites/`` (raw completeness and the border-crossings mart). Layout and route aliases are seeds
(``dbt_project/seeds/frontex_*``: data BI tools see too); staging in
``dbt_project/models/staging/frontex/``.
"""
from ingest.config import DAYS, URL, Setting
from ingest.spec import EVERY_RELEASE, SourceDag, SourceSpec

PAGE_URL = ("https://www.frontex.europa.eu/what-we-do/monitoring-and-risk-analysis/"
            "migratory-map/")

SETTINGS = (
    Setting("WH_FRONTEX_PAGE_URL", URL, PAGE_URL,
            "the page that links the monthly Frontex workbook"),
    Setting("WH_FRONTEX_RELEASE_LAG_DAYS", DAYS, "150",
            "a Frontex release dated more than this after the first day of its newest month is "
            "refused (a stale or mislabelled file)"),
)

DAG = SourceDag(
    dag_id="frontex_ingest", task_id="land_workbook", schedule="@weekly", tags=("frontex",),
    skip_when_nothing_new=False,
    doc="""Land the monthly Frontex workbook when a new one is published.

Runs weekly: Frontex publishes in the first half of the month, on no fixed day, so a monthly
run on the 1st landed each release two to four weeks late (issue 22); a week's check that finds
the same bytes lands nothing. Emits the ``frontex_landed`` Asset on every run; the transform then
finds nothing new and builds nothing (decisions 11, 21, 74).""")

SPECS = (
    SourceSpec(
        name="frontex", title="Frontex", factory="ingest.sources.frontex.source:FrontexSource",
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
        load_mode=EVERY_RELEASE, dag_id="frontex_ingest", asset="frontex_landed",
        refetch_landed=True, url_settings=("frontex_page_url",),
        feeds=("fct_border_crossings",), checks="ingest.sources.frontex.checks"),
)
