"""Every source's checks, by stage: the one list the transform's audits run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from expectations import eurostat, frontex, funding, readmission
from expectations.audit import Check

SOURCES = (frontex, eurostat, funding, readmission)


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw loads under audit (those of run ``run_id``), source by source."""
    return [dataclasses.replace(check, sources=check.sources or module.SOURCES)
            for module in SOURCES for check in module.raw_checks(db, run_id)]


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the marts after dbt build, source by source."""
    return [dataclasses.replace(check, sources=check.sources or module.SOURCES)
            for module in SOURCES for check in module.mart_checks(db, run_id)]
