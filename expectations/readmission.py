"""Which frames the readmission mart's suite validates: the whole of
marts.fct_readmission_cooperation (countries x years: small). A failure blames the sources that
feed the mart (``ingest.catalog.feeding``)."""
from __future__ import annotations

from pathlib import Path

from ingest import duck

from expectations.audit import Check, count_rows

MART = "fct_readmission_cooperation"

# Returns of a year can exceed that year's orders to leave (people ordered earlier leave now):
# the recorded data's highest EU-total return rate is 11.3 (Qatar 2015: 170 returned, 15 ordered
# to leave). Beyond 20 a unit or mapping error is likelier than a real flow.
RETURN_RATE_MAX = 20


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    with duck.connect(str(db), read_only=True) as con:
        if not count_rows(con, "select count(*) from marts.fct_readmission_cooperation"):
            return []
    return [Check(
        "fct_readmission_cooperation_rows",
        """select country_code, year, readmission_instrument, art25a_status, return_rate,
                  orders_to_leave, returned
           from marts.fct_readmission_cooperation""",
        "marts.fct_readmission_cooperation", {"return_rate_max": RETURN_RATE_MAX},
        ("country_code", "year", "orders_to_leave", "returned"))]
