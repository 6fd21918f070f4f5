"""Airflow DAG cohesion_ingest: land snapshots of the AMIF, BMVI and ISF programme finances
from Cohesion Open Data when the platform updates them.

Runs weekly (the platform updates its 2021-2027 finance datasets as programmes are adopted and
amended); a dataset whose rows were not updated is not downloaded, and a run that lands nothing is
skipped (no Asset event)."""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag

cohesion_ingest = source_dag("cohesion_ingest", task_id="land_snapshots",
                             tags=["cohesion", "funding"], doc=__doc__)
