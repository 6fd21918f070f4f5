"""Every source's checks, by stage: the one list the transform's audits run."""
from __future__ import annotations

from pathlib import Path

from expectations import eurostat, frontex, funding, readmission
from expectations.audit import Check

SOURCES = (frontex, eurostat, funding, readmission)


def raw_checks(db: Path) -> list[Check]:
    """Checks on the raw loads under audit, source by source."""
    return [check for source in SOURCES for check in source.raw_checks(db)]


def mart_checks(db: Path) -> list[Check]:
    """Checks on the marts after dbt build, source by source."""
    return [check for source in SOURCES for check in source.mart_checks(db)]
