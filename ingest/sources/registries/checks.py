"""Which frames the registry suites validate: the newest version of each registry, the
readmission one with a cross-row order check computed in DuckDB (the parser already refuses such
a file; the audit proves the loaded table agrees)."""
from __future__ import annotations

from pathlib import Path

from ingest import duck

from expectations.audit import Check, count_rows, seed_parameters


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    with duck.connect(str(db), read_only=True) as con:
        funding = count_rows(con, "select count(*) from raw.funding_commitments")
        readmission = count_rows(con, "select count(*) from raw.readmission_events")
    checks = []
    if funding:
        checks.append(Check(
            "funding_registry_raw",
            """select as_of_date, fund_code, action_title, stage, amount_eur, source, quote,
                      landing_file, source_row
               from raw.funding_commitments
               where sha256 = (select arg_max(sha256, loaded_at) from raw.funding_commitments)""",
            "raw.funding_commitments (newest version)", seed_parameters(),
            ("landing_file", "source_row", "action_title"), sources=("funding_registry",)))
    if readmission:
        checks.append(Check(
            "readmission_registry_raw",
            """with newest as (
                   select * from raw.readmission_events
                   where sha256 = (select arg_max(sha256, loaded_at)
                                   from raw.readmission_events)),
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
            ("landing_file", "source_row", "iso2", "instrument_type", "status"),
            sources=("readmission_registry",)))
    return checks


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    return []
