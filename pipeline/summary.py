"""The summary ``make run`` prints after a publish, read from the published warehouse.

Every figure and every heading comes from one dbt model, ``quality.rpt_run_summary``: label /
value rows under section headings, read from the marts and report models the quality report
reads. This module knows no source and no rule, only how to show a value in its unit, so the
summary and the report cannot disagree and a new source needs no change here.
"""
from __future__ import annotations

from itertools import groupby
from pathlib import Path

from ingest import duck

SUMMARY_MODEL = ("quality", "rpt_run_summary")
"""Schema and name of the dbt model the summary prints."""


def summary(warehouse: Path) -> str:
    """The summary of the published ``warehouse``, read through a read-only connection: each
    section's heading, then its rows aligned (label, value in its unit, the value compared with
    and the change, a note)."""

    schema, model = SUMMARY_MODEL
    with duck.connect(str(warehouse), read_only=True) as con:
        if not con.execute("""select count(*) from information_schema.tables
                              where table_schema = ? and table_name = ?""",
                           [schema, model]).fetchone()[0]:
            return (f"This warehouse was published by an older version (no {schema}.{model}); "
                    "the next run rebuilds it")
        rows = con.execute(f"""select section_position, section, label, value, unit,
                                      previous_value, previous_period, change_pct, note
                               from {schema}.{model}
                               order by section_position, position""").fetchall()
    if not rows:
        return "The warehouse holds no figures yet"
    lines = []
    for (_, section), group in groupby(rows, key=lambda row: row[:2]):
        lines.append(f"{section}:")
        lines += section_lines([row[2:] for row in group])
    return "\n".join(lines)


def section_lines(rows: list[tuple]) -> list[str]:
    """One line per (label, value, unit, previous_value, previous_period, change_pct, note):
    labels left-aligned and values right-aligned within the section."""
    from pipeline.report import in_unit

    shown = [(label, in_unit(value, unit) if value is not None or unit else "",
              compared(previous, previous_period, change, unit), note)
             for label, value, unit, previous, previous_period, change, note in rows]
    label_width = max(len(label) for label, *_ in shown)
    value_width = max(len(value) for _, value, *_ in shown)
    return [f"  {label:<{label_width}}  {value:>{value_width}}{before}"
            + (f"  {note}" if note else "")
            for label, value, before, note in shown]


def compared(previous: float | None, period: str | None, change: float | None,
             unit: str | None) -> str:
    """`` (was 42.7 % in 2015)``, `` (was 16,205 detections, -2.4%)``, or nothing."""
    from pipeline.report import in_unit

    if previous is None:
        return ""
    return (f" (was {in_unit(previous, unit)}" + (f" in {period}" if period else "")
            + (f", {change:+.1f}%" if change is not None else "") + ")")
