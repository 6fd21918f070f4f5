"""Which frames the funding mart's suites validate: the whole of marts.fct_funding_disbursements
(small: programmes and actions, not transactions). Its sources' raw checks are in their folders
(``ingest/sources/*/checks.py``); a failure here blames the sources that feed the mart
(``ingest.catalog.feeding``)."""
from __future__ import annotations

from pathlib import Path

from ingest import duck

from expectations.audit import Check, count_rows, seed_parameters

MART = "fct_funding_disbursements"


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on marts.fct_funding_disbursements (none when it is empty)."""
    with duck.connect(str(db), read_only=True) as con:
        if not count_rows(con, "select count(*) from marts.fct_funding_disbursements"):
            return []
    return [
        Check("fct_funding_disbursements_rows",
              """select fund_code, programme_or_action_key, country_label, stage, as_of_date,
                        source, amount_eur, is_complete_snapshot,
                        source not like 'registry:%'
                            or (citation_source is not null and citation_quote is not null)
                            as citation_present
                 from marts.fct_funding_disbursements""",
              "marts.fct_funding_disbursements", seed_parameters(),
              ("source", "fund_code", "programme_or_action_key", "stage", "as_of_date")),
        Check("fct_funding_paid_within_committed",
              """with latest as (
                     select fund_code, programme_or_action_key, country_label, stage, stage_group,
                            arg_max(amount_eur, as_of_date) as amount_eur
                     from marts.fct_funding_disbursements group by all)
                 select fund_code, programme_or_action_key, country_label,
                        max(amount_eur) filter (where stage = 'paid') as paid_eur,
                        max(amount_eur) filter (where stage_group = 'commitment')
                            as committed_eur
                 from latest group by all
                 having max(amount_eur) filter (where stage = 'paid') is not null""",
              "marts.fct_funding_disbursements, paid against committed per action", {},
              ("fund_code", "programme_or_action_key", "country_label")),
    ]
