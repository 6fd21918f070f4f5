"""The one place that knows file paths and endpoints.

Every setting comes from an environment variable (Airflow Variables can set them too, as
``AIRFLOW_VAR_*`` is not used here on purpose: the same code runs under ``make run``, pytest and
the docker-compose topology, and all three set plain environment variables).
Settings are read on every call, so a test or a runner can change them before a step runs.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "dbt_project" / "seeds"

FRONTEX_PAGE_URL = (
    "https://www.frontex.europa.eu/what-we-do/monitoring-and-risk-analysis/migratory-map/"
)
EUROSTAT_API_URL = "https://ec.europa.eu/eurostat/api/dissemination"
COHESION_URL = "https://cohesiondata.ec.europa.eu"
# Socrata's catalogue for domains outside North America (cohesiondata is hosted in the EU).
SOCRATA_CATALOG_URL = "https://api.eu.socrata.com/api/catalog/v1"
FTS_URL = ("https://ec.europa.eu/budget/financial-transparency-system/download/"
           "{year}_FTS_dataset_en.xlsx")


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Paths are absolute."""

    snapshot_dir: Path | None
    """``WH_SNAPSHOT_DIR``: replay recorded files laid out like ``../shared/data``; unset = live."""
    landing_dir: Path
    """``WH_LANDING_DIR``: immutable landed files and their manifest."""
    warehouse: Path
    """``WH_WAREHOUSE``: the published DuckDB file BI tools read."""
    runs_dir: Path
    """``WH_RUNS_DIR``: one folder per transform run (build DB, audit results, failure)."""
    frontex_page_url: str
    """``WH_FRONTEX_PAGE_URL``: the page that links the monthly Frontex workbook."""
    eurostat_api_url: str
    """``WH_EUROSTAT_API_URL``: base of Eurostat's dissemination API (table of contents,
    SDMX 2.1 structure and data)."""
    cohesion_url: str
    """``WH_COHESION_URL``: the Cohesion Open Data platform (Socrata)."""
    socrata_catalog_url: str
    """``WH_SOCRATA_CATALOG_URL``: Socrata's catalogue API, to find the payment datasets."""
    socrata_page_rows: int
    """``WH_SOCRATA_PAGE_ROWS``: rows per page of a Socrata query (explicit ``$limit``)."""
    socrata_max_pages: int
    """``WH_SOCRATA_MAX_PAGES``: a paged download asking for more pages than this fails (a
    server that ignores ``$offset`` would be paged forever)."""
    fts_url: str
    """``WH_FTS_URL``: the yearly Financial Transparency System workbook, ``{year}`` filled in."""
    fts_first_year: int
    """``WH_FTS_FIRST_YEAR``: the first year fetched (2021: the 2021-2027 budget)."""
    fts_max_download_bytes: int
    """``WH_FTS_MAX_DOWNLOAD_MB``: size cap of one FTS workbook (they are far larger than the
    other sources' files)."""
    curated_dir: Path | None
    """``WH_CURATED_DIR``: hand-curated files laid out like ``../shared/data`` (Eurostat's
    published headline figures, registries); defaults to ``WH_SNAPSHOT_DIR``. They have no live
    endpoint: unset in live mode, they are not loaded (with a warning)."""
    http_timeout_s: float
    """``WH_HTTP_TIMEOUT_S``: connect and read timeout of one request."""
    download_deadline_s: float
    """``WH_DOWNLOAD_DEADLINE_S``: the whole of one download, however slowly the bytes arrive
    (the timeout above is per read)."""
    http_retries: int
    """``WH_HTTP_RETRIES``: retries on connection errors, 429 and 5xx, with backoff."""
    max_download_bytes: int
    """``WH_MAX_DOWNLOAD_MB``: a download (or a replayed file) larger than this is refused."""
    max_xlsx_unpacked_bytes: int
    """``WH_MAX_XLSX_UNPACKED_MB``: a workbook whose parts unpack to more is refused before it
    is parsed (a small file can unpack to gigabytes)."""
    fts_max_xlsx_unpacked_bytes: int
    """``WH_FTS_MAX_XLSX_UNPACKED_MB``: the same for FTS workbooks (big, and streamed)."""
    http_max_retry_after_s: float
    """``WH_HTTP_MAX_RETRY_AFTER_S``: the longest ``Retry-After`` (429, 503) the client waits;
    a server asking for longer fails the download at once instead of being slept on."""
    max_page_bytes: int
    """``WH_MAX_PAGE_MB``: size cap of a page or JSON answer (the Frontex page, Eurostat's table
    of contents and structures, Socrata's metadata), checked while streaming."""
    page_deadline_s: float
    """``WH_PAGE_DEADLINE_S``: the whole of one page or JSON fetch, retries and their waits
    included (``WH_DOWNLOAD_DEADLINE_S`` is the same for files)."""


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return (Path(value) if value else default).expanduser().resolve()


def _optional_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else None


def settings() -> Settings:
    """Read the configuration from the environment."""
    snapshot = os.environ.get("WH_SNAPSHOT_DIR")
    warehouse = _path("WH_WAREHOUSE", REPO_ROOT / "warehouse" / "migration.duckdb")
    return Settings(
        snapshot_dir=Path(snapshot).expanduser().resolve() if snapshot else None,
        landing_dir=_path("WH_LANDING_DIR", REPO_ROOT / "landing"),
        warehouse=warehouse,
        runs_dir=_path("WH_RUNS_DIR", warehouse.parent / "runs"),
        frontex_page_url=os.environ.get("WH_FRONTEX_PAGE_URL", FRONTEX_PAGE_URL),
        eurostat_api_url=os.environ.get("WH_EUROSTAT_API_URL", EUROSTAT_API_URL).rstrip("/"),
        cohesion_url=os.environ.get("WH_COHESION_URL", COHESION_URL).rstrip("/"),
        socrata_catalog_url=os.environ.get("WH_SOCRATA_CATALOG_URL", SOCRATA_CATALOG_URL),
        socrata_page_rows=int(os.environ.get("WH_SOCRATA_PAGE_ROWS", "5000")),
        socrata_max_pages=int(os.environ.get("WH_SOCRATA_MAX_PAGES", "1000")),
        fts_url=os.environ.get("WH_FTS_URL", FTS_URL),
        fts_first_year=int(os.environ.get("WH_FTS_FIRST_YEAR", "2021")),
        fts_max_download_bytes=int(float(os.environ.get("WH_FTS_MAX_DOWNLOAD_MB", "500"))
                                   * 1024 * 1024),
        curated_dir=_optional_path("WH_CURATED_DIR") or (
            Path(snapshot).expanduser().resolve() if snapshot else None),
        http_timeout_s=float(os.environ.get("WH_HTTP_TIMEOUT_S", "60")),
        download_deadline_s=float(os.environ.get("WH_DOWNLOAD_DEADLINE_S", "900")),
        http_retries=int(os.environ.get("WH_HTTP_RETRIES", "4")),
        max_download_bytes=int(float(os.environ.get("WH_MAX_DOWNLOAD_MB", "50")) * 1024 * 1024),
        max_xlsx_unpacked_bytes=int(
            float(os.environ.get("WH_MAX_XLSX_UNPACKED_MB", "512")) * 1024 * 1024),
        fts_max_xlsx_unpacked_bytes=int(
            float(os.environ.get("WH_FTS_MAX_XLSX_UNPACKED_MB", "4096")) * 1024 * 1024),
        http_max_retry_after_s=limit("WH_HTTP_MAX_RETRY_AFTER_S", 120, "seconds", zero_ok=True),
        max_page_bytes=int(limit("WH_MAX_PAGE_MB", 20, "megabytes") * 1024 * 1024),
        page_deadline_s=limit("WH_PAGE_DEADLINE_S", 120, "seconds"),
    )


def limit(name: str, default: float, unit: str, zero_ok: bool = False) -> float:
    """A bound from the environment variable ``name`` (``default`` when unset or empty): a
    finite number above zero (or zero, with ``zero_ok``). Anything else fails naming the
    variable, so a typo never turns a bound off."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        expected = "zero or more" if zero_ok else "more than zero"
        raise ValueError(f"{name}={raw!r}: expected a number of {unit}, {expected} "
                         f"(default {default:g})")
    return value


def export_resolved(env: dict[str, str] | None = None) -> dict[str, str]:
    """Write the resolved settings back as absolute paths, so subprocesses (dbt, Airflow tasks)
    see the same files whatever their working directory."""
    env = os.environ if env is None else env
    s = settings()
    if s.snapshot_dir is not None:
        env["WH_SNAPSHOT_DIR"] = str(s.snapshot_dir)
    env["WH_LANDING_DIR"] = str(s.landing_dir)
    env["WH_WAREHOUSE"] = str(s.warehouse)
    env["WH_RUNS_DIR"] = str(s.runs_dir)
    if s.curated_dir is not None:
        env["WH_CURATED_DIR"] = str(s.curated_dir)
    return env

