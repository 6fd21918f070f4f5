"""Run the whole pipeline through Airflow, on its embedded SQLite metadata database.

This is what ``make run`` calls. It runs the real DAGs with ``dag.test()``: first the source
DAGs (those of ingest/catalog.py: find, fetch, validate and land new files), then the transform
DAG (``warehouse_transform``: build, load, audit, dbt build, audit, publish). No scheduler or
webserver is started. When nothing is new since the last publish (no new landed file, no
rejection, the same code), the transform builds nothing and the run ends with "nothing new since
<publish>, warehouse unchanged" (exit 0); ``--rebuild`` builds anyway. At the end it prints where the published warehouse is and a summary, or,
when a step failed, which check failed on which file, and exits non-zero. A landed file that
fails an audit or a dbt test is rejected: it stays in landing/, and the next run publishes
without it.

Commands for landed files (no Airflow needed):
  python -m pipeline.run files [--source S] [--state STATE]
                                  every landed file with its state: landed, loaded, published,
                                  superseded (by a correction of the same release), rejected
  python -m pipeline.run reject FILE --reason "..."
                                  reject a file by hand (it leaves the warehouse at the next run)
  python -m pipeline.run readmit FILE
                                  let a rejected file be loaded again at the next run
  FILE is a landing path (frontex/20261127T101500000000Z_1a2b3c4d5e6f.xlsx), its file name or a
  sha256 prefix (8+ characters), as `files` prints them.

Configuration (environment variables):
  WH_SNAPSHOT_DIR   replay recorded files laid out like ../shared/data instead of fetching live
  WH_CURATED_DIR    curated files with no live endpoint (published figures, registries);
                    default WH_SNAPSHOT_DIR
  WH_WAREHOUSE      published DuckDB file (default warehouse/migration.duckdb)
  WH_LANDING_DIR    landed files and manifest (default landing/)
  WH_RUNS_DIR       per-run build databases, audit results, failures (default <warehouse dir>/runs)
  AIRFLOW_HOME      Airflow's home with its SQLite database (default .airflow/)
  WH_SOURCE_TASK_RETRIES  Airflow retries of source tasks (default here 0: dag.test() sleeps
                    through retry delays; the HTTP client still retries each request)
  (the sources' endpoints and limits: see the configuration table of the README)
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ingest import catalog
from ingest.config import REPO_ROOT, export_resolved, settings

SOURCE_DAG_IDS = catalog.dag_ids()
DAG_IDS = (*SOURCE_DAG_IDS, "warehouse_transform")
NETWORK_ERRORS = {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "SSLError",
                  "HTTPError", "RetryError", "ChunkedEncodingError"}


def configure_environment() -> None:
    """Settings every process of the run must share, set before Airflow is imported."""
    export_resolved()
    os.environ.setdefault("AIRFLOW_HOME", str(REPO_ROOT / ".airflow"))
    os.environ["AIRFLOW_HOME"] = str(Path(os.environ["AIRFLOW_HOME"]).resolve())
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    # Keep task progress (dbt, audits, landing) readable: the in-process execution API logs
    # each state change of each task.
    os.environ.setdefault("AIRFLOW__LOGGING__NAMESPACE_LEVELS", " ".join((
        "airflow.api_fastapi=WARNING",
        "airflow.serialization=WARNING", "airflow.models.dag=WARNING",
        "airflow.dag_processing=WARNING")))
    os.environ.setdefault("WH_SOURCE_TASK_RETRIES", "0")
    # dag.test() runs every task in this process: the warehouse lease names it (pipeline.lock),
    # so a run killed mid-way is taken over by the next one at once.
    os.environ["WH_RUN_OWNER_PID"] = str(os.getpid())
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    path = os.environ.get("PYTHONPATH", "")
    if str(REPO_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)


MIGRATED_STAMP = ".wh-db-migrated"
"""In AIRFLOW_HOME: the Airflow version and schema revision of the last ``db migrate``."""


def _sqlite_metadata_db(home: Path) -> Path | None:
    """The embedded SQLite metadata database, or None when Airflow is configured with another
    database (then ``db migrate`` always runs: it is the only check that knows that database)."""
    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if conn is None:
        cfg = home / "airflow.cfg"
        if not cfg.exists():
            return None
        conn = next((line.split("=", 1)[1].strip() for line in cfg.read_text().splitlines()
                     if line.strip().startswith("sql_alchemy_conn") and "=" in line), None)
    if not conn or not conn.startswith("sqlite:///"):
        return None
    return Path(conn.removeprefix("sqlite:///").split("?", 1)[0])


def _schema_revision(db: Path) -> str | None:
    import sqlite3

    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            row = con.execute("select version_num from alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def metadata_db_is_current(home: Path) -> bool:
    """True when the embedded SQLite database was migrated by this Airflow version and still
    has the revision it was migrated to: ``db migrate`` (about 3 s) would do nothing."""
    from importlib.metadata import version

    stamp, db = home / MIGRATED_STAMP, _sqlite_metadata_db(home)
    if db is None or not stamp.exists():
        return False
    return stamp.read_text().split() == [version("apache-airflow-core"),
                                         _schema_revision(db) or "none"]


def migrate_metadata_db() -> None:
    from importlib.metadata import version

    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if metadata_db_is_current(home):
        print(f"Airflow metadata database is current ({home}); not migrating", flush=True)
        return
    airflow = Path(sys.executable).with_name("airflow")
    with (home / "db-migrate.log").open("w") as out:
        done = subprocess.run([str(airflow), "db", "migrate"], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"airflow db migrate failed; see {home / 'db-migrate.log'}")
    db = _sqlite_metadata_db(home)
    revision = _schema_revision(db) if db is not None else None
    stamp = home / MIGRATED_STAMP
    if revision:
        stamp.write_text(f"{version('apache-airflow-core')} {revision}\n")
    else:
        stamp.unlink(missing_ok=True)


@dataclass
class Outcome:
    """What ``run_dags`` found: failures (each a message), notices (a published file rebuilt,
    quarantined files skipped), and the red reports of failed source runs."""
    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    transform_run: str | None = None
    """This invocation's transform run (its outcome and report are this run's, whatever
    another run at the same time recorded after it)."""

    @property
    def ok(self) -> bool:
        return not self.failures


SETUP_LOCK = ".wh-setup.lock"
"""In AIRFLOW_HOME: held while one make run migrates the metadata database and writes the DAGs
into it, so that two first runs on a fresh home do not both create them (the soak saw
``UNIQUE constraint failed`` on ``alembic_version`` and on ``dag.dag_id``)."""


def prepare_metadata_db(dag_ids: tuple[str, ...]) -> None:
    """Migrate the metadata database when needed, and write the DAGs into it when any of
    ``dag_ids`` is not there yet (what ``dag.test()`` does on its first call), under a lock
    shared by every make run of this AIRFLOW_HOME. A later dag.test() finds them written and
    only checks their hash."""
    import fcntl

    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with (home / SETUP_LOCK).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        migrate_metadata_db()
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session

        with create_session() as session:
            known = {d for (d,) in session.query(DagModel.dag_id).filter(
                DagModel.dag_id.in_(dag_ids)).all()}
        if known >= set(dag_ids):
            return
        manager = DagBundlesManager()
        with create_session() as session:
            manager.sync_bundles_to_db(session=session)
        for bundle in manager.get_all_dag_bundles():
            if not bundle.is_initialized:
                bundle.initialize()
            sync_bag_to_db(BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path,
                                        bundle_name=bundle.name), bundle.name, bundle.version)


def run_dags(dag_ids: tuple[str, ...], rebuild: bool = False) -> Outcome:
    """Run each DAG with dag.test(), in order. A source DAG that fails does not stop the others
    nor the transform (the other sources' new files are built and published); the run fails
    at the end, naming every failure. A transform that fails ends the run."""
    from airflow.dag_processing.dagbag import DagBag

    from pipeline import steps
    from pipeline.warehouse import FAILURE_FILE, NOTICE_FILE, safe_run_id

    outcome = Outcome()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        outcome.failures.append("DAG import errors:\n" + "\n".join(
            f"  {f}: {e}" for f, e in bag.import_errors.items()))
        return outcome
    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        print(f"\n=== {dag_id}: running with dag.test() ===", flush=True)
        started = time.monotonic()
        dag_run = dag.test(run_conf={"rebuild": True} if rebuild and dag_id == "warehouse_transform"
                           else None)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        print(f"=== {dag_id}: {state} in {time.monotonic() - started:.0f} s "
              f"(run {dag_run.run_id}) ===", flush=True)
        run_id = safe_run_id(dag_run.run_id)
        if dag_id == "warehouse_transform":
            outcome.transform_run = run_id
        folder = settings().runs_dir / run_id
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
                    message += f"Build database and audit results kept in {failure.parent}"
            elif record["error_type"] in NETWORK_ERRORS and settings().snapshot_dir is None:
                message += network_hint(record["error_type"], record["message"])
            elif record["error_type"] not in NETWORK_ERRORS:
                message += ("A file that failed parsing stays in landing/ as rejected "
                            "(python -m pipeline.run files --state rejected); the same bytes are "
                            "skipped from now on. Once a parser or seed is fixed: "
                            "python -m pipeline.run readmit FILE")
        else:
            message = f"{dag_id} failed (state {state}); see the task log above"
        outcome.failures.append(message.rstrip())
        if dag_id == "warehouse_transform":
            break
        report = report_of(run_id)
        if report:
            outcome.reports.append(report)
        print(f"=== {dag_id} failed; the other sources and the transform go on ===", flush=True)
    return outcome


def report_of(run_id: str) -> str | None:
    """The report written for ``run_id`` (a source run that failed), if any."""
    from pipeline import quality

    path = quality.store_path()
    if not path.exists():
        return None
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
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


def summary(warehouse: Path) -> str:
    """A few lines from the published warehouse, read through a read-only connection. The
    figures come from the dbt models the quality report reads (the current Frontex release,
    the report's route chart and year-to-date mart, the EU total of the returns marts, the
    headline indicators): no rule of its own, so the summary and the report cannot disagree."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        lines = _frontex_summary(con)
        lines += _returns_summary(con)
        lines += _funding_summary(con)
        lines += _readmission_summary(con)
        lines += _headlines_summary(con)
    return "\n".join(lines)


def _has(con, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def _frontex_summary(con) -> list[str]:
    """The current Frontex release (marts.fct_border_crossings_current), its routes in the latest
    complete year (the report's chart data, quality.report_detections_by_route) and the year to
    date (marts.rpt_detections_ytd_by_route)."""
    if not (_has(con, "marts", "fct_border_crossings_current")
            and _has(con, "quality", "report_detections_by_route")):
        return ["Frontex: this warehouse was published by an older version (no "
                "marts.fct_border_crossings_current); the next run rebuilds it"]
    found = con.execute("""
        select release_date, count(*), sum(detections), min(month), max(month)
        from marts.fct_border_crossings_current group by release_date""").fetchone()
    if not found:
        return ["Frontex: no release loaded"]
    release, rows, total, first, last = found
    lines = [f"Frontex release {release}: {rows:,} rows, {total:,} detections, "
             f"{first:%b %Y} - {last:%b %Y}"]
    year = con.execute("""
        select year(month) from quality.report_detections_by_route
        group by 1 having count(distinct month) = 12 order by 1 desc limit 1""").fetchone()
    if year:
        lines.append(f"Detections by route, {year[0]} (latest complete year):")
        for route, n in con.execute("""
                select route, sum(detections) from quality.report_detections_by_route
                where year(month) = ? group by route order by 2 desc""", [year[0]]).fetchall():
            lines.append(f"  {route:<40} {n:>10,}")
    ytd = con.execute("""select route, through_month, ytd_detections, prior_ytd_detections,
                                change_pct from marts.rpt_detections_ytd_by_route
                         order by ytd_detections desc""").fetchall()
    if ytd:
        lines.append(f"Year to date through {ytd[0][1]:%b %Y} against the same months a year "
                     "earlier:")
        for route, _, now, before, pct in ytd:
            change = "n/a" if pct is None else f"{pct:+.1f}%"
            lines.append(f"  {route:<40} {now:>10,} (was {before:,}, {change})")
    return lines


def _headlines_summary(con) -> list[str]:
    """The report's headline indicators (dbt model quality.report_headlines), as it shows them."""
    from pipeline.report import in_unit

    if not _has(con, "quality", "report_headlines"):
        return []
    lines = ["Headline indicators (the quality report's; definitions there):"]
    for label, unit, period, value, previous_period, previous, change in con.execute("""
            select label, unit, period, value, previous_period, previous_value, change_pct
            from quality.report_headlines order by position""").fetchall():
        before = (f" (was {in_unit(previous, unit)} in {previous_period}"
                  + (f", {change:+.1f}%" if change is not None else "") + ")"
                  if previous is not None else "")
        lines.append(f"  {label}, {period}: {in_unit(value, unit)}{before}")
    return lines


def _readmission_summary(con) -> list[str]:
    """Readmission cooperation: the third countries with the most detections, with their
    instrument, Art. 25a status and latest return rate."""
    if not _has(con, "marts", "rpt_third_country_profile"):
        return []
    rows, countries = con.execute("""select count(*), count(distinct country_code)
                                     from marts.fct_readmission_cooperation""").fetchone()
    if not rows:
        return ["Readmission cooperation: no data loaded"]
    lines = [f"Readmission cooperation: {rows:,} country-years, {countries} third countries; "
             "most detections:"]
    for rank, iso2, name, detections, year, instrument, art25a, rate, returns_year in con.execute("""
            select detections_rank, country_code, country_name, detections, detections_year,
                   readmission_instrument, art25a_status, return_rate, returns_year
            from marts.rpt_third_country_profile order by detections_rank limit 5""").fetchall():
        rate_text = "n/a" if rate is None else f"{rate:.0%} ({returns_year})"
        lines.append(f"  {rank}. {iso2} {name[:24]:<24} {detections or 0:>7,} detections in {year}; "
                     f"{instrument}, Art. 25a {art25a}; return rate {rate_text}")
    return lines


def _funding_summary(con) -> list[str]:
    """Funding: what each source holds, and whether a snapshot is partial."""
    if not _has(con, "marts", "fct_funding_disbursements"):
        return []
    rows = con.execute("""
        select source, count(*), count(distinct programme_or_action_key),
               string_agg(distinct stage, ', ' order by stage), bool_and(is_complete_snapshot),
               any_value(completeness_note) filter (where not is_complete_snapshot)
        from marts.fct_funding_disbursements group by source order by source""").fetchall()
    if not rows:
        return ["Funding: no data loaded"]
    lines = ["Funding (fct_funding_disbursements; amounts of different stages and as-of dates "
             "are never added up):"]
    for source, n, keys, stages, complete, note in rows:
        lines.append(f"  {source:<30} {n:>4,} rows, {keys:>3,} programmes or actions; "
                     f"stages: {stages}")
        if not complete:
            lines.append(f"    PARTIAL SNAPSHOT: {note}")
    for title, allocated, paid, rate in con.execute("""
            select programme_or_action_title, allocated_eur, paid_eur, absorption_rate
            from marts.rpt_funding_absorption order by allocated_eur desc limit 5""").fetchall():
        lines.append(f"  absorption {rate:.1%}: EUR {paid / 1e6:,.1f}m paid of "
                     f"{allocated / 1e6:,.1f}m allocated, {title[:60]}")
    return lines


def _returns_summary(con) -> list[str]:
    """Returns: the EU return rate by year, and how the warehouse compares with what Eurostat
    published."""
    if not _has(con, "marts", "fct_returns"):
        return []
    rows, first, last = con.execute("""select count(*), min(period), max(period)
                                       from marts.fct_returns""").fetchone()
    if not rows:
        return ["Eurostat returns: no data loaded"]
    lines = [f"Eurostat returns: {rows:,} rows (period x reporting country x citizenship x "
             f"measure), {first} - {last}",
             "EU return rate (returned / ordered to leave, same year; the EU total of each "
             "year, rpt_return_rates.is_eu_total):"]
    if not con.execute("""select count(*) from duckdb_columns()
                          where schema_name = 'marts' and table_name = 'rpt_return_rates'
                            and column_name = 'is_eu_total'""").fetchone()[0]:
        return lines[:1] + ["EU return rate: this warehouse was published by an older version "
                            "(no rpt_return_rates.is_eu_total); the next run rebuilds it"]
    for period, geo, ordered, returned, rate in con.execute("""
            select period, geo, ordered_to_leave, returned, return_rate
            from marts.rpt_return_rates
            where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'
            order by period""").fetchall():
        returned_text = "n/a" if returned is None else f"{returned:,}"
        rate_text = "n/a" if rate is None else f"{rate:.1%}"
        lines.append(f"  {period} {geo:<10} ordered {ordered:>9,}  returned {returned_text:>9}  "
                     f"rate {rate_text}")
    statuses = con.execute("""select status, count(*) from marts.rpt_returns_reconciliation
                              group by 1 order by 2 desc""").fetchall()
    if statuses:
        lines.append("Against Eurostat's published headline figures: "
                     + ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in statuses))
    return lines


def files_command(args) -> int:
    from pipeline import files

    try:
        every = files.states()
    except files.BrokenWarehouse as err:
        print(f"files: {err}", file=sys.stderr)
        return 2
    found = [f for f in every
             if (args.source is None or f.entry.source == args.source)
             and (args.state is None or f.state == args.state)]
    if not found:
        print(f"no landed files{' matching' if args.source or args.state else ''} in "
              f"{settings().landing_dir}")
        return 0
    width = max(len(f.entry.path) for f in found)
    print(f"{'state':<11} {'landing file':<{width}} {'source':<20} {'release':<12} detail")
    for f in found:
        print(f"{f.state:<11} {f.entry.path:<{width}} {f.entry.source:<20} {f.release:<12} "
              f"{f.detail}")
    counts = {}
    for f in found:
        counts[f.state] = counts.get(f.state, 0) + 1
    print(f"\n{len(found)} files: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def reject_command(args) -> int:
    from pipeline import files

    try:
        entry = files.reject_by_hand(args.file, args.reason)
    except (LookupError, ValueError) as err:
        print(f"reject: {err}", file=sys.stderr)
        return 2
    print(f"rejected {entry.path}: {args.reason}\nIt stays in {settings().landing_dir}; the next "
          "run publishes the warehouse without it (make run).")
    return 0


def readmit_command(args) -> int:
    from pipeline import files

    try:
        entry = files.readmit(args.file, accept_suspicious=args.accept_suspicious)
    except (LookupError, ValueError) as err:
        print(f"readmit: {err}", file=sys.stderr)
        return 2
    print(f"re-admitted {entry.path}"
          + (" (accepted as suspicious: its change against the previous release is published on "
             "purpose)" if args.accept_suspicious else "")
          + ": the next run loads it again (make run).")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dag", action="append", choices=DAG_IDS,
                   help="run only this DAG (repeatable; default: all, in order)")
    p.add_argument("--rebuild", action="store_true",
                   help="build, audit and publish even when nothing is new since the last "
                        "publish (by default such a run changes nothing and says so)")
    sub = p.add_subparsers(dest="command", metavar="{run,files,reject,readmit}")
    run = sub.add_parser("run", help="run the pipeline (the default)")
    run.add_argument("--dag", action="append", choices=DAG_IDS, help=argparse.SUPPRESS)
    run.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    listing = sub.add_parser("files", help="list landed files with their state")
    listing.add_argument("--source", choices=sorted(catalog.BY_NAME))
    listing.add_argument("--state", choices=["landed", "loaded", "published", "superseded",
                                             "rejected"])
    reject = sub.add_parser("reject", help="reject a landed file by hand, with a reason")
    reject.add_argument("file", help="landing path, file name or sha256 prefix")
    reject.add_argument("--reason", required=True, help="why (kept in landing/states.jsonl)")
    readmit = sub.add_parser("readmit", help="let a rejected file be loaded again")
    readmit.add_argument("file", help="landing path, file name or sha256 prefix")
    readmit.add_argument("--accept-suspicious", action="store_true",
                         help="the file was held as suspicious (a change against the previous "
                              "release beyond WH_SUSPICIOUS_CHANGE_SHARE): publish it on purpose")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("files", "reject", "readmit"):
        export_resolved()
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return {"files": files_command, "reject": reject_command,
                "readmit": readmit_command}[args.command](args)
    configure_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = settings()
    print(f"Sources: {'replayed from ' + str(s.snapshot_dir) if s.snapshot_dir else 'live'}; "
          f"landing {s.landing_dir}; warehouse {s.warehouse}", flush=True)
    prepare_metadata_db(tuple(args.dag) if args.dag else DAG_IDS)
    outcome = run_dags(tuple(args.dag) if args.dag else DAG_IDS, rebuild=args.rebuild)
    # This run's report: a transform refused while another run built has none of its own.
    report = report_of(outcome.transform_run) if outcome.transform_run else latest_report()
    notices = "".join(f"\nNOTE: {n}" for n in outcome.notices)
    transform_failed = any(m.startswith("warehouse_transform ") for m in outcome.failures)
    dag_ids = tuple(args.dag) if args.dag else DAG_IDS
    if notices:
        print(notices.lstrip("\n"), flush=True)
    if not outcome.ok and (transform_failed or not s.warehouse.exists()
                           or "warehouse_transform" not in dag_ids):
        reports = [*outcome.reports, *([report] if report and report not in outcome.reports
                                       else [])]
        print("\nPIPELINE FAILED: " + "\n\nPIPELINE FAILED: ".join(outcome.failures)
              + (f"\nThe published warehouse was not changed: {s.warehouse}" if transform_failed
                 or "warehouse_transform" not in dag_ids else "")
              + "".join(f"\nQuality report (red): {r}" for r in reports),
              file=sys.stderr, flush=True)
        return 1
    if not s.warehouse.exists():
        print(f"\nNo published warehouse at {s.warehouse}", file=sys.stderr)
        return 1
    unchanged = unchanged_note(outcome.transform_run) if outcome.transform_run else None
    if unchanged:
        print(f"\n{unchanged[0].upper()}{unchanged[1:]}: {s.warehouse}"
              + (f"\nQuality report: {report}" if report else ""), flush=True)
    else:
        print(f"\nPublished warehouse: {s.warehouse}\n  (open it read-only: "
              f"duckdb -readonly {s.warehouse})\n\n{summary(s.warehouse)}", flush=True)
        if report:
            print(f"\nQuality report: {report}", flush=True)
    if outcome.ok:
        return 0
    # A source failed; the transform built what the others had (or found nothing new): say so
    # last, and fail the run.
    after = ("\nThe published warehouse was not changed: " + str(s.warehouse) if unchanged
             else "\nThe other sources' new files were published (above).")
    print("\nPIPELINE FAILED: " + "\n\nPIPELINE FAILED: ".join(outcome.failures) + after
          + "".join(f"\nQuality report (red): {r}" for r in outcome.reports),
          file=sys.stderr, flush=True)
    return 1


def unchanged_note(run_id: str) -> str | None:
    """When transform run ``run_id`` found nothing new: what it found ("nothing new since ...").
    Its own record, not the latest: another run may have recorded after it."""
    from pipeline import quality

    path = quality.store_path()
    if not path.exists():
        return None
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
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

    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute("""select report_path from quality.runs
                               where report_path is not null
                               order by recorded_at desc limit 1""").fetchone()
    return found[0] if found else None


if __name__ == "__main__":
    sys.exit(main())
