"""Run the whole pipeline through Airflow, on its embedded SQLite metadata database.

This is what ``make run`` calls. It runs the real DAGs with ``dag.test()``: first the source
DAGs (those of ingest/catalog.py: find, fetch, validate and land new files), then the transform
DAG (``warehouse_transform``: build, load, audit, dbt build, audit, publish). No scheduler or
webserver is started. When nothing is new since the last publish (no new landed file, no
rejection, the same code), the transform builds nothing and the run ends with "nothing new since
<publish>, warehouse unchanged" (exit 0); ``--rebuild`` builds anyway. Every source is asked
first, before Airflow starts (``before_airflow``): only the DAGs of the sources with something
new run, then the transform; when none has anything new and the transform would find nothing,
no DAG is started at all (docs/decisions.md 74 and 78). At the end it prints where
the published warehouse is and a summary, or, when a step failed, which check failed on which
file, and exits non-zero. A landed file that fails an audit or a dbt test is rejected: it stays
in landing/, and the next run publishes without it.

Commands for landed files (no Airflow needed):
  python -m pipeline.run files [--source S] [--state STATE]
                                  every landed file with its state: landed, loaded, published,
                                  superseded (by a correction of the same release), rejected
  python -m pipeline.run reject FILE --reason "..."
                                  reject a file by hand (it leaves the warehouse at the next run)
  python -m pipeline.run readmit FILE
                                  let a rejected file be loaded again at the next run
  FILE is a landing path (<source>/20261127T101500000000Z_1a2b3c4d5e6f.xlsx), its file name or a
  sha256 prefix (8+ characters), as `files` prints them.

Readers of the published warehouse (no Airflow needed):
  python -m pipeline.run reader-sql [--as NAME] [--no-secret | --with-credentials]
                                  the SQL that attaches the published warehouse read-only in a
                                  fresh DuckDB session (docs/bi.md)

Settings (environment variables WH_*, each declared once with its type and default):
  python -m pipeline.run settings [--all]
                                  every setting with its type, default, the value set now and
                                  what it does (--all: also those the pipeline sets for itself);
                                  a value of the wrong type stops any command naming the variable
  AIRFLOW_HOME      Airflow's home with its SQLite database (default .airflow/)
  Common ones: WH_SNAPSHOT_DIR (replay recorded files laid out like ../shared/data instead of
  fetching live), WH_WAREHOUSE (the published DuckDB file), WH_LANDING_DIR, WH_RUNS_DIR.
"""
from __future__ import annotations

import argparse
import atexit
import faulthandler
import gc
import json
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field

from ingest import duck
from ingest import catalog, config, storage
from ingest.landing import Landing
from ingest.config import export_resolved, settings
# This module runs the DAGs and ends the run; the other jobs of make run have their own modules:
# the Airflow environment and metadata database, the summary printed after a publish, and the
# landed-file commands.
from pipeline import landed_files_cli, scratch, terminate
from pipeline.airflow_setup import configure_environment, prepare_metadata_db, serve_one_api_version
from pipeline.summary import summary

TRANSFORM_DAG_ID = "warehouse_transform"


def dag_ids() -> tuple[str, ...]:
    """The source DAGs (one per source folder), then the transform."""
    return (*catalog.dag_ids(), TRANSFORM_DAG_ID)
NETWORK_ERRORS = {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "SSLError",
                  "HTTPError", "RetryError", "ChunkedEncodingError"}


@dataclass
class Outcome:
    """What ``run_dags`` found: failures (each a message), notices (a published file rebuilt,
    quarantined files skipped), and the red reports of failed source runs."""
    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    published_then_failed: bool = False
    """The transform published, then a later step failed (the warehouse did change)."""
    transform_run: str | None = None
    """This invocation's transform run (its outcome and report are this run's, whatever
    another run at the same time recorded after it)."""
    stopped: str | None = None
    """The DAG during which this process was given SIGTERM: no later DAG was started."""

    @property
    def ok(self) -> bool:
        return not self.failures


def run_dags(dag_ids: tuple[str, ...], rebuild: bool = False) -> Outcome:
    """Run each DAG with dag.test(), in order. A source DAG that fails does not stop the others
    nor the transform (the other sources' new files are built and published); the run fails
    at the end, naming every failure. A transform that fails ends the run."""
    from airflow.dag_processing.dagbag import DagBag

    from pipeline import steps
    from pipeline.warehouse import FAILURE_FILE, NOTICE_FILE, published_by, safe_run_id

    outcome = Outcome()
    print(f"Airflow: {serve_one_api_version()}", flush=True)
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        outcome.failures.append("DAG import errors:\n" + "\n".join(
            f"  {f}: {e}" for f, e in bag.import_errors.items()))
        return outcome
    for dag_id in dag_ids:
        if outcome.stopped:
            break
        dag = bag.get_dag(dag_id)
        for task in dag.tasks:
            # Airflow's SIGTERM handler, set at each task's start, calls on_kill: remember the
            # signal, so that the step after it stops the run (decision 89).
            task.on_kill = terminate.noted
        print(f"\n=== {dag_id}: running with dag.test() ===", flush=True)
        started = time.monotonic()
        dag_run = dag.test(run_conf={"rebuild": True} if rebuild and dag_id == "warehouse_transform"
                           else None)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        print(f"=== {dag_id}: {state} in {time.monotonic() - started:.0f} s "
              f"(run {dag_run.run_id}) ===", flush=True)
        terminate.arm()  # Airflow's handler of the last task is still set: SIGTERM stops us
        if terminate.received():
            outcome.stopped = dag_id
        run_id = safe_run_id(dag_run.run_id)
        if dag_id == "warehouse_transform":
            outcome.transform_run = run_id
        folder = scratch.fetch_run(run_id)
        landed = steps.landing_outcome(run_id) or {}
        for skipped in landed.get("skipped_quarantined", []):
            outcome.notices.append(
                f"{dag_id}: still offered and skipped, quarantined at landing: {skipped['path']} "
                f"({skipped['error']}); it is not fetched into a build again until the publisher "
                "changes its bytes")
        if (folder / NOTICE_FILE).exists():
            outcome.notices.append((folder / NOTICE_FILE).read_text(encoding="utf-8").strip())
        if state == "success":
            continue
        failure = folder / FAILURE_FILE
        if failure.exists():
            record = json.loads(failure.read_text())
            message = f"{dag_id} failed at step '{record['step']}':\n{record['message']}\n"
            if dag_id == "warehouse_transform":
                if record["error_type"] != "AnotherRunBuilding":
                    message += ("Build database and audit results kept in "
                                f"{scratch.location(failure.parent)}")
            elif record["error_type"] in NETWORK_ERRORS and settings().snapshot_dir is None:
                message += network_hint(record["error_type"], record["message"])
            elif record["error_type"] not in NETWORK_ERRORS:
                message += ("A file that failed parsing stays in landing/ as rejected "
                            "(python -m pipeline.run files --state rejected); the same bytes are "
                            "skipped from now on. Once a parser or seed is fixed: "
                            "python -m pipeline.run readmit FILE")
        elif dag_id == "warehouse_transform" and published_by(run_id):
            # Published, then a later step (the report) failed: the warehouse did change.
            outcome.published_then_failed = True
            message = (f"{dag_id} published the warehouse, then a later step failed (state "
                       f"{state}); see the task log above")
        else:
            message = f"{dag_id} failed (state {state}); see the task log above"
        outcome.failures.append(message.rstrip())
        if dag_id == "warehouse_transform":
            break
        report = report_of(run_id)
        if report:
            outcome.reports.append(report)
        if not outcome.stopped:
            print(f"=== {dag_id} failed; the other sources and the transform go on ===",
                  flush=True)
    return outcome


@dataclass
class BeforeAirflow:
    """What asking every source before Airflow decided (``before_airflow``)."""
    unchanged_run: str | None = None
    """Nothing new anywhere: this run was recorded ``unchanged`` without starting Airflow."""
    dags: tuple[str, ...] | None = None
    """Else the DAGs to run: the sources that have something new (or failed when asked), then
    the transform; None: every DAG."""


def before_airflow() -> BeforeAirflow:
    """Before any DAG starts: ask every source whether it has something new, the way its DAG's
    task would (``ingest.source.offers_new``: discover, fetch what is not known by URL, compare
    the bytes with landing's; nothing is landed).

    - Some have (or offer quarantined bytes, or fail when asked): their DAGs run, then the
      transform; the DAGs of the others are not started (they would find nothing: one Airflow
      run less each). Each DAG fetches again what is new: one more download of a new file.
    - None has, and the transform finds nothing that would change the published warehouse
      (``steps.unchanged_before_airflow``, under the warehouse lease): the run is recorded
      ``unchanged`` with its report, and no Airflow is imported, migrated or started
      (decision 74).
    - None has, but the transform has something to do (a rejected file, other code), or the
      warehouse is held by another run: the transform DAG alone.
    - The check itself failing: every DAG (they record, report and wait as they do)."""
    from datetime import datetime, timezone

    from ingest import http
    from ingest.source import offers_new
    from pipeline import lock, steps
    from pipeline.warehouse import safe_run_id

    started = time.monotonic()
    landing = Landing(settings().landing_dir)
    said: dict[str, str] = {}  # per source with something new or failing: what to say
    for spec in catalog.SOURCES:
        try:
            # Asked once, no retries: a source that fails here has its DAG run, which retries.
            with http.for_source(spec.name, spec.url_settings), http.asking():
                found = offers_new(spec.source(), landing, spec.refetch_landed)
        except Exception as err:  # noqa: BLE001 - its DAG fails on it, records and reports it
            said[spec.name] = f"source {spec.name} failed when asked: {type(err).__name__}"
            continue
        if found is not None:
            said[spec.name] = f"{spec.name} has {found}"
    asked = f"{len(catalog.SOURCES)} asked, {time.monotonic() - started:.1f} s"
    if said:
        wanted = {spec.dag_id for spec in catalog.SOURCES if spec.name in said}
        dags = tuple(d for d in catalog.dag_ids() if d in wanted) + (TRANSFORM_DAG_ID,)
        others = sorted(spec.name for spec in catalog.SOURCES if spec.dag_id not in wanted)
        print("Before Airflow: " + "; ".join(said.values())
              + f" ({asked}): running {', '.join(dags)}"
              + (f"; nothing new from {', '.join(others)}" if others else ""), flush=True)
        return BeforeAirflow(dags=dags)
    holder = lock.read_lease()
    gone = lock.owner_gone(holder) if holder is not None else None
    if holder is not None and gone is None:
        print(f"Before Airflow: no source has anything new ({asked}); the warehouse is held by "
              f"{holder.describe()}: running {TRANSFORM_DAG_ID}", flush=True)
        return BeforeAirflow(dags=(TRANSFORM_DAG_ID,))
    if holder is not None:
        # A run killed while it owned the warehouse: not "held"; the check below takes it over.
        print(f"Before Airflow: {holder.describe()} was left unfinished ({gone}): taken over",
              flush=True)
    run_id = safe_run_id(f"manual__{datetime.now(timezone.utc).isoformat()}")
    try:
        note = steps.unchanged_before_airflow(run_id)
    except storage.StorageError:
        raise  # main says the object store failed
    except Exception as err:  # noqa: BLE001 - the transform's own steps record and report it
        print(f"Before Airflow: the transform's check failed ({type(err).__name__}: {err}): "
              "running the DAGs", flush=True)
        return BeforeAirflow()
    if note is None:
        print(f"Before Airflow: no source has anything new ({asked}), but the transform has "
              f"something to do: running {TRANSFORM_DAG_ID}", flush=True)
        return BeforeAirflow(dags=(TRANSFORM_DAG_ID,))
    print(f"Before Airflow: no source has anything new ({len(catalog.SOURCES)} asked) and "
          f"{note}: run {run_id} recorded without starting Airflow "
          f"({time.monotonic() - started:.1f} s)", flush=True)
    return BeforeAirflow(unchanged_run=run_id)


def report_of(run_id: str) -> str | None:
    """The report written for ``run_id`` (a source run that failed), if any."""
    from pipeline import quality

    path = quality.store_path()
    if not path.exists():
        return None
    import duckdb

    with duck.connect(str(path), read_only=True) as con:
        found = con.execute("""select report_path from quality.runs
                               where run_id = ? and report_path is not null
                               order by recorded_at desc limit 1""", [run_id]).fetchone()
    return found[0] if found else None


REPLAY = "replay the recorded files instead: WH_SNAPSHOT_DIR=../shared/data make run"


def network_hint(error_type: str, message: str) -> str:
    """What to do about a network failure, by what it was: the server answered with an error
    status, or nothing answered at all."""
    status = re.match(r"\s*(\d{3}) ", message or "") if error_type == "HTTPError" else None
    if status and status.group(1).startswith("5"):
        return (f"The publisher's server failed (HTTP {status.group(1)}, still after the "
                f"retries): try again later, or {REPLAY}")
    if status:
        return (f"The publisher refused the request (HTTP {status.group(1)}): has the address "
                f"changed? (the WH_*_URL settings in the README); or {REPLAY}")
    return f"No answer from the server (no network, or a firewall?): {REPLAY}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dag", action="append", choices=dag_ids(),
                   help="run only this DAG (repeatable; default: the DAGs of the sources that "
                        "have something new, asked before Airflow, then the transform)")
    p.add_argument("--rebuild", action="store_true",
                   help="build, audit and publish even when nothing is new since the last "
                        "publish (by default such a run changes nothing and says so), rebuilding "
                        "every dbt model from the raw tables (dbt build --full-refresh; a run "
                        "with new files otherwise builds only what they feed)")
    sub = p.add_subparsers(dest="command",
                           metavar="{run,files,reject,readmit,reader-sql,settings}")
    run = sub.add_parser("run", help="run the pipeline (the default)")
    run.add_argument("--dag", action="append", choices=dag_ids(), help=argparse.SUPPRESS)
    run.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    landed_files_cli.add_commands(sub)
    reader = sub.add_parser(
        "reader-sql", help="print the SQL that attaches the published warehouse read-only",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=READER_SQL_HELP)
    reader.add_argument("--as", dest="alias", metavar="NAME",
                        help="the name to attach it as (default: the warehouse file's stem, "
                             "migration: the views of the warehouse name that catalog)")
    creds = reader.add_mutually_exclusive_group()
    creds.add_argument("--no-secret", action="store_true",
                       help="object storage: no CREATE SECRET (the reader's session has its own "
                            "S3 secret for the bucket)")
    creds.add_argument("--with-credentials", action="store_true",
                       help="object storage: put this environment's AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) into the secret; "
                            "by default the reader's DuckDB takes them from its own environment")
    listing = sub.add_parser("settings", help="list every WH_* setting: type, default, value now")
    listing.add_argument("--all", action="store_true",
                         help="also the settings the pipeline sets for its own subprocesses")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        catalog.folders()
    except catalog.CatalogError as err:
        print(f"Source folder error: {err}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    if args.command == "settings":
        text = config.listing(everything=args.all)
        print(text)
        return 2 if text.startswith("ERROR") else 0
    try:
        settings()
    except config.SettingError as err:
        print(f"Configuration error: {err}\n(python -m pipeline.run settings lists every "
              "setting)", file=sys.stderr)
        return 2
    for name in config.ignored_with_storage():
        print(f"WARNING: {name} is ignored: WH_STORAGE_URL is set, so the data lives in the "
              "object store and a task's scratch space (WH_SCRATCH_DIR)", file=sys.stderr)
    for name in config.undeclared():
        print(f"WARNING: {name} is set but no setting has that name (a typo? python -m "
              "pipeline.run settings lists them)", file=sys.stderr)
    if args.command == "reader-sql":
        return print_reader_sql(args)
    if (problem := scratch.check_storage()) is not None:
        print(problem, file=sys.stderr)
        return 2
    if args.command in landed_files_cli.COMMANDS:
        export_resolved()
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        try:
            return landed_files_cli.COMMANDS[args.command](args)
        except storage.StorageError as err:
            print(f"{args.command}: the object store failed: {err}", file=sys.stderr)
            return 1
    configure_environment()
    terminate.arm()  # SIGTERM stops the run, between and within tasks (decision 82)
    # With WH_STORAGE_URL: what the end of the run read (summary, report) leaves no file behind.
    atexit.register(scratch.remove_scratch)
    # A run that seems stuck: `kill -USR1 <pid>` prints where every thread is, and it goes on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = settings()
    print(f"Sources: {'replayed from ' + str(s.snapshot_dir) if s.snapshot_dir else 'live'}; "
          f"landing {Landing(s.landing_dir).location()}; warehouse {s.storage_url or s.warehouse}",
          flush=True)
    try:
        # Nothing new anywhere (every source asked): no Airflow at all (decision 74).
        # Only the sources with something new, then the transform; nothing new anywhere: no
        # Airflow at all (decision 74).
        ran = tuple(args.dag) if args.dag else dag_ids()
        before = BeforeAirflow() if args.dag or args.rebuild else before_airflow()
        if before.unchanged_run is not None:
            outcome = Outcome(transform_run=before.unchanged_run)
        else:
            ran = before.dags or ran
            if "warehouse_transform" in ran:
                from pipeline import dbt  # dbt imports on the other core while Airflow starts
                dbt.prestart()  # (decision 90)
            prepare_metadata_db(ran)
            outcome = run_dags(ran, rebuild=args.rebuild)
    except terminate.Terminated as err:
        print(f"\nPIPELINE STOPPED: {err}, before its DAGs ran; nothing was changed.",
              file=sys.stderr, flush=True)
        return terminate.EXIT_CODE
    except storage.StorageError as err:
        print(f"\nPIPELINE FAILED: the object store failed: {err}\nCheck "
              f"{scratch.STORAGE_VARIABLES} and the S3 server; what the runs wrote before is "
              "kept in the bucket, and the next run goes on from it.", file=sys.stderr)
        return 1
    # This run's report: a transform refused while another run built has none of its own.
    report = report_of(outcome.transform_run) if outcome.transform_run else latest_report()
    notices = "".join(f"\nNOTE: {n}" for n in outcome.notices)
    transform_failed = (any(m.startswith("warehouse_transform ") for m in outcome.failures)
                        and not outcome.published_then_failed)
    from pipeline.warehouse import published_label, published_path

    # The published warehouse: the file, or on object storage a local copy of the version the
    # pointer names (where = its s3:// URL).
    published, where = published_path(), published_label()
    if notices:
        print(notices.lstrip("\n"), flush=True)
    untouched = (transform_failed or "warehouse_transform" not in ran
                 or outcome.stopped not in (None, "warehouse_transform"))
    if not outcome.ok and (untouched or not published.exists()):
        reports = [*outcome.reports, *([report] if report and report not in outcome.reports
                                       else [])]
        print("\nPIPELINE FAILED: " + "\n\nPIPELINE FAILED: ".join(outcome.failures)
              + (f"\nThe published warehouse was not changed: {where}" if untouched else "")
              + "".join(f"\nQuality report (red): {r}" for r in reports)
              + (f"\nPIPELINE STOPPED: given SIGTERM during {outcome.stopped}; no later DAG "
                 "was started" if outcome.stopped else ""),
              file=sys.stderr, flush=True)
        return terminate.EXIT_CODE if outcome.stopped else 1
    if not published.exists():
        print(f"\nNo published warehouse at {where}", file=sys.stderr)
        return 1
    unchanged = unchanged_note(outcome.transform_run) if outcome.transform_run else None
    if unchanged:
        print(f"\n{unchanged[0].upper()}{unchanged[1:]}: {where}"
              + (f"\nQuality report: {report}" if report else ""), flush=True)
    else:
        how = (f"duckdb -readonly {where}" if published == s.warehouse else
               "python -m pipeline.run reader-sql prints the SQL that attaches it")
        print(f"\nPublished warehouse: {where}\n  (open it read-only: {how})\n\n"
              f"{summary(published)}", flush=True)
        if report:
            print(f"\nQuality report: {report}", flush=True)
    if outcome.ok:
        return 0
    # A source failed; the transform built what the others had (or found nothing new): say so
    # last, and fail the run.
    after = ("\nThe published warehouse was not changed: " + where if unchanged
             else "\nThe warehouse was published (above); the step after publish failed."
             if outcome.published_then_failed
             else "\nThe other sources' new files were published (above).")
    print("\nPIPELINE FAILED: " + "\n\nPIPELINE FAILED: ".join(outcome.failures) + after
          + "".join(f"\nQuality report (red): {r}" for r in outcome.reports)
          + (f"\nPIPELINE STOPPED: given SIGTERM during {outcome.stopped}; no later DAG was "
             "started" if outcome.stopped else ""),
          file=sys.stderr, flush=True)
    return terminate.EXIT_CODE if outcome.stopped else 1


READER_SQL_HELP = """\
Print the SQL a reader runs in a fresh DuckDB session (any working directory, the project's
Python environment, no local files) to attach the published warehouse read-only, then USE it.

Local files: ATTACH of the published file (WH_WAREHOUSE).
Object storage (WH_STORAGE_URL): load the httpfs extension from the installed
duckdb-extension-httpfs package (nothing is fetched: autoinstall is off), an S3 secret for the
endpoint (AWS_ENDPOINT_URL, path-style, AWS_REGION) scoped to the store, and ATTACH of the version
the pointer warehouse/CURRENT names now. DuckDB cannot ATTACH a path computed in SQL, so the
version is resolved here: after a new publish, print the SQL again (a session attached to an
older version keeps reading it, consistently, until that version is removed:
WH_KEEP_PUBLISHED_VERSIONS, WH_KEEP_REPLACED_VERSIONS_DAYS).

Credentials are not printed unless --with-credentials: by default DuckDB reads
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the reader's own
environment. Examples (docs/bi.md has DuckDB, Python and SQLAlchemy/BI recipes):
  python -m pipeline.run reader-sql > attach.sql
  python -c "import duckdb,sys; c=duckdb.connect(); c.execute(open('attach.sql').read()); \\
      print(c.sql('select count(*) from marts.fct_border_crossings'))"
"""


def print_reader_sql(args) -> int:
    from ingest import storage
    from pipeline import published

    try:
        text = published.reader_sql(alias=args.alias, secret=not args.no_secret,
                                    credentials=args.with_credentials)
    except (published.NothingPublished, published.PublishedMissing,
            storage.StorageError) as err:
        print(f"reader-sql: {err}", file=sys.stderr)
        return 1
    if args.alias and args.alias != settings().warehouse.stem:
        print(f"WARNING: the warehouse's views name the catalog {settings().warehouse.stem!r}; "
              f"attached as {args.alias!r} they fail (its tables work)", file=sys.stderr)
    sys.stdout.write(text)
    return 0


def unchanged_note(run_id: str) -> str | None:
    """When transform run ``run_id`` found nothing new: what it found ("nothing new since ...").
    Its own record, not the latest: another run may have recorded after it."""
    from pipeline import quality

    path = quality.store_path()
    if not path.exists():
        return None
    import duckdb

    with duck.connect(str(path), read_only=True) as con:
        found = con.execute("""select state, note from quality.runs where run_id = ?""",
                            [run_id]).fetchone()
    return found[1] if found and found[0] == "unchanged" else None


def latest_report() -> str | None:
    """The report of the most recent recorded run (the transform's, or a source that failed)."""
    from pipeline import quality

    path = quality.store_path()
    if not path.exists():
        return None
    import duckdb

    with duck.connect(str(path), read_only=True) as con:
        found = con.execute("""select report_path from quality.runs
                               where report_path is not null
                               order by recorded_at desc limit 1""").fetchone()
    return found[0] if found else None


if __name__ == "__main__":
    code = main()
    # Airflow, dbt's and Great Expectations' modules leave a heap of several million objects:
    # the interpreter's last garbage collection of it took 2.2 s after the summary (measured,
    # py-spy: gc_collect_main). Nothing waits on it (files are closed, atexit still runs).
    gc.freeze()
    sys.exit(code)
