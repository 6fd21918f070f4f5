"""Every check, by stage: the one list the transform's audits run.

Raw and source-specific mart checks come from each source folder's checks module
(``ingest.catalog.check_modules``); a check that names no sources blames those that declare the
module. The marts built from several sources have their checks here (``MART_MODULES``); they
blame the sources that feed the mart (``ingest.catalog.feeding``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from expectations import funding, readmission
from expectations.audit import Check
from ingest import catalog

MART_MODULES = (funding, readmission)


def raw_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the raw loads under audit (those of run ``run_id``), source folder by folder."""
    return [dataclasses.replace(check, sources=check.sources or names)
            for module, names in catalog.check_modules()
            for check in module.raw_checks(db, run_id)]


def mart_checks(db: Path, run_id: str | None = None) -> list[Check]:
    """Checks on the marts after dbt build: each source folder's, then the shared marts'."""
    checks = [dataclasses.replace(check, sources=check.sources or names)
              for module, names in catalog.check_modules()
              for check in module.mart_checks(db, run_id)]
    return checks + [dataclasses.replace(check, sources=check.sources or catalog.feeding(m.MART))
                     for m in MART_MODULES for check in m.mart_checks(db, run_id)]
