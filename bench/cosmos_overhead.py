"""Overhead of running dbt from Airflow: one ``dbt build`` task vs. astronomer-cosmos per-node tasks.

Builds two DAGs in code and runs each with ``dag.test()`` on a fresh copy of a warehouse file
that already holds ``raw.frontex_detections`` (e.g. the file published by ``python -m pipeline.run``):

  single  one ``@task`` calling ``pipeline.dbt.build`` (one ``dbt build`` subprocess), as
          ``dags/warehouse_transform.py`` does;
  cosmos  a cosmos ``DbtDag`` rendering ``dbt_project`` per node (LoadMode.DBT_LS,
          TestBehavior.AFTER_EACH, ExecutionMode.LOCAL with this venv's ``dbt`` executable).

Each measurement runs in a fresh Python process (so import time is cold) against a throwaway
AIRFLOW_HOME (SQLite, ``airflow db migrate``). Before each run the copy is stripped of the
dbt-built schemas (staging, marts, reference, audit_dbt) so that every variant really builds them;
the marts are then fingerprinted (row counts and order-independent content hashes) and compared.

    python -m bench.cosmos_overhead --warehouse /path/to/migration.duckdb [--repeat N] [--json]

Nothing under the repository is written: work files go to a temporary directory (``--workdir``
to keep them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.dbt import dbt_executable

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO_ROOT / "dbt_project"
VARIANTS = ("single", "cosmos")
DBT_SCHEMAS = ("staging", "marts", "reference", "audit_dbt")
FINGERPRINT_SCHEMAS = ("marts", "reference", "staging")


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------

def bench_env(airflow_home: Path) -> dict[str, str]:
    """Environment for ``airflow db migrate`` and for the worker processes."""
    env = dict(os.environ)
    pythonpath = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    dags_folder = airflow_home / "dags"
    dags_folder.mkdir(parents=True, exist_ok=True)
    env.update({
        "PYTHONPATH": os.pathsep.join(pythonpath),
        # this venv's bin first: cosmos looks `dbt` up on PATH even with InvocationMode.DBT_RUNNER
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # cosmos: no telemetry (it posts to Scarf on DAG render and on task run otherwise), and its
        # caches (dbt ls output, partial_parse.msgpack) kept inside this throwaway home.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home / "cosmos_cache"),
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        # dbt: offline
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    })
    return env


def airflow_executable() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


# --------------------------------------------------------------------------------------------
# Warehouse file: prepare a fresh copy, fingerprint the result
# --------------------------------------------------------------------------------------------

def prepare_copy(published: Path, dest: Path, strip: bool = True) -> None:
    import duckdb

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(published, dest)
    wal = published.with_name(published.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, dest.with_name(dest.name + ".wal"))
    con = duckdb.connect(str(dest))
    try:
        tables = {r[0] for r in con.sql(
            "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
        if "raw.frontex_detections" not in tables:
            raise SystemExit(f"{published} has no raw.frontex_detections: run `python -m pipeline.run` first")
        if strip:
            for schema in DBT_SCHEMAS:
                con.execute(f'drop schema if exists "{schema}" cascade')
        con.execute("checkpoint")
    finally:
        con.close()


def fingerprint(db: Path) -> dict:
    """Row count and detections total of marts.fct_border_crossings, plus per-table row counts and
    order-independent content hashes of every marts/reference/staging relation."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict = {}
        try:
            rows, total = con.sql(
                "select count(*), sum(detections) from marts.fct_border_crossings").fetchone()
            out["fct_rows"], out["fct_detections"] = int(rows), int(total or 0)
        except duckdb.Error as err:
            out["fct_rows"] = out["fct_detections"] = None
            out["error"] = str(err).splitlines()[0]
        relations = con.sql(
            "select table_schema, table_name from information_schema.tables where table_schema in "
            f"({', '.join(repr(s) for s in FINGERPRINT_SCHEMAS)}) order by 1, 2").fetchall()
        tables = {}
        for schema, name in relations:
            cols = [r[0] for r in con.sql(f'describe "{schema}"."{name}"').fetchall()]
            hashes = ", ".join(f'coalesce(sum(hash("{c}")), 0)' for c in cols)
            row = con.sql(f'select count(*), {hashes} from "{schema}"."{name}"').fetchone()
            tables[f"{schema}.{name}"] = [int(row[0]), format(hash(tuple(int(x) for x in row[1:])) & 0xFFFFFFFF, "08x")]
        out["tables"] = tables
        return out
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Worker: one variant, one fresh process
# --------------------------------------------------------------------------------------------

def _build_single_dag(db: Path, run_dir: Path):
    from airflow.sdk import dag, task

    from pipeline import dbt as pipeline_dbt

    @dag(dag_id="bench_dbt_single", schedule=None, catchup=False,
         default_args={"retries": 0}, tags=["bench"])
    def bench_dbt_single():
        @task
        def dbt_build() -> dict:
            return pipeline_dbt.build(db, run_dir)

        dbt_build()

    return bench_dbt_single()


def cosmos_config(db: Path, invocation: str, detach: bool = True) -> dict:
    """The cosmos configuration objects, in one place."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    env_vars = {"WH_BUILD_DB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_VERSION_CHECK": "false", "DO_NOT_TRACK": "1"}
    mode = InvocationMode.SUBPROCESS if invocation == "subprocess" else InvocationMode.DBT_RUNNER
    # cosmos refuses an explicit dbt_executable_path together with InvocationMode.DBT_RUNNER.
    exe = {"dbt_executable_path": dbt_executable()} if mode == InvocationMode.SUBPROCESS else {}
    return {
        "project_config": ProjectConfig(
            dbt_project_path=PROJECT_DIR,
            env_vars=env_vars,          # used for dbt ls at render time and by every task
            install_dbt_deps=False,     # no packages.yml; dbt deps would need the hub (offline)
        ),
        "profile_config": ProfileConfig(
            profile_name="migration_warehouse",
            target_name="build",
            profiles_yml_filepath=PROJECT_DIR / "profiles.yml",
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=mode,
            **exe,
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_LS,
            test_behavior=TestBehavior.AFTER_EACH,
            invocation_mode=mode,
            **exe,
            # Tests with several parents (relationships, the singular seed test) get their own task
            # after all parents. Without it they run in the first parent's .test task, before the
            # other parent is built: on a fresh build "Table ... fct_border_crossings does not exist".
            should_detach_multiple_parents_tests=detach,
        ),
    }


def _build_cosmos_dag(db: Path, invocation: str, detach: bool = True):
    from cosmos import DbtDag

    return DbtDag(dag_id="bench_dbt_cosmos", schedule=None, catchup=False,
                  default_args={"retries": 0}, tags=["bench"],
                  **cosmos_config(db, invocation, detach))


def _ti_states(dag_id: str, run_id: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.state, func.count()).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            ).group_by(TaskInstance.state)).all()
    return {str(state): int(n) for state, n in rows}


def build_dag(variant: str, db: Path, run_dir: Path, invocation: str = "subprocess",
              detach: bool = True):
    """The DAG under test; called from the generated DAG file (see ``_write_dag_file``)."""
    if variant == "single":
        return _build_single_dag(db, run_dir)
    return _build_cosmos_dag(db, invocation, detach)


def _write_dag_file(variant: str, db: Path, run_dir: Path, invocation: str, detach: bool) -> Path:
    """Airflow 3.3's ``dag.test()`` needs the DAG serialized in the metadata DB, i.e. parsed from a
    file. The file lives outside the dags-folder bundle so that ``dag.test()``'s own bundle re-sync
    does not parse (and, for cosmos, re-render) it a second time."""
    dag_dir = run_dir / "dagdefs"
    dag_dir.mkdir(parents=True, exist_ok=True)
    path = dag_dir / f"bench_dbt_{variant}.py"
    path.write_text(
        "# Generated by bench.cosmos_overhead: an airflow DAG file.\n"
        "from pathlib import Path\n"
        "from bench.cosmos_overhead import build_dag\n"
        f"dag = build_dag({variant!r}, Path({str(db)!r}), Path({str(run_dir)!r}), {invocation!r}, "
        f"{detach!r})\n")
    return path


def _purge_cosmos_dbt_ls_cache() -> int:
    """cosmos caches `dbt ls` output in Airflow Variables (cosmos_cache__<dag_id>): drop it so that
    every measured first parse is cold."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(Variable).filter(Variable.key.like("cosmos_cache__%")).delete(
            synchronize_session=False)


def worker(variant: str, db: Path, run_dir: Path, result_file: Path, invocation: str,
           detach: bool = True) -> int:
    dag_file = _write_dag_file(variant, db, run_dir, invocation, detach)
    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    t_imported = time.perf_counter()
    _purge_cosmos_dbt_ls_cache()  # not part of the measurement
    t1 = time.perf_counter()
    # What the dag processor pays per parse of the file: imports (cosmos / pipeline) + construction
    # (for cosmos: dbt ls + rendering one operator per node).
    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    t2 = time.perf_counter()
    if bag.import_errors or not bag.dags:
        result_file.write_text(json.dumps({"variant": variant, "state": "import-error",
                                           "error": json.dumps(bag.import_errors)}))
        return 1
    dag = next(iter(bag.dags.values()))
    # Second parse in the same process: warm imports and (cosmos) warm dbt ls / partial-parse cache.
    t3 = time.perf_counter()
    DagBag(dag_folder=str(dag_file), safe_mode=False)
    t4 = time.perf_counter()
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)  # serialize, as the dag processor would
    t5 = time.perf_counter()
    n_tasks = len(dag.tasks)
    operators: dict[str, int] = {}
    for t in dag.tasks:
        operators[type(t).__name__] = operators.get(type(t).__name__, 0) + 1
    print(f"[bench] {variant}: {n_tasks} tasks parsed in {t2 - t1:.2f}s; running dag.test()", flush=True)
    t6 = time.perf_counter()
    error = None
    try:
        dr = dag.test()
        state = str(getattr(dr, "state", None))
        run_id = getattr(dr, "run_id", None)
    except Exception as err:  # keep measuring; report the failure
        state, run_id, error = "exception", None, f"{type(err).__name__}: {err}"
    t7 = time.perf_counter()
    ti_states = {}
    if run_id:
        try:
            ti_states = _ti_states(dag.dag_id, run_id)
        except Exception as err:  # noqa: BLE001
            ti_states = {"error": str(err)}
    result = {
        "variant": variant,
        "airflow_import_s": round(t_imported - t0, 3),
        "parse_s": round(t2 - t1, 3),
        "reparse_s": round(t4 - t3, 3),
        "serialize_s": round(t5 - t4, 3),
        "test_s": round(t7 - t6, 3),
        "tasks": n_tasks,
        "operators": operators,
        "state": state.replace("DagRunState.", ""),
        "ti_states": ti_states,
        "error": error,
    }
    result_file.write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def migrate(env: dict[str, str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run([airflow_executable(), "db", "migrate"], env=env, stdout=fh,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"airflow db migrate failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - t0


def run_one(variant: str, published: Path, workdir: Path, env: dict[str, str], i: int,
            invocation: str, strip: bool, detach: bool = True) -> dict:
    rundir = workdir / f"{variant}-{i}"
    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    db = rundir / "build.duckdb"
    prepare_copy(published, db, strip=strip)
    result_file = rundir / "result.json"
    log = rundir / "worker.log"
    cmd = [sys.executable, "-m", "bench.cosmos_overhead", "--_worker", variant, "--_db", str(db),
           "--_run-dir", str(rundir), "--_result", str(result_file),
           "--cosmos-invocation", invocation] + ([] if detach else ["--cosmos-no-detach"])
    env = dict(env, AIRFLOW__COSMOS__CACHE_DIR=str(rundir / "cosmos_cache"))  # cold partial-parse cache
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT), stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if result_file.exists():
        result = json.loads(result_file.read_text())
    else:
        result = {"variant": variant, "state": "worker-crashed", "error": f"exit {proc.returncode}"}
    result.update({"repeat": i, "process_s": round(wall, 3), "log": str(log),
                   "dbt_nodes_passed": _dbt_nodes_passed(log)})
    result["fingerprint"] = fingerprint(db)
    return result


def _dbt_nodes_passed(log: Path) -> int:
    """Sum of dbt's "Done. PASS=n" over every dbt invocation in the worker log: streamed by
    pipeline.dbt / cosmos' subprocess hook, or printed bare by dbtRunner (cosmos DBT_RUNNER mode).
    cosmos' failure dump (logger cosmos.operators.base) repeats the line and is not counted."""
    import re

    pattern = re.compile(r"Done\. PASS=(\d+) .*TOTAL=\d+"
                         r"(?:\s*$|.*\[(?:cosmos\.hooks\.subprocess|pipeline\.dbt)\])")
    return sum(int(m.group(1)) for m in map(pattern.search, log.read_text(errors="replace").splitlines())
               if m)


def summarize(results: list[dict], reference: dict | None) -> dict:
    by_variant: dict[str, list[dict]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)
    prints = {json.dumps(r["fingerprint"].get("tables"), sort_keys=True) for r in results}
    same_all = len(prints) == 1 and all(r["fingerprint"].get("fct_rows") for r in results)
    summary = {"identical_across_runs": same_all, "variants": {}}
    if reference is not None:
        summary["identical_to_published"] = same_all and prints == {
            json.dumps(reference.get("tables"), sort_keys=True)}
    for v, rs in by_variant.items():
        def med(key):
            vals = sorted(r[key] for r in rs if isinstance(r.get(key), (int, float)))
            return round(vals[len(vals) // 2], 2) if vals else None
        summary["variants"][v] = {
            "runs": len(rs), "tasks": rs[0].get("tasks"), "dbt_nodes_passed": rs[0].get("dbt_nodes_passed"),
            "parse_s_median": med("parse_s"), "reparse_s_median": med("reparse_s"),
            "test_s_median": med("test_s"),
            "process_s_median": med("process_s"),
            "states": sorted({r.get("state") for r in rs}),
            "fct_rows": sorted({r["fingerprint"].get("fct_rows") for r in rs}, key=str),
            "fct_detections": sorted({r["fingerprint"].get("fct_detections") for r in rs}, key=str),
        }
    return summary


def print_table(results: list[dict], summary: dict, reference: dict | None, migrate_s: float) -> None:
    header = (f"{'variant':<8} {'run':>3} {'tasks':>5} {'parse s':>8} {'reparse':>8} {'serial.':>8} "
              f"{'dag.test':>8} {'proc s':>8} {'state':<8} {'dbt ok':>6} {'fct rows':>9} {'fct detections':>14}")
    print(header)
    print("-" * len(header))
    for r in results:
        fp = r["fingerprint"]
        print(f"{r['variant']:<8} {r['repeat']:>3} {r.get('tasks', '-'):>5} {r.get('parse_s', '-'):>8} "
              f"{r.get('reparse_s', '-'):>8} {r.get('serialize_s', '-'):>8} {r.get('test_s', '-'):>8} "
              f"{r.get('process_s', '-'):>8} {str(r.get('state')):<8} {str(r.get('dbt_nodes_passed')):>6} {str(fp.get('fct_rows')):>9} "
              f"{str(fp.get('fct_detections')):>14}")
    print("parse = DagBag parse of the DAG file in a fresh process (imports + DAG construction; cosmos:"
          " dbt ls + render); reparse = same, second time in-process (warm); dag.test = wall time of"
          " dag.test(); proc = whole worker process")
    print()
    for v, s in summary["variants"].items():
        print(f"median {v:<7} tasks={s['tasks']} parse={s['parse_s_median']}s "
              f"reparse={s['reparse_s_median']}s "
              f"dag.test={s['test_s_median']}s process={s['process_s_median']}s")
    if {"single", "cosmos"} <= summary["variants"].keys():
        a, b = summary["variants"]["single"], summary["variants"]["cosmos"]
        if a["test_s_median"] and b["test_s_median"]:
            print(f"cosmos / single dag.test wall time: {b['test_s_median'] / a['test_s_median']:.1f}x "
                  f"(+{b['test_s_median'] - a['test_s_median']:.1f}s); parse overhead "
                  f"+{(b['parse_s_median'] or 0) - (a['parse_s_median'] or 0):.1f}s")
    print(f"marts identical across all runs: {summary['identical_across_runs']}", end="")
    if reference is not None:
        print(f"; identical to the published file: {summary.get('identical_to_published')}", end="")
    print(f"  (airflow db migrate: {migrate_s:.1f}s, once)")
    for r in results:
        if r.get("error") or not r.get("state") == "success":
            print(f"  ! {r['variant']} #{r['repeat']}: state={r.get('state')} ti={r.get('ti_states')} "
                  f"error={r.get('error')} log={r.get('log')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cosmos_overhead",
        description="Measure the Airflow overhead of one `dbt build` task vs. astronomer-cosmos "
                    "per-node tasks on this project (dag.test(), throwaway AIRFLOW_HOME).")
    ap.add_argument("--warehouse", type=Path, help="published DuckDB file holding raw.frontex_detections")
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant (default 1)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated subset of {','.join(VARIANTS)} (default both)")
    ap.add_argument("--cosmos-invocation", choices=("subprocess", "dbt_runner"), default="subprocess",
                    help="how cosmos invokes dbt: the venv's dbt executable as a subprocess (default, "
                         "like pipeline.dbt) or dbt's Python dbtRunner in-process")
    ap.add_argument("--cosmos-no-detach", action="store_true",
                    help="render cosmos with should_detach_multiple_parents_tests=False (the default "
                         "in cosmos; fails on a fresh build here, see the report)")
    ap.add_argument("--keep-built", action="store_true",
                    help="do not drop the dbt-built schemas from the copy before each run")
    ap.add_argument("--workdir", type=Path,
                    help="keep AIRFLOW_HOME, copies and logs here (default: a temp dir, removed)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    # internal: one measurement in a fresh process
    ap.add_argument("--_worker", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--_db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_run-dir", dest="_run_dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        return worker(args._worker, args._db, args._run_dir, args._result, args.cosmos_invocation,
                      detach=not args.cosmos_no_detach)

    if not args.warehouse:
        ap.error("--warehouse is required")
    published = args.warehouse.resolve()
    if not published.exists():
        ap.error(f"{published} does not exist")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if bad := [v for v in variants if v not in VARIANTS]:
        ap.error(f"unknown variant(s): {bad}")

    tmp = None
    if args.workdir:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="cosmos_overhead_")
        workdir = Path(tmp)
    try:
        env = bench_env(workdir / "airflow_home")
        migrate_s = migrate(env, workdir / "db_migrate.log")
        reference = fingerprint(published) if not args.keep_built else None
        results = []
        for i in range(1, args.repeat + 1):
            for v in variants:
                if not args.json:
                    print(f"[bench] run {i}/{args.repeat}: {v} ...", file=sys.stderr, flush=True)
                results.append(run_one(v, published, workdir, env, i, args.cosmos_invocation,
                                       strip=not args.keep_built, detach=not args.cosmos_no_detach))
        summary = summarize(results, reference)
        if args.json:
            print(json.dumps({"warehouse": str(published), "cosmos_invocation": args.cosmos_invocation,
                              "migrate_s": round(migrate_s, 2), "summary": summary,
                              "results": results}, indent=2, default=str))
        else:
            print_table(results, summary, reference, migrate_s)
            if args.workdir:
                print(f"work files kept in {workdir}")
        ok = all(r.get("state") == "success" for r in results)
        return 0 if ok and summary["identical_across_runs"] else 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
