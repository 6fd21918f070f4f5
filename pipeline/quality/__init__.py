"""The quality history: what every transform run checked and found, published or not.

- ``store``: the history file and its tables, written atomically, copied into each publish;
- ``record``: one run's outcome, checks and measures into the store;
- ``freshness``: each source's age against its publisher's cadence;
- ``compare``: what changed between a run and the publish before it.
The measures themselves are dbt models (``dbt_project/models/quality``)."""
from pipeline.quality.freshness import Cadence, cadences, freshness
from pipeline.quality.record import measure, record_run
from pipeline.quality.store import (DDL, TABLES, copy_into, correct_unpublished, has,
                                    latest_run_id, set_report_path,
                                    shape_into, store_path, write)

__all__ = ["Cadence", "DDL", "TABLES", "cadences", "copy_into", "correct_unpublished",
           "freshness", "has",
           "latest_run_id", "measure", "record_run", "set_report_path", "shape_into", "store_path",
           "write"]
