"""Every DAG file imports, has no cycles, carries tags and the retry policy of its kind, and the
transform is the single writer scheduled on the assets the source DAGs emit."""
from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT

from ingest import catalog  # noqa: E402

SOURCE_DAGS = set(catalog.dag_ids())
"""One DAG per source folder (a new folder is a new DAG: nothing to change here)."""
PUBLISHED_DAG_IDS = {"frontex_ingest", "eurostat_ingest", "cohesion_ingest", "fts_ingest",
                     "registries_ingest"}
"""DAG ids deployments know (their runs, pools and history): a refactor must keep them."""
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
    assert PUBLISHED_DAG_IDS <= SOURCE_DAGS, \
        f"source DAG ids deployments know were renamed: {PUBLISHED_DAG_IDS - SOURCE_DAGS}"


def test_no_cycles_and_tags(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md, f"{dag.dag_id} has no documentation"


def test_source_tasks_retry_network_failures(dagbag):
    for dag_id in SOURCE_DAGS:
        dag = dagbag.dags[dag_id]
        [land] = [t for t in dag.tasks if t.task_id != "check_landing"]
        assert land.retries >= 1, f"{dag_id}.{land.task_id} does not retry"
        assert land.outlets, f"{dag_id}.{land.task_id} emits no asset"


def test_a_failed_source_fails_its_run_without_holding_back_the_others(dagbag):
    """check_landing runs after landing whatever happened (all_done), never retries and emits
    nothing: the files other sources of the DAG landed are already out for the transform."""
    for dag_id in SOURCE_DAGS:
        dag = dagbag.dags[dag_id]
        check = dag.get_task("check_landing")
        assert check.trigger_rule == "all_done", f"{dag_id}.check_landing must run after a failure"
        assert check.retries == 0 and not check.outlets, f"{dag_id}.check_landing retries or emits"
        assert [t.task_id for t in check.upstream_list] == [
            t.task_id for t in dag.tasks if t.task_id != "check_landing"], \
            f"{dag_id}.check_landing is not downstream of the landing task"
        assert not check.downstream_list, f"{dag_id}.check_landing must be the last task"


def test_transform_is_the_single_writer_and_retries_only_a_dead_worker(dagbag):
    from airflow.sdk.exceptions import AirflowFailException

    from dags._common import transform_step
    from ingest.config import settings

    dag = dagbag.dags[TRANSFORM_DAG]
    assert dag.max_active_runs == 1
    expected = settings().transform_task_retries
    assert all(task.retries == expected for task in dag.tasks), \
        {t.task_id: t.retries for t in dag.tasks}

    def step():
        raise RuntimeError("dbt build failed on marts.fct_returns")
    # A step that raises fails for good: Airflow retries only a task whose worker died.
    with pytest.raises(AirflowFailException, match="RuntimeError: dbt build failed"):
        transform_step(step)()
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


def test_every_task_has_a_finite_execution_timeout(dagbag):
    """Whatever hangs (a server, a lock, a subprocess), Airflow fails the task after its
    execution_timeout: source tasks WH_SOURCE_TASK_TIMEOUT_MIN, the transform's and the report's
    WH_TRANSFORM_TASK_TIMEOUT_MIN."""
    from datetime import timedelta

    tasks = {f"{dag.dag_id}.{task.task_id}": task.execution_timeout
             for dag in dagbag.dags.values() for task in dag.tasks}
    unbounded = sorted(name for name, limit in tasks.items()
                       if limit is None or not timedelta(0) < limit <= timedelta(days=1))
    assert not unbounded, f"tasks without a finite execution_timeout: {unbounded}"
    from dags._common import SOURCE_TASK_TIMEOUT, TRANSFORM_TASK_TIMEOUT

    for name, limit in tasks.items():
        expected = SOURCE_TASK_TIMEOUT if name.split(".")[0] in SOURCE_DAGS \
            else TRANSFORM_TASK_TIMEOUT
        assert limit == expected, f"{name}: execution_timeout {limit}, expected {expected}"


def test_task_timeouts_come_from_the_environment_and_a_bad_one_is_named():
    import os
    import subprocess
    import sys

    script = ("from dags._common import SOURCE_DEFAULT_ARGS as s, TRANSFORM_DEFAULT_ARGS as t\n"
              "print(s['execution_timeout'].total_seconds(), "
              "t['execution_timeout'].total_seconds())\n")

    def run(**settings: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **settings}
        return subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    done = run(WH_SOURCE_TASK_TIMEOUT_MIN="7.5", WH_TRANSFORM_TASK_TIMEOUT_MIN="90")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["450.0", "5400.0"], \
        f"the timeouts do not follow the environment: {done.stdout}"
    done = run(WH_TRANSFORM_TASK_TIMEOUT_MIN="0")
    assert done.returncode != 0 and "WH_TRANSFORM_TASK_TIMEOUT_MIN='0'" in done.stderr, \
        f"a zero timeout (no bound) was not refused by name: {done.stderr[-1000:]}"


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
    assert "source_ingest.py" in parsed, f"the source DAGs come from dags/source_ingest.py; parsed: {sorted(parsed)}"


def test_transform_tasks_share_a_one_slot_pool_every_deployment_creates(dagbag):
    """Under a scheduler no two transform tasks run at once: each takes the one slot of
    WRITER_POOL, which docker-compose.yml's airflow-init and deploy/airflow-local.sh create
    (a pool that does not exist would leave the transform queued forever)."""
    from dags._common import WRITER_POOL
    from tests.test_production_topology import pool_command

    dag = dagbag.dags[TRANSFORM_DAG]
    assert {t.pool for t in dag.tasks} == {WRITER_POOL}, \
        f"transform tasks outside the writer pool: {[(t.task_id, t.pool) for t in dag.tasks]}"
    assert pool_command()[:4] == ["pools", "set", WRITER_POOL, "1"], \
        f"docker-compose.yml's airflow-init does not create {WRITER_POOL} with one slot"
    script = (REPO_ROOT / "deploy" / "airflow-local.sh").read_text()
    assert f"airflow pools set {WRITER_POOL} 1" in script, \
        f"deploy/airflow-local.sh does not create {WRITER_POOL} with one slot"


SCHEDULE_DAYS = {"@daily": 1, "@weekly": 7, "@monthly": 31, "@quarterly": 92, "@yearly": 366}
"""The longest gap between two runs of each preset schedule, in days."""


def test_each_source_is_checked_at_least_twice_before_it_counts_as_late():
    """A release lands within half of its source's late threshold (its dbt source's freshness
    warn_after, the one the report's freshness and dbt source freshness use): the DAG runs at
    least twice within late_after_days. Frontex (monthly, late after 45 days) published in the
    first half of the month while its DAG ran on the 1st: each release landed two to four weeks
    late."""
    from pipeline.quality.freshness import cadences

    known = cadences()
    slow = []
    for spec in catalog.sources():
        late = known[spec.name].late_after if spec.name in known else None
        if not late:
            continue  # curated or on change: no age limit
        schedule = catalog.dag(spec.dag_id).schedule
        assert schedule in SCHEDULE_DAYS, f"{spec.dag_id}: schedule {schedule!r} not known here"
        if SCHEDULE_DAYS[schedule] * 2 > int(late):
            slow.append(f"{spec.dag_id} runs {schedule} but {spec.name} is late after {late} "
                        "days")
    assert not slow, "source DAGs that check too seldom: " + "; ".join(slow)
