"""Incremental builds (issue 21, decision 76): a run that brings one new Frontex release or a
correction rebuilds only that release in the facts, and `--rebuild` (a full refresh of every dbt
model) gives the very same warehouse, relation by relation.

Releases arrive one run at a time through the real transform steps (check_for_changes, prepare,
load, GX audits, dbt build, audits, publish): the 2019 archive with every other recorded source,
then the 2020 archive, then the recorded 2025 release, then a correction of the 2020 release
(one cell, Tunisia / January 2019, 120 -> 125). The archive workbooks are the ones
tests/sources/frontex/test_frontex_layouts.py writes; their figures were added up there by hand
(2019: 17 cells, 2,545 detections; 2020: 19 cells, 4,293).
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingest.landing import Landing
from pipeline import steps, warehouse
from tests import workbooks
from tests.conftest import OTHER_SOURCE_DAGS, point_installation_at
from tests.sources.frontex import test_frontex_layouts as layouts

pytestmark = pytest.mark.slow

SENTINEL = -424242
SENTINEL_ROW = ("select min(source_row) from marts.fct_border_crossings "
                "where release_date = '2019-04-05'")
BUILD_STEPS = (steps.prepare, steps.load, steps.audit_raw, steps.dbt_build, steps.audit_marts,
               steps.publish)


def corrected_2020() -> bytes:
    """The 2020 archive re-issued under the same release date, one cell changed (+5)."""
    rows = [list(r) for r in layouts.ROWS_2020]
    assert rows[0][:4] == ["Central Mediterranean Route", "Sea", "Tunisia", 120]
    rows[0][3] = 125
    return workbooks.write_layout(
        layouts.HEADER_2020, rows,
        notes=[["Definition: Data reported on a monthly basis by Member States."],
               ["FRAN data as of 5 April 2020"]])


def adopt(db: Path) -> None:
    """Let the next run take the published file as it is after a test edited it: without its
    publish record the file is adopted (with it, the edit reads as damage and is set aside)."""
    warehouse.record_path(db).unlink()


def transform(run_id: str, rebuild: bool = False) -> bool:
    """One transform run by its steps, as the DAG runs them; False when nothing was new."""
    if not steps.check_for_changes(run_id, rebuild=rebuild):
        return False
    for step in BUILD_STEPS:
        step(run_id)
    return True


def dbt_relations(run_id: str) -> list[str]:
    """schema.name of every model, seed and snapshot the run's dbt build made (its manifest),
    but those tagged per_build: they describe the build (the cells its new files changed), not
    the data, and a full rebuild of the same files loads none."""
    manifest = json.loads((warehouse.run_dir(run_id) / "dbt" / "target" / "manifest.json")
                          .read_text(encoding="utf-8"))
    return sorted(f"{n['schema']}.{n.get('alias') or n['name']}"
                  for n in manifest["nodes"].values()
                  if n["resource_type"] in ("model", "seed", "snapshot")
                  and "per_build" not in n.get("tags", []))


def fingerprints(db: Path, relations: list[str]) -> dict[str, tuple[int, str]]:
    """Per relation: (rows, an order-independent hash of every column of every row). Floating
    point columns are rounded to 4 decimals: DuckDB adds doubles in parallel, in no fixed order,
    so two builds of one sum of amounts can differ in the last bit."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for rel in relations:
            schema, name = rel.split(".", 1)
            table = f'"{schema}"."{name}"'
            columns = [f"round(\"{c}\", 4)" if t in ("DOUBLE", "FLOAT", "REAL") else f'"{c}"'
                       for c, t, *_ in con.execute(f"describe {table}").fetchall()]
            out[rel] = con.execute(
                f"select count(*), coalesce(sum(hash({', '.join(columns)})), 0)::varchar "
                f"from {table}").fetchone()
    return out


def built(run_id: str) -> set[str]:
    """The models the run's dbt build ran."""
    results = json.loads((warehouse.run_dir(run_id) / "dbt" / "target" / "run_results.json")
                         .read_text(encoding="utf-8"))
    prefix = "model.migration_warehouse."
    return {r["unique_id"][len(prefix):] for r in results["results"]
            if r["unique_id"].startswith(prefix)}


def build_mode(run_id: str) -> dict:
    return json.loads((warehouse.run_dir(run_id) / warehouse.BUILD_MODE_FILE).read_text())


def releases(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("""
            select release_date::varchar, count(*), sum(detections)::bigint, any_value(sha256)
            from marts.fct_border_crossings group by 1 order by 1""").fetchall()


@pytest.fixture(scope="module")
def history(tmp_path_factory, recorded_workbook, snapshot_dir):
    root = tmp_path_factory.mktemp("incremental")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        # The 2020 archive is dated a year after its newest month (April 2019).
        mp.setenv("WH_FRONTEX_RELEASE_LAG_DAYS", "400")
        landing = Landing(root / "landing")
        db = root / "wh" / "migration.duckdb"
        seen: dict[str, dict] = {}

        def arrive(run_id: str, name: str, content: bytes, release: date) -> None:
            landing.land("frontex", f"file:///archive/{name}", content, release)
            assert transform(run_id), f"run {run_id}: {name} was landed but nothing was built"
            seen[run_id] = {"releases": releases(db)}

        for dag_id in OTHER_SOURCE_DAGS:
            steps.land("r1", dag_id)
        arrive("r1", "ibc_2019.xlsx", layouts.archive_2019(), date(2019, 4, 5))
        arrive("r2", "ibc_2020.xlsx", layouts.archive_2020(), date(2020, 4, 5))
        arrive("r3", "ibc.xlsx", recorded_workbook, date(2025, 6, 3))
        # A sentinel in the published fact, on a row of a release the next run does not bring:
        # a run that rewrites only the corrected release keeps it, one that rebuilds all loses it.
        with duckdb.connect(str(db)) as con:
            original = con.execute(SENTINEL_ROW).fetchone()[0]
            [(marked,)] = con.execute(
                f"update marts.fct_border_crossings set source_row = {SENTINEL} "
                f"where source_row = {original} and release_date = '2019-04-05'").fetchall()
        adopt(db)
        arrive("r4", "ibc_2020_corrected.xlsx", corrected_2020(), date(2020, 4, 5))
        with duckdb.connect(str(db)) as con:
            seen["r4"]["marked"] = marked
            seen["r4"]["sentinel"] = con.execute(
                f"select count(*) from marts.fct_border_crossings where source_row = {SENTINEL}"
            ).fetchone()[0]
            con.execute(f"update marts.fct_border_crossings set source_row = {original} "
                        f"where source_row = {SENTINEL}")
        adopt(db)
        relations = dbt_relations("r4")
        incremental = fingerprints(db, relations)
        assert transform("r5", rebuild=True), "--rebuild built nothing"
        rebuilt = fingerprints(db, relations)
        yield {"db": db, "seen": seen, "relations": relations, "incremental": incremental,
               "rebuilt": rebuilt}


def test_the_first_build_is_a_full_refresh_and_later_ones_are_incremental(history):
    assert build_mode("r1")["full_refresh"], "the first build must rebuild every model"
    for run_id in ("r2", "r3", "r4"):
        mode = build_mode(run_id)
        assert not mode["full_refresh"], (
            f"run {run_id} brought one new Frontex file with the same code: it should build "
            f"incrementally, but it recorded a full refresh because {mode['why']}")
    assert build_mode("r5") == {"full_refresh": True,
                                "why": ["a rebuild was asked for (--rebuild)"]}


def test_a_new_file_rebuilds_only_its_release_and_what_reads_its_source(history):
    # The 2019 rows were not rewritten by the run that brought the 2020 correction.
    r4 = history["seen"]["r4"]
    assert r4["marked"] > 0 and r4["sentinel"] == r4["marked"], (
        "a row of the 2019 release, marked in the published fact before the 2020 correction "
        "arrived, is gone after that run: the incremental fact rebuilt releases the file did not "
        f"change ({r4['sentinel']} of the {r4['marked']} marked rows left)")
    # The Eurostat, funding and readmission-registry models read no Frontex file: not built.
    others = {"fct_returns", "rpt_eurostat_revisions", "fct_funding_disbursements"}
    assert others <= built("r1"), f"the first build did not build {others - built('r1')}"
    got = {run_id: sorted(others & built(run_id)) for run_id in ("r2", "r3", "r4")}
    assert got == {"r2": [], "r3": [], "r4": []}, (
        "a run that loaded only a Frontex file should build only what reads Frontex; it built "
        f"{got}")
    assert {"fct_border_crossings", "rpt_border_crossings_revisions",
            "dim_country_eu_membership"} <= built("r2"), built("r2")


def test_each_run_publishes_every_release_with_its_current_file(history):
    seen = history["seen"]
    counts = {run_id: [(r, n, total) for r, n, total, _ in v["releases"]]
              for run_id, v in seen.items()}
    assert counts == {
        "r1": [("2019-04-05", 17, 2_545)],
        "r2": [("2019-04-05", 17, 2_545), ("2020-04-05", 19, 4_293)],
        "r3": [("2019-04-05", 17, 2_545), ("2020-04-05", 19, 4_293),
               ("2025-06-03", 173_460, 4_966_869)],
        "r4": [("2019-04-05", 17, 2_545), ("2020-04-05", 19, 4_298),
               ("2025-06-03", 173_460, 4_966_869)],
    }
    # The correction replaced the 2020 release's rows (its newest file), nothing else.
    before, after = dict((r, sha) for r, *_, sha in seen["r3"]["releases"]), \
        dict((r, sha) for r, *_, sha in seen["r4"]["releases"])
    assert after["2020-04-05"] != before["2020-04-05"], "the 2020 correction is not current"
    assert (after["2019-04-05"], after["2025-06-03"]) == (before["2019-04-05"],
                                                          before["2025-06-03"])


def test_a_full_rebuild_gives_the_same_warehouse_relation_by_relation(history):
    assert len(history["relations"]) > 40, history["relations"]
    assert "marts.fct_border_crossings" in history["relations"]
    differ = [f"{rel}: incremental {history['incremental'][rel]}, "
              f"rebuilt {history['rebuilt'][rel]} (rows, hash)"
              for rel in history["relations"]
              if history["incremental"][rel] != history["rebuilt"][rel]]
    assert not differ, ("the warehouse built incrementally over four runs differs from a full "
                        "rebuild of the same files:\n" + "\n".join(differ))


def unit_tests_run(run_id: str) -> int:
    results = json.loads((warehouse.run_dir(run_id) / "dbt" / "target" / "run_results.json")
                         .read_text(encoding="utf-8"))
    return sum(r["unique_id"].startswith("unit_test.") for r in results["results"])


def docs_record(run_id: str) -> dict:
    return json.loads((warehouse.run_dir(run_id) / "dbt" / "docs_fingerprint.json").read_text())


def test_an_incremental_build_reuses_the_docs_and_runs_no_unit_test(history):
    """The code is the one of the last publish (else the build is a full refresh): its unit
    tests passed then, and the dbt docs page shows the same models, columns and SQL, whichever
    nodes this build selected (decision 78)."""
    assert unit_tests_run("r1") > 10 and unit_tests_run("r5") == unit_tests_run("r1"), (
        "a full refresh must run every dbt unit test")
    ran = {run_id: unit_tests_run(run_id) for run_id in ("r2", "r3", "r4")}
    assert ran == {"r2": 0, "r3": 0, "r4": 0}, f"an incremental build ran unit tests: {ran}"
    assert "copied_from" not in docs_record("r1"), "the first publish has no docs to copy"
    copied = {run_id: docs_record(run_id).get("copied_from")
              for run_id in ("r2", "r3", "r4", "r5")}
    assert copied == {"r2": "r1", "r3": "r2", "r4": "r3", "r5": "r4"}, (
        "a publish whose documentation did not change generated the dbt docs again (the "
        f"previous page was not copied; copied_from per run: {copied})")


def test_the_fact_s_generic_tests_check_the_files_a_build_loaded_unless_it_is_a_full_refresh(
        history, tmp_path):
    """A row of a file published earlier is not tested again by a build that is not a full
    refresh (the code is the one that tested it); a row of a file this build loaded is, and a full
    refresh tests every row (macros/tests_on_new_rows.sql)."""
    import shutil

    from pipeline import dbt

    db = tmp_path / "build" / "migration.duckdb"
    db.parent.mkdir()
    shutil.copyfile(history["db"], db)
    with duckdb.connect(str(db)) as con:
        [(landing_file,)] = con.execute(
            "select distinct landing_file from marts.fct_border_crossings "
            "where release_date = '2019-04-05'").fetchall()
        con.execute("update marts.fct_border_crossings set border_type = 'Air' "
                    "where source_row = (select min(source_row) from marts.fct_border_crossings "
                    "where release_date = '2019-04-05') and release_date = '2019-04-05'")

    def test_fact(*args: str) -> str | None:
        try:
            dbt.build(db, tmp_path / "run", ["--select", "fct_border_crossings",
                                              "--resource-type", "test", *args])
        except dbt.DbtBuildFailed as err:
            return str(err)
        return None

    assert test_fact() is None, (
        "an incremental build tested again the rows of a file published by an earlier build")
    failed = test_fact("--full-refresh")
    assert failed and "accepted_values_fct_border_crossings_border_type" in failed, (
        f"a full refresh did not test every row of the fact: {failed}")
    with duckdb.connect(str(db)) as con:
        # As if this build had loaded the 2019 file (a run that never published).
        con.execute("insert into raw.load_log (source, raw_table, landing_file, sha256, "
                    "rows_loaded, run_id, loaded_at) select source, raw_table, landing_file, "
                    "sha256, rows_loaded, 'not-published', now() from raw.load_log "
                    "where landing_file = ? limit 1", [landing_file])
    failed = test_fact()
    assert failed and "accepted_values_fct_border_crossings_border_type" in failed, (
        f"an incremental build did not test the rows of a file it loaded: {failed}")
