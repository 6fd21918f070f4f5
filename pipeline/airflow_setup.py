"""Airflow for ``make run``: the environment every process of the run shares, and the embedded
metadata database (migrated when this Airflow version has not migrated it yet; the DAGs written
into it once, under a lock, so that two first runs on a fresh AIRFLOW_HOME take turns).

Nothing here runs a DAG: ``pipeline.run`` does, after ``configure_environment`` and
``prepare_metadata_db``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ingest.config import REPO_ROOT, export_resolved


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
    os.environ.setdefault("WH_TRANSFORM_TASK_RETRIES", "0")
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


def serve_one_api_version() -> str:
    """Build the in-process execution API of ``dag.test()`` for the one API version this
    process's task SDK speaks, not for every version Airflow still serves to older workers.

    ``dag.test()`` runs every task in this process and talks to an in-process copy of Airflow's
    execution API (Cadwyn). At its first request Cadwyn generates a router for each of the nine
    API versions the server keeps for older task SDKs: about 3.8 s of every ``make run`` that
    starts a task (docs/decisions.md 90). The only client here is the task SDK installed beside
    it, which sends its own ``API_VERSION``; when that is the newest version of the server's
    bundle, the head routes are exactly that version's, so the bundle is cut to it (and the
    routes kept only for older versions are left out: Cadwyn refuses a route no kept version
    restores). Anything else (another SDK version, another Cadwyn) leaves Airflow as it is.
    Returns what was done, for the log."""
    try:
        from airflow.api_fastapi.execution_api import routes, versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
        from cadwyn.route_generation import _DELETED_ROUTE_TAG
    except ImportError as err:
        return f"execution API left as it is ({err})"
    newest = versions.bundle.versions[0].value
    if newest != API_VERSION:
        return (f"execution API left as it is: the task SDK speaks {API_VERSION}, the "
                f"server's newest version is {newest}")
    versions.bundle = VersionBundle(HeadVersion(), Version(API_VERSION))
    router = routes.execution_api_router
    router.routes = [r for r in router.routes
                     if _DELETED_ROUTE_TAG not in (getattr(r, "tags", None) or [])]
    return f"execution API built for API version {API_VERSION} only"
