"""Shared fixtures. Recorded source files are read from the snapshot directory
(``WH_SNAPSHOT_DIR``, else ``../shared/data`` beside the repository), never copied here."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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
