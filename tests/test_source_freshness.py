"""dbt source freshness and the report's freshness read one declaration (docs/decisions.md 85).

Each landed source's cadence (late and stale thresholds, the SQL of the date its rows stand for,
the expected cadence and its note) is written once, in its dbt source's YAML. dbt reads it for
``dbt source freshness`` and for the model ``reference.source_cadence``; the report reads it
through ``pipeline.quality.freshness.cadences``. These tests run the real ``dbt source
freshness`` on a copy of the session's build of the recorded snapshot, which is old (Frontex's
release of June 2025, Eurostat's extracts of 2017): both must call those sources stale.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ingest import catalog, duck
from pipeline import dbt
from pipeline.quality.freshness import cadences, freshness

REPORT_WORD = dbt.FRESHNESS_STATES
"""dbt's pass / warn / error and the report's fresh / late / stale."""


def _installation(built_db: Path) -> Path:
    """The folder the built_db fixture landed into (``<root>/wh/runs/fixture/migration.duckdb``)."""
    return built_db.parents[3]


@pytest.fixture
def build_copy(built_db, tmp_path, monkeypatch) -> Path:
    """A copy of the session build in a run folder of its own, the landing of the build's
    installation (what the report's freshness reads beside the warehouse)."""
    monkeypatch.setenv("WH_LANDING_DIR", str(_installation(built_db) / "landing"))
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(built_db, run / built_db.name)
    return run / built_db.name


def _report_judgement(db: Path, project_dir: Path = dbt.PROJECT_DIR) -> dict[str, tuple]:
    """The report's (status, age in days) per source, measured as the report measures it."""
    with duck.connect(str(db), read_only=True) as con:
        return {row[1]: (row[6], row[4]) for row in freshness("t", con, project_dir)}


def _by_dbt_source(judgement: dict[str, tuple], project_dir: Path = dbt.PROJECT_DIR) -> dict:
    return {c.dbt_source: judgement[name] for name, c in cadences(project_dir).items()
            if name in judgement}


def test_every_source_a_dag_loads_declares_its_cadence_and_dbt_agrees(built_db):
    """Every raw table a source folder declares is read by a dbt source whose config says its
    expected cadence; one with an age limit declares dbt freshness (warn_after, error_after, in
    days) and a loaded_at_field. dbt's manifest of the session build, the model
    reference.source_cadence it built and the report's reading of the YAML hold the same."""
    known = cadences()
    manifest = json.loads((built_db.parent / "dbt" / "target" / "manifest.json").read_text())
    by_relation = {f"{s['schema']}.{s['identifier']}": s for s in manifest["sources"].values()}
    with duck.connect(str(built_db), read_only=True) as con:
        model = {r[1]: r for r in con.execute(
            "select source, raw_table, expected_cadence, late_after_days, stale_after_days, "
            "loaded_at_field from reference.source_cadence").fetchall()}
    problems = []
    for spec in catalog.sources():
        cadence = known.get(spec.name)
        source = by_relation.get(spec.raw_table)
        if cadence is None or source is None:
            problems.append(f"{spec.name} ({spec.raw_table}): no dbt source declaring "
                            "config.meta.expected_cadence")
            continue
        fresh = source.get("freshness") or {}
        dbt_days = tuple((fresh.get(w) or {}).get("count") for w in ("warn_after", "error_after"))
        if cadence.expected != "on change" and (None in dbt_days or not source["loaded_at_field"]):
            problems.append(f"{spec.name}: expected {cadence.expected} but dbt's manifest has "
                            f"freshness {dbt_days} and loaded_at_field "
                            f"{source['loaded_at_field']!r}")
        seen = {"report (YAML)": (cadence.late_after, cadence.stale_after,
                                  cadence.loaded_at_field),
                "dbt manifest": (*dbt_days, source["loaded_at_field"]),
                "reference.source_cadence": (model[spec.raw_table][3:6]
                                             if spec.raw_table in model else None)}
        if len({repr(v) for v in seen.values()}) != 1:
            problems.append(f"{spec.name}: the readings differ: {seen}")
    assert not problems, "; ".join(problems)


def test_the_recorded_snapshot_is_stale_for_dbt_and_for_the_report(build_copy):
    """The real ``dbt source freshness`` on the build: the Frontex release (2025-06-03) and the
    Eurostat extracts (2017) are past error_after, and the report calls them stale; every source
    the report judges by age gets dbt's matching word."""
    found = dbt.source_freshness(build_copy, build_copy.parent)
    report = _by_dbt_source(_report_judgement(build_copy))
    for name in ("frontex.detections", "eurostat.observations"):
        assert found[name]["status"] == "error", f"dbt source freshness of {name}: {found[name]}"
        assert report[name][0] == "stale", f"the report's freshness of {name}: {report[name]}"
    judged = {name: status for name, (status, _) in report.items()
              if status in REPORT_WORD.values()}
    assert judged, f"the report judged no source by its age: {report}"
    disagree = {name: (status, found.get(name)) for name, status in judged.items()
                if REPORT_WORD.get((found.get(name) or {}).get("status")) != status}
    assert not disagree, f"dbt source freshness and the report disagree: {disagree}"


def test_a_cadence_changed_in_its_one_place_changes_dbt_and_the_report(build_copy, tmp_path):
    """Raise the Frontex thresholds in a copy of the dbt project (its sources YAML, nothing
    else) so that the release's age (about 550 days, and growing) falls between them: dbt source
    freshness says warn, the report says late, and reference.source_cadence rebuilt from the copy
    holds the new numbers."""
    project = tmp_path / "dbt_project"
    shutil.copytree(dbt.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    age = _report_judgement(build_copy)["frontex"][1]
    late, stale = age - 10, age + 1000
    yml = project / "models" / "staging" / "frontex" / "_frontex__sources.yml"
    text, planted = re.subn(
        r"warn_after: \{count: \d+, period: day\}\n(\s+)error_after: \{count: \d+, period: day\}",
        f"warn_after: {{count: {late}, period: day}}\n\\1error_after: {{count: {stale}, "
        "period: day}", yml.read_text(encoding="utf-8"))
    assert planted == 1, f"{yml}: no freshness block to change"
    yml.write_text(text, encoding="utf-8")

    found = dbt.source_freshness(build_copy, build_copy.parent, project_dir=project)
    assert found["frontex.detections"]["status"] == "warn", found["frontex.detections"]
    report = _report_judgement(build_copy, project)
    assert report["frontex"][0] == "late", f"the report's judgement: {report['frontex']}"
    assert _report_judgement(build_copy)["frontex"][0] == "stale", \
        "the project's own YAML no longer says stale"

    dbt.build(build_copy, build_copy.parent, ["--select", "source_cadence"], project_dir=project)
    with duck.connect(str(build_copy), read_only=True) as con:
        row = con.execute("select late_after_days, stale_after_days from "
                          "reference.source_cadence where source = 'frontex.detections'"
                          ).fetchone()
    assert row == (late, stale), f"reference.source_cadence after the rebuild: {row}"
