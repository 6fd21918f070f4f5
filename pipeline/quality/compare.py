"""What changed between a run and the publish before it, from the quality store alone: new
periods and releases (``quality.coverage``), revisions (``quality.revision_counts`` and the
biggest in ``quality.revisions``), headline indicators that moved (``quality.headlines``), and
checks that newly fail or warn, or were fixed (``quality.results``). The figures compared are the
dbt models' (``models/quality``); this only lines up two runs."""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipeline.quality.store import dicts, has


@dataclass
class Changes:
    previous_run: str | None
    previous_at: object = None
    state: str | None = None                               # of the run compared
    not_compared: list[str] = field(default_factory=list)  # tables the previous run lacks
    periods: list[dict] = field(default_factory=list)     # new periods / releases per subject
    totals: list[dict] = field(default_factory=list)      # same periods, other total
    revisions: list[dict] = field(default_factory=list)   # new revision sets
    headlines: list[dict] = field(default_factory=list)   # headline values that moved
    new_failures: list[dict] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)       # cells the run's new files changed
    cells_per_source: dict[str, int] = field(default_factory=dict)  # how many in all

    @property
    def anything(self) -> bool:
        return bool(self.periods or self.totals or self.revisions or self.headlines
                    or self.new_failures or self.fixed or self.cells)


def previous_publish(q: duckdb.DuckDBPyConnection, run_id: str) -> tuple[str, object] | None:
    """The last published run recorded before ``run_id``."""
    found = q.execute("""select run_id, recorded_at from quality.runs
                         where state = 'published' and run_id <> ?
                           and recorded_at < coalesce((select recorded_at from quality.runs
                                                       where run_id = ?), now())
                         order by recorded_at desc limit 1""", [run_id, run_id]).fetchone()
    return (found[0], found[1]) if found else None


def _recorded(q, table: str, run_id: str) -> bool:
    return has(q, "quality", table) and bool(q.execute(
        f"select count(*) from quality.{table} where run_id = ?", [run_id]).fetchone()[0])


def since_previous_publish(q: duckdb.DuckDBPyConnection, run_id: str) -> Changes:
    """What ``run_id`` changed against the publish before it. A failed run published nothing:
    only its checks are compared (new failures). Tables the previous publish has no rows in
    (recorded by older code) are not compared, and named in ``not_compared``."""
    found = q.execute("select state from quality.runs where run_id = ?", [run_id]).fetchone()
    state = found[0] if found else None
    previous = previous_publish(q, run_id)
    if previous is None:
        return Changes(previous_run=None, state=state)
    prev, at = previous
    out = Changes(previous_run=prev, previous_at=at, state=state)
    params = [run_id, prev]
    data = state != "failed"
    for table in ("coverage", "revision_counts", "headlines"):
        if data and _recorded(q, table, run_id) and not _recorded(q, table, prev):
            out.not_compared.append(table)
    if data and "coverage" not in out.not_compared and has(q, "quality", "coverage"):
        out.periods = dicts(q, """
            select c.source, c.subject, p.last_period as previous_last, c.last_period,
                   p.release as previous_release, c.release,
                   c.observations - coalesce(p.observations, 0) as added_observations,
                   p.subject is null as is_new_subject
            from quality.coverage c
            left join quality.coverage p
              on p.run_id = ? and p.source = c.source and p.subject = c.subject
            where c.run_id = ?
              and (p.subject is null or c.last_period is distinct from p.last_period
                   or c.release is distinct from p.release)
            order by c.source, c.subject""", [prev, run_id])
        out.totals = dicts(q, """
            select c.source, c.subject, c.last_period, p.total as previous_total, c.total,
                   c.total - p.total as change, c.unit
            from quality.coverage c
            join quality.coverage p
              on p.run_id = ? and p.source = c.source and p.subject = c.subject
             and p.last_period = c.last_period
            where c.run_id = ? and c.total is distinct from p.total
            order by abs(c.total - p.total) desc nulls last""", [prev, run_id])
    if data and "revision_counts" not in out.not_compared and has(q, "quality", "revision_counts"):
        out.revisions = dicts(q, """
            select c.source, c.subject, c.current_release, c.cells, c.corrections,
                   c.total_abs_change, c.biggest_cell, c.biggest_change
            from quality.revision_counts c
            where c.run_id = ?
              and not exists (select 1 from quality.revision_counts p
                              where p.run_id = ? and p.source = c.source
                                and p.subject = c.subject
                                and p.current_release is not distinct from c.current_release
                                and p.cells = c.cells)
            order by c.source, c.total_abs_change desc""", params)
    if data and "headlines" not in out.not_compared and has(q, "quality", "headlines"):
        out.headlines = dicts(q, """
            select c.label, c.unit, p.period as previous_period, p.value as previous_value,
                   c.period, c.value, c.value - p.value as change
            from quality.headlines c
            join quality.headlines p on p.run_id = ? and p.indicator = c.indicator
            where c.run_id = ?
              and (c.value is distinct from p.value or c.period is distinct from p.period)
            order by c.position""", [prev, run_id])
    if state == "published" and _recorded(q, "cell_changes", run_id):
        # Cell by cell, what the files this run loaded changed: measured by dbt against the last
        # publish by construction (quality.current_cell_changes), newest vintage first.
        rows = dicts(q, """
            select source, subject, cell_label, period, route, border_type, nationality,
                   change_type, previous_value, current_value, change, previous_release,
                   current_release, is_correction, source_cells
            from quality.cell_changes where run_id = ?
            order by newest_rank, abs(change) desc nulls last, period desc, source,
                     cell_label""", [run_id])
        # How many cells each source changed in all (the store keeps the first 250 of each).
        out.cells_per_source = {s: n for s, n in sorted({(r["source"], r["source_cells"])
                                                         for r in rows})}
        out.cells = [{k: v for k, v in r.items() if k != "source_cells"} for r in rows]
    failing = """select stage, suite, rule, severity, max(unexpected_count) as rows,
                        any_value(description) as description
                 from quality.results where run_id = ? and not success group by all"""
    out.new_failures = dicts(q, f"""
        select * from ({failing}) c
        where not exists (select 1 from quality.results p
                          where p.run_id = ? and not p.success and p.stage = c.stage
                            and p.suite = c.suite and p.rule = c.rule)
        order by severity, stage, suite, rule""", params)
    out.fixed = dicts(q, f"""
        select * from ({failing}) p
        where not exists (select 1 from quality.results c
                          where c.run_id = ? and not c.success and c.stage = p.stage
                            and c.suite = p.suite and c.rule = p.rule)
          -- fixed only where this run checked the rule again: a GX rule has a result row
          -- (passed); dbt records failing tests only, so its suite must have run
          and (exists (select 1 from quality.results r
                       where r.run_id = ? and r.stage = p.stage and r.suite = p.suite
                         and r.rule = p.rule)
               or (p.stage = 'dbt' and exists (select 1 from quality.checks k
                                               where k.run_id = ? and k.stage = 'dbt')))
        order by severity, stage, suite, rule""", [prev, run_id, run_id, run_id])
    return out
