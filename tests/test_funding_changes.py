"""What changed, down to the cell, for funding (issue 22 item 2, decision 88): funding keeps no
vintages (a new registry or snapshot file replaces the rows it had), so a build compares the
rows it builds with those the last publish had, kept by the fact's pre-hook
(dbt_project/macros/published_copy.sql), for the funding sources whose files it loaded.

One installation through the real steps (no Airflow): the recorded snapshot publishes, then a
registry with one amount corrected (the July 2024 approval of the Smart Borders applications,
EUR 52.1 million in the recorded registry, made 52.6 million) and one row taken out (the EUR 18
million legal migration action for North Africa, adopted) publishes:
the build's cell changes hold exactly those two cells, with before and after, and no copy of
the published rows is left in the published file."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest

from pipeline import steps
from tests.conftest import OTHER_SOURCE_DAGS, point_installation_at

TRANSFORM = ("prepare", "load", "audit_raw", "dbt_build", "audit_marts", "publish")
REGISTRY = Path("registries") / "funding_commitments.csv"
CORRECTED_TITLE = ("Specific Action 'Support to Member States for Smart Borders' – applications "
                   "approved")
REMOVED_TITLE = "Legal migration action for North Africa"  # adopted, EUR 18 million, October 2024
# (a row no action of reference.funding_registry_actions names: the seed must match the registry)


def transform(run_id: str) -> None:
    for name in TRANSFORM:
        getattr(steps, name)(run_id)


def curated_copy(root: Path, snapshot_dir: Path, rows: list[dict], header: list[str]) -> Path:
    """A curated folder laid out like the recorded one, its funding registry written anew."""
    folder = root / "curated"
    for entry in snapshot_dir.iterdir():
        if entry.name != "registries":
            (folder / entry.name).parent.mkdir(parents=True, exist_ok=True)
            (folder / entry.name).symlink_to(entry)
    (folder / "registries").mkdir(parents=True)
    for entry in (snapshot_dir / "registries").iterdir():
        if entry.name != REGISTRY.name:
            (folder / "registries" / entry.name).symlink_to(entry)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (folder / REGISTRY).write_text(text.getvalue(), encoding="utf-8")
    return folder


def cells(db: Path, source: str | None = None) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        rel = con.execute("select * from quality.current_cell_changes"
                          + (" where source = ?" if source else "") + " order by cell_label",
                          [source] if source else [])
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row)) for row in rel.fetchall()]


@pytest.fixture(scope="module")
def inst(tmp_path_factory, snapshot_dir):
    root = tmp_path_factory.mktemp("funding_changes")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        mp.setenv("WH_CURATED_DIR", str(snapshot_dir))
        for dag_id in ("frontex_ingest", *OTHER_SOURCE_DAGS):
            steps.land("base", dag_id)
        transform("base")
        yield {"root": root, "mp": mp, "published": root / "wh" / "migration.duckdb"}


def test_a_first_publish_shows_no_funding_cell(inst):
    # Nothing was published before: there are no published rows to compare with.
    assert cells(inst["published"], "funding_registry") == []
    assert cells(inst["published"], "cohesion") == []


def test_a_corrected_registry_shows_the_corrected_and_the_removed_cell(inst, snapshot_dir):
    with (snapshot_dir / REGISTRY).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames), list(reader)
    [corrected] = [r for r in rows if r["action_title"] == CORRECTED_TITLE]
    assert (corrected["as_of_date"], corrected["stage"], corrected["amount_eur"]) == (
        "2024-07", "approved", "52100000"), "the recorded registry changed: pick another row"
    corrected["amount_eur"] = "52600000"
    [removed] = [r for r in rows if r["action_title"] == REMOVED_TITLE]
    assert (removed["stage"], removed["amount_eur"]) == ("adopted", "18000000"), removed
    rows.remove(removed)
    inst["mp"].setenv("WH_CURATED_DIR", str(curated_copy(inst["root"], snapshot_dir, rows,
                                                         header)))
    steps.land("registry-fix", "registries_ingest")
    transform("registry-fix")

    found = cells(inst["published"], "funding_registry")
    by_type = {c["change_type"]: c for c in found}
    assert sorted(by_type) == ["removed", "revised"] and len(found) == 2, (
        "the corrected registry should change exactly one amount and remove one row; cells: "
        + "; ".join(f"{c['change_type']} {c['cell_label']} {c['previous_value']} -> "
                    f"{c['current_value']}" for c in found))
    revised = by_type["revised"]
    assert (revised["previous_value"], revised["current_value"], revised["change"]) == (
        52_100_000, 52_600_000, 500_000), f"the corrected amount is wrong: {revised}"
    assert revised["cell_label"].endswith(" / approved") and CORRECTED_TITLE[:40] in (
        revised["cell_label"]), f"the cell is not the corrected approval: {revised['cell_label']}"
    assert (revised["period"], revised["previous_release"], revised["current_release"],
            revised["is_correction"]) == ("2024-07-01", "as of Jul 2024", "as of Jul 2024",
                                          True), f"the as-of of the correction is wrong: {revised}"
    gone = by_type["removed"]
    assert gone["current_value"] is None and gone["previous_value"] == float(
        removed["amount_eur"]), f"the removed row ({removed['action_title']}, "\
        f"{removed['amount_eur']}) is not the removed cell: {gone}"
    assert gone["cell_label"].endswith(" / " + removed["stage"]), gone
    # Only the registry's file was new: no Frontex or Eurostat cell, no other funding source.
    assert {c["source"] for c in cells(inst["published"])} == {"funding_registry"}

    # The report reads them from the quality history, where the publish recorded them.
    with duckdb.connect(str(inst["root"] / "wh" / "quality_history.duckdb"),
                        read_only=True) as con:
        stored = con.execute("""select change_type, previous_value, current_value
                                from quality.cell_changes where run_id = 'registry-fix'
                                order by change_type""").fetchall()
    assert stored == [("removed", 18_000_000, None), ("revised", 52_100_000, 52_600_000)], (
        f"the quality history did not keep the run's funding cells: {stored}")

    with duckdb.connect(str(inst["published"]), read_only=True) as con:
        left = con.execute("""select table_name from duckdb_tables()
                              where suffix(table_name, '__as_published')""").fetchall()
    assert left == [], f"copies of published rows reached the published file: {left}"


def test_a_build_that_loads_no_funding_file_shows_no_funding_cell(inst):
    # The steps run by hand, with no new file: with no record of what changed the build
    # rebuilds every model, the funding fact included, so its pre-hook keeps a copy of the
    # published rows; no file of this build feeds them, so no funding cell may be reported.
    steps.land("again", "registries_ingest")  # the same registry: nothing new
    transform("again")
    assert cells(inst["published"], "funding_registry") == [], (
        "a build that loaded no funding file still shows the registry's cells")


def test_a_dbt_build_retried_after_its_worker_died_still_compares_with_the_publish(
        inst, snapshot_dir):
    """Airflow retries a transform step whose worker died (WH_TRANSFORM_TASK_RETRIES), and the
    retry starts from what the dead attempt left in the run folder. A dbt build killed after
    it rebuilt the fact (its on-run-end hook never ran) leaves a build database whose fact
    holds the new rows: the retry must still compare them with the published rows, not with
    the dead attempt's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ingest.config import REPO_ROOT
    from pipeline import warehouse

    curated = Path(os.environ["WH_CURATED_DIR"])
    with (curated / REGISTRY).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames), list(reader)
    [corrected] = [r for r in rows if r["action_title"] == CORRECTED_TITLE]
    assert corrected["amount_eur"] == "52600000", "the previous test's registry is not there"
    corrected["amount_eur"] = "52700000"
    inst["mp"].setenv("WH_CURATED_DIR", str(curated_copy(inst["root"] / "retry", snapshot_dir,
                                                         rows, header)))
    steps.land("retried", "registries_ingest")
    for name in ("prepare", "load", "audit_raw"):
        getattr(steps, name)("retried")
    log = warehouse.run_dir("retried") / "dbt" / "logs" / "dbt.log"
    attempt = subprocess.Popen(
        [sys.executable, "-c", "from pipeline import steps; steps.dbt_build('retried')"],
        cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while not (log.exists() and any(
                "OK created" in line and "fct_funding_disbursements" in line
                for line in log.read_text(errors="replace").splitlines())):
            assert attempt.poll() is None, "the first dbt build ended before the fact was built"
            assert time.monotonic() < deadline, "the fact was not built within 15 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(attempt.pid, signal.SIGKILL)  # the worker dies: no on-run-end hook
        attempt.wait()
    steps.dbt_build("retried")  # Airflow's retry, from what the dead attempt left

    found = cells(warehouse.build_db("retried"), "funding_registry")
    assert [(c["change_type"], c["previous_value"], c["current_value"]) for c in found] == [
        ("revised", 52_600_000, 52_700_000)], (
        "the retried build compared the fact with the dead attempt's rows, not the published "
        "ones; cells: " + "; ".join(f"{c['change_type']} {c['cell_label']} "
                                    f"{c['previous_value']} -> {c['current_value']}"
                                    for c in found))
