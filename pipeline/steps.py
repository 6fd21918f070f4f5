"""The steps of one transform run, each a plain function of the run id.

The transform DAG wires them in order: prepare -> load -> audit_raw -> dbt_build -> audit_marts
-> publish. Each step records a failure in ``<runs>/<run_id>/failure.json`` before raising, so
whoever ran the pipeline can be told which check failed, on which file, with which rows.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict

import duckdb

from expectations import audit, suites_by_stage
from ingest import cohesion, eurostat, frontex, fts, registries
from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import Landing
from ingest.load import load_eurostat, load_frontex, load_funding, load_registries
from ingest.source import land_new
from pipeline import dbt, quality, warehouse
from pipeline import report as quality_report

log = logging.getLogger(__name__)


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


def _land(*sources) -> list[dict]:
    """Land what each source has new; a source that fails does not stop the others, and the
    first data error is raised at the end (after the bad file is quarantined)."""
    landing = Landing(settings().landing_dir)
    entries, errors = [], []
    for source in sources:
        try:
            entries += land_new(source, landing)
        except DataError as err:
            errors.append(err)
    if errors:
        raise errors[0]
    return [asdict(e) for e in entries]


@reported_on_failure
@records_failure
def land_frontex(run_id: str) -> list[dict]:
    """Source step (Frontex DAG): land what is new. Raises ``DataError`` after quarantining a
    file that does not parse."""
    return _land(frontex.FrontexSource())


@reported_on_failure
@records_failure
def land_eurostat(run_id: str) -> list[dict]:
    """Source step (Eurostat DAG): land the datasets whose update date is new, and Eurostat's
    published headline figures."""
    return _land(eurostat.EurostatSource(), eurostat.EurostatPublishedSource())


@reported_on_failure
@records_failure
def land_cohesion(run_id: str) -> list[dict]:
    """Source step (Cohesion DAG): land a snapshot of each dataset whose rows were updated."""
    return _land(cohesion.CohesionSource())


@reported_on_failure
@records_failure
def land_fts(run_id: str) -> list[dict]:
    """Source step (FTS DAG): land the yearly workbooks not landed yet."""
    return _land(fts.FtsSource())


@reported_on_failure
@records_failure
def land_registries(run_id: str) -> list[dict]:
    """Source step (registries DAG): land a curated registry when its content changed."""
    return _land(registries.FundingRegistrySource(), registries.ReadmissionRegistrySource())


@records_failure
def prepare(run_id: str) -> str:
    return str(warehouse.prepare_build(run_id))


@records_failure
def load(run_id: str) -> dict:
    """Load what is landed and not loaded yet, from every source, into raw.*."""
    landing = Landing(settings().landing_dir)
    with duckdb.connect(str(warehouse.build_db(run_id))) as con:
        frontex_result = load_frontex(con, landing, run_id)
        eurostat_results = load_eurostat(con, landing, run_id)
        funding_results = load_funding(con, landing, run_id)
        registry_results = load_registries(con, landing, run_id)
    return {"frontex": asdict(frontex_result) if frontex_result else {},
            "eurostat": [asdict(r) for r in eurostat_results],
            "funding": [asdict(r) for r in funding_results],
            "registries": [asdict(r) for r in registry_results]}


@records_failure
def audit_raw(run_id: str) -> dict:
    db = warehouse.build_db(run_id)
    return audit.run_checks(db, suites_by_stage.raw_checks(db),
                            warehouse.run_dir(run_id) / "audit" / "raw", "raw",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "raw")


@records_failure
def dbt_build(run_id: str) -> dict:
    return dbt.build(warehouse.build_db(run_id), warehouse.run_dir(run_id))


@records_failure
def audit_marts(run_id: str) -> dict:
    db = warehouse.build_db(run_id)
    return audit.run_checks(db, suites_by_stage.mart_checks(db),
                            warehouse.run_dir(run_id) / "audit" / "marts", "marts",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "marts")


@records_failure
def publish(run_id: str) -> str:
    """Record the run in the quality history, copy the history into the build database, and
    swap it in as the published warehouse."""
    build = warehouse.build_db(run_id)
    quality.record_run(run_id, "published", measured_db=build,
                       measured_label=str(settings().warehouse))
    return str(warehouse.publish(run_id, before_checkpoint=quality.copy_into))


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
