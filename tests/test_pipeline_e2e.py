"""The whole pipeline through Airflow (``python -m pipeline.run``, what ``make run`` calls), in a
separate process, on the recorded snapshot and on broken copies of it. Tests run in file order
and share one installation (landing, warehouse, Airflow home), like a user running it again."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from tests import workbooks
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.airflow

READ_ONLY_FACTS = textwrap.dedent("""
    import duckdb, json, sys
    with duckdb.connect(sys.argv[1], read_only=True) as con:
        latest = con.execute("select max(release_date) from marts.fct_border_crossings").fetchone()[0]
        rows, total, first, last, routes = con.execute(
            "select count(*), sum(detections), min(month)::varchar, max(month)::varchar,"
            " count(distinct route) from marts.fct_border_crossings where release_date = ?",
            [latest]).fetchone()
        fingerprint = {t: con.execute(
            f"select count(*), md5(string_agg(x::varchar, '|' order by x::varchar)) from marts.{t} x"
            ).fetchone() for t in ("fct_border_crossings", "rpt_detections_ytd_by_route",
                                   "dim_country", "dim_route", "dim_period", "fct_returns",
                                   "rpt_return_rates", "rpt_returns_reconciliation")}
        returns = con.execute("select count(*) from marts.fct_returns").fetchone()[0]
        eu28_2015 = con.execute(
            "select persons from marts.fct_returns where period = '2015' and geo = 'EU28'"
            " and citizen = 'TOTAL' and measure = 'ordered_to_leave'").fetchone()[0]
        raw_rows = con.execute("select count(*) from raw.frontex_detections").fetchone()[0]
        publishes = con.execute("select count(*) from meta.publish_log").fetchone()[0]
    print(json.dumps({"latest": str(latest), "rows": rows, "total": int(total), "first": first,
                      "last": last, "routes": routes, "fingerprint": fingerprint,
                      "raw_rows": raw_rows, "publishes": publishes, "returns": returns,
                      "eu28_2015": eu28_2015}))
""")


@pytest.fixture(scope="module")
def install(tmp_path_factory, snapshot_dir):
    root = tmp_path_factory.mktemp("e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WH_", "AIRFLOW"))}
    env.update({
        "WH_SNAPSHOT_DIR": str(snapshot_dir),
        "WH_LANDING_DIR": str(root / "landing"),
        "WH_WAREHOUSE": str(root / "warehouse" / "migration.duckdb"),
        "AIRFLOW_HOME": str(root / "airflow"),
    })
    return {"root": root, "env": env, "warehouse": root / "warehouse" / "migration.duckdb",
            "landing": root / "landing"}


def run_pipeline(install, snapshot: Path | None = None, *args: str) -> subprocess.CompletedProcess:
    env = dict(install["env"])
    if snapshot is not None:
        env["WH_SNAPSHOT_DIR"] = str(snapshot)
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def facts(warehouse: Path) -> dict:
    """Read the published file read-only, from another process."""
    out = subprocess.run([sys.executable, "-c", READ_ONLY_FACTS, str(warehouse)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def red_report(done: subprocess.CompletedProcess, newest: bool = True) -> str:
    """The text of the (red) quality report a failed run points at (with ``newest``, also the
    report latest.html shows: false when the transform ran after the failed source)."""
    path = Path(done.stderr.split("Quality report (red): ", 1)[1].split()[0])
    page = path.read_text()
    latest = (path.parent.parent / "latest.html").read_text()
    assert not newest or path.parent.name in latest, "latest.html must point at the newest report"
    assert "FAILED: nothing was published." in page
    return page


def what_changed(install) -> str:
    """The "What changed since the previous publish" section of the latest report."""
    page = (install["root"] / "reports" / "quality" / "latest.html").read_text()
    return page[page.index('<h2 id="what-changed'):page.index('<h2 id="headline')]


def first_changed_cell(changed: str) -> str:
    """The first row of the changed values' table in a "What changed" section."""
    table = changed[changed.index('<table class="cells">'):]
    row = table.index("<tr><td>")
    return table[row:table.index("</tr>", row)]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(install) -> list[dict]:
    path = install["landing"] / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


OTHER_FAMILIES = ("eurostat", "cohesion", "registries")


def snapshot_with(install, name: str, content: bytes) -> Path:
    """A snapshot directory with this Frontex workbook and the other recorded files."""
    folder = install["root"] / name
    (folder / "frontex").mkdir(parents=True)
    (folder / "frontex" / "ibc.xlsx").write_bytes(content)
    recorded = Path(install["env"]["WH_SNAPSHOT_DIR"])
    for family in OTHER_FAMILIES:
        (folder / family).symlink_to(recorded / family)
    return folder


def test_first_run_publishes_every_cell_of_the_workbook(install):
    done = run_pipeline(install)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Published warehouse: {install['warehouse']}" in done.stdout
    assert "Detections by route, 2024 (latest complete year)" in done.stdout
    got = facts(install["warehouse"])
    assert got["latest"] == "2025-06-03"
    assert (got["rows"], got["total"], got["routes"]) == (173_460, 4_966_869, 9)
    assert (got["first"], got["last"]) == ("2009-01-01", "2025-04-01")
    assert got["publishes"] == 1
    # Returns from the recorded Eurostat extracts (see tests/test_returns_models.py for every cell).
    assert got["returns"] == 57_474 and got["eu28_2015"] == 533_395
    assert re.search(r"^Eurostat returns, 2010 - 2016:\n  rows \(.*\) +57,474 rows$", done.stdout,
                     re.M)
    # The quality report of the run, and latest.html pointing at it.
    report = Path(done.stdout.split("Quality report: ", 1)[1].split()[0])
    assert report.is_file() and report.parent.parent == install["root"] / "reports" / "quality"
    assert "Published: every blocking check passed" in report.read_text()
    assert report.parent.name in (report.parent.parent / "latest.html").read_text()
    assert re.search(r"^  2015 EU28 +42\.7 %  returned 227,975 of 533,395 ordered to leave$",
                     done.stdout, re.M)
    # The report's headline indicators, in the summary too (EU28 2016: 247,165 / 493,785).
    assert re.search(r"^  Return rate, 2016 +50\.1 % \(was 42\.7 % in 2015\)$", done.stdout, re.M)
    install["first"] = got


def test_second_run_changes_nothing(install):
    before = sha(install["warehouse"])
    done = run_pipeline(install)
    assert done.returncode == 0, done.stderr[-3000:]
    # Nothing new: nothing built, the published file not even rewritten.
    assert sha(install["warehouse"]) == before
    got = facts(install["warehouse"])
    assert got["publishes"] == 1 and got["raw_rows"] == 173_460
    # the workbook, 7 Eurostat files, published figures, the Cohesion sample, two registries
    assert len(manifest(install)) == 1 + 7 + 1 + 1 + 2
    [publish_run] = [line.split("publish of run ")[1].split()[0]
                     for line in done.stdout.splitlines() if "Nothing new since" in line]
    assert "warehouse unchanged" in done.stdout
    # Every source was asked, and with nothing new anywhere no Airflow started (decision 74).
    assert re.search(r"^Before Airflow: no source has anything new \(\d+ asked\) and nothing new "
                     r"since the publish of run .* recorded without starting Airflow", done.stdout,
                     re.M), done.stdout[-3000:]
    assert "=== " not in done.stdout and "dag.test" not in done.stdout + done.stderr
    assert "Airflow metadata database" not in done.stdout
    for skipped in ("load_raw", "dbt_build", "publish"):
        assert f"task_id={skipped}" not in done.stdout + done.stderr
    report = Path(done.stdout.split("Quality report: ", 1)[1].split()[0])
    page = report.read_text()
    assert "Unchanged: the published warehouse is still current" in page
    assert f"Checks of the publish: run {publish_run}." in page  # the engineers' details
    changed = what_changed(install)
    assert "Nothing changed since the publish of " in changed
    assert f"(run <code>{publish_run}</code>)" in changed
    assert report.parent.name in (report.parent.parent / "latest.html").read_text()
    # Asked to, it builds, audits and publishes again: the same marts in a new file.
    done = run_pipeline(install, None, "--rebuild")
    assert done.returncode == 0, done.stderr[-3000:]
    # ... through Airflow, whose metadata database, migrated by the first run, is not migrated
    # again.
    assert "Airflow metadata database is current" in done.stdout
    assert "=== warehouse_transform: success" in done.stdout
    got = facts(install["warehouse"])
    assert got["fingerprint"] == install["first"]["fingerprint"]
    assert got["publishes"] == 2
    assert sha(install["warehouse"]) != before


def test_run_succeeds_while_a_reader_holds_the_published_file(install):
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import duckdb, sys
            con = duckdb.connect(sys.argv[1], read_only=True)
            count = lambda c: c.execute("select count(*) from meta.publish_log").fetchone()[0]
            print(count(con), flush=True)
            sys.stdin.readline()
            print(count(con), flush=True)
            con.close()
            print(count(duckdb.connect(sys.argv[1], read_only=True)), flush=True)
        """), str(install["warehouse"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "2"
        done = run_pipeline(install, None, "--rebuild")
        assert done.returncode == 0, done.stderr[-3000:]
        out, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    # The open connection keeps reading its version; a reconnect sees the new one.
    assert out.split() == ["2", "3"]


def publishes(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [r for (r,) in con.execute(
            "select run_id from meta.publish_log order by published_at").fetchall()]


def test_a_publish_whose_schema_did_not_change_reuses_the_dbt_docs_page(install):
    """The second and third publishes (the third is the reader's --rebuild above) show the same
    models, columns, types and descriptions as the first: their dbt docs page is the first's,
    copied, not generated again; the report links a page that exists and shows the models. (The
    quality history, a dbt source that publish fills, is shaped in the build before its docs,
    so the first publish's page already shows it: decision 78.)"""
    first, second, third = publishes(install["warehouse"])[:3]
    runs = install["warehouse"].parent / "runs"
    record = lambda run: json.loads((runs / run / "dbt" / "docs_fingerprint.json").read_text())
    assert record(first)["generated_by"] == first and "copied_from" not in record(first)
    assert record(second) == {"fingerprint": record(first)["fingerprint"],
                              "generated_by": first, "copied_from": first}, (
        "the second publish generated the dbt docs again although what they show did not change")
    assert record(third) == {"fingerprint": record(first)["fingerprint"],
                             "generated_by": first, "copied_from": second}
    page = lambda run: (runs / run / "dbt" / "target" / "static_index.html").read_bytes()
    assert page(third) == page(second) == page(first)
    # The report of the third publish links its page, kept beside the reports.
    report = Path(report_of(install, third))
    linked = re.search(r'<a href="([^"]+)">dbt docs of the published warehouse',
                       report.read_text()).group(1)
    target = (report.parent / linked).resolve()
    assert target.is_file() and target.parent.parent.name == third, target
    assert target.read_bytes() == page(first)
    assert b"fct_border_crossings" in target.read_bytes()


def report_of(install, run_id: str) -> str:
    with duckdb.connect(str(install["warehouse"].with_name("quality_history.duckdb")),
                        read_only=True) as con:
        return con.execute("select report_path from quality.runs where run_id = ? "
                           "and report_path is not null", [run_id]).fetchone()[0]


def test_corrupted_workbook_fails_and_leaves_published_file_byte_identical(install,
                                                                          recorded_workbook):
    before = sha(install["warehouse"])
    broken = snapshot_with(install, "snapshot_truncated",
                           recorded_workbook[: len(recorded_workbook) * 2 // 3])
    done = run_pipeline(install, broken)
    assert done.returncode != 0
    assert "PIPELINE FAILED" in done.stderr
    assert "frontex_ingest failed at step 'land'" in done.stderr
    # Asked before Airflow started, the source had something new: its DAG and the transform
    # ran; the sources with nothing new were not started (decision 78).
    assert "Before Airflow: frontex has something new" in done.stdout
    assert "running frontex_ingest, warehouse_transform; nothing new from cohesion" in done.stdout
    assert "=== frontex_ingest: running" in done.stdout
    assert "=== cohesion_ingest" not in done.stdout and "=== eurostat_ingest" not in done.stdout, (
        "a source DAG ran although its source had nothing new")
    assert "ibc.xlsx" in done.stderr and "truncated or corrupt" in done.stderr
    assert sha(install["warehouse"]) == before
    # The transform still ran (nothing new there: nothing rebuilt).
    assert "Nothing new since the publish of run" in done.stdout, done.stdout[-2000:]
    page = red_report(done, newest=False)
    assert "stopped at fetching and landing the files;" in page
    assert "truncated or corrupt" in page
    quarantined = [e for e in manifest(install) if e["status"] == "quarantined"]
    assert len(quarantined) == 1
    assert (install["landing"] / quarantined[0]["path"]).stat().st_size == len(
        recorded_workbook) * 2 // 3


def files_listing(install, *args: str) -> subprocess.CompletedProcess:
    """``python -m pipeline.run files|reject|readmit ...`` on the test installation."""
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=REPO_ROOT,
                          env=install["env"], capture_output=True, text=True, timeout=120)


def state_of(install, sha256: str) -> str:
    """The state ``python -m pipeline.run files`` prints for the file with this sha256."""
    [entry] = [e for e in manifest(install) if e["sha256"] == sha256]
    listing = files_listing(install, "files").stdout
    [line] = [line for line in listing.splitlines()
              if line.split()[1:2] == [entry["path"]]]
    return line.split()[0]


def workbook_with(snapshot_dir: Path, note: str, change) -> bytes:
    """The recorded workbook's rows with ``change(rows)`` applied, written with ``note``."""
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    change(rows)
    return workbooks.write_workbook(header=header, rows=rows, note=note)


def test_bad_file_of_the_same_release_is_rejected_and_the_next_run_recovers(install,
                                                                           snapshot_dir):
    """Good, bad, good: a workbook that parses but breaks an audit (a negative count) under the
    release date already published is rejected; the next run, with the good file back, publishes
    with no hand work, and so does a later release."""
    before = sha(install["warehouse"])
    published = facts(install["warehouse"])

    def negative(rows):
        rows[10][50] = -7
    bad_bytes = workbook_with(snapshot_dir, "Source: FRAN data as of 03JUN25", negative)
    bad = snapshot_with(install, "snapshot_negative", bad_bytes)
    done = run_pipeline(install, bad)
    assert done.returncode != 0
    assert "warehouse_transform failed at step 'audit_raw'" in done.stderr
    assert "detections non-negative" in done.stderr
    assert "source_row=12" in done.stderr and "release 2025-06-03" in done.stderr
    bad_sha = hashlib.sha256(bad_bytes).hexdigest()
    [bad_entry] = [e for e in manifest(install) if e["sha256"] == bad_sha]
    assert "Rejected (kept in landing/ for diagnosis" in done.stderr
    assert bad_entry["path"] in done.stderr
    assert sha(install["warehouse"]) == before
    page = red_report(done)
    assert ("detections non-negative, in the checks of the loaded files &mdash; 1 rows" in page
            and "<code>frontex_raw_rows</code>" in page)
    [failure] = [f for f in install["warehouse"].parent.glob("runs/*/failure.json")
                 if json.loads(f.read_text())["step"] == "audit_raw"]
    kept = Path(json.loads(failure.read_text())["build_db"])
    assert kept.exists() and kept != install["warehouse"]
    assert (install["landing"] / bad_entry["path"]).read_bytes() == bad_bytes
    assert state_of(install, bad_sha) == "rejected"

    # The good snapshot again: nothing new lands, and the run publishes without the bad file.
    done = run_pipeline(install)
    assert done.returncode == 0, done.stderr[-3000:]
    got = facts(install["warehouse"])
    assert (got["latest"], got["rows"], got["total"]) == ("2025-06-03", 173_460, 4_966_869)
    assert got["fingerprint"] == published["fingerprint"]
    assert got["raw_rows"] == 173_460  # the rejected file never reached raw
    assert state_of(install, bad_sha) == "rejected"

    def fixed(rows):
        rows[10][50] = 7
    good = snapshot_with(install, "snapshot_fixed", workbook_with(
        snapshot_dir, "Source: FRAN data as of 04JUL25", fixed))
    done = run_pipeline(install, good)
    assert done.returncode == 0, done.stderr[-3000:]
    got = facts(install["warehouse"])
    assert got["latest"] == "2025-07-04"
    assert got["rows"] == 173_460
    assert got["raw_rows"] == 2 * 173_460  # both good releases kept, the bad one never loaded
    # Its report compares with the last publish, not with the failed run in between, and names
    # the one cell the new release changed: Central Mediterranean Route / Sea / Nigeria,
    # December 2012, 34 in the recorded workbook (sheet row 12, column DEC2012; read by hand),
    # 7 in this one.
    with duckdb.connect(str(install["warehouse"].with_name("quality_history.duckdb")),
                        read_only=True) as con:
        runs = con.execute("select run_id, state from quality.runs order by recorded_at").fetchall()
    assert runs[-1][1] == "published", runs
    previous = max(i for i, (_, state) in enumerate(runs[:-1]) if state == "published")
    failed = [run for run, state in runs[previous + 1:-1] if state == "failed"]
    assert failed, f"no failed run between the last two publishes: {runs}"
    changed = what_changed(install)
    assert f"(run <code>{runs[previous][0]}</code>)" in changed and not any(
            f in changed for f in failed), (
        "What changed must compare with the last publish, not with the failed run: " + changed)
    first = first_changed_cell(changed)
    assert "Central Mediterranean Route / Sea / Nigeria / Dec 2012" in first, first
    assert '<td class="num">34</td><td class="num">7</td><td class="num">-27</td>' in first, first
    assert "<td>2025-07-04</td><td>2025-06-03</td>" in first, first
    assert "1 value changed</b>" in changed, changed


def test_correction_of_a_release_supersedes_it_and_a_hand_rejection_undoes_it(install,
                                                                             snapshot_dir):
    """A re-issued 2025-06-03 workbook with one cell 5 higher publishes the corrected total;
    the original stays as a superseded file. Rejected by hand, the correction leaves the
    warehouse at the next run; re-admitted, it comes back."""
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    # Row 2 of the sheet, first month with a count (checked by hand: Central Mediterranean
    # Route / Sea / ... has counts).
    col = next(j for j, v in enumerate(rows[0]) if j >= 3 and isinstance(v, int) and v > 0)
    original = rows[0][col]

    def plus_five(rows):
        rows[0][col] = original + 5
    corrected_bytes = workbook_with(snapshot_dir, "Source: FRAN data as of 03JUN25", plus_five)
    done = run_pipeline(install, snapshot_with(install, "snapshot_corrected", corrected_bytes))
    assert done.returncode == 0, done.stderr[-3000:]
    with_release = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
         "print(c.execute(\"select sum(detections), count(*), count(distinct sha256) from "
         "marts.fct_border_crossings where release_date = '2025-06-03'\").fetchone())",
         str(install["warehouse"])], capture_output=True, text=True, check=True).stdout
    assert with_release.strip() == f"({4_966_869 + 5}, 173460, 1)"
    corrected_sha = hashlib.sha256(corrected_bytes).hexdigest()
    original_sha = hashlib.sha256((snapshot_dir / "frontex" / "ibc.xlsx").read_bytes()).hexdigest()
    assert state_of(install, corrected_sha) == "published"
    assert state_of(install, original_sha) == "superseded"
    # The revision mart shows the correction: one cell, +5, against the original file.
    revision = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
         "print(c.execute(\"select route, nationality, previous_detections, detections, revision,"
         " correction_number from marts.rpt_border_crossings_revisions where is_correction"
         " and release_date = '2025-06-03'\").fetchall())", str(install["warehouse"])],
        capture_output=True, text=True, check=True).stdout.strip()
    assert revision == str([("Central Mediterranean Route", "Bangladesh", original, original + 5,
                             5, 2)])
    # The report of that run says what changed since the publish before it, in words and numbers.
    changed = what_changed(install)
    assert ('Revisions</a>: <b>Frontex, Central Mediterranean Route</b>, 2025-06-03 '
            'correction 2: 1 cell revised (1 by a <a class="term" href="#term-correction">'
            'correction</a> of a release already loaded), 5 in absolute changes; the biggest '
            ) in changed, changed
    assert "correction of release 2025-06-03), +5.</li>" in changed, changed
    # Down to the cell, first in the table: route, border type, nationality, month, before,
    # after, the correction that changed it and what it was compared with.
    first = first_changed_cell(changed)
    assert "Central Mediterranean Route / Sea / Bangladesh / Jan 2009" in first, first
    assert (f'<td class="num">{original:,}</td><td class="num">{original + 5:,}</td>'
            '<td class="num">+5</td><td>2025-06-03 correction 2 (a <a class="term" '
            'href="#term-correction">correction</a>)</td>'
            '<td>2025-06-03</td>') in first, first
    # The verdict says a correction was published, with that cell.
    page = (install["root"] / "reports" / "quality" / "latest.html").read_text()
    cautions = page[page.index('id="cautions"'):page.index('id="verdict-details"')]
    assert ("A correction was published today: Frontex re-issued 2025-06-03 correction 2, "
            "changing 1 value already published; the biggest: Central Mediterranean Route / "
            f"Sea / Bangladesh / Jan 2009, {original:,} before, {original + 5:,} now") in cautions

    rejected = files_listing(install, "reject", corrected_sha[:12], "--reason",
                             "checking the cell with Frontex")
    assert rejected.returncode == 0, rejected.stderr
    assert state_of(install, corrected_sha) == "rejected"
    done = run_pipeline(install)
    assert done.returncode == 0, done.stderr[-3000:]
    after = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
         "print(c.execute(\"select sum(detections) from marts.fct_border_crossings "
         "where release_date = '2025-06-03'\").fetchone()[0],"
         "c.execute(\"select count(*) from raw.load_log where sha256 = ?\", [sys.argv[2]])"
         ".fetchone()[0])", str(install["warehouse"]), corrected_sha],
        capture_output=True, text=True, check=True).stdout.split()
    assert after == [str(4_966_869), "0"]
    assert state_of(install, original_sha) == "published"
    listing = files_listing(install, "files", "--state", "rejected").stdout
    assert "by hand: checking the cell with Frontex" in listing

    assert files_listing(install, "readmit", corrected_sha[:12]).returncode == 0
    assert state_of(install, corrected_sha) == "landed"


def test_unmapped_nationality_fails_dbt_names_the_file_and_is_rejected(install, snapshot_dir):
    """A release with a nationality label the seed does not map fails the dbt test that guards
    it; the error names the label and the landing file, and the file is rejected."""
    before = sha(install["warehouse"])

    def renamed(rows):
        rows[3][2] = "Atlantis"
    bad_bytes = workbook_with(snapshot_dir, "Source: FRAN data as of 05AUG25", renamed)
    done = run_pipeline(install, snapshot_with(install, "snapshot_atlantis", bad_bytes))
    assert done.returncode != 0
    assert "warehouse_transform failed at step 'dbt_build'" in done.stderr
    assert "assert_every_frontex_nationality_is_mapped" in done.stderr
    assert "unmapped_frontex_label=Atlantis" in done.stderr
    bad_sha = hashlib.sha256(bad_bytes).hexdigest()
    [entry] = [e for e in manifest(install) if e["sha256"] == bad_sha]
    assert f"landing_file={entry['path']}" in done.stderr
    assert sha(install["warehouse"]) == before
    assert state_of(install, bad_sha) == "rejected"


def release_total(install, release: str) -> int:
    """Detections of one Frontex release in the published warehouse (read from another
    process)."""
    out = subprocess.run(
        [sys.executable, "-c", "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
         "print(c.execute('select sum(detections) from marts.fct_border_crossings "
         "where release_date = ?', [sys.argv[2]]).fetchone()[0])", str(install["warehouse"]),
         release], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_corrupted_eurostat_file_is_kept_and_holds_back_no_other_file(install, snapshot_dir):
    """A Eurostat file that fails parsing is quarantined and fails the run; the other files
    waiting to be built (the correction re-admitted above) are published by the same run."""
    assert release_total(install, "2025-06-03") == 4_966_869, "the correction is already in"
    folder = install["root"] / "snapshot_eurostat_broken"
    (folder / "frontex").mkdir(parents=True)
    (folder / "frontex" / "ibc.xlsx").symlink_to(snapshot_dir / "frontex" / "ibc.xlsx")
    for sub in ("legacy", "sdmx", "published"):
        shutil.copytree(snapshot_dir / "eurostat" / sub, folder / "eurostat" / sub)
    for family in ("cohesion", "registries"):
        (folder / family).symlink_to(snapshot_dir / family)
    broken = folder / "eurostat" / "legacy" / "migr_eirtn_Data_allcitizens.csv"
    lines = broken.read_bytes().split(b"\n")
    lines[23823] = lines[23823].replace(b'"3,440"', b'"3,44O"')  # line 23824: DE x AF 2016
    broken.write_bytes(b"\n".join(lines))
    done = run_pipeline(install, folder)
    assert done.returncode != 0
    assert "eurostat_ingest failed at step 'land'" in done.stderr
    assert ("migr_eirtn_Data_allcitizens.csv, row 23824: [value is a number] Value '3,44O'"
            in done.stderr)
    assert "The other sources' new files were published" in done.stderr, done.stderr[-2000:]
    assert release_total(install, "2025-06-03") == 4_966_869 + 5, \
        "the re-admitted correction was held back by the failed Eurostat file"
    [kept] = [e for e in manifest(install)
              if e["status"] == "quarantined" and e["source"] == "eurostat"]
    assert (install["landing"] / kept["path"]).read_bytes() == broken.read_bytes()


def test_negative_registry_amount_blocks_publish_with_its_row(install, snapshot_dir):
    before = sha(install["warehouse"])
    folder = install["root"] / "snapshot_registry_negative"
    folder.mkdir()
    for family in ("frontex", "eurostat", "cohesion"):
        (folder / family).symlink_to(snapshot_dir / family)
    (folder / "registries").mkdir()
    shutil.copy(snapshot_dir / "registries" / "readmission_instruments.csv", folder / "registries")
    lines = (snapshot_dir / "registries" / "funding_commitments.csv").read_bytes().split(b"\n")
    assert b",paid,79600000," in lines[41]  # line 42: Morocco, tranches paid so far
    lines[41] = lines[41].replace(b",paid,79600000,", b",paid,-79600000,")
    (folder / "registries" / "funding_commitments.csv").write_bytes(b"\n".join(lines))
    done = run_pipeline(install, folder)
    assert done.returncode != 0
    assert "registries_ingest failed at step 'land'" in done.stderr
    assert ("funding_commitments.csv, row 42: [amount positive] amount_eur -79600000 is negative"
            in done.stderr)
    assert sha(install["warehouse"]) == before
    [kept] = [e for e in manifest(install)
              if e["status"] == "quarantined" and e["source"] == "funding_registry"]
    assert b"-79600000" in (install["landing"] / kept["path"]).read_bytes()


def test_inconsistent_readmission_registry_blocks_publish(install, snapshot_dir):
    before = sha(install["warehouse"])
    folder = install["root"] / "snapshot_registry_in_force_before_signed"
    folder.mkdir()
    for family in ("frontex", "eurostat", "cohesion"):
        (folder / family).symlink_to(snapshot_dir / family)
    (folder / "registries").mkdir()
    shutil.copy(snapshot_dir / "registries" / "funding_commitments.csv", folder / "registries")
    lines = (snapshot_dir / "registries" / "readmission_instruments.csv").read_bytes().split(b"\n")
    assert lines[26].startswith(b"Georgia,GE,eu_readmission_agreement,") and b",2011-03-01," in lines[26]
    lines[26] = lines[26].replace(b",2011-03-01,", b",2010-03-01,")  # before the 2010-11-22 signature
    (folder / "registries" / "readmission_instruments.csv").write_bytes(b"\n".join(lines))
    done = run_pipeline(install, folder)
    assert done.returncode != 0
    assert "registries_ingest failed at step 'land'" in done.stderr
    assert ("readmission_instruments.csv, row 27: [in force not before signed] GE: in force "
            "2010-03-01 (day) before signed 2010-11-22 (row 26)") in done.stderr
    assert sha(install["warehouse"]) == before
