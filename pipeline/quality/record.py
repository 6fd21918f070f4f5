"""Record one transform run in the quality store: its state and failure (``failure.json``), every
Great Expectations result and dbt test of its run folder, and the measures dbt computed from the
data it built (``models/quality``: completeness, flags, revisions, coverage, headline
indicators), with the freshness of each source (``pipeline.quality.freshness``). Python only
moves these rows: what a measure means is written once, in the dbt models."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from ingest import duck

from pipeline import warehouse
from pipeline.quality import store
from pipeline.quality.freshness import freshness

log = logging.getLogger(__name__)

SAMPLE_ROWS = 5
TOP_REVISIONS = 25
"""Revisions kept per source and run (the biggest); every one stays in the revisions marts."""
CELL_CHANGES_KEPT = 250
"""Cells a run changed kept per source in the quality store (newest vintage first, then the
biggest); the report shows the first ten and the rest a click away, and every one stays in the
revisions marts of the published warehouse."""

MEASURES = {
    # store table: the select from the dbt model of the measured database
    "completeness": "select source, subject, present, expected, note "
                    "from quality.current_completeness order by source, subject",
    "flags": "select dataset, observations, provisional, estimated, confidential, missing "
             "from quality.current_flags order by dataset",
    "revisions": f"""select source, subject, cell, previous_value, current_value, change,
                            previous_release, current_release, cell_label, is_correction,
                            first_value, first_release
                     from quality.current_revisions
                     where is_newest and size_rank <= {TOP_REVISIONS}
                     order by source, size_rank""",
    "revision_counts": """select source, subject, current_release, count(*),
                                 count(*) filter (where is_correction), sum(abs(change)),
                                 arg_max(coalesce(cell_label, cell), abs(change)),
                                 arg_max(change, abs(change))
                          from quality.current_revisions group by all order by all""",
    "cell_changes": f"""select source, subject, cell_label, period, route, border_type,
                               nationality, change_type, previous_value, current_value, change,
                               previous_release, current_release, is_correction, newest_rank,
                               count(*) over (partition by source) as source_cells
                        from quality.current_cell_changes
                        qualify row_number() over (
                            partition by source
                            order by newest_rank, abs(change) desc nulls last, period desc, cell_label)
                            <= {CELL_CHANGES_KEPT}
                        order by source, newest_rank, abs(change) desc nulls last, period desc,
                                 cell_label""",
    "coverage": "select source, subject, first_period, last_period, observations, total, unit, "
                "release from quality.current_coverage order by source, subject",
    "headlines": "select position, indicator, label, definition, unit, period, value, "
                 "previous_period, previous_value, basis, source_model, change_pct "
                 "from quality.rpt_headline_indicators order by position",
}
MODELS = {"completeness": "current_completeness", "flags": "current_flags",
          "cell_changes": "current_cell_changes",
          "revisions": "current_revisions", "revision_counts": "current_revisions",
          "coverage": "current_coverage", "headlines": "rpt_headline_indicators"}


def record_run(run_id: str, state: str, measured_db: Path | None = None,
               measured_label: str | None = None, note: str | None = None) -> None:
    """Gather run ``run_id`` into the quality store (replacing what it held for that run).
    ``measured_db`` is the database whose data the measures describe: the build database of a
    run that got that far, else the published warehouse; ``measured_label`` names it in the
    record (the published path, for a build database about to be published)."""
    folder = warehouse.run_dir(run_id)
    failure = _read_json(folder / warehouse.FAILURE_FILE) or {}
    published = warehouse.published_path()
    measured = measured_db if measured_db and measured_db.exists() else (
        published if published.exists() else None)
    rows = {
        "runs": [(run_id, datetime.now(timezone.utc), state, failure.get("step"),
                  failure.get("message"), measured_label or (str(measured) if measured else None),
                  None, note)],
        "checks": [], "results": [],
    }
    for stage in ("raw", "marts"):
        _gx_rows(run_id, stage, folder / "audit" / stage, rows)
    _dbt_rows(run_id, folder / "dbt" / "target", rows)
    if measured:
        # Only a publish changed cells: a failed or unchanged run measures the published
        # warehouse, whose current_cell_changes are the cells its own build changed.
        rows.update(measure(run_id, measured, skip=() if state == "published"
                            else ("cell_changes",)))
        rows.setdefault("cell_changes", [])
    store.write(run_id, rows)
    log.info("quality store %s: run %s recorded as %s (%d checks)", store.store_path(), run_id,
             state, len(rows["checks"]))


def measure(run_id: str, db: Path, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """The measures of the data in ``db`` (read-only): the dbt models of schema quality (but
    ``skip``), and freshness. A database dbt never built has only freshness."""
    out: dict[str, list[tuple]] = {}
    with duck.connect(str(db), read_only=True) as con:
        out["freshness"] = freshness(run_id, con)
        for table, sql in MEASURES.items():
            if table in skip:
                continue
            out[table] = ([(run_id, *row) for row in con.execute(sql).fetchall()]
                          if store.has(con, "quality", MODELS[table]) else [])
    return out


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _gx_rows(run_id: str, stage: str, folder: Path, rows: dict) -> None:
    summary = _read_json(folder / f"audit_{stage}.json")
    if not summary:
        return
    for check in summary.get("checks", []):
        suite = check["suite"]
        rows["checks"].append((run_id, stage, suite, check.get("subject"), check.get("rows"),
                               check["evaluated"], check["evaluated"] - check["failed"],
                               check["failed"], 0))
        detail = _read_json(folder / f"{suite}.json") or {}
        for result in detail.get("results", []):
            config = result.get("expectation_config") or {}
            outcome = result.get("result") or {}
            examples = (outcome.get("partial_unexpected_index_list")
                        or outcome.get("partial_unexpected_list"))
            if examples is None and not result.get("success"):
                examples = {"observed_value": outcome.get("observed_value")}
            meta = config.get("meta") or {}
            rows["results"].append((
                run_id, stage, suite, meta.get("rule") or config.get("type"),
                config.get("type"), bool(result.get("success")), "error",
                outcome.get("unexpected_count"),
                json.dumps(examples[:SAMPLE_ROWS] if isinstance(examples, list) else examples,
                           default=str) if examples else None,
                meta.get("description") or meta.get("notes")))


def _dbt_rows(run_id: str, target: Path, rows: dict) -> None:
    results = (_read_json(target / "run_results.json") or {}).get("results", [])
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    if not tests:
        return
    nodes = (_read_json(target / "manifest.json") or {}).get("nodes", {})
    failed = [r for r in tests if r["status"] in ("fail", "error")]
    warned = [r for r in tests if r["status"] == "warn"]
    rows["checks"].append((run_id, "dbt", "dbt build tests", "dbt_project", None, len(tests),
                           len(tests) - len(failed) - len(warned), len(failed), len(warned)))
    for r in failed + warned:
        rows["results"].append((
            run_id, "dbt", "dbt build tests", r["unique_id"].split(".")[-1], r["unique_id"],
            False, "warn" if r["status"] == "warn" else "error", r.get("failures"),
            json.dumps((r.get("message") or "")[:500]),
            (nodes.get(r["unique_id"], {}).get("description") or None)))
