"""Shared fixtures. Recorded source files are read from the snapshot directory
(``WH_SNAPSHOT_DIR``, else ``../shared/data`` beside the repository), never copied here."""
from __future__ import annotations

import contextlib
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- The fast lane ------------------------------------------------------------------------------
# `make test-fast` runs `pytest -m "not slow"`: every test that needs no Airflow run (dag.test(),
# python -m pipeline.run, the Airflow components) and no dbt build. A test is slow when it is
# marked airflow, topology or slow (a test that builds in its own body), or when it uses, however
# indirectly, one of the fixtures below, each of which runs dbt build or a whole pipeline run once
# for its scope. A test that is not slow and starts dbt, Airflow or a pipeline run from this
# process anyway fails, saying how to mark it.
SLOW_FIXTURES = {
    "built_db",            # tests/conftest.py: the recorded sources landed, loaded, dbt-built
    "published_db",        # tests/conftest.py: built_db published with its quality history
    "archive_published",   # test_lifecycle: an archive of three releases through every step
    "inst",                # test_completeness: an installation driven by python -m pipeline.run
    "published_2018",      # test_frontex_2018_layout: the July 2018 release published
    "site",                # test_hostile: a published warehouse for hostile answers
}
SLOW_MARKERS = ("airflow", "topology")
LONGEST_FIRST = ("test_multihost_topology.py", "test_production_topology.py",
                 "test_storage_e2e.py", "test_pipeline_e2e.py", "test_recovery_e2e.py",
                 "test_incremental.py", "test_adversarial_90_e2e.py", "test_funding_changes.py",
                 "test_completeness.py", "test_frontex_2018_layout.py", "test_report.py",
                 "test_local_deployment.py")
"""Modules of two minutes or more (a fresh-clone run's durations), collected first: `make test`
hands whole modules to its two workers in collection order (--dist loadscope), and one of these
left for last ran alone while the other worker idled (19 min 48 s). The fresh-clone CI of
bbdeec6 (28 min 18 s) ended with test_local_deployment alone on one worker: the modules of
about a minute or more since decisions 88-92 are listed too."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (any(item.get_closest_marker(m) for m in SLOW_MARKERS)
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # A stable sort: the tests of a module keep their file order.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _slow_work(argv) -> str | None:
    """What a command line starts that the fast lane must not: dbt, Airflow, a pipeline run."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    args = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in argv]
    if args and Path(args[0]).name in ("dbt", "airflow"):
        return f"{Path(args[0]).name} ({' '.join(args[:3])} ...)"
    if any(Path(a).name == "dbt_warm.py" for a in args):
        return "a prestarted dbt process (pipeline/dbt_warm.py)"
    for i, (a, b) in enumerate(zip(args, args[1:])):
        # Its commands for settings and landed files need no Airflow; a run does.
        if a == "-m" and b == "pipeline.run" and (args[i + 2:i + 3] or [""])[0] not in (
                "settings", "files", "reject", "readmit", "reader-sql", "--help"):
            return "python -m pipeline.run (Airflow dag.test())"
    return None


@contextlib.contextmanager
def _refuse_slow_work(item: pytest.Item):
    """While a test not marked slow runs (its fixtures included): dbt (pipeline.dbt.build runs
    it as a subprocess), Airflow or a pipeline run started from this process fails the test."""
    real_init = subprocess.Popen.__init__

    def guarded_init(self, args, *rest, **kwargs):
        if (what := _slow_work(args)) is not None:
            self._child_created = False  # what Popen.__del__ reads of an object never started
            pytest.fail(f"{item.nodeid} is not marked slow but runs {what}: make test-fast must "
                        "need no dbt build and no Airflow run. Mark the test @pytest.mark.slow, "
                        "or add the fixture that does it to SLOW_FIXTURES in tests/conftest.py",
                        pytrace=False)
        real_init(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", guarded_init)
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if item.get_closest_marker("slow"):
        return (yield)
    with _refuse_slow_work(item):
        return (yield)


def snapshot_root() -> Path:
    configured = os.environ.get("WH_SNAPSHOT_DIR")
    return Path(configured).resolve() if configured else (REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def snapshot_dir() -> Path:
    root = snapshot_root()
    if not (root / "frontex" / "ibc.xlsx").is_file():
        pytest.fail(f"recorded snapshot not found: {root / 'frontex' / 'ibc.xlsx'} "
                    "(set WH_SNAPSHOT_DIR to a directory laid out like ../shared/data)")
    return root


@pytest.fixture(scope="session")
def recorded_workbook(snapshot_dir: Path) -> bytes:
    return (snapshot_dir / "frontex" / "ibc.xlsx").read_bytes()


@pytest.fixture
def wh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point landing, warehouse and runs at a temporary directory."""
    monkeypatch.setenv("WH_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "warehouse" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(tmp_path / "warehouse" / "runs"))
    return tmp_path


OTHER_SOURCE_DAGS = ("eurostat_ingest", "cohesion_ingest", "registries_ingest")
"""The source DAGs besides Frontex whose recorded files the warehouse fixtures land."""


def point_installation_at(mp: pytest.MonkeyPatch, root: Path, snapshot_dir: Path) -> None:
    """Landing, warehouse, runs, quality history and reports of a test installation under
    ``root``, replaying the recorded files of ``snapshot_dir``."""
    mp.setenv("WH_SNAPSHOT_DIR", str(snapshot_dir))
    mp.setenv("WH_LANDING_DIR", str(root / "landing"))
    mp.setenv("WH_WAREHOUSE", str(root / "wh" / "migration.duckdb"))
    mp.setenv("WH_RUNS_DIR", str(root / "wh" / "runs"))
    mp.setenv("WH_QUALITY_DB", str(root / "wh" / "quality_history.duckdb"))
    mp.setenv("WH_REPORTS_DIR", str(root / "reports"))


@pytest.fixture(scope="session")
def built_db(tmp_path_factory, recorded_workbook, snapshot_dir) -> Path:
    """A build database holding every recorded source (the Frontex release, the Eurostat files,
    the Cohesion Open Data sample, both registries), landed, loaded and dbt-built by the
    real steps (not published, not audited). Tests copy it before changing anything."""
    from ingest.landing import Landing
    from pipeline import steps, warehouse

    root = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        Landing(root / "landing").land("frontex", "file:///snapshot/frontex/ibc.xlsx",
                                       recorded_workbook, date(2025, 6, 3))
        for dag_id in OTHER_SOURCE_DAGS:
            steps.land("fixture", dag_id)
        steps.prepare("fixture")
        steps.load("fixture")
        steps.dbt_build("fixture")
        return warehouse.build_db("fixture")



@pytest.fixture(scope="session")
def published_db(tmp_path_factory, built_db) -> Path:
    """A copy of ``built_db`` published as a run publishes it (meta.publish_log, the quality
    history copied in, the dbt audit internals dropped): what a BI reader opens. Read-only use."""
    import shutil

    from pipeline import quality, warehouse

    root = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WH_WAREHOUSE", str(root / "warehouse" / "migration.duckdb"))
        mp.setenv("WH_RUNS_DIR", str(root / "warehouse" / "runs"))
        mp.setenv("WH_QUALITY_DB", str(root / "quality_history.duckdb"))
        build = warehouse.build_db("published")
        build.parent.mkdir(parents=True)
        shutil.copyfile(built_db, build)
        return Path(warehouse.publish("published", before_checkpoint=quality.copy_into))

# --- Object storage (issue 20) ------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS, tests/s3server.py) on 127.0.0.1 for the whole session,
    started (about 8 s) only when a test asks for it, killed and its folder removed at the end.
    It failing to start fails the test with the reason (never a skip)."""
    from tests.s3server import S3Server, S3ServerError
    try:
        server = S3Server().start()
    except S3ServerError as err:
        pytest.fail(f"the S3 test server did not start: {err}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server) -> dict[str, str]:
    """A fresh, empty bucket on the session's S3 server and the environment that points the
    pipeline at it: WH_STORAGE_URL (s3://<bucket>/wh), AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_REGION. Not set in os.environ: a test sets it
    (``monkeypatch.setenv`` each item) or passes it to a subprocess."""
    return s3_server.env(s3_server.create_bucket())
