"""Airflow DAGs that land the sources: one per source folder (``ingest/sources/<name>/``), with
the schedule, task and documentation the folder declares (``DAG`` in its ``__init__.py``).

Each DAG lands what its sources have new and emits its Asset; the transform DAG
(``warehouse_transform``) is scheduled on any of them. A new source folder is a new DAG here,
with no change to this file.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Airflow puts only the DAGs folder on sys.path: add the project root (no PYTHONPATH needed).
if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

from dags._common import source_dag  # noqa: E402
from ingest import catalog  # noqa: E402

for _declared in catalog.dags():
    globals()[_declared.dag_id] = source_dag(_declared)
