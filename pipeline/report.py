"""The data-quality report for analysts: one self-contained HTML page per run.

Built from the quality store (``pipeline.quality``) and the published warehouse, both opened
read-only: the run's outcome (in red at the top when it failed, naming the checks that blocked
publish), the freshness and completeness of each source, every check, the flags, the revisions,
the reconciliation with the publishers' headline figures, and charts as inline SVG. Styles are
inline and nothing is fetched: it renders the same offline. Written to
``<reports>/<timestamp>/index.html``; ``<reports>/latest.html`` points at the newest; older
reports are kept.

``python -m pipeline.report`` (``make report``) rebuilds the report of the latest recorded run
from the stored results, without running the pipeline.
"""
from __future__ import annotations

import argparse
import html
import logging
import re
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ingest.config import settings
from pipeline import charts, quality

log = logging.getLogger(__name__)

STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;
     line-height:1.35;padding:0 16px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:19px;margin-top:32px;border-bottom:2px solid #eee;
padding-bottom:4px} h3{font-size:15px;margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px;width:100%}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:14px 18px;border-radius:6px;font-size:16px;margin:14px 0}
.ok{background:#e6f4ea;border:2px solid #2e7d32;color:#1b5e20}
.failed{background:#fdecea;border:2px solid #c62828;color:#b71c1c}
.bad{color:#b71c1c;font-weight:bold} .warn{color:#9a6700;font-weight:bold} .good{color:#1b5e20}
.muted{color:#666;font-size:12px} code{background:#f4f4f4;padding:0 3px}
.chart{margin:10px 0 22px 0}
"""
SECTIONS = ("Run", "Sources: freshness and completeness", "Checks", "Flags", "Revisions",
            "Reconciliation with published figures", "Charts", "History")


def reports_dir() -> Path:
    configured = os.environ.get("WH_REPORTS_DIR")
    return Path(configured).resolve() if configured else (
        settings().warehouse.parent.parent / "reports" / "quality")


def _h2(title: str) -> str:
    anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f'<h2 id="{anchor}">{_e(title)}</h2>'


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _n(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if value != int(value) else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _table(headers: list[str], rows: list[tuple], numeric: set[int] = frozenset(),
           classes: dict[int, callable] | None = None) -> str:
    if not rows:
        return '<p class="muted">Nothing to show.</p>'
    out = ["<table><tr>", *(f"<th>{_e(h)}</th>" for h in headers), "</tr>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            css = []
            if i in numeric:
                css.append("num")
            if classes and i in classes:
                extra = classes[i](cell)
                if extra:
                    css.append(extra)
            attr = f' class="{" ".join(css)}"' if css else ""
            out.append(f"<td{attr}>{_n(cell) if i in numeric else _e(cell)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _status_class(status: object) -> str | None:
    return {"fresh": "good", "late": "warn", "stale": "bad", "none landed": "bad"}.get(
        str(status))


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


# --- sections ----------------------------------------------------------------------------------

def _run_section(q, run_id: str) -> str:
    run = _rows(q, "select state, failed_step, failure_message, recorded_at, measured_db, note "
                   "from quality.runs where run_id = ?", [run_id])
    if not run:
        return f'<div class="banner failed">No recorded run {_e(run_id)}.</div>'
    state, step, message, recorded_at, measured, note = run[0]
    if state == "unchanged":
        banner = (f'<div class="banner ok">Unchanged: run {_e(run_id)} found {_e(note)}. '
                  'Nothing was rebuilt; the checks below are those of the last publish, the '
                  'freshness of each source is as of this run.</div>')
    elif state == "published":
        banner = (f'<div class="banner ok">Published: run {_e(run_id)} passed every blocking '
                  f'check and replaced the published warehouse.</div>')
    else:
        blocking = _rows(q, """select stage, suite, rule, unexpected_count from quality.results
                               where run_id = ? and not success and severity = 'error'
                               order by stage, suite""", [run_id])
        named = "".join(f"<li><b>{_e(suite)}</b> ({_e(stage)}): {_e(rule)}"
                        f"{'' if n is None else f' — {n:,} rows'}</li>"
                        for stage, suite, rule, n in blocking)
        first_lines = "\n".join((message or "").splitlines()[:12])
        banner = (f'<div class="banner failed"><b>FAILED: nothing was published.</b> Run '
                  f'{_e(run_id)} stopped at step <b>{_e(step)}</b>; the published warehouse is '
                  f'unchanged (the figures below are those it holds).'
                  f'{f"<p>Checks that blocked publish:</p><ul>{named}</ul>" if named else ""}'
                  f'<pre style="white-space:pre-wrap;font-size:12px">{_e(first_lines)}</pre></div>')
    return (f'{banner}<p class="muted">Recorded {_e(recorded_at)}; measures taken from '
            f'<code>{_e(measured)}</code>.</p>')


def _sources_section(q, run_id: str, wh) -> str:
    # Freshness is measured now (a report rebuilt a week later says so), loads as of the run.
    live = quality.freshness(run_id, wh) if wh is not None else []
    fresh = [(source, cadence, status, release, fetched, age, files, latest, previous,
              round(100.0 * (latest - previous) / previous, 1) if previous else None, complete)
             for (_, source, release, fetched, age, cadence, status, files, latest, previous,
                  complete) in sorted(live, key=lambda r: r[1])]
    complete = _rows(q, """select source, subject, present, expected, note
                           from quality.completeness where run_id = ?
                           order by source, subject""", [run_id])
    return (_h2("Sources: freshness and completeness") + "<p class='muted'>Freshness as of "
            f"{datetime.now(timezone.utc):%Y-%m-%d}: the age of each source's newest release "
            "against its expected cadence (reference.source_cadence).</p>"
            + _table(["source", "cadence", "status", "last release", "last fetched", "age (days)",
                      "files landed", "rows, latest load", "rows, previous load", "change %",
                      "completeness"], fresh, {5, 6, 7, 8, 9}, {2: _status_class,
                                                                10: lambda v: "bad" if v and str(v).startswith("PARTIAL") else None})
            + "<h3>Completeness</h3>"
            + _table(["source", "subject", "present", "expected", "note"], complete, {2, 3}))


def _checked_run(q, run_id: str) -> str:
    """The run whose checks describe the published data: this one, or for a run that found
    nothing new (and checked nothing), the last published run."""
    found = _rows(q, """select r.run_id from quality.runs r
                        where (select state from quality.runs where run_id = ?) = 'unchanged'
                          and r.state = 'published' order by r.recorded_at desc limit 1""",
                  [run_id])
    return found[0][0] if found else run_id


def _checks_section(q, run_id: str) -> str:
    checks = _rows(q, """select stage, suite, subject, rows_validated, evaluated, passed, failed,
                                warned from quality.checks where run_id = ?
                         order by case stage when 'raw' then 1 when 'dbt' then 2 else 3 end,
                                  suite""", [run_id])
    failing = _rows(q, """select stage, suite, rule, severity, unexpected_count, examples
                          from quality.results where run_id = ? and not success
                          order by severity, stage, suite""", [run_id])
    return (_h2("Checks") + ""
            + _table(["stage", "suite", "subject", "rows", "evaluated", "passed", "failed",
                      "warnings"], checks, {3, 4, 5, 6, 7},
                     {6: lambda v: "bad" if v else None, 7: lambda v: "warn" if v else None})
            + "<h3>Failing expectations and tests, with examples</h3>"
            + _table(["stage", "suite", "rule", "severity", "rows", "examples"], failing, {4},
                     {3: lambda v: "bad" if v == "error" else "warn"}))


def _flags_section(q, run_id: str) -> str:
    flags = _rows(q, """select dataset, observations, provisional, estimated, confidential, missing
                        from quality.flags where run_id = ? order by dataset""", [run_id])
    return (_h2("Flags") + "<p class='muted'>Eurostat observations of the current vintage: "
            "provisional (p), estimated (e, s, i), confidential (c, CONF_STATUS C/N/P/D), "
            "missing (':', published as missing, kept as NULL).</p>"
            + _table(["dataset", "observations", "provisional", "estimated", "confidential",
                      "missing"], flags, {1, 2, 3, 4, 5}))


def _revisions_section(q, run_id: str) -> str:
    # Rows recorded before the revisions marts have no label, correction flag or first value:
    # the raw key and the release stand in.
    revisions = _rows(q, """
        select case source when 'frontex' then 'Frontex' when 'eurostat' then 'Eurostat'
                    else source end,
               subject, coalesce(cell_label, cell), previous_value, current_value, change,
               previous_release, current_release,
               case when is_correction then 'yes, same release re-issued'
                    when is_correction is not null then 'no' end,
               first_value, first_release
        from quality.revisions where run_id = ?
        order by source, abs(change) desc nulls last, subject, cell""", [run_id])
    return (_h2("Revisions") + "<p class='muted'>Values for past periods that the newest release "
            "or vintage changed (Frontex restates recent months every release, by route and "
            "month; Eurostat revises years later, by observation), biggest first: from the "
            "revisions marts <code>marts.rpt_border_crossings_route_revisions</code> and "
            "<code>marts.rpt_eurostat_revisions</code>, which keep every change of every vintage. "
            "A correction is a file re-issued for a release already loaded.</p>"
            + _table(["source", "route or dataset", "period and keys", "previous", "current",
                      "change", "previous release or vintage", "release or vintage of the change",
                      "correction?", "first published", "first release or vintage"],
                     revisions, {3, 4, 5, 9},
                     {8: lambda v: "warn" if v and v.startswith("yes") else None}))


def _reconciliation_section(wh) -> str:
    if wh is None or not _has(wh, "marts", "rpt_returns_reconciliation"):
        return _h2("Reconciliation with published figures") + "<p class='muted'>No warehouse.</p>"
    statuses = _rows(wh, """select status, count(*) from marts.rpt_returns_reconciliation
                            group by 1 order by 2 desc""")
    differing = _rows(wh, """select period, geo, citizen, indicator, published_value,
                                    warehouse_value, difference, status, published_on
                             from marts.rpt_returns_reconciliation
                             where status in ('differs', 'match_within_rounding', 'match')
                             order by abs(coalesce(difference, 0)) desc limit 20""")
    if differing:
        detail = _table(["period", "geo", "citizen", "indicator", "published", "warehouse",
                         "difference", "status", "published on"], differing, {4, 5, 6})
    else:
        [(pub_first, pub_last)] = _rows(wh, """select min(period), max(period)
                                            from marts.rpt_returns_reconciliation""")
        [(wh_first, wh_last)] = _rows(wh, "select min(period), max(period) from marts.fct_returns")
        detail = (f"<p class='warn'>No published figure could be compared: the publisher's "
                  f"figures cover {_e(pub_first)} to {_e(pub_last)}, the warehouse holds "
                  f"{_e(wh_first)} to {_e(wh_last)}.</p>")
    return (_h2("Reconciliation with published figures") + "<p class='muted'>Eurostat's headline "
            "figures on returns against the warehouse (marts.rpt_returns_reconciliation).</p>"
            + _table(["status", "figures"], statuses, {1},
                     {0: lambda v: "bad" if v == "differs" else None})
            + detail)


def _has(con, schema: str, table: str) -> bool:
    return bool(con.execute("""select count(*) from information_schema.tables
                               where table_schema = ? and table_name = ?""",
                            [schema, table]).fetchone()[0])


def _charts_section(wh) -> str:
    parts = [_h2("Charts") + ""]
    if wh is None:
        return parts[0] + "<p class='muted'>No published warehouse yet.</p>"
    if _has(wh, "marts", "fct_border_crossings"):
        data = _rows(wh, """
            with latest as (select * from marts.fct_border_crossings where release_date =
                            (select max(release_date) from marts.fct_border_crossings))
            select route, strftime(month, '%Y-%m'), sum(detections) from latest
            where month > (select max(month) from latest) - interval 36 month
            group by all order by 2""")
        months = sorted({m for _, m, _ in data})
        series: dict[str, list] = {}
        for route, month, value in data:
            series.setdefault(route, [None] * len(months))[months.index(month)] = value
        if months:
            parts.append(f'<div class="chart">{charts.line_chart("Detections by route per month (latest release)", months, series)}</div>')
        ytd = _rows(wh, """select route, change_pct, through_month from marts.rpt_detections_ytd_by_route
                           where change_pct is not null order by change_pct""")
        if ytd:
            parts.append(f'<div class="chart">{charts.bar_chart(f"Year-to-date change by route, through {ytd[0][2]:%b %Y} (%)", [(r, v) for r, v, _ in ytd], "%", signed=True)}</div>')
    if _has(wh, "marts", "rpt_return_rates"):
        rates = _rows(wh, """
            with eu as (select * from marts.rpt_return_rates
                        where geo in ('EU27_2020', 'EU28') and period_grain = 'year'
                          and not citizen_is_aggregate and return_rate is not null),
            latest as (select max(period) as period from eu)
            select coalesce(c.country_name, eu.citizen), 100 * eu.return_rate, eu.period,
                   eu.ordered_to_leave
            from eu left join marts.dim_country c on c.country_key = eu.citizen_country_key
            where eu.period = (select period from latest)
            order by eu.ordered_to_leave desc limit 12""")
        if rates:
            parts.append(f'<div class="chart">{charts.bar_chart(f"Return rate (returned / ordered to leave), top 12 citizenships by orders to leave, EU, {rates[0][2]} (%)", [(c, v) for c, v, _, _ in rates], "%")}</div>')
    if _has(wh, "marts", "fct_funding_disbursements"):
        stages = _rows(wh, """
            with current as (
                select source, fund_code, programme_or_action_key, country_label, stage,
                       any_value(stage_order) as stage_order,
                       arg_max(amount_eur, as_of_date) as amount_eur
                from marts.fct_funding_disbursements where counts_in_totals group by all)
            select stage, sum(amount_eur) / 1e6 from current
            where amount_eur < 1e10  -- keep the EUR 300bn Global Gateway from flattening the rest
            group by stage, stage_order order by stage_order""")
        if stages:
            parts.append(f'<div class="chart">{charts.bar_chart("Funding by stage, EUR million (current amounts, parts not counted twice; the EUR 300bn Global Gateway aside)", stages, "m")}</div>')
    return "".join(parts)


def _history_section(q) -> str:
    runs = _rows(q, """select r.run_id, r.recorded_at, r.state, r.failed_step,
                              sum(c.failed), sum(c.warned)
                       from quality.runs r left join quality.checks c using (run_id)
                       group by all order by r.recorded_at desc limit 15""")
    return (_h2("History") + ""
            + _table(["run", "recorded", "state", "failed step", "failed checks", "warnings"],
                     runs, {4, 5}, {2: lambda v: "bad" if v == "failed" else "good"}))


def render(run_id: str, data_docs: Path | None = None) -> str:
    """The report of ``run_id`` as one HTML document."""
    store = quality.store_path()
    published = settings().warehouse
    with duckdb.connect(str(store), read_only=True) as q:
        wh = duckdb.connect(str(published), read_only=True) if published.exists() else None
        try:
            state = _rows(q, "select state from quality.runs where run_id = ?", [run_id])
            title = {"published": "Published", "unchanged": "Unchanged"}.get(
                state[0][0] if state else None, "FAILED")
            body = [
                "<h1>Migration warehouse: data quality report</h1>",
                f'<p class="muted">Run {_e(run_id)} &middot; {title} &middot; generated '
                f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC &middot; published warehouse "
                f"<code>{_e(published)}</code></p>",
                _h2("Run"), _run_section(q, run_id),
                _sources_section(q, run_id, wh), _checks_section(q, _checked_run(q, run_id)),
                _flags_section(q, run_id), _revisions_section(q, run_id),
                _reconciliation_section(wh), _charts_section(wh), _history_section(q),
            ]
            if data_docs is not None:
                links = "".join(
                    f'<li><a href="{_e(data_docs / stage / "index.html")}">{label}</a></li>'
                    for stage, label in (("raw", "raw loads"), ("marts", "marts")))
                body.append(_h2("Great Expectations Data Docs") + "<p>The validation results of "
                            f"this run, rendered with their assets shipped (offline):</p>"
                            f"<ul>{links}</ul>")
        finally:
            if wh is not None:
                wh.close()
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Data quality report: {title} ({_e(run_id)})</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def write(run_id: str, data_docs_source: Path | None = None) -> Path:
    """Write the report of ``run_id`` into a new timestamped folder and point latest.html at it."""
    root = reports_dir()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / stamp
    folder.mkdir(parents=True, exist_ok=False)
    docs_link = None
    if data_docs_source is not None and data_docs_source.is_dir():
        shutil.copytree(data_docs_source, folder / "data_docs")
        docs_link = Path("data_docs")
    report = folder / "index.html"
    report.write_text(render(run_id, docs_link), encoding="utf-8")
    latest = root / "latest.html"
    staged = root / ".latest.html.tmp"
    staged.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='0; url={stamp}/index.html'>"
        f"<title>Latest data quality report</title></head><body><a href='{stamp}/index.html'>"
        f"Latest data quality report ({_e(run_id)})</a></body></html>", encoding="utf-8")
    os.replace(staged, latest)
    quality.set_report_path(run_id, report)
    log.info("quality report of run %s: %s", run_id, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make report", description=(
            "Rebuild the data-quality report of the latest recorded run (or --run RUN_ID) from "
            "the quality store and the published warehouse, without running the pipeline. "
            "Writes <reports>/<timestamp>/index.html and updates <reports>/latest.html "
            "(WH_REPORTS_DIR, default reports/quality beside the warehouse folder)."))
    parser.add_argument("--run", help="the run to report on (default: the latest recorded)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not quality.store_path().exists():
        print(f"No quality store at {quality.store_path()}: run the pipeline first (make run).",
              file=sys.stderr)
        return 1
    run_id = args.run or quality.latest_run_id()
    if run_id is None:
        print("The quality store holds no run yet.", file=sys.stderr)
        return 1
    from pipeline import warehouse

    docs = warehouse.run_dir(run_id) / "data_docs"
    report = write(run_id, docs if docs.is_dir() else None)
    print(f"Quality report: {report}\nLatest: {reports_dir() / 'latest.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
