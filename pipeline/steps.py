"""The steps of one transform run, each a plain function of the run id.

The transform DAG wires them in order: check_for_changes (nothing new: stop here) -> prepare ->
load -> audit_raw -> dbt_build -> audit_marts -> publish -> report. Each step records a failure in ``<runs>/<run_id>/failure.json`` before raising, so
whoever ran the pipeline can be told which check failed, on which file, with which rows.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict

import duckdb

from expectations import audit, suites_by_stage
from ingest import catalog, http
from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import LOADED, PUBLISHED, Landing
from ingest.load import load_all, unload_rejected
from ingest.source import land_new
from pipeline import changes, dbt, files, quality, warehouse
from pipeline import report as quality_report

log = logging.getLogger(__name__)

UNCHANGED = "unchanged"
"""Run state when nothing was new: nothing built, nothing published."""


def records_failure(step):
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        try:
            return step(run_id, *args, **kwargs)
        except Exception as err:
            path = warehouse.record_failure(run_id, step.__name__, err)
            log.error("step %s failed; details in %s; build database kept at %s",
                      step.__name__, path, warehouse.build_db(run_id))
            raise
    return wrapper


def rejects_culprits(step):
    """For transform steps: when a step fails on data (a file that does not load, an audit or a
    dbt test), reject the files of this run that the failure points at, so that they never block
    a later run: they stay in landing/ for diagnosis and the next run publishes without them.
    The error raised names them, with their release and how to re-admit them."""
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        try:
            return step(run_id, *args, **kwargs)
        except Exception as err:
            rejected = files.reject_culprits(run_id, err)
            if rejected:
                raise files.Rejected(err, rejected) from err
            raise
    return wrapper


def reported_on_failure(step):
    """For source steps: a failure also goes into the quality history and a (red) report, so
    analysts see a source that failed, not only a transform that did."""
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        try:
            return step(run_id, *args, **kwargs)
        except Exception:
            try:
                quality.record_run(run_id, "failed")
                quality_report.write(run_id)
            except Exception:  # the report must never hide the failure it reports
                log.exception("could not write the quality report of failed run %s", run_id)
            raise
    return wrapper


@reported_on_failure
@records_failure
def land(run_id: str, dag_id: str) -> list[dict]:
    """Source step (one per source DAG): land what each source of ``dag_id`` (``ingest.catalog``)
    has new. A source that fails does not stop the others; the first data error is raised at the
    end, after the bad file is kept in landing/ as rejected."""
    landing = Landing(settings().landing_dir)
    entries, errors = [], []
    for spec in catalog.of_dag(dag_id):
        try:
            with http.for_source(spec.name, spec.url_settings):
                entries += land_new(spec.source(), landing, spec.refetch_landed)
        except DataError as err:
            errors.append(err)
    if errors:
        raise errors[0]
    return [asdict(e) for e in entries]


@records_failure
def check_for_changes(run_id: str, rebuild: bool = False) -> bool:
    """First transform step: whether anything would change the published warehouse (a landed
    file not in it, a rejected file still in it, other code). When nothing would, the run is
    recorded as ``unchanged``, its report written ("nothing new since <publish>") and the rest of
    the transform skipped (False)."""
    warehouse.housekeeping(run_id)
    found = changes.pending()
    if rebuild:
        found.reasons.append("a rebuild was asked for")
    if found.reasons:
        log.info("building: %s", "; ".join(found.reasons))
        return True
    note = f"nothing new since {found.since()}, warehouse unchanged"
    log.info("%s: %s", run_id, note)
    quality.record_run(run_id, UNCHANGED, note=note)
    # Written here: the rest of the run, the report task included, is skipped at once.
    quality_report.write(run_id)
    return False


@records_failure
def prepare(run_id: str) -> str:
    return str(warehouse.prepare_build(run_id))


@records_failure
@rejects_culprits
def load(run_id: str) -> dict:
    """Load what is landed, not rejected and not loaded yet, from every source, into raw.*;
    remove from the build what was rejected since it was published."""
    landing = Landing(settings().landing_dir)
    entries = {e.path: e for e in landing.entries()}
    with duckdb.connect(str(warehouse.build_db(run_id))) as con:
        unloaded = unload_rejected(con, landing)
        results = load_all(con, landing, run_id, on_loaded=lambda done: landing.record(
            [entries[r.landing_file] for r in done], LOADED, run_id))
    by_source: dict[str, list] = {}
    for r in results:
        by_source.setdefault(r.source, []).append(asdict(r))
    return {"loaded": by_source, "unloaded": [e.path for e in unloaded]}


@records_failure
@rejects_culprits
def audit_raw(run_id: str) -> dict:
    db = warehouse.build_db(run_id)
    return audit.run_checks(db, suites_by_stage.raw_checks(db, run_id),
                            warehouse.run_dir(run_id) / "audit" / "raw", "raw",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "raw")


@records_failure
@rejects_culprits
def dbt_build(run_id: str) -> dict:
    return dbt.build(warehouse.build_db(run_id), warehouse.run_dir(run_id))


@records_failure
@rejects_culprits
def audit_marts(run_id: str) -> dict:
    db = warehouse.build_db(run_id)
    return audit.run_checks(db, suites_by_stage.mart_checks(db, run_id),
                            warehouse.run_dir(run_id) / "audit" / "marts", "marts",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "marts")


@records_failure
def publish(run_id: str) -> str:
    """Record the run in the quality history, copy the history into the build database, and
    swap it in as the published warehouse."""
    build = warehouse.build_db(run_id)
    quality.record_run(run_id, "published", measured_db=build,
                       measured_label=str(settings().warehouse))
    dbt.docs(build, warehouse.run_dir(run_id))
    published = warehouse.publish(run_id, before_checkpoint=quality.copy_into)
    landing = Landing(settings().landing_dir)
    landing.record(files.loaded_in(landing, run_id), PUBLISHED, run_id)
    return str(published)


class RunFailed(Exception):
    """The transform run failed before publishing; the report says where and why."""


def report(run_id: str) -> str:
    """Last task of every transform run, published or not: write the quality report. A run that
    failed is recorded as failed first (measured on its build database when there is one), and
    the task fails after writing the report, so the run stays failed in Airflow."""
    failure = warehouse.run_dir(run_id) / warehouse.FAILURE_FILE
    if failure.exists():
        quality.record_run(run_id, "failed", measured_db=warehouse.build_db(run_id))
    written = quality_report.write(run_id, _data_docs(run_id))
    if failure.exists():
        step = json.loads(failure.read_text())["step"]
        raise RunFailed(f"run {run_id} failed at step '{step}'; nothing was published; "
                        f"quality report: {written}")
    return str(written)


def _data_docs(run_id: str):
    docs = warehouse.run_dir(run_id) / "data_docs"
    return docs if docs.is_dir() else None
