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
from pathlib import Path


from expectations import audit, suites_by_stage
from ingest import duck
from ingest import catalog, http
from ingest.config import settings
from ingest.errors import DataError
from ingest.landing import LOADED, PUBLISHED, Landing
from ingest.load import load_all, unload_rejected
from ingest.source import land_new
from pipeline import changes, dbt, files, lock, quality, scratch, warehouse
from pipeline import report as quality_report

log = logging.getLogger(__name__)

UNCHANGED = "unchanged"
"""Run state when nothing was new: nothing built, nothing published."""


def records_failure(step):
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        try:
            return step(run_id, *args, **kwargs)
        except (Exception, KeyboardInterrupt) as err:
            # Ctrl-C (SIGINT) too: unrecorded, the run's report and `make run` took the step's
            # task for done and said the last publish was this run's, exit 0 (decision 92).
            path = warehouse.record_failure(run_id, step.__name__, err)
            log.error("step %s failed; details in %s; build database kept at %s",
                      step.__name__, path, warehouse.build_db(run_id))
            raise
    return wrapper


def owns_warehouse(step):
    """For transform steps: run as the owner of the warehouse (``pipeline.lock``): wait for
    another run that owns it, or fail with ``AnotherRunBuilding`` (blaming no file). The step
    gets the lease as ``held`` and gives it up with ``held.release()``; a failure gives it up."""
    @functools.wraps(step)
    def wrapper(run_id: str, *args, **kwargs):
        with lock.step(run_id, step.__name__) as held:
            return step(run_id, *args, held=held, **kwargs)
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


LANDING_FILE = "landing.json"
"""In a source run's folder: what each of its sources landed, skipped and failed on."""


class SourcesFailed(DataError):
    """One or more sources of a source DAG failed while others landed their files."""


@scratch.in_task
@reported_on_failure
@records_failure
def land(run_id: str, dag_id: str) -> list[dict]:
    """Source step (one per source DAG): land what each source of ``dag_id`` (``ingest.catalog``)
    has new. A source that fails (a bad file, quarantined; the network) does not stop the others:
    what they found is landed, and the failures are written to ``<runs>/<run_id>/landing.json``
    for ``check_landing``. When nothing at all was landed, the first failure is raised here."""
    landing = Landing(settings().landing_dir)
    entries: list = []
    skipped: list = []
    errors: list[tuple[str, Exception]] = []
    for spec in catalog.of_dag(dag_id):
        try:
            with http.for_source(spec.name, spec.url_settings):
                entries += land_new(spec.source(), landing, spec.refetch_landed, skipped=skipped)
        except Exception as err:  # noqa: BLE001 - every source gets its turn; raised below
            log.error("source %s failed: %s: %s", spec.name, type(err).__name__, err)
            errors.append((spec.name, err))
    outcome = {"dag_id": dag_id,
               "landed": [e.path for e in entries],
               "skipped_quarantined": [{"path": e.path, "error": e.error} for e in skipped],
               "failed": [{"source": name, "error_type": type(err).__name__,
                           "message": str(err)} for name, err in errors]}
    folder = warehouse.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LANDING_FILE).write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    if errors and not entries:
        raise errors[0][1]
    return [asdict(e) for e in entries]


def landing_outcome(run_id: str) -> dict | None:
    path = warehouse.run_dir(run_id) / LANDING_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


@scratch.in_task
def check_landing(run_id: str) -> None:
    """Source step after ``land`` (whatever it did): fail the source run when a source failed
    while others landed files (their Asset event is out, so the transform builds them), naming
    each failure. When ``land`` itself failed, fail again without recording anything (that
    failure, its record and its report are the run's; a DAG run whose last task succeeded
    would count as a success)."""
    outcome = landing_outcome(run_id)
    failure = warehouse.run_dir(run_id) / warehouse.FAILURE_FILE
    if failure.exists():
        step = json.loads(failure.read_text())["step"]
        raise SourcesFailed(run_id, "every source lands", f"step {step} failed (see its log)")
    if outcome is not None and outcome["failed"]:
        landing_failed(run_id, outcome)


@reported_on_failure
@records_failure
def landing_failed(run_id: str, outcome: dict) -> None:
    lines = [f"{f['source']}: {f['message']}" for f in outcome["failed"]]
    raise SourcesFailed(outcome["dag_id"], "every source lands",
                        f"{len(lines)} source(s) failed while {len(outcome['landed'])} file(s) "
                        "of the others were landed (the transform builds them):\n  "
                        + "\n  ".join(lines))


@scratch.in_task
@records_failure
@owns_warehouse
def check_for_changes(run_id: str, rebuild: bool = False, held=None) -> bool:
    """First transform step: whether anything would change the published warehouse (a landed
    file not in it, a rejected file still in it, other code). When nothing would, the run is
    recorded as ``unchanged``, its report written ("nothing new since <publish>") and the rest of
    the transform skipped (False)."""
    warehouse.housekeeping(run_id)
    set_aside = warehouse.set_aside_if_broken()
    quality.correct_unpublished(warehouse.published_path())
    if set_aside:
        folder = warehouse.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / warehouse.NOTICE_FILE).write_text(set_aside + "\n", encoding="utf-8")
    found = changes.pending()
    if set_aside:
        found.reasons.insert(0, set_aside)
        found.full_refresh.insert(0, "the published warehouse was set aside")
    if rebuild:
        found.reasons.append("a rebuild was asked for")
        found.full_refresh.append("a rebuild was asked for (--rebuild)")
    if found.reasons:
        log.info("building: %s", "; ".join(found.reasons))
        warehouse.write_build_mode(run_id, found.full_refresh)
        return True
    _record_unchanged(run_id, found, held)
    return False


def _record_unchanged(run_id: str, found: changes.Pending, held) -> str:
    note = f"nothing new since {found.since()}, warehouse unchanged"
    log.info("%s: %s", run_id, note)
    held.release()
    quality.record_run(run_id, UNCHANGED, note=note)
    # Written here: the rest of the run, the report task included, is skipped at once.
    quality_report.write(run_id)
    return note


@scratch.in_task
@owns_warehouse
def unchanged_before_airflow(run_id: str, held=None) -> str | None:
    """``make run``'s check before it starts Airflow (``pipeline.run``), once every source said
    it has nothing new: what ``check_for_changes`` does for a run with nothing new (housekeeping,
    the quality history corrected, the run recorded ``unchanged`` and its report written),
    returning its note; or None, having changed nothing but housekeeping, when the transform
    must decide (the published file is missing or broken: ``check_for_changes`` sets it aside
    and says so; or something would change the warehouse). The lease is given up either way."""
    warehouse.housekeeping(run_id)
    if warehouse.published_problem() is not None:
        held.release()
        return None
    quality.correct_unpublished(warehouse.published_path())
    found = changes.pending()
    if found.reasons:
        log.info("not unchanged: %s", "; ".join(found.reasons))
        held.release()
        return None
    return _record_unchanged(run_id, found, held)


@scratch.in_task
@records_failure
@owns_warehouse
def prepare(run_id: str, held=None) -> str:
    return str(warehouse.prepare_build(run_id))


@scratch.in_task
@records_failure
@owns_warehouse
@rejects_culprits
def load(run_id: str, held=None) -> dict:
    """Load what is landed, not rejected and not loaded yet, from every source, into raw.*;
    remove from the build what was rejected since it was published."""
    landing = Landing(settings().landing_dir)
    entries = {e.path: e for e in landing.entries()}
    with duck.connect(str(warehouse.build_db(run_id))) as con:
        unloaded = unload_rejected(con, landing)
        results = load_all(con, landing, run_id, on_loaded=lambda done: landing.record(
            [entries[r.landing_file] for r in done], LOADED, run_id))
    by_source: dict[str, list] = {}
    for r in results:
        by_source.setdefault(r.source, []).append(asdict(r))
    return {"loaded": by_source, "unloaded": [e.path for e in unloaded]}


def _one_instance(db: Path):
    """A read-only connection held while the audit's checks are built: each source's checks
    open the build database to see what is there, and an open file is opened again in the same
    process without reading it from disk (about 60 ms an open at 10x, a dozen opens an audit;
    decision 88). Closed before the audit runs, which writes its memo into the database."""
    return duck.connect(str(db), read_only=True)


@scratch.in_task
@records_failure
@owns_warehouse
@rejects_culprits
def audit_raw(run_id: str, held=None) -> dict:
    db = warehouse.build_db(run_id)
    with _one_instance(db):
        checks = suites_by_stage.raw_checks(db, run_id)
    return audit.run_checks(db, checks,
                            warehouse.run_dir(run_id) / "audit" / "raw", "raw",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "raw",
                            memo_run_id=run_id)


@scratch.in_task
@records_failure
@owns_warehouse
@rejects_culprits
def dbt_build(run_id: str, held=None) -> dict:
    """``dbt build``: incremental (the facts rebuild only the releases whose files changed) unless
    check_for_changes found a reason to rebuild every model (``--full-refresh``). Only a full
    refresh runs dbt's unit tests: any other build runs the code of the last publish."""
    db = warehouse.build_db(run_id)
    full, why = warehouse.build_mode(run_id)
    if full:
        log.info("dbt build --full-refresh: %s", why)
        return dbt.build(db, warehouse.run_dir(run_id), ["--full-refresh"])
    # Unit tests check the SQL on fixed rows: a build that is not a full refresh runs the code
    # that built the published warehouse (check_for_changes), whose unit tests passed then.
    skip_unit = ["--exclude-resource-type", "unit_test"]
    with duck.connect(str(db), read_only=True) as con:
        loaded = {s for (s,) in con.execute(
            "select distinct source from raw.load_log where run_id = ?", [run_id]).fetchall()}
    tables = {catalog.BY_NAME[s].raw_table for s in loaded if s in catalog.BY_NAME}
    selectors = dbt.source_selectors(tables) if len(tables) == len(loaded) else None
    if selectors is None:
        log.info("dbt build, every model (incremental facts): this run loaded %s, not all of "
                 "them dbt sources", ", ".join(sorted(loaded)) or "nothing")
        return dbt.build(db, warehouse.run_dir(run_id), skip_unit)
    # What no new file feeds is as it was published: the build database is a copy of it.
    select = [*selectors, f"tag:{dbt.EVERY_RUN_TAG}"]
    log.info("dbt build of what this run's files feed (%s), incremental facts: --select %s",
             ", ".join(sorted(loaded)) or "no source", " ".join(select))
    return dbt.build(db, warehouse.run_dir(run_id), ["--select", *select, *skip_unit])


@scratch.in_task
@records_failure
@owns_warehouse
@rejects_culprits
def audit_marts(run_id: str, held=None) -> dict:
    db = warehouse.build_db(run_id)
    with _one_instance(db):
        checks = suites_by_stage.mart_checks(db, run_id)
    return audit.run_checks(db, checks,
                            warehouse.run_dir(run_id) / "audit" / "marts", "marts",
                            docs_dir=warehouse.run_dir(run_id) / "data_docs" / "marts",
                            memo_run_id=run_id)


@scratch.in_task
@records_failure
@owns_warehouse
def publish(run_id: str, held=None) -> str:
    """Record the run in the quality history, copy the history into the build database, and
    swap it in as the published warehouse."""
    build = warehouse.build_db(run_id)
    notice = warehouse.run_dir(run_id) / warehouse.NOTICE_FILE
    quality.record_run(run_id, "published", measured_db=build,
                       measured_label=warehouse.published_label(run_id),
                       note=notice.read_text(encoding="utf-8").strip() if notice.exists() else None)
    with duck.connect(str(build)) as con:
        quality.shape_into(con)  # the docs show the history tables that publish fills
    dbt.docs(build, warehouse.run_dir(run_id))
    published = warehouse.publish(run_id, before_checkpoint=quality.copy_into)
    landing = Landing(settings().landing_dir)
    landing.record(files.loaded_in(landing, run_id), PUBLISHED, run_id)
    held.release()
    return str(published)


class RunFailed(Exception):
    """The transform run failed before publishing; the report says where and why."""


@scratch.in_task
def report(run_id: str) -> str:
    """Last task of every transform run, published or not: write the quality report. A run that
    failed is recorded as failed first (measured on its build database when there is one), and
    the task fails after writing the report, so the run stays failed in Airflow."""
    lock.release(run_id)  # when a step could not (it normally gives the lease up itself)
    failure = warehouse.run_dir(run_id) / warehouse.FAILURE_FILE
    record = json.loads(failure.read_text()) if failure.exists() else None
    if record is not None and record["error_type"] == lock.AnotherRunBuilding.__name__:
        # This run built nothing and owns nothing: the run that owns the warehouse reports.
        raise RunFailed(f"run {run_id} did not start: {record['message']}")
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
