"""Which frames the readmission suites validate.

Raw: the newest readmission registry, with a cross-row order check computed in DuckDB (the
parser already refuses such a file; the audit proves the loaded table agrees). Marts: the whole
of marts.fct_readmission_cooperation (countries x years: small).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from expectations.audit import Check

# Returns of a year can exceed that year's orders to leave (people ordered earlier leave now):
# the recorded data's highest EU-total return rate is 11.3 (Qatar 2015: 170 returned, 15 ordered
# to leave). Beyond 20 a unit or mapping error is likelier than a real flow.
RETURN_RATE_MAX = 20

SOURCES = ("readmission_registry",)
"""The sources (ingest.catalog) these checks are about."""


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    try:
        return con.execute(sql).fetchone()[0]
    except duckdb.CatalogException:
        return 0


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    with duckdb.connect(str(db), read_only=True) as con:
        if not _count(con, "select count(*) from raw.readmission_events"):
            return []
    return [Check(
        "readmission_registry_raw",
        """with newest as (
               select * from raw.readmission_events
               where sha256 = (select arg_max(sha256, loaded_at) from raw.readmission_events)),
           signed as (
               select iso2, title, min(event_date) as signed_on from newest
               where instrument_type = 'eu_readmission_agreement' and status = 'signed'
               group by all)
           select newest.iso2, newest.instrument_type, newest.status, newest.event_date,
                  newest.event_date_precision, newest.effect, newest.source,
                  newest.status <> 'in_force' or signed.signed_on is null
                      or newest.event_date_last >= signed.signed_on as order_consistent,
                  newest.landing_file, newest.source_row
           from newest
           left join signed on signed.iso2 = newest.iso2 and signed.title = newest.title
               and newest.instrument_type = 'eu_readmission_agreement'""",
        "raw.readmission_events (newest version)", {},
        ("landing_file", "source_row", "iso2", "instrument_type", "status"))]


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    with duckdb.connect(str(db), read_only=True) as con:
        if not _count(con, "select count(*) from marts.fct_readmission_cooperation"):
            return []
    return [Check(
        "fct_readmission_cooperation_rows",
        """select country_code, year, readmission_instrument, art25a_status, return_rate,
                  orders_to_leave, returned
           from marts.fct_readmission_cooperation""",
        "marts.fct_readmission_cooperation", {"return_rate_max": RETURN_RATE_MAX},
        ("country_code", "year", "orders_to_leave", "returned"))]
