"""Every DAG file imports, has no cycles, carries tags and the retry policy of its kind, and the
transform is the single writer scheduled on the assets the source DAGs emit."""
from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT

SOURCE_DAGS = {"frontex_ingest", "eurostat_ingest", "cohesion_ingest", "fts_ingest",
               "registries_ingest"}
REPORT_DAG = "quality_report"
TRANSFORM_DAG = "warehouse_transform"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags(dagbag):
    assert set(dagbag.dag_ids) == SOURCE_DAGS | {TRANSFORM_DAG, REPORT_DAG}


def test_no_cycles_and_tags(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md, f"{dag.dag_id} has no documentation"


def test_source_tasks_retry_network_failures(dagbag):
    for dag_id in SOURCE_DAGS:
        for task in dagbag.dags[dag_id].tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} does not retry"
            assert task.outlets, f"{dag_id}.{task.task_id} emits no asset"


def test_transform_is_the_single_writer_and_does_not_retry(dagbag):
    dag = dagbag.dags[TRANSFORM_DAG]
    assert dag.max_active_runs == 1
    assert all(task.retries == 0 for task in dag.tasks)
    # A straight line: nothing publishes unless every audit before it passed.
    order, task = [], dag.get_task("check_for_changes")
    while task is not None:
        order.append(task.task_id)
        assert len(task.downstream_list) <= 1
        task = next(iter(task.downstream_list), None)
    assert order == ["check_for_changes", "prepare_build", "load_raw", "audit_raw", "dbt_build", "audit_marts",
                     "publish", "report"]
    assert len(dag.tasks) == len(order)
    # The report is written whatever happened before it; every other task needs its upstream.
    assert dag.get_task("report").trigger_rule == "all_done"
    # Nothing new: the check writes the report itself and skips every later task at once.
    assert dag.get_task("check_for_changes").ignore_downstream_trigger_rules is True
    assert all(t.trigger_rule == "all_success" for t in dag.tasks if t.task_id != "report")


def test_transform_is_scheduled_on_every_source_asset(dagbag):
    emitted = {outlet.name for dag_id in SOURCE_DAGS
               for task in dagbag.dags[dag_id].tasks for outlet in task.outlets}
    condition = dagbag.dags[TRANSFORM_DAG].timetable.asset_condition
    consumed = {asset.name for asset in condition.objects}
    assert emitted and emitted <= consumed


def test_the_dags_folder_alone_imports_from_anywhere(tmp_path):
    """A deployment that points Airflow at dags/ and sets no PYTHONPATH, from another working
    directory: no import errors, every DAG, and the helper modules not parsed as DAG files."""
    import json
    import os
    import subprocess
    import sys

    from ingest.config import REPO_ROOT

    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "print(json.dumps({'errors': {k: str(v)[-300:] for k, v in bag.import_errors.items()},\n"
        "                  'dags': sorted(bag.dag_ids),\n"
        "                  'files': sorted(bag.dagbag_stats and [s.file for s in bag.dagbag_stats])}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    done = subprocess.run([sys.executable, "-c", script, str(REPO_ROOT / "dags")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert set(got["dags"]) == {*SOURCE_DAGS, TRANSFORM_DAG, "quality_report"}
    parsed = {name.rsplit("/", 1)[-1] for name in got["files"]}
    assert "_common.py" not in parsed
    assert "frontex_ingest.py" in parsed
