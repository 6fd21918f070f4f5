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
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

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
            "Reconciliation with published figures", "Charts", "History", "Glossary",
            "Documentation")

LABELS = {
    # the steps of a transform run (pipeline.steps; a run that fails names its step)
    "land": "fetching and landing the files", "check_landing": "checking what was landed",
    "prepare": "preparing the build", "load": "loading the landed files",
    "audit_raw": "the checks of the loaded files", "dbt_build": "the dbt build and its tests",
    "audit_marts": "the checks of the built tables", "publish": "publishing",
    "report": "writing this report",
    # where a check ran (quality.checks.stage)
    "raw": "loaded files", "dbt": "dbt tests", "marts": "built tables",
    # how much a failing check matters (quality.results.severity)
    "error": "blocking", "warn": "warning",
    # a run's state (quality.runs.state)
    "published": "published", "failed": "failed", "unchanged": "unchanged",
    # a source's freshness (pipeline.quality.freshness)
    "fresh": "up to date", "late": "late", "stale": "stale", "curated": "curated",
    "none landed": "nothing landed",
    # the status of a publisher's figure against the warehouse (marts.rpt_returns_reconciliation)
    "match": "matches", "match_within_rounding": "matches within rounding",
    "differs": "differs beyond rounding",
    "not_in_warehouse": "period or series not in the warehouse",
    "not_reconciled": "not compared (no warehouse figure of that kind)",
}
"""Plain words for the identifiers of the shared machinery the page shows (a source's own
identifiers are labelled by its folder: ``ingest.catalog.label``). One mapping: the page shows
nothing else in their place, and an identifier with no label is shown as code."""

GLOSSARY = {
    "release": "One edition of a publisher's figures, named by its date; a monthly workbook, "
               "for example, that restates earlier months.",
    "vintage": "The state of a statistical figure as of one update of its dataset; a later "
               "vintage may revise it.",
    "snapshot": "What a dataset or a curated list held on the day it was copied: amounts are "
                "stated as of that date.",
    "partial": "A snapshot that holds only part of the dataset (a first page of an API, for "
               "example): sums over it are lower bounds.",
    "revision": "A value for a past period that a newer release or vintage changed.",
    "correction": "A file re-issued for a release already loaded: its values replace the "
                  "first issue's.",
    "blocking check": "A check whose failure stops the publish: the warehouse stays as it was.",
    "warning": "A check that found something worth knowing but does not stop the publish.",
    "quarantined": "A landed file that could not be read or failed its checks: kept for "
                   "diagnosis, never loaded, until someone readmits it.",
    "stale": "A source whose newest release is older than its publisher's cadence allows: "
             "newer figures surely exist and are not here.",
    "late": "A source whose next release is overdue by its publisher's usual rhythm; a newer "
            "one may be out.",
    "curated": "A source transcribed by hand from documents: updated when they change, with "
               "no age limit.",
    "cadence": "How often a publisher issues new figures (monthly, quarterly, yearly).",
    "published warehouse": "The database analysts and BI tools read; a run replaces it whole, "
                           "only when every blocking check passed.",
    "as-of date": "The date an amount is stated on; amounts of two dates are two states of the "
                  "same money, never added.",
    "EU aggregate": "The statistical office's total for the EU (of 27 members since 2020, or "
                    "of 28 before), published beside the member states' own figures.",
    "flag": "A mark the statistical office puts on a figure: provisional, estimated, "
            "confidential or missing.",
    "reconciliation": "Comparing the publisher's own headline figures with what the warehouse "
                      "computes from the detailed data.",
    "return rate": "Persons returned divided by persons ordered to leave in the same year: two "
                   "flows of one year, not one group followed over time, so it can pass 100%.",
}
"""Every term the page uses that an analyst may not know, defined once: the Glossary section
is this list, and the page links a term to its entry (the ``term`` filter refuses a term that
is not here)."""

IDENTIFIER = re.compile(r"[\w.-]+\.(?:csv|xlsx|json|gz|parquet|duckdb)\b"
                        r"|\b[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)*_[A-Za-z0-9]+(?:[_.:][\w-]+)*")
"""A file name or an identifier with an underscore: what the page shows as code when it has no
label."""
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
    """A headline value in its unit: 50,226 detections; 50.1 %; EUR 806.3m; EUR 1.2bn."""
    if value is None:
        return "no data"
    if unit == "percent":
        return f"{value:,.1f} %"
    if unit == "EUR":
        return charts.money(value)
    return f"{number(value)} {unit or ''}".strip()


def when(value: object) -> str:
    """A moment to the minute, in words: 6 Dec 2026, 02:09 UTC (no microseconds)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return f"{value.day} {value:%b %Y, %H:%M} UTC"
    return str(value)


class Words:
    """The page's plain words: labels for identifiers (``LABELS``, then the source folders'),
    code for what has none, glossary links. Remembers the identifiers it found no label for
    (``unlabelled``) and refuses a glossary term that is not in ``GLOSSARY``."""

    def __init__(self):
        self.unlabelled: set[str] = set()

    def label(self, identifier: object) -> str | None:
        text = str(identifier)
        return LABELS.get(text) or catalog.label(text)

    def plain(self, identifier: object, code: bool = False) -> Markup:
        """The label of ``identifier``; with ``code``, followed by the identifier as code. An
        identifier with no label is shown as code (and remembered)."""
        if identifier is None or identifier == "":
            return Markup("")
        found = self.label(identifier)
        if found is None:
            self.unlabelled.add(str(identifier))
            return Markup("<code>{}</code>").format(identifier)
        if code and found != str(identifier):
            return Markup("{} <code>{}</code>").format(found, identifier)
        return escape(found)

    def prose(self, text: object) -> Markup:
        """Free text (a description, a note, a caution): the identifiers and file names in it
        are shown as code (its words are its author's; no label is guessed into them)."""
        if text is None:
            return Markup("")
        out, at = [], 0
        text = str(text)
        for match in IDENTIFIER.finditer(text):
            out.append(escape(text[at:match.start()]))
            out.append(Markup("<code>{}</code>").format(match.group(0)))
            at = match.end()
        out.append(escape(text[at:]))
        return Markup("").join(out)

    @staticmethod
    def term(word: str, shown: str | None = None) -> Markup:
        """``word`` linked to its glossary entry (``shown``: the text, a plural)."""
        if word not in GLOSSARY:
            raise KeyError(f"{word!r} is not in report.GLOSSARY: define it there")
        return Markup('<a class="term" href="#term-{}">{}</a>').format(
            _slug(word), shown or word)


def _slug(word: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-")


def signed(value: object, unit: str = "") -> str:
    if value is None:
        return ""
    text = number(value, 1 if isinstance(value, float) and value != int(value) else None)
    return f"{'+' if value > 0 else ''}{text}{unit}"


def status_class(status: object) -> str:
    return {"fresh": "good", "late": "warn", "stale": "bad", "none landed": "bad"}.get(
        str(status), "")


def _environment(words: Words) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(number=number, in_unit=in_unit, signed=signed, when=when,
                       status_class=status_class, plain=words.plain, prose=words.prose,
                       subject=lambda text: words.prose(subject_words(text)), slug=_slug)
    env.globals.update(term=words.term, glossary=GLOSSARY)
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
        # Per source: each last period with the subjects that end there ("2016 (orders to
        # leave, returns); 2024 (asylum applicants)"), not one maximum over them all.
        held: dict[str, dict[str, list[str]]] = {}
        for row in dicts(q, """select source, last_period, subject from quality.coverage
                                where run_id = ? and last_period is not null
                                order by source, last_period desc, subject""",
                         [data_run(q, run_id)]):
            held.setdefault(row["source"], {}).setdefault(row["last_period"], []).append(
                subject_words(row["subject"]))
        for source, periods in held.items():
            coverage[source] = "; ".join(
                f"{period} ({len(subjects)} series)" if len(subjects) > 3
                else f"{period} ({', '.join(subjects)})" for period, subjects in periods.items())
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


def subject_words(subject: object) -> str:
    """A coverage or completeness subject in words: its label; or for "<identifier> <more>"
    ("migr_eirtn returned", "ordered_to_leave 2014") the identifier's label and the rest's
    parts labelled; else as it is (a route's name; the page shows an identifier as code)."""
    words = Words()
    text = str(subject)
    if (whole := words.label(text)):
        return whole
    head, _, rest = text.partition(" ")
    if not rest or not (head_label := words.label(head)):
        return text
    return f"{head_label} ({' '.join(words.label(part) or part for part in rest.split(' '))})"


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


CAUTION_TERMS = {"stale": ("stale", "cadence"), "late": ("late", "cadence"),
                 "partial": ("partial", "snapshot"), "correction": ("correction", "release"),
                 "reconciliation": ("reconciliation",), "run": (), "warning": ("warning",)}
"""The glossary entries each kind of caution links to."""


def _caution(kind: str, text: str, detail: str | None = None) -> dict:
    return {"kind": kind, "text": text, "detail": detail, "terms": CAUTION_TERMS[kind]}


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
        step = LABELS.get(run["failed_step"], "step " + str(run["failed_step"]))
        why.append(f"The run stopped at {step}; the published warehouse "
                   "is unchanged, and every figure below is the one it already held.")
        details.append(f"Failed step: {run['failed_step']}.")
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


ROUTES_CHARTED = 5
"""The route chart draws the routes ranked 1 to 5 by detections in the release's last 12
months (``quality.rpt_detections_by_route_month.rank_last_12_months``)."""


def _month(text: str) -> str:
    return datetime.strptime(text, "%Y-%m").strftime("%b %Y")


def chart_figures(wh) -> list[dict]:
    """Each chart with its title and subtitle (what it shows and how its items were chosen,
    shown above it), its caption (what it leaves out), the figures it draws and the SVG per
    width (``charts.WIDTHS``)."""
    import pandas as pd

    out: list[dict] = []
    if wh is None or not has(wh, "quality", "rpt_detections_by_route_month"):
        return out
    routes = dicts(wh, """select route, strftime(month, '%Y-%m') as month, detections,
                                  release_date, rank_last_12_months
                           from quality.rpt_detections_by_route_month
                           order by rank_last_12_months, month""")
    if routes:
        months = sorted({r["month"] for r in routes})
        shown = [r for r in routes if r["rank_last_12_months"] <= ROUTES_CHARTED]
        series: dict[str, list] = {}
        for r in shown:
            series.setdefault(r["route"], [None] * len(months))[months.index(r["month"])] = \
                r["detections"]
        others = list(dict.fromkeys(r["route"] for r in routes
                                    if r["rank_last_12_months"] > ROUTES_CHARTED))
        out.append({
            "title": f"Detections per month on the top {len(series)} routes by detections in "
                     f"the 12 months to {_month(months[-1])}",
            "subtitle": f"{_month(months[0])} to {_month(months[-1])}, the whole history of "
                        f"release {routes[0]['release_date']}; all border types and "
                        "nationalities.",
            "caption": "Recent months are restated by later releases." + (
                f" Not drawn: {', '.join(others)}." if others else ""),
            "data": series,
            "svg": charts.line_chart(
                pd.DataFrame({"series": r["route"], "month": r["month"] + "-01",
                              "value": r["detections"]} for r in shown),
                "Detections per month by route", "Detections per month")})
    # The mart holds the current release only (fct_border_crossings_current): no filter here.
    ytd = dicts(wh, """select route, change_pct, ytd_detections, prior_ytd_detections,
                               through_month from marts.rpt_detections_ytd_by_route
                        order by change_pct nulls last, route""")
    shown = [r for r in ytd if r["change_pct"] is not None]
    if shown:
        left_out = [r["route"] for r in ytd if r["change_pct"] is None]
        through = shown[0]["through_month"]
        period = f"Jan-{through:%b %Y}"
        before = f"Jan-{through:%b} {through.year - 1}"
        bars = [(r["route"], round(r["change_pct"], 1)) for r in shown]
        out.append({
            "title": f"Change in detections by route, {period} against {before}",
            "subtitle": f"Every route with detections in both periods ({len(shown)}), the "
                        "biggest fall first.",
            "caption": "Detections from January to the last month of the newest release "
                       "against the same months of the year before." + (
                           f" Not shown (no detections a year earlier, so no percentage): "
                           f"{', '.join(left_out)}." if left_out else ""),
            "data": dict(bars),
            "svg": charts.bar_chart(bars, f"Change in detections by route, {period}",
                                    "Change against a year earlier", "percent",
                                    signed=True)})
    rates = dicts(wh, """select * from quality.rpt_return_rates_top_citizenships
                         order by orders_rank""")
    if rates:
        over = [r["citizen_label"] for r in rates if r["exceeds_100"]]
        bars = [(r["citizen_label"], round(r["return_rate_pct"], 1)) for r in rates]
        out.append({
            "title": f"Return rate of the {len(rates)} citizenships with most orders to leave, "
                     f"{rates[0]['geo']}, {rates[0]['period']}",
            "subtitle": "Persons returned divided by persons ordered to leave in the same "
                        "year; most orders to leave first. Dashed line: 100%.",
            "caption": "Both are flows of that year, not one cohort followed over time: people "
                       "ordered to leave in one year may leave in the next, so a rate can pass "
                       "100%." + (f" Above 100% here: {', '.join(over)}." if over else ""),
            "data": dict(bars),
            "svg": charts.bar_chart(bars, "Return rate by citizenship", "Return rate",
                                    "percent", reference=100.0)})
    funding = dicts(wh, """
        with latest as (select source, max(as_of_date) as as_of_date
                        from quality.rpt_funding_by_stage group by source)
        select f.* from quality.rpt_funding_by_stage f join latest using (source, as_of_date)
        order by f.source, f.stage_order, f.fund_code""")
    for source in sorted({r["source"] for r in funding}):
        rows = [r for r in funding if r["source"] == source]
        as_of = rows[0]["as_of_date"]
        aside = [r for r in rows if r["largest_item_eur"] > FUNDING_OUTLIER_EUR]
        bars = [(r["fund_label"] or r["fund_code"], r["stage"],
                 r["amount_eur"] - (r["largest_item_eur"] if r in aside else 0)) for r in rows]
        funds = sorted({f for f, _, _ in bars},
                       key=lambda f: -sum(v for g, _, v in bars if g == f))
        stages = list(dict.fromkeys(s for _, s, _ in bars))
        name = catalog.label(source) or source
        out.append({
            "title": f"Funding by fund and stage, {name}, as of {as_of}",
            "subtitle": "Every fund and stage with an amount on that date, the stages of a fund "
                        "side by side. Each bar adds the amounts reported at that stage, mostly "
                        "for different actions: planned and paid are not steps of the same "
                        "money, so a shorter paid bar does not mean planned money went unpaid.",
            "caption": f"Amounts stated as of {as_of} only; items recorded at other dates are "
                       "not added (two dates are two states of the same money), nor are "
                       "components added to the action they belong to." + "".join(
                           f" The {r['fund_label'] or r['fund_code']} {r['stage']} bar leaves out "
                           f"{r['largest_item']} ({charts.money(r['largest_item_eur'])}), "
                           "which would flatten the rest." for r in aside),
            "data": {f"{fund}, {stage}": value for fund, stage, value in bars},
            "svg": charts.grouped_bar_chart(
                pd.DataFrame({"group": f, "bar": st, "value": v} for f, st, v in bars),
                f"Funding by fund and stage, as of {as_of}", "Amount (EUR)", funds, stages)})
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


def render(data: dict, links: dict | None = None, unlabelled: set | None = None) -> str:
    """The report as one HTML document; ``links`` maps "data_docs_raw", "data_docs_marts",
    "dbt_docs" and "self" to relative URLs where those exist. The identifiers shown with no
    label (as code) are added to ``unlabelled``."""
    words = Words()
    page = _environment(words).get_template("report.html.j2").render(
        sections=SECTIONS, links=links or {}, **data)
    if unlabelled is not None:
        unlabelled |= words.unlabelled
    return page


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
