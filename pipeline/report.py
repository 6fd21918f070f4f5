"""The data-quality report for analysts: one self-contained HTML page per run.

It answers "what changed, and can I trust it": a verdict at the top (publishable and why, what to
be careful with), what changed since the previous publish, the headline indicators with their
definitions and units, each source's freshness against its publisher's cadence, every check,
the flags, the revisions, the reconciliation with the publishers' headline figures, charts and
the run history. Built from the quality store (``pipeline.quality``) and the published warehouse,
both opened read-only; the figures come from dbt models (``models/quality``), the page from the
Jinja2 template ``pipeline/templates/report.html.j2``. Styles are inline, charts inline SVG, and
nothing is fetched: it renders the same offline.

Written to ``<reports>/<timestamp>/index.html``; the run's Great Expectations Data Docs and the
dbt docs of the published warehouse are kept once per run in ``<reports>/runs/<run_id>/`` and
linked; ``<reports>/latest.html`` is the same report, older reports are kept.

``python -m pipeline.report`` (``make report``) rebuilds the report of the latest recorded run
from the stored results, without running the pipeline.
"""
from __future__ import annotations

import argparse
import atexit
import fcntl
import logging
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from expectations.audit import sql_text
from ingest import duck
from ingest import catalog
from ingest.config import settings
from pipeline import charts, quality, scratch
from pipeline.quality import compare
from pipeline.quality.store import dicts, has

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
SECTIONS = ("Verdict", "What changed since the previous publish", "Headline indicators",
            "Sources: freshness and completeness", "Checks", "Flags", "Revisions",
            "Reconciliation with published figures", "Charts", "History", "Documentation")
FUNDING_OUTLIER_EUR = 1e10
"""Single amounts above this (the EUR 300bn Global Gateway) are named beside the funding chart
rather than drawn, so the other bars stay readable."""


def reports_dir() -> Path:
    return settings().reports_dir


# --- formatting (template filters) -------------------------------------------------------------

def number(value: object, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if digits is not None:
            return f"{value:,.{digits}f}"
        if isinstance(value, float) and value != int(value):
            return f"{value:,.2f}"
        return f"{int(value):,}"
    return str(value)


def in_unit(value: object, unit: str | None) -> str:
    """A headline value in its unit: 50,226 detections; 50.1 %; EUR 806.3m."""
    if value is None:
        return "no data"
    if unit == "percent":
        return f"{value:,.1f} %"
    if unit == "EUR":
        return f"EUR {value / 1e6:,.1f}m"
    return f"{number(value)} {unit or ''}".strip()


def signed(value: object, unit: str = "") -> str:
    if value is None:
        return ""
    text = number(value, 1 if isinstance(value, float) and value != int(value) else None)
    return f"{'+' if value > 0 else ''}{text}{unit}"


def status_class(status: object) -> str:
    return {"fresh": "good", "late": "warn", "stale": "bad", "none landed": "bad"}.get(
        str(status), "")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(number=number, in_unit=in_unit, signed=signed,
                       status_class=status_class)
    return env


# --- reading -----------------------------------------------------------------------------------

def _one(con, sql: str, params: list | None = None) -> dict | None:
    rows = dicts(con, sql, params)
    return rows[0] if rows else None


def checked_run(q, run_id: str) -> str:
    """The run whose checks describe the published data: this one, or for a run that found
    nothing new (and checked nothing), the last published run."""
    run = _one(q, "select state from quality.runs where run_id = ?", [run_id])
    return data_run(q, run_id) if run and run["state"] == "unchanged" else run_id


def data_run(q, run_id: str) -> str:
    """The run whose measures describe the published data: a published run's own; for a run
    that was not published (unchanged, failed), the last publish (a failed run's measures are
    of its build, which nobody can read)."""
    run = _one(q, "select state from quality.runs where run_id = ?", [run_id])
    if run and run["state"] != "published":
        previous = compare.previous_publish(q, run_id)
        if previous:
            return previous[0]
    return run_id


def _coverage_name(source: str) -> str:
    """A source's name in quality.coverage (``SourceSpec.coverage_name``, else its own)."""
    spec = catalog.BY_NAME.get(source)
    return (spec.coverage_name if spec else None) or source


def sources(q, run_id: str, wh) -> list[dict]:
    """Freshness measured now (a report rebuilt a week later says so), loads as of the run."""
    live = quality.freshness(run_id, wh) if wh is not None else []
    cadence = quality.cadences()
    coverage: dict[str, str] = {}
    if has(q, "quality", "coverage"):
        # Per source: each last period with the subjects that end there ("2016 (migr_eiord
        # ordered_to_leave, ...); 2024 (migr_asyappctza)"), not one maximum over them all.
        for row in dicts(q, """
                select source, string_agg(last_period || ' (' || subjects || ')', '; '
                                          order by last_period desc) as held
                from (select source, last_period,
                             case when count(*) > 3 then count(*)::varchar || ' series'
                                  else string_agg(subject, ', ' order by subject) end
                                 as subjects
                      from quality.coverage where run_id = ? and last_period is not null
                      group by source, last_period)
                group by source""", [data_run(q, run_id)]):
            coverage[row["source"]] = row["held"]
    out = []
    for (_, source, release, fetched, age, expected, status, files, latest, previous,
         complete) in sorted(live, key=lambda r: r[1]):
        c = cadence.get(source)
        out.append({
            "source": source, "cadence": expected, "status": status, "release": release,
            "fetched": fetched, "age": age, "files": files, "rows_latest": latest,
            "rows_previous": previous,
            "rows_change_pct": (round(100.0 * (latest - previous) / previous, 1)
                                if previous else None),
            "completeness": complete, "note": c.note if c else "",
            "late_after": c.late_after if c else None, "stale_after": c.stale_after if c else None,
            "last_period": coverage.get(_coverage_name(source)),
            "meaning": _freshness_meaning(status, expected, age, c,
                                          coverage.get(_coverage_name(source))),
        })
    return out


def _freshness_meaning(status, expected, age, cadence, last_period) -> str:
    held = f" The warehouse holds figures up to {last_period}." if last_period else ""
    if status == "fresh":
        return f"Up to date: the newest release is {age} days old, within its {expected} cadence."
    if status == "late":
        return (f"Late: {age} days since the newest release, more than the {cadence.late_after} "
                f"days a {expected} source usually takes; a newer release may be out.{held}")
    if status == "stale":
        return (f"Stale: {age} days since the newest release, beyond {cadence.stale_after} days "
                f"for a {expected} source; newer figures exist at the publisher and are not "
                f"here (or fetching fails: see the source DAG).{held}")
    if status == "curated":
        return "Curated by hand, updated when the underlying documents change: no age limit."
    return "Nothing landed yet: the source has not been fetched, or every fetch failed."


CAUTION_ORDER = ("stale", "late", "partial", "correction", "reconciliation", "run", "warning")
"""What the verdict's cautions put first: a source out of date against its publisher's cadence,
then one running late, a partial snapshot, a correction published by this run, the publisher's
own figures that differ, what the run itself noticed, and warnings of checks."""


def _caution(kind: str, text: str, detail: str | None = None) -> dict:
    return {"kind": kind, "text": text, "detail": detail}


def cautions(run: dict, warnings: list[dict], fresh: list[dict], recon: dict,
             changes=None) -> list[dict]:
    """The verdict's cautions in plain words, the most important first (``CAUTION_ORDER``);
    each with the technical detail (check and rule names, files) the details list shows."""
    out = []
    titles = {spec.name: spec.title for spec in catalog.sources()}
    for s in fresh:
        name = titles.get(s["source"], s["source"])
        # "Stale: 550 days since ..." -> "<title> is out of date: 550 days since ..."
        meaning = s["meaning"].split(": ", 1)[1] if s["status"] in ("stale", "late") \
            else s["meaning"]
        if s["status"] in ("stale", "none landed"):
            out.append(_caution("stale", f"{name} is out of date: {meaning}",
                                f"source {s['source']}: {s['status']}, newest release "
                                f"{s['release'] or 'none'}, {s['cadence'] or 'no'} cadence"))
        elif s["status"] == "late":
            out.append(_caution("late", f"{name} is running late: {meaning}",
                                f"source {s['source']}: late"))
        if s["completeness"] and str(s["completeness"]).startswith("PARTIAL"):
            out.append(_caution("partial", f"{name}: {s['completeness']}",
                                f"source {s['source']}: partial snapshot"))
    if changes is not None and changes.cells:
        fixed = [c for c in changes.cells if c["is_correction"]]
        for release in dict.fromkeys(c["current_release"] for c in fixed):
            of = [c for c in fixed if c["current_release"] == release]
            top = of[0]
            out.append(_caution(
                "correction",
                f"A correction was published today: {titles.get(top['source'], top['source'])} "
                f"re-issued {release}, changing {len(of):,} value{'s' if len(of) != 1 else ''} "
                f"already published; the biggest: {top['cell_label']}, "
                f"{number(top['previous_value'])} before, {number(top['current_value'])} now "
                "(see What changed).",
                f"correction of {release} ({top['source']})"))
    if recon.get("differs"):
        out.append(_caution("reconciliation",
                            f"{recon['differs']} of the publisher's own headline figures differ "
                            "from the warehouse beyond rounding (see Reconciliation)."))
    if run["state"] == "published" and run["note"]:
        # What the run itself noticed (a step started again after its worker died, a broken
        # published file set aside), in its own words.
        out += [_caution("run", line) for line in str(run["note"]).splitlines() if line.strip()]
    for w in warnings:
        rows = f" ({w['unexpected_count']:,} rows)" if w["unexpected_count"] else ""
        out.append(_caution(
            "warning",
            (w["description"].strip() if w["description"] else
             "A check warned; a warning does not block publish (see Checks).") + rows,
            f"warning: {w['suite']} ({w['stage']}) {w['rule']}"))
    return sorted(out, key=lambda c: CAUTION_ORDER.index(c["kind"]))


def verdict(q, run_id: str, fresh: list[dict], recon: dict, changes=None) -> dict:
    """Published or not, why, and the cautions that matter first (``cautions``), in plain
    words; run ids and check names only in ``details``."""
    run = _one(q, """select state, failed_step, failure_message, recorded_at, measured_db, note
                     from quality.runs where run_id = ?""", [run_id])
    if run is None:
        return {"state": "missing", "css": "failed", "title": f"No recorded run {run_id}",
                "why": [], "careful": [], "details": [], "message": None, "blocking": [],
                "recorded_at": None, "measured": None, "checked_run": run_id}
    checked = checked_run(q, run_id)
    totals = _one(q, """select count(*) as suites, coalesce(sum(evaluated), 0) as evaluated,
                               coalesce(sum(failed), 0) as failed,
                               coalesce(sum(warned), 0) as warned
                        from quality.checks where run_id = ?""", [checked])
    blocking = dicts(q, """select stage, suite, rule, unexpected_count, description
                            from quality.results
                            where run_id = ? and not success and severity = 'error'
                            order by stage, suite""", [run_id])
    warnings = dicts(q, """select stage, suite, rule, unexpected_count, description
                            from quality.results
                            where run_id = ? and not success and severity = 'warn'
                            order by stage, suite""", [checked])
    why = []
    details = [f"This run: {run_id}."]
    if run["state"] == "failed":
        title = "Not publishable: nothing was published"
        css = "failed"
        why.append(f"The run stopped at step {run['failed_step']}; the published warehouse "
                   "is unchanged, and every figure below is the one it already held.")
    elif run["state"] == "unchanged":
        title = "Unchanged: the published warehouse is still current"
        css = "ok"
        why.append(f"The run found {run['note']}; nothing was rebuilt. The checks below are "
                   "those of that publish.")
        details.append(f"Checks of the publish: run {checked}.")
    else:
        title = "Published: every blocking check passed"
        css = "ok"
        why.append(f"Every blocking check passed: {totals['evaluated']:,} expectations and tests "
                   f"in {totals['suites']} suites, none failed; the warehouse was replaced "
                   "atomically.")
    careful = cautions(run, warnings, fresh, recon, changes)
    details += [c["detail"] for c in careful if c["detail"]]
    return {"state": run["state"], "css": css, "title": title, "why": why, "careful": careful,
            "details": details,
            "message": "\n".join((run["failure_message"] or "").splitlines()[:12]) or None,
            "blocking": blocking, "recorded_at": run["recorded_at"],
            "measured": run["measured_db"], "checked_run": checked}


def reconciliation(wh) -> dict:
    if wh is None or not has(wh, "marts", "rpt_returns_reconciliation"):
        return {"available": False, "statuses": [], "rows": [], "differs": 0}
    statuses = dicts(wh, """select status, count(*) as figures
                             from marts.rpt_returns_reconciliation group by 1 order by 2 desc""")
    rows = dicts(wh, """select period, geo, citizen, indicator, published_value,
                                warehouse_value, difference, status, published_on
                         from marts.rpt_returns_reconciliation
                         where status in ('differs', 'match_within_rounding', 'match')
                         order by abs(coalesce(difference, 0)) desc limit 20""")
    ranges = _one(wh, """select (select min(period) from marts.rpt_returns_reconciliation)
                                    as published_first,
                                (select max(period) from marts.rpt_returns_reconciliation)
                                    as published_last,
                                (select min(period) from marts.fct_returns) as warehouse_first,
                                (select max(period) from marts.fct_returns) as warehouse_last""")
    return {"available": True, "statuses": statuses, "rows": rows, "ranges": ranges,
            "differs": sum(s["figures"] for s in statuses if s["status"] == "differs")}


def chart_figures(wh) -> list[dict]:
    """Each chart with its data, its caption (what it shows, what it does not) and the SVG."""
    out: list[dict] = []
    if wh is None or not has(wh, "quality", "rpt_detections_by_route_month"):
        return out
    routes = dicts(wh, """select route, strftime(month, '%Y-%m') as month, detections,
                                  release_date from quality.rpt_detections_by_route_month
                           order by month, route""")
    if routes:
        months = sorted({r["month"] for r in routes})
        series: dict[str, list] = {}
        for r in routes:
            series.setdefault(r["route"], [None] * len(months))[months.index(r["month"])] = \
                r["detections"]
        out.append({
            "title": f"Detections by route per month, {months[0]} to {months[-1]} "
                     f"(release {routes[0]['release_date']})",
            "caption": "Every month of the newest release, one line per route; all "
                       "border types and nationalities. Recent months are restated by later "
                       "releases.",
            "data": series, "svg": charts.line_chart(
                f"Detections by route per month (release {routes[0]['release_date']})",
                months, series)})
    # The mart holds the current release only (fct_border_crossings_current): no filter here.
    ytd = dicts(wh, """select route, change_pct, ytd_detections, prior_ytd_detections,
                               through_month from marts.rpt_detections_ytd_by_route
                        order by change_pct nulls last, route""")
    shown = [r for r in ytd if r["change_pct"] is not None]
    if shown:
        left_out = [r["route"] for r in ytd if r["change_pct"] is None]
        through = shown[0]["through_month"]
        out.append({
            "title": f"Year-to-date change by route, Jan-{through:%b %Y} against a year "
                     "earlier (%)",
            "caption": "Detections from January to the last month of the newest release against "
                       "the same months of the year before." + (
                           f" Not shown (no detections a year earlier, so no percentage): "
                           f"{', '.join(left_out)}." if left_out else ""),
            "data": {r["route"]: r["change_pct"] for r in shown},
            "svg": charts.bar_chart(
                f"Year-to-date change by route, through {through:%b %Y} (%)",
                [(r["route"], r["change_pct"]) for r in shown], "%", signed=True)})
    rates = dicts(wh, """select * from quality.rpt_return_rates_top_citizenships
                         order by orders_rank""")
    if rates:
        over = [r["citizen_label"] for r in rates if r["exceeds_100"]]
        out.append({
            "title": f"Return rate of the 12 citizenships with most orders to leave, "
                     f"{rates[0]['geo']}, {rates[0]['period']}",
            "caption": "Persons returned divided by persons ordered to leave in the same year. "
                       "Both are flows of that year, not one cohort followed over time: people "
                       "ordered to leave in one year may leave in the next, so a rate can pass "
                       "100% (dashed line)." + (
                           f" Above 100% here: {', '.join(over)}." if over else ""),
            "data": {r["citizen_label"]: r["return_rate_pct"] for r in rates},
            "svg": charts.bar_chart(
                f"Return rate (returned / ordered to leave), {rates[0]['geo']}, "
                f"{rates[0]['period']} (%)",
                [(r["citizen_label"], r["return_rate_pct"]) for r in rates], "%",
                reference=100.0)})
    funding = dicts(wh, """
        with latest as (select source, max(as_of_date) as as_of_date
                        from quality.rpt_funding_by_stage group by source)
        select f.* from quality.rpt_funding_by_stage f join latest using (source, as_of_date)
        order by f.source, f.stage_order""")
    for source in sorted({r["source"] for r in funding}):
        rows = [r for r in funding if r["source"] == source]
        as_of = rows[0]["as_of_date"]
        aside = [r for r in rows if r["largest_item_eur"] > FUNDING_OUTLIER_EUR]
        bars = [(r["stage"], (r["amount_eur"] - (r["largest_item_eur"] if r in aside else 0))
                 / 1e6) for r in rows]
        out.append({
            "title": f"Funding by stage, {source}, as of {as_of} (EUR million)",
            "caption": f"Amounts stated as of {as_of} only, by stage; items recorded at other "
                       "dates are not added (two dates are two states of the same money), nor "
                       "are components added to the action they belong to." + "".join(
                           f" The {r['stage']} bar leaves out {r['largest_item']} "
                           f"(EUR {r['largest_item_eur'] / 1e6:,.0f}m), which would flatten "
                           "the rest." for r in aside),
            "data": dict(bars),
            "svg": charts.bar_chart(f"Funding by stage, {source}, as of {as_of} (EUR million)",
                                    bars, "m")})
    return out


def history(q) -> list[dict]:
    return dicts(q, """select r.run_id, r.recorded_at, r.state, r.failed_step,
                               sum(c.failed) as failed, sum(c.warned) as warned, r.note
                        from quality.runs r left join quality.checks c using (run_id)
                        group by all order by r.recorded_at desc limit 15""")


def context(run_id: str, q, wh) -> dict:
    from pipeline import warehouse

    fresh = sources(q, run_id, wh)
    recon = reconciliation(wh)
    checked = checked_run(q, run_id)
    measured = data_run(q, run_id)
    headlines_run = measured if has(q, "quality", "headlines") else None
    changes = compare.since_previous_publish(q, run_id)
    return {
        "run_id": run_id,
        "generated": datetime.now(timezone.utc),
        "published_path": warehouse.published_label(),
        "verdict": verdict(q, run_id, fresh, recon, changes),
        "measured_run": measured,
        "changes": changes,
        "source_titles": {s.name: s.title for s in catalog.sources()},
        "headlines": dicts(q, """select * from quality.headlines where run_id = ?
                                  order by position""", [headlines_run])
                     if headlines_run else [],
        "sources": fresh,
        "completeness": dicts(q, """select source, subject, present, expected, note
                                     from quality.completeness where run_id = ?
                                     order by source, subject""", [measured]),
        "checks": dicts(q, """select stage, suite, subject, rows_validated, evaluated, passed,
                                      failed, warned from quality.checks where run_id = ?
                               order by case stage when 'raw' then 1 when 'dbt' then 2 else 3 end,
                                        suite""", [checked]),
        "failing": dicts(q, """select stage, suite, rule, severity, unexpected_count, examples,
                                       description
                                from quality.results where run_id = ? and not success
                                order by severity, stage, suite""", [checked]),
        "flags": dicts(q, """select * exclude (run_id) from quality.flags where run_id = ?
                              order by dataset""", [measured]),
        "revisions": revisions(q, measured),
        "reconciliation": recon,
        "charts": chart_figures(wh),
        "history": history(q),
    }


def revisions(q, run_id: str) -> list[dict]:
    # Rows recorded before the revisions marts have no label: the key stands in.
    titles = " ".join(f"when {sql_text(s.name)} then {sql_text(s.title)}"
                      for s in catalog.sources())
    return dicts(q, f"""
        select case source {titles} else source end as source,
               subject, coalesce(cell_label, cell) as cell, previous_value, current_value,
               change, previous_release, current_release,
               case when is_correction then 'yes, same release re-issued'
                    when is_correction is not null then 'no' end as correction,
               first_value, first_release
        from quality.revisions where run_id = ?
        order by source, abs(change) desc nulls last, subject, cell""", [run_id])


def gather(run_id: str) -> dict:
    """What the report of ``run_id`` shows, read from the quality store and the published
    warehouse (both read-only)."""
    from pipeline import warehouse

    published = warehouse.published_path()
    with duck.connect(str(quality.store_path()), read_only=True) as q:
        wh = duck.connect(str(published), read_only=True) if published.exists() else None
        try:
            return context(run_id, q, wh)
        finally:
            if wh is not None:
                wh.close()


def render(data: dict, links: dict | None = None) -> str:
    """The report as one HTML document; ``links`` maps "data_docs_raw", "data_docs_marts",
    "dbt_docs" and "self" to relative URLs where those exist."""
    return _environment().get_template("report.html.j2").render(
        sections=SECTIONS, links=links or {}, **data)


def _docs_of(run_id: str) -> tuple[Path | None, Path | None]:
    """The run's GX Data Docs folder and the dbt docs page of the warehouse it reports on."""
    from pipeline import warehouse

    with duck.connect(str(quality.store_path()), read_only=True) as q:
        # The checks shown are the checked run's (an unchanged run's: the publish's).
        data_docs = warehouse.run_dir(checked_run(q, run_id)) / "data_docs"
        # The publish the report describes: this run's, else (unchanged or failed) the last one.
        candidates = [checked_run(q, run_id)]
        previous = compare.previous_publish(q, run_id)
        if previous:
            candidates.append(previous[0])
    pages = [warehouse.run_dir(r) / "dbt" / "target" / "static_index.html" for r in candidates]
    dbt_docs = next((page for page in pages if page.is_file()), pages[0])
    return (data_docs if data_docs.is_dir() else None,
            dbt_docs if dbt_docs.is_file() else None)


def _keep_once(source: Path, target: Path) -> Path:
    """Copy ``source`` (a file or folder) to ``target`` unless it is there already, through a
    staged name and a rename: the docs of a run are copied once, however many reports (the
    daily quality_report DAG writes one a day) link them. Writers hold the reports lock."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if staged.exists():
        shutil.rmtree(staged) if staged.is_dir() else staged.unlink()
    if source.is_dir():
        shutil.copytree(source, staged, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, staged)
    os.replace(staged, target)
    return target


def _link_or_copy(source, target) -> None:
    """A hard link where the run folder and the reports share a filesystem (the docs are
    written once and never changed: one copy on disk, docs/decisions.md 86), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write(run_id: str, data_docs_source: Path | None = None,
          dbt_docs_source: Path | None = None) -> Path:
    """Write the report of ``run_id`` into a new timestamped folder and the same report as
    ``latest.html``. The run's Data Docs and the dbt docs of the publish it reports on are kept
    once per run under ``<reports>/runs/<run_id>/`` and linked. Writers (the transform's report
    step, the daily quality_report DAG, make report) take turns on a lock; the page is rendered
    before anything is written, so a failure leaves no empty folder."""
    root = reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    quality.store.upgrade()  # a store of older code gets the columns the report reads
    with (root / ".write.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        folder = root / stamp
        found_docs, found_dbt = _docs_of(run_id)
        data_docs_source = data_docs_source or found_docs
        dbt_docs_source = dbt_docs_source or found_dbt
        kept: dict[str, Path] = {}
        if data_docs_source is not None and data_docs_source.is_dir():
            # Named after the run whose checks they show.
            docs = _keep_once(data_docs_source,
                              root / "runs" / data_docs_source.parent.name / "data_docs")
            for stage in ("raw", "marts"):
                if (docs / stage / "index.html").exists():
                    kept[f"data_docs_{stage}"] = docs / stage / "index.html"
        if dbt_docs_source is not None and dbt_docs_source.is_file():
            # Named after the run that built it: the publish an unchanged run reports on.
            built_by = dbt_docs_source.parents[2].name
            kept["dbt_docs"] = _keep_once(dbt_docs_source,
                                          root / "runs" / built_by / "dbt_docs" / "index.html")

        def links(base: Path) -> dict:
            return {k: os.path.relpath(v, base).replace(os.sep, "/") for k, v in kept.items()}

        data = gather(run_id)
        page = render(data, links(folder))
        # latest.html is the report itself (no redirect), its links leading from the root.
        latest = render(data, links(root) | {"self": f"{stamp}/index.html"})
        folder.mkdir(parents=True, exist_ok=False)
        report = folder / "index.html"
        report.write_text(page, encoding="utf-8")
        staged = root / f".latest.html.{os.getpid()}.tmp"
        staged.write_text(latest, encoding="utf-8")
        os.replace(staged, root / "latest.html")
    quality.set_report_path(run_id, scratch.location(report))
    log.info("quality report of run %s: %s", run_id, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make report", description=(
            "Rebuild the data-quality report of the latest recorded run (or --run RUN_ID) from "
            "the quality store and the published warehouse, without running the pipeline. "
            "Writes <reports>/<timestamp>/index.html and <reports>/latest.html, the same report "
            "(WH_REPORTS_DIR, default reports/quality beside the warehouse folder)."))
    parser.add_argument("--run", help="the run to report on (default: the latest recorded)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    atexit.register(scratch.remove_scratch)  # with WH_STORAGE_URL: no copy left behind
    if (problem := scratch.check_storage()) is not None:
        print(problem, file=sys.stderr)
        return 2
    if not quality.store_path().exists():
        print(f"No quality store at {quality.store_path()}: run the pipeline first (make run).",
              file=sys.stderr)
        return 1
    run_id = args.run or quality.latest_run_id()
    if run_id is None:
        print("The quality store holds no run yet.", file=sys.stderr)
        return 1
    with duck.connect(str(quality.store_path()), read_only=True) as q:
        known = q.execute("select count(*) from quality.runs where run_id = ?",
                          [run_id]).fetchone()[0]
    if not known:
        print(f"No run {run_id} in the quality store {quality.store_path()}; the latest "
              f"recorded is {quality.latest_run_id()}.", file=sys.stderr)
        return 1
    before = scratch.files_under(reports_dir())
    report = write(run_id)
    scratch.push_reports(before)  # with WH_STORAGE_URL: to reports/quality/ in the bucket
    print(f"Quality report: {scratch.location(report)}\n"
          f"Latest: {scratch.location(reports_dir() / 'latest.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
