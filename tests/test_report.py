"""The data-quality report, built from the stored results of a real green run and of a real run
whose raw audit fails (the transform steps without Airflow, on the recorded sources), and
rendered in a real headless Chromium (Debian's package, installed here when missing): a
screenshot that is not blank and shows the red banner at the top for the failed run, every
section title in the rendered page, and no request to any network address while rendering,
neither by the report nor by the Great Expectations Data Docs shipped with it."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from expectations.audit import AuditFailed
from pipeline import report, steps, warehouse
from tests.replay_server import ReplayServer, Reply

SECTION_TITLES = ("Run", "Sources: freshness and completeness", "Checks", "Flags", "Revisions",
                  "Reconciliation with published figures", "Charts", "History",
                  "Great Expectations Data Docs")
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
    assert "Published: run green passed every blocking check" in page
    assert "FAILED" not in page
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in page, title
    assert "hgyj-gyin_sample.csv holds exactly 1,000 rows" in page  # the partial sample, said
    assert "<svg" in page and page.count("<svg") == 4  # the four charts
    # The recorded published figures (2018-2025) and extracts (2010-2016) do not overlap: said.
    assert ("No published figure could be compared: the publisher's figures cover 2018 to "
            "2025-Q4, the warehouse holds 2010 to 2016.") in page


def test_failed_run_report_is_red_at_the_top_and_names_the_check(runs):
    page = runs["red"].read_text(encoding="utf-8")
    banner = page.index('class="banner failed"')
    assert banner < page.index(">Sources: freshness and completeness</h2>")
    assert "FAILED: nothing was published." in page
    assert "stopped at step <b>audit_raw</b>" in page
    assert "<b>frontex_raw_rows</b> (raw): detections non-negative — 1 rows" in page
    assert runs["before"] == runs["after"], "the published warehouse must not change"


def test_latest_points_at_the_newest_and_older_reports_are_kept(runs):
    latest = (runs["root"] / "reports" / "latest.html").read_text()
    assert f"{runs['red'].parent.name}/index.html" in latest
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
    assert "Published: run green" in (runs["root"] / "reports" / new / "index.html").read_text()
    with duckdb.connect(str(runs["root"] / "wh" / "quality_history.duckdb"),
                        read_only=True) as con:
        assert con.execute("select count(*) from quality.runs").fetchone()[0] == 2


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
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120).stdout
    log = json.loads(netlog.read_text() or "{}") if netlog.exists() else {}
    start_job = log.get("constants", {}).get("logEventTypes", {}).get("URL_REQUEST_START_JOB")
    # Requests the page made: the browser's own (component updates, network time, accounts)
    # carry the initiator "not an origin"; a file:// page's subresources carry "null".
    urls = {e["params"].get("url") for e in log.get("events", [])
            if e.get("type") == start_job and isinstance(e.get("params"), dict)
            and e["params"].get("initiator") != "not an origin"} - {None}
    return {"png": out / "page.png", "dom": dom, "urls": urls}


def external(urls: set[str]) -> set[str]:
    return {u for u in urls if not u.startswith(("file:", "data:", "about:", "chrome:"))}


def colours(png: Path, box: tuple[int, int, int, int]) -> dict[tuple, int]:
    from PIL import Image

    with Image.open(png) as image:
        region = image.convert("RGB").crop(box)
        return {colour: n for n, colour in region.getcolors(maxcolors=1 << 20)}


def test_the_net_log_sees_a_request_when_there_is_one(chromium, tmp_path):
    """The detector below could fail: a page loading an image from a server is caught."""
    with ReplayServer() as srv:
        srv.route("/pixel.gif", Reply(body=b"GIF89a", headers={"Content-Type": "image/gif"}))
        page = tmp_path / "fetching.html"
        page.write_text(f"<html><body><img src='{srv.url('/pixel.gif')}'></body></html>")
        rendered = render(chromium, page.as_uri(), tmp_path / "out")
        assert srv.count("/pixel.gif") >= 1
        assert srv.url("/pixel.gif") in external(rendered["urls"])


def test_failed_report_renders_red_at_the_top_offline(chromium, runs, tmp_path):
    rendered = render(chromium, runs["red"].as_uri(), tmp_path)
    assert external(rendered["urls"]) == set()
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
    assert colours(rendered["png"], (0, 0, 1200, 400)).get(GREEN_BANNER, 0) > 20_000
    assert rendered["dom"].count("<svg") >= 4
    docs = runs["green"].parent / "data_docs" / "raw" / "index.html"
    assert docs.exists()
    rendered = render(chromium, docs.as_uri(), tmp_path / "docs")
    assert external(rendered["urls"]) == set()
    assert 'href="static/vendor/bootstrap/css/bootstrap.min.css"' in rendered["dom"]
    assert (docs.parent / "static/vendor/bootstrap/css/bootstrap.min.css").is_file()
    assert (docs.parent / "static/vendor/fontawesome/webfonts").is_dir()
    assert len(colours(rendered["png"], (0, 0, 1200, 1400))) > 20
