"""The data-quality report, built from the stored results of a real green run and of a real run
whose raw audit fails (the transform steps without Airflow, on the recorded sources), and
rendered in a real headless Chromium (Debian's package, installed here when missing): a
screenshot that is not blank and shows the red banner at the top for the failed run, every
section title in the rendered page, and no request to any network address while rendering,
neither by the report nor by the Great Expectations Data Docs shipped with it."""
from __future__ import annotations

import hashlib
import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from expectations.audit import AuditFailed
from pipeline import report, steps, warehouse
from tests.cdp import Browser
from tests.replay_server import ReplayServer, Reply

SECTION_TITLES = tuple(t for t in report.SECTIONS if t != "Verdict")  # the verdict is a banner
RED_BANNER = (253, 236, 234)    # .failed background
GREEN_BANNER = (230, 244, 234)  # .ok background


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def runs(built_db, tmp_path_factory):
    """Two transform runs through the real steps: 'green' publishes, 'red' fails its raw audit
    on a negative count. Returns paths and the published file's digest around the red run."""
    root = tmp_path_factory.mktemp("report")
    built_root = built_db.parents[3]  # <built>/wh/runs/fixture/migration.duckdb
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WH_WAREHOUSE", str(root / "wh" / "migration.duckdb"))
        mp.setenv("WH_LANDING_DIR", str(built_root / "landing"))
        mp.setenv("WH_RUNS_DIR", str(root / "wh" / "runs"))
        mp.setenv("WH_REPORTS_DIR", str(root / "reports"))
        mp.delenv("WH_QUALITY_DB", raising=False)
        (root / "wh").mkdir()
        shutil.copyfile(built_db, root / "wh" / "migration.duckdb")
        for step in (steps.prepare, steps.load, steps.audit_raw, steps.dbt_build,
                     steps.audit_marts, steps.publish):
            step("green")
        green = Path(steps.report("green"))
        before = sha(root / "wh" / "migration.duckdb")
        steps.prepare("red")
        with duckdb.connect(str(warehouse.build_db("red"))) as con:
            con.execute("""update raw.frontex_detections set detections = -7
                           where route = 'Other' and nationality = 'Unknown'
                             and month = '2010-03-01'""")
        with pytest.raises(AuditFailed):
            steps.audit_raw("red")
        with pytest.raises(steps.RunFailed) as caught:
            steps.report("red")
        red = Path(str(caught.value).rsplit("quality report: ", 1)[1])
        after = sha(root / "wh" / "migration.duckdb")
        yield {"root": root, "green": green, "red": red, "before": before, "after": after}


def test_green_run_report(runs):
    page = runs["green"].read_text(encoding="utf-8")
    verdict = page[page.index('id="verdict"'):page.index('<h2 id="what-changed')]
    assert "Published: every blocking check passed" in verdict
    assert "FAILED" not in page
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in page, title
    # What to be careful with, in the verdict: the partial sample and the stale recorded sources,
    # with what staleness means against the publisher's cadence.
    assert "<code>hgyj-gyin_sample.csv</code> holds exactly 1,000 rows" in verdict
    assert "Frontex is out of date: " in verdict and "for a monthly source" in verdict
    # In plain words, the most important first: the stale sources before the partial sample
    # and before the rounding warning; no run id or test name outside the details for engineers.
    shown = verdict[:verdict.index('id="verdict-details"')]
    assert (shown.index("is out of date") < shown.index("hgyj-gyin_sample.csv</code> holds")
            < shown.index("Eurostat rounds each member state")), shown
    assert "This run" not in shown and "warn_returns_aggregates" not in shown, (
        "a run id or a test name in the verdict an analyst reads")
    details = verdict[verdict.index('id="verdict-details"'):]
    assert "This run: green." in details and "warn_returns_aggregates_rounding" in details
    assert "The warehouse holds figures up to 2025-04 (9 series)." in verdict  # 9 routes
    # Subjects in words: a route's name as it is, a measure by its label.
    assert "<td>Frontex</td><td>Central Mediterranean Route</td>" in page
    assert "<td>Eurostat</td><td>returned to a third country (2016)</td>" in page
    assert ("holds figures up to 2024 (Asylum applicants by type, citizenship, age and sex - "
            "annual aggregated data); 2023 (Third country nationals found to be illegally "
            "present, annual); 2016 (") in verdict
    # The dbt warning is explained, not only counted.
    assert "Eurostat rounds each member state" in verdict
    # The charts: routes, year to date, return rates, funding per source at one as-of date;
    # each drawn for a wide page and for a phone.
    assert page.count("<figure") == 5 and page.count("<svg") == 10
    assert "so a rate can pass 100%. Above 100% here: Albania." in page
    assert "Funding by fund and stage, Funding registry (curated), as of 2024-10-01" in page
    assert "leaves out Global Gateway investments (sustainable infrastructure) (EUR 300bn)" in page
    # The recorded published figures (2018-2025) and extracts (2010-2016) do not overlap: said.
    assert ("No published figure could be compared: the publisher's figures cover 2018 to "
            "2025-Q4, the warehouse holds 2010 to 2016.") in page


def test_failed_run_report_is_red_at_the_top_and_names_the_check(runs):
    page = runs["red"].read_text(encoding="utf-8")
    banner = page.index('class="banner failed"')
    assert banner < page.index(">Sources: freshness and completeness</h2>")
    assert "FAILED: nothing was published." in page
    assert "stopped at the checks of the loaded files" in page
    assert "<li>Failed step: audit_raw.</li>" in page.replace("<code>", "").replace("</code>", "")
    assert ("detections non-negative, in the checks of the loaded files &mdash; 1 rows"
            in page and "<code>frontex_raw_rows</code>" in page)
    # Against the publish before it (green): the failing rule is new.
    assert ("New failure: detections non-negative, in the checks of the loaded files, 1 rows "
            "<code>frontex_raw_rows</code>.") in page
    assert runs["before"] == runs["after"], "the published warehouse must not change"


def test_latest_is_the_newest_report_itself_and_older_reports_are_kept(runs):
    latest = (runs["root"] / "reports" / "latest.html").read_text()
    assert "http-equiv" not in latest  # no redirect: a browser renders it as it is
    assert "FAILED: nothing was published." in latest and "This run: red." in latest
    assert f'href="{runs["red"].parent.name}/index.html"' in latest
    assert runs["green"].exists()


def test_quality_history_in_the_store_and_in_the_published_warehouse(runs):
    with duckdb.connect(str(runs["root"] / "wh" / "quality_history.duckdb"),
                        read_only=True) as con:
        states = dict(con.execute("select run_id, state from quality.runs").fetchall())
        red_results = con.execute("""select suite, rule from quality.results
                                     where run_id = 'red' and not success""").fetchall()
        revisions = con.execute("""
            select previous_value, current_value, change, previous_release, current_release
            from quality.revisions
            where run_id = 'green' and subject = 'migr_asyappctza'
              and cell like '2016 UK x TOTAL %' and cell like '%"asyl_app": "ASY_APP"%'
            """).fetchall()
    assert states == {"green": "published", "red": "failed"}
    # UK asylum applicants 2016: 38,870 in the 2017-05-31 Data Browser export, 39,855 in the
    # SDMX file (both read by hand): a revision between the two vintages.
    [(previous, current, change, previous_release, current_release)] = revisions
    assert (previous, current, change, previous_release) == (38_870, 39_855, 985, "2017-05-31")
    assert current_release.startswith("undated sdmx_csv2 file loaded ")
    assert ("frontex_raw_rows", "detections non-negative") in red_results
    with duckdb.connect(str(runs["root"] / "wh" / "migration.duckdb"), read_only=True) as con:
        published = con.execute("select run_id, state from quality.runs").fetchall()
        checks = con.execute("select count(*) from quality.checks").fetchone()[0]
    assert published == [("green", "published")] and checks > 10  # as of its publish


def test_make_report_rebuilds_from_stored_results(runs, monkeypatch):
    monkeypatch.setenv("WH_WAREHOUSE", str(runs["root"] / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(runs["root"] / "wh" / "runs"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(runs["root"] / "reports"))
    before = sorted(p.name for p in (runs["root"] / "reports").iterdir())
    assert report.main(["--run", "green"]) == 0
    after = sorted(p.name for p in (runs["root"] / "reports").iterdir())
    [new] = set(after) - set(before)
    assert "This run: green." in (runs["root"] / "reports" / new / "index.html").read_text()
    with duckdb.connect(str(runs["root"] / "wh" / "quality_history.duckdb"),
                        read_only=True) as con:
        assert con.execute("select count(*) from quality.runs").fetchone()[0] == 2


def test_make_report_reads_a_store_written_by_older_code(runs, monkeypatch, tmp_path):
    """A store from before the report's columns and tables (results.description, coverage,
    revision_counts, headlines) is brought up to date when a report is written, not left to
    fail a read-only select; an unknown run is refused with a message, no empty folder."""
    old = tmp_path / "quality_history.duckdb"
    shutil.copyfile(runs["root"] / "wh" / "quality_history.duckdb", old)
    with duckdb.connect(str(old)) as con:
        con.execute("alter table quality.results drop column description")
        for table in ("coverage", "revision_counts", "headlines"):
            con.execute(f"drop table quality.{table}")
    monkeypatch.setenv("WH_QUALITY_DB", str(old))
    monkeypatch.setenv("WH_WAREHOUSE", str(runs["root"] / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(runs["root"] / "wh" / "runs"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    assert report.main(["--run", "green"]) == 0
    with duckdb.connect(str(old), read_only=True) as con:
        assert con.execute("""select count(*) from information_schema.columns
                              where table_name = 'results' and column_name = 'description'
                           """).fetchone() == (1,)
    folders = {p.name for p in (tmp_path / "reports").iterdir()}
    assert report.main(["--run", "no_such_run"]) == 1
    assert {p.name for p in (tmp_path / "reports").iterdir()} == folders


# --- in a real browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    found = shutil.which("chromium")
    if found is None:
        # Debian's package; the test set-up installs it when missing (root, the package index).
        for command in (["apt-get", "install", "-y", "-q", "chromium"],
                        ["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "chromium"]):
            subprocess.run(command, capture_output=True, timeout=900)
            found = shutil.which("chromium")
            if found:
                break
    if found is None:
        pytest.fail("chromium is not installed and `apt-get install chromium` did not install "
                    "it: the report cannot be rendered in a browser here")
    return found


def render(chromium: str, page: str, out: Path) -> dict:
    """Screenshot, rendered DOM and every URL Chromium requested, for ``page`` (a URL)."""
    out.mkdir(parents=True, exist_ok=True)
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--hide-scrollbars", f"--user-data-dir={out / 'profile'}"]
    netlog = out / "netlog.json"
    shot = subprocess.run([*common, f"--log-net-log={netlog}", "--window-size=1200,1400",
                           f"--screenshot={out / 'page.png'}", page],
                          capture_output=True, text=True, timeout=120)
    assert (out / "page.png").exists(), shot.stderr[-2000:]
    dumped = subprocess.run([*common, "--enable-logging=stderr", "--v=0",
                             "--virtual-time-budget=3000", "--dump-dom", page],
                            capture_output=True, text=True, timeout=120)
    dom = dumped.stdout
    # What the page wrote to the console (errors, blocked loads): Chromium logs each as CONSOLE.
    console = [line.split("]", 1)[-1].strip() for line in dumped.stderr.splitlines()
               if ":CONSOLE" in line]
    log = json.loads(netlog.read_text() or "{}") if netlog.exists() else {}
    start_job = log.get("constants", {}).get("logEventTypes", {}).get("URL_REQUEST_START_JOB")
    # Requests the page made: the browser's own (component updates, network time, accounts)
    # carry the initiator "not an origin"; a file:// page's subresources carry "null".
    urls = {e["params"].get("url") for e in log.get("events", [])
            if e.get("type") == start_job and isinstance(e.get("params"), dict)
            and e["params"].get("initiator") != "not an origin"} - {None}
    return {"png": out / "page.png", "dom": dom, "urls": urls, "console": console}


def external(urls: set[str]) -> set[str]:
    return {u for u in urls if not u.startswith(("file:", "data:", "about:", "chrome:"))}


def colours(png: Path, box: tuple[int, int, int, int]) -> dict[tuple, int]:
    from PIL import Image

    with Image.open(png) as image:
        region = image.convert("RGB").crop(box)
        return {colour: n for n, colour in region.getcolors(maxcolors=1 << 20)}


def _linked(page: Path, text: str) -> Path:
    """The file a link of ``page`` with this text leads to (relative links resolved)."""
    import re

    found = re.search(r'<a href="([^"]+)">' + re.escape(text), page.read_text(encoding="utf-8"))
    assert found, f"no link {text!r} in {page}"
    target = (page.parent / html.unescape(found.group(1))).resolve()
    assert target.is_file(), target
    return target


def test_the_net_log_sees_a_request_when_there_is_one(chromium, tmp_path):
    """The detector below could fail: a page loading an image from a server is caught."""
    with ReplayServer() as srv:
        srv.route("/pixel.gif", Reply(body=b"GIF89a", headers={"Content-Type": "image/gif"}))
        page = tmp_path / "fetching.html"
        page.write_text(f"<html><body><img src='{srv.url('/pixel.gif')}'></body></html>")
        rendered = render(chromium, page.as_uri(), tmp_path / "out")
        assert srv.count("/pixel.gif") >= 1
        assert srv.url("/pixel.gif") in external(rendered["urls"])


def test_the_console_check_sees_an_error_when_there_is_one(chromium, tmp_path):
    """The detector below could fail: a page whose script throws is caught."""
    page = tmp_path / "throwing.html"
    page.write_text("<html><body><script>undefined_function();</script></body></html>")
    rendered = render(chromium, page.as_uri(), tmp_path / "out")
    assert any("undefined_function is not defined" in line for line in rendered["console"])


def test_failed_report_renders_red_at_the_top_offline(chromium, runs, tmp_path):
    rendered = render(chromium, runs["red"].as_uri(), tmp_path)
    assert external(rendered["urls"]) == set()
    assert rendered["console"] == []
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in rendered["dom"], title
    top = colours(rendered["png"], (0, 0, 1200, 400))
    whole = colours(rendered["png"], (0, 0, 1200, 1400))
    assert len(whole) > 50, "the screenshot is blank"
    assert top.get(RED_BANNER, 0) > 20_000, "no red banner at the top of the failed report"
    assert GREEN_BANNER not in top


def test_green_report_and_its_data_docs_render_offline(chromium, runs, tmp_path):
    rendered = render(chromium, runs["green"].as_uri(), tmp_path / "report")
    assert external(rendered["urls"]) == set()
    assert rendered["console"] == []
    assert colours(rendered["png"], (0, 0, 1200, 400)).get(GREEN_BANNER, 0) > 20_000
    assert rendered["dom"].count("<svg") == 10
    docs = _linked(runs["green"], "Great Expectations Data Docs: raw loads")
    assert docs.exists()
    rendered = render(chromium, docs.as_uri(), tmp_path / "docs")
    assert external(rendered["urls"]) == set()
    assert 'href="static/vendor/bootstrap/css/bootstrap.min.css"' in rendered["dom"]
    # The index's table of validations is filled (by the shipped stand-in for bootstrap-table,
    # with no request and nothing on the console): one clickable row per validation.
    assert rendered["console"] == []
    assert rendered["dom"].count('class="clickable-row"') >= 7
    assert "frontex_raw_rows" in rendered["dom"]
    assert (docs.parent / "static/vendor/bootstrap/css/bootstrap.min.css").is_file()
    assert (docs.parent / "static/vendor/fontawesome/webfonts").is_dir()
    assert len(colours(rendered["png"], (0, 0, 1200, 1400))) > 20


def test_latest_html_renders_without_a_redirect(chromium, runs, tmp_path):
    latest = runs["root"] / "reports" / "latest.html"
    rendered = render(chromium, latest.as_uri(), tmp_path)
    assert external(rendered["urls"]) == set() and rendered["console"] == []
    assert "Migration warehouse: data quality report" in rendered["dom"]
    # The newest report written (by the make report test, of run green, when run in order).
    banner = RED_BANNER if "FAILED" in latest.read_text() else GREEN_BANNER
    assert colours(rendered["png"], (0, 0, 1200, 400)).get(banner, 0) > 20_000


def test_dbt_docs_of_the_publish_open_offline(chromium, runs, tmp_path):
    """dbt docs generated with the publish, linked from the report, open from file:// with no
    network: the page lists the marts (dbt's own page logs 'Unsafe attempt to load URL
    {{ getIcon(...) }}' for icons its Angular template has not filled in yet; nothing else)."""
    docs = _linked(runs["green"], "dbt docs of the published warehouse")
    assert docs.parent.parent.name == "green"  # kept once per run, beside the reports
    # latest.html links the same files (relative to the reports folder).
    latest = runs["root"] / "reports" / "latest.html"
    assert _linked(latest, "dbt docs of the published warehouse") == docs
    # A failed run's report links the docs of the warehouse still published (green's).
    assert _linked(runs["red"], "dbt docs of the published warehouse") == docs
    rendered = render(chromium, docs.as_uri(), tmp_path)
    assert external(rendered["urls"]) == set()
    assert [line for line in rendered["console"] if "getIcon" not in line] == []
    for model in ("fct_border_crossings", "fct_returns", "fct_funding_disbursements",
                  "fct_readmission_cooperation"):
        assert model in rendered["dom"], model


# --- plain words, at a desktop's and a phone's width --------------------------------------------

SNAKE_CASE = re.compile(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b")
"""An identifier with an underscore (a run id, a test name, a status code, a column)."""
ISSUE_TERMS = ("release", "vintage", "snapshot", "correction", "revision", "blocking check",
               "warning", "quarantined", "stale", "late", "partial")
"""The terms issue 22 names: each must have its entry in the page's glossary."""
INSPECT = """(() => {
  const width = window.innerWidth;
  const visible = el => el.getClientRects().length > 0;
  const text = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (n.parentElement.closest('code, pre, details#verdict-details, style, script')) continue;
    text.push(n.nodeValue);
  }
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!visible(el) || el.closest('.scroll')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > width + 1 || r.left < -1)
      wide.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined
                ? '.' + el.className : '') + ' ' + Math.round(r.left) + '..' + Math.round(r.right)
                + ' px: ' + (el.textContent || '').trim().slice(0, 60));
  }
  const charts = [...document.querySelectorAll('figure.chart')].map(f => {
    const title = f.querySelector('h3.chart-title');
    const svg = [...f.querySelectorAll('svg')].filter(visible);
    return {title: title ? title.innerText.trim() : '',
            title_height: title ? title.getBoundingClientRect().height : 0,
            svgs: svg.length, svg_width: svg.length ? svg[0].getBoundingClientRect().width : 0,
            axes: svg.length ? [...svg[0].querySelectorAll('g.role-axis')].map(
              a => [...a.querySelectorAll('.role-axis-label text')].map(t => t.textContent))
              : []};
  });
  return {scroll_width: document.documentElement.scrollWidth, width: width,
          text: text.join(' '), wide: wide.slice(0, 15), charts: charts,
          glossary: [...document.querySelectorAll('#glossary dt')].map(d => [d.id, d.innerText]),
          term_links: [...document.querySelectorAll('a.term')].map(a => a.getAttribute('href'))};
})()"""


def _tick_value(label: str) -> float | None:
    """The number an axis label stands for: 50k, 1.5M, EUR 500m, EUR 1.2bn, -20%, 2014; None
    for a label that is not a number (a route, a citizenship)."""
    found = re.fullmatch(r"(EUR )?([-\u2212]?[\d.,]+)(bn|m|k|M|%)?", label.strip())
    if not found:
        return None
    value = float(found[2].replace("\u2212", "-").replace(",", ""))
    scale = {"bn": 1e9, "M": 1e6, "k": 1e3, None: 1, "%": 1,
             "m": 1e6 if found[1] else 1e-3}[found[3]]
    return value * scale


def _round_steps(labels: list[str]) -> str | None:
    """Why the ticks of one axis are not round (steps of 1, 2 or 5 x 10^n, each tick a
    multiple of the step), or None when they are."""
    values = [_tick_value(label) for label in labels]
    if len(values) < 2 or any(v is None for v in values):
        return None  # a band axis (names), not numbers
    steps = {round(b - a, 9) for a, b in zip(values, values[1:])}
    if len(steps) != 1:
        return f"uneven steps {sorted(steps)} in {labels}"
    [step] = steps
    mantissa = step / 10 ** math.floor(math.log10(abs(step)))
    if round(mantissa, 6) not in (1, 2, 5):
        return f"step {step:g} is not 1, 2 or 5 x 10^n in {labels}"
    if any(abs(v / step - round(v / step)) > 1e-6 for v in values):
        return f"ticks off the step {step:g} in {labels}"
    return None


def test_tick_check_refuses_the_steps_the_issue_found():
    """The check below could fail: 62.5k steps (the hand-drawn chart's) are refused."""
    assert _round_steps(["0", "62.5k", "125k", "188k", "250k"]) is not None
    assert _round_steps(["0", "EUR 500m", "EUR 1bn", "EUR 1.5bn"]) is None
    assert _round_steps(["\u221260%", "\u221240%", "\u221220%", "0%", "20%"]) is None


@pytest.mark.parametrize("which", ["green", "red"])
def test_report_in_plain_words_without_overflow_at_1280_and_400_px(chromium, runs, tmp_path,
                                                                  which):
    """At a desktop's width and a phone's (1280 and 400 px, real Chromium through the
    DevTools protocol): nothing wider than the window (tables scroll in their own box), no
    snake_case word outside code and the engineers' details, every chart titled in visible
    text with round ticks, the glossary holding the issue's terms and every term link landing
    on an entry. Screenshots are kept in the test's folder (paths printed)."""
    for width in (1280, 400):
        with Browser(chromium, tmp_path / f"profile-{width}", width) as browser:
            browser.open(runs[which].as_uri())
            seen = browser.evaluate(INSPECT)
            shot = browser.screenshot(tmp_path / f"report-{which}-{width}px.png")
        print(f"screenshot of the {which} report at {width} px: {shot}")
        assert seen["scroll_width"] <= width, (
            f"at {width} px the page is {seen['scroll_width']} px wide; too wide: "
            f"{seen['wide']}")
        assert not seen["wide"], f"at {width} px these stick out of the window: {seen['wide']}"
        snake = sorted(set(SNAKE_CASE.findall(seen["text"])))
        assert not snake, (f"engineering identifiers in the text an analyst reads at {width} "
                           f"px (outside code, pre and the engineers' details): {snake}")
        if which == "green":
            assert len(seen["charts"]) == 5
        for chart in seen["charts"]:
            assert chart["title"] and chart["title_height"] > 0, f"a chart with no visible title: {chart}"
            assert chart["svgs"] == 1, f"{chart['title']}: {chart['svgs']} drawings shown at {width} px"
            assert 0 < chart["svg_width"] <= width, (
                f"{chart['title']}: drawn {chart['svg_width']} px wide at {width} px")
            bad = [why for axis in chart["axes"] if (why := _round_steps(axis))]
            assert not bad, f"{chart['title']} at {width} px: {bad}"
            assert any(_tick_value(t) is not None for axis in chart["axes"] for t in axis), (
                f"{chart['title']}: no numeric axis found at {width} px: {chart['axes']}")
        entries = {text.strip() for _, text in seen["glossary"]}
        missing = [t for t in ISSUE_TERMS if t not in entries]
        assert not missing, f"terms with no glossary entry: {missing}"
        ids = {f"#{id_}" for id_, _ in seen["glossary"]}
        dangling = sorted(set(seen["term_links"]) - ids)
        assert not dangling, f"term links with no glossary entry: {dangling}"
        assert seen["term_links"], "no term of the page links to the glossary"


def test_every_identifier_shown_has_a_plain_label(runs, monkeypatch):
    """Status codes, source keys, datasets, measures, steps: each identifier the page shows in
    place of words has a label (``report.LABELS`` or its source folder's), so none falls back
    to code; each caution's glossary terms are in the glossary."""
    monkeypatch.setenv("WH_WAREHOUSE", str(runs["root"] / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(runs["root"] / "wh" / "runs"))
    monkeypatch.setenv("WH_REPORTS_DIR", str(runs["root"] / "reports"))
    for run in ("green", "red"):
        found: set[str] = set()
        report.render(report.gather(run), {}, unlabelled=found)
        assert not found, f"identifiers shown as code for want of a label ({run}): {sorted(found)}"
    for kind in report.CAUTION_ORDER:
        assert set(report.CAUTION_TERMS[kind]) <= set(report.GLOSSARY), kind
    with pytest.raises(KeyError, match="not in report.GLOSSARY"):
        report.Words.term("no such term")


# --- the report's figures against the marts ------------------------------------------------------
# Each figure the report shows is computed again here by a second path: straight from the facts
# (not from the dbt models of schema quality the report reads), with the warehouse's rules written
# out (one release; one as-of date; parts never added to their totals).

def _figures(page: str) -> dict[str, dict[str, str]]:
    """Bar labels and their values as drawn, per chart title: each bar of the wide rendering
    is described "label: value" for screen readers (``aria-label``)."""
    import re

    out = {}
    for title, body in re.findall(r'<figure class="chart" id="chart-\d+"><h3 class="chart-title">'
                                  r'(.*?)</h3>.*?<div class="wide">(.*?)</div>', page, flags=re.S):
        bars = re.findall(r'<path aria-label="([^"]*): ([^":]*)" role="graphics-symbol" '
                          r'aria-roledescription="bar"', body)
        out[html.unescape(re.sub(r"<[^>]+>", "", title))] = {
            html.unescape(k): html.unescape(v) for k, v in bars}
    return out


def _headlines(page: str) -> dict[str, list[str]]:
    """The headline table: label -> the cells of its row (text)."""
    import re

    section = page[page.index('<h2 id="headline-indicators"'):
                   page.index('<h2 id="sources-freshness-and-completeness"')]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def marts(runs):
    with duckdb.connect(str(runs["root"] / "wh" / "migration.duckdb"), read_only=True) as con:
        yield con


def test_headline_indicators_equal_independent_queries(runs, marts):
    page = runs["green"].read_text(encoding="utf-8")
    rows = _headlines(page)
    [(release, through)] = marts.execute("""
        select release_date, max(month) from marts.fct_border_crossings
        where release_date = (select max(release_date) from marts.fct_border_crossings)
        group by 1""").fetchall()
    [(ytd, prior)] = marts.execute("""
        select sum(detections) filter (where year(month) = year(?::date)),
               sum(detections) filter (where year(month) = year(?::date) - 1
                                         and month(month) <= month(?::date))
        from marts.fct_border_crossings
        where release_date = ? and month <= ?::date""",
                                   [through, through, through, release, through]).fetchall()
    assert rows["Irregular border crossings detected, year to date"][2] == f"{ytd:,} detections"
    assert rows["Irregular border crossings detected, year to date"][4] == f"{prior:,} detections"
    [(last12, before12)] = marts.execute("""
        select sum(detections) filter (where month > ?::date - interval 12 month),
               sum(detections) filter (where month <= ?::date - interval 12 month
                                         and month > ?::date - interval 24 month)
        from marts.fct_border_crossings where release_date = ?""",
                                         [through, through, through, release]).fetchall()
    assert rows["Irregular border crossings detected, last 12 months"][2] == \
        f"{last12:,} detections"
    assert rows["Irregular border crossings detected, last 12 months"][4] == \
        f"{before12:,} detections"
    # Returns: the EU aggregate (EU28 in the recorded extracts), all citizenships, latest year.
    [(year, ordered, returned)] = marts.execute("""
        select period, sum(persons) filter (where measure = 'ordered_to_leave'),
               sum(persons) filter (where measure = 'returned')
        from marts.fct_returns where geo = 'EU28' and citizen = 'TOTAL' and period_grain = 'year'
        group by period order by period desc limit 1""").fetchall()
    assert rows["Third-country nationals ordered to leave"][1:3] == [year, f"{ordered:,} persons"]
    assert rows["Third-country nationals returned following an order to leave"][2] == \
        f"{returned:,} persons"
    assert rows["Return rate"][2] == f"{100 * returned / ordered:,.1f} %"
    # Cohesion: one as-of date, the rows that count in totals.
    [(as_of, planned)] = marts.execute("""
        select as_of_date, sum(amount_eur) from marts.fct_funding_disbursements
        where source like 'cohesion_open_data:%' and stage = 'planned' and counts_in_totals
          and as_of_date = (select max(as_of_date) from marts.fct_funding_disbursements
                            where source like 'cohesion_open_data:%')
        group by 1""").fetchall()
    cohesion = rows["Cohesion 2021-2027 planned amounts for home-affairs funds"]
    assert cohesion[1:3] == [str(as_of), f"EUR {planned / 1e6:,.1f}m"]
    [(latest_year, with_instrument, with_measures)] = marts.execute("""
        select year, count(*) filter (where readmission_instrument in ('agreement', 'arrangement')),
               count(*) filter (where art25a_status = 'measures_in_force')
        from marts.fct_readmission_cooperation group by year order by year desc limit 1
        """).fetchall()
    assert rows["Third countries with an EU readmission agreement or arrangement"][1:3] == [
        str(latest_year), f"{with_instrument} countries"]
    assert rows["Third countries under Visa Code Art. 25a measures"][2] == \
        f"{with_measures} countries"


def test_chart_bars_equal_independent_queries(runs, marts):
    from pipeline.charts import money

    charts = _figures(runs["green"].read_text(encoding="utf-8"))
    # Year to date by route: the change in percent, from the fact (not the ytd mart).
    [ytd_title] = [t for t in charts if t.startswith("Change in detections by route")]
    expected = {route: f"{'+' if pct > 0 else ''}{pct:,.1f}%"
                for route, pct in marts.execute("""
        with latest as (select * from marts.fct_border_crossings
                        where release_date = (select max(release_date)
                                              from marts.fct_border_crossings)),
        through as (select max(month) as m from latest)
        select route,
               100 * (sum(detections) filter (where year(month) = year(m) and month <= m)
                      - sum(detections) filter (where year(month) = year(m) - 1
                                                  and month(month) <= month(m)))
                   / sum(detections) filter (where year(month) = year(m) - 1
                                               and month(month) <= month(m))
        from latest, through group by route
        having sum(detections) filter (where year(month) = year(m) - 1
                                         and month(month) <= month(m)) > 0""").fetchall()}
    assert charts[ytd_title] == expected
    # Return rates: returned / ordered to leave, EU28, latest year, top 12 by orders.
    [rate_title] = [t for t in charts if t.startswith("Return rate of the 12")]
    rates = marts.execute("""
        with eu as (
            select citizen, citizen_label,
                   sum(persons) filter (where measure = 'ordered_to_leave') as ordered,
                   sum(persons) filter (where measure = 'returned') as returned
            from marts.fct_returns
            where geo = 'EU28' and period_grain = 'year' and not citizen_is_aggregate
              and period = (select max(period) from marts.fct_returns where geo = 'EU28')
            group by all having ordered > 0 and returned is not null)
        select citizen_label, 100.0 * returned / ordered from eu
        order by ordered desc, citizen limit 12""").fetchall()
    assert charts[rate_title] == {label: f"{rate:,.1f}%" for label, rate in rates}
    assert float(charts[rate_title]["Albania"].rstrip("%")) > 100  # and the caption says so
    # Funding: each source at its latest as-of date only, rows counting in totals only, the
    # outlier set aside as the caption says, per fund and stage. Summing across dates, or
    # adding components, gives other figures: the check could fail.
    funding = [t for t in charts if t.startswith("Funding by fund and stage, ")]
    assert len(funding) == 2  # the registry and the Cohesion sample
    sources = dict(marts.execute("""select distinct source, source from
                                    marts.fct_funding_disbursements""").fetchall())
    for title in funding:
        name, as_of = title.removeprefix("Funding by fund and stage, ").rsplit(", as of ", 1)
        [source] = [s for s in sources if report.catalog.label(s) == name]
        bars = {f"{fund}, {stage}": money(value) for fund, stage, value in marts.execute("""
            select upper(left(f.registry_label, 1)) || substr(f.registry_label, 2), d.stage,
                   sum(d.amount_eur) filter (where d.amount_eur <= 1e10)
            from marts.fct_funding_disbursements d join marts.dim_fund f using (fund_code)
            where d.source = ? and d.as_of_date = ?::date and d.counts_in_totals
            group by all""", [source, as_of]).fetchall()}
        assert charts[title] == bars
        across_dates = {f"{fund}, {stage}": money(value) for fund, stage, value in marts.execute(
            """select upper(left(f.registry_label, 1)) || substr(f.registry_label, 2), d.stage,
                      sum(d.amount_eur) filter (where d.amount_eur <= 1e10)
               from marts.fct_funding_disbursements d join marts.dim_fund f using (fund_code)
               where d.source = ? group by all""", [source]).fetchall()}
        if source.startswith("registry"):
            assert any(across_dates[k] != v for k, v in bars.items()), \
                "test cannot discriminate"


def test_route_chart_draws_the_top_five_routes_of_the_last_12_months(runs, marts):
    figures = report.chart_figures(marts)
    [routes] = [f for f in figures if f["title"].startswith("Detections per month on the top 5")]
    # The five routes with most detections in the newest release's last 12 months, each with
    # its whole history, computed here from the fact.
    top = dict(marts.execute("""
        with latest as (select * from marts.fct_border_crossings
                        where release_date = (select max(release_date)
                                              from marts.fct_border_crossings))
        select route, sum(detections) from latest
        where route in (select route from latest
                        where month > (select max(month) from latest) - interval 12 month
                        group by route order by sum(detections) desc, route limit 5)
        group by route""").fetchall())
    assert {route: sum(v for v in values if v) for route, values in routes["data"].items()} \
        == top
    [(first, last)] = marts.execute("""select strftime(min(month), '%b %Y'),
                                              strftime(max(month), '%b %Y')
                                       from marts.fct_border_crossings""").fetchall()
    assert f"{first} to {last}, the whole history" in routes["subtitle"]
    assert f"in the 12 months to {last}" in routes["title"]
