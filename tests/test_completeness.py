"""Completeness rules a user would expect (issue 18): plausible bad files, built here from the
recorded ones, go through the real steps of the DAGs against a published warehouse. Each fails at
the step that owns its rule, with an error naming the file, the rows (or cells) and the rule;
the published warehouse stays byte for byte as it was; the bad file is rejected with the reason;
a good file after them publishes with no hand work.

The recorded Frontex workbook has no empty cell (0 of its 885 x 196 = 173,460 cells: zeros are
written as 0), no totals row and no totals column; the totals rules are exercised on the older
layout of tests/sources/frontex/test_frontex_layouts.py (a ``Total`` row and column).

The cases run in order against one installation (module scope), as the DAGs would meet them:

1. the recorded snapshot publishes (4,966,869 detections) and passes the new checks;
2. Frontex: a header-only workbook and a disagreeing totals row fail at landing (parse);
   a release whose newest month is empty for every other row, one dated 2035, one dated more
   than WH_FRONTEX_RELEASE_LAG_DAYS after its newest month, one that lost 22 rows of the
   previous release fail the raw audit;
3. Eurostat: a corrected re-issue of a small extract publishes, then a vintage of the big extract
   with half its rows fails the raw audit (the check compares a file with the previous vintage
   of the same file, no longer with whatever the dataset's previous run loaded);
4. Cohesion: a snapshot with a tenth of the previous snapshot's rows fails the raw audit;
5. a good Frontex release publishes after all of them;
6. a release whose totals move 18 % is held as suspicious, rejected with a reason starting
   "suspicious:", and published on purpose with ``readmit FILE --accept-suspicious``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingest.errors import DataError
from ingest.landing import Landing
from pipeline import files, steps
from tests.sources.frontex import test_frontex_layouts as layouts
from tests import workbooks
from tests.conftest import OTHER_SOURCE_DAGS, REPO_ROOT, point_installation_at

TRANSFORM = ("prepare", "load", "audit_raw", "dbt_build", "audit_marts", "publish")
RUNS = iter(range(1000))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inst(tmp_path_factory, snapshot_dir):
    """The recorded snapshot landed and published by the real steps; the snapshot folder is then
    switched per case (``WH_CURATED_DIR`` stays on the recorded files)."""
    root = tmp_path_factory.mktemp("completeness")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        mp.setenv("WH_CURATED_DIR", str(snapshot_dir))
        for dag_id in ("frontex_ingest", *OTHER_SOURCE_DAGS):
            steps.land("base", dag_id)
        failed = transform("base")
        assert failed is None, f"the recorded snapshot did not publish: {failed}"
        header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
        yield {"root": root, "mp": mp, "snapshot": snapshot_dir,
               "published": root / "wh" / "migration.duckdb", "header": header, "rows": rows}


def transform(run_id: str):
    """The transform steps in order; (step, error) of the first that fails, else None."""
    for name in TRANSFORM:
        try:
            getattr(steps, name)(run_id)
        except Exception as err:  # noqa: BLE001 - the test asserts on it
            return name, err
    return None


def snapshot(inst, name: str, content: dict[str, bytes]) -> Path:
    """A snapshot folder holding ``content`` (relative path -> bytes), made the replayed one."""
    folder = inst["root"] / "snapshots" / name
    for rel, data in content.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    inst["mp"].setenv("WH_SNAPSHOT_DIR", str(folder))
    return folder


def release_workbook(inst, note: str, change=None) -> bytes:
    """The recorded workbook's rows (a fresh copy), ``change(rows)`` applied, with ``note``."""
    rows = [list(r) for r in inst["rows"]]
    if change is not None:
        change(rows)
    return workbooks.write_workbook(header=inst["header"], rows=rows, note=note)


def state(content: bytes) -> files.FileState:
    digest = hashlib.sha256(content).hexdigest()
    [found] = [s for s in files.states() if s.entry.sha256 == digest]
    return found


def newest_release(inst) -> tuple:
    with duckdb.connect(str(inst["published"]), read_only=True) as con:
        return con.execute("""select release_date::varchar, count(*), sum(detections)
                              from marts.fct_border_crossings
                              where release_date = (select max(release_date)
                                                    from marts.fct_border_crossings)
                              group by 1""").fetchone()


def fails_at_landing(inst, name: str, dag_id: str, content: dict[str, bytes]) -> DataError:
    before = sha(inst["published"])
    snapshot(inst, name, content)
    with pytest.raises(DataError) as caught:
        steps.land(f"{name}{next(RUNS)}", dag_id)
    assert sha(inst["published"]) == before, f"{name}: the published warehouse changed"
    return caught.value


def fails_at_raw_audit(inst, name: str, dag_id: str, content: dict[str, bytes],
                       bad: bytes) -> tuple[str, files.FileState]:
    """Land ``content``, run the transform: it must stop at audit_raw, leave the published file
    as it was and reject ``bad``. Returns the error text and the bad file's state."""
    before = sha(inst["published"])
    snapshot(inst, name, content)
    steps.land(f"{name}-land", dag_id)
    failed = transform(name)
    assert failed is not None, f"{name}: the bad file was published"
    step, err = failed
    assert step == "audit_raw", f"{name}: failed at {step}, not at the raw audit: {err}"
    assert isinstance(err, files.Rejected), f"{name}: no file rejected: {err}"
    assert sha(inst["published"]) == before, f"{name}: the published warehouse changed"
    found = state(bad)
    assert found.state == "rejected", f"{name}: the bad file is {found.state}, not rejected"
    assert found.entry.path in str(err), f"{name}: the error does not name the file: {err}"
    assert [e.sha256 for e in err.rejected] == [found.entry.sha256], (
        f"{name}: other files than the bad one were rejected: {[e.path for e in err.rejected]}")
    return str(err), found


# --- 1. the recorded snapshot -----------------------------------------------------------------

def test_the_recorded_snapshot_publishes_and_passes_the_new_checks(inst):
    assert newest_release(inst) == ("2025-06-03", 173_460, 4_966_869), (
        "the recorded release did not publish with its 4,966,869 detections")
    summary = (inst["root"] / "wh" / "runs" / "base" / "audit" / "raw" / "audit_raw.json")
    checks = {c["suite"]: c for c in json.loads(summary.read_text())["checks"]}
    # Every row of the newest month (April 2025) had a count in March: 885 rows expected, all
    # there; no earlier release to compare rows or totals with.
    assert checks["frontex_raw_newest_month"]["rows"] == 885
    assert checks["frontex_raw_newest_month"]["failed"] == 0
    assert "frontex_raw_keys" not in checks and "frontex_raw_changes" not in checks
    assert checks["frontex_raw_release"]["evaluated"] == 5  # with the two release-date rules
    assert checks["cohesion_raw_snapshots"]["failed"] == 0
    assert checks["eurostat_raw_loads"]["rows"] == 7  # one row per recorded Eurostat file


# --- 2. Frontex ---------------------------------------------------------------------------------

def test_a_workbook_with_a_header_and_no_data_rows_fails_at_parse(inst):
    bad = workbooks.write_workbook(header=inst["header"], rows=[],
                                   note="Source: FRAN data as of 04JUL25")
    err = fails_at_landing(inst, "header_only", "frontex_ingest", {"frontex/ibc_empty.xlsx": bad})
    assert err.rule == "data rows", f"wrong rule for a header-only workbook: {err}"
    assert "ibc_empty.xlsx" in str(err) and err.row == 1, f"file or header row not named: {err}"
    assert "no data rows" in str(err), err
    found = state(bad)
    assert found.state == "rejected" and "[data rows]" in found.detail, (
        f"the header-only workbook is {found.state} ({found.detail}), not rejected at landing")


def test_a_totals_row_or_column_disagreeing_with_its_rows_fails_at_parse(inst):
    """The older layout has a Total row (sums of the rows above) and a Total column (sums of the
    months); the recorded layout has neither. January's total 875 against 874 in the rows."""
    note = [[], ["Source: Frontex FRAN, data as of 05/04/2019"]]
    title = [["Detections of illegal border-crossings between BCPs"], []]
    rows = [list(r) for r in layouts.ROWS_2019]
    rows[-1][3] = 875
    bad_row = workbooks.write_layout(layouts.HEADER_2019, rows, sheet="Detections of IBC",
                                     notes=None, above=title, below=note)
    err = fails_at_landing(inst, "totals_row", "frontex_ingest",
                           {"frontex/ibc_2019_total.xlsx": bad_row})
    assert err.rule == "totals row agrees with its rows", f"wrong rule: {err}"
    assert "ibc_2019_total.xlsx" in str(err) and err.row == 10, f"file or row not named: {err}"
    assert "cell D10 ('Total' row, Jan 2019) states 875" in str(err), err
    assert "add up to 874" in str(err), err
    assert state(bad_row).state == "rejected", "the workbook with a wrong total was not rejected"

    rows = [list(r) for r in layouts.ROWS_2019]
    rows[1][6] = 43  # Eritrea: 30 + (empty) + 12 = 42
    bad_column = workbooks.write_layout(layouts.HEADER_2019, rows, sheet="Detections of IBC",
                                        notes=None, above=title, below=note)
    err = fails_at_landing(inst, "totals_column", "frontex_ingest",
                           {"frontex/ibc_2019_column.xlsx": bad_column})
    assert err.rule == "totals column agrees with its row", f"wrong rule: {err}"
    assert err.row == 5 and "cell G5 (Central Mediterranean / Sea / Eritrea) states 43" in str(
        err) and "add up to 42" in str(err), f"row or cell not named: {err}"


def test_a_newest_month_empty_for_half_the_rows_fails_the_raw_audit(inst):
    """April 2025 emptied in the second half of the rows (the adversarial file of issue 18:
    4,963,824 detections instead of 4,966,869): empty cells are no observation to the parser,
    and the row count loses only 443 of 173,460 rows; the newest month must be complete."""
    emptied = []

    def empty_half(rows):
        for row in rows[442:]:
            emptied.append(row[-1])
            row[-1] = None
    bad = release_workbook(inst, "Source: FRAN data as of 04JUL25", empty_half)
    text, found = fails_at_raw_audit(inst, "newest_half", "frontex_ingest",
                                     {"frontex/ibc.xlsx": bad}, bad)
    assert len(emptied) == 443 and 4_966_869 - sum(emptied) == 4_963_824
    assert "[frontex_raw_newest_month] newest month complete" in text, text
    assert "443 of 885 rows break it" in text, text
    assert "month=2025-04" in text and "route=" in text and "nationality=" in text, text
    assert "release 2025-07-04" in text, text
    assert "newest month complete" in found.detail, f"rejected without the rule: {found.detail}"


def test_a_release_dated_after_today_fails_the_raw_audit(inst):
    bad = release_workbook(inst, "Source: FRAN data as of 03JUN35")
    text, found = fails_at_raw_audit(inst, "dated_2035", "frontex_ingest",
                                     {"frontex/ibc.xlsx": bad}, bad)
    assert "[frontex_raw_release] release date not after today" in text, text
    assert "release_date=2035-06-03" in text and "release 2035-06-03" in text, text
    assert "release date not after today" in found.detail, found.detail
    assert newest_release(inst)[0] == "2025-06-03", "2035 became the newest release"


def test_a_release_long_after_its_newest_month_fails_the_raw_audit(inst):
    """Released 2026-06-02 with data through April 2025: 427 days, beyond the 150 allowed (the
    recorded release is 63 days after April 2025)."""
    bad = release_workbook(inst, "Source: FRAN data as of 02JUN26")
    text, _ = fails_at_raw_audit(inst, "stale", "frontex_ingest",
                                 {"frontex/ibc.xlsx": bad}, bad)
    assert ("release date at most WH_FRONTEX_RELEASE_LAG_DAYS after the first day of its "
            "newest month") in text, text
    assert "days_after_newest_month=427" in text and "newest_month=2025-04" in text, text


def test_a_release_that_lost_rows_of_the_previous_one_fails_the_raw_audit(inst):
    """Somalia and Sudan gone (11 rows each: every route and border type): 22 of 885 rows,
    2.5 % of the cells, which the row count (90 %) let through."""
    def drop(rows):
        rows[:] = [r for r in rows if r[2] not in ("Somalia", "Sudan")]
    bad = release_workbook(inst, "Source: FRAN data as of 04JUL25", drop)
    text, found = fails_at_raw_audit(inst, "lost_rows", "frontex_ingest",
                                     {"frontex/ibc.xlsx": bad}, bad)
    assert "[frontex_raw_keys] rows of the previous release kept" in text, text
    assert "22 of 885 rows break it" in text, text
    assert "against release 2025-06-03" in text and "previous_release=2025-06-03" in text, text
    assert "nationality=Somalia" in text or "nationality=Sudan" in text, text
    assert "suspicious:" not in found.detail, "lost rows are an error, not a suspicion"


# --- 3. Eurostat --------------------------------------------------------------------------------

EIRTN_BIG = "eurostat/legacy/migr_eirtn_Data_allcitizens.csv"
EIRTN_SMALL = "eurostat/legacy/migr_eirtn_1_Data.csv"


def test_a_eurostat_file_with_half_its_rows_fails_against_its_previous_vintage(inst):
    # A corrected re-issue of the small extract (476 observations) publishes: it is compared
    # with the previous vintage of itself, not with the dataset's previous load (29,021 rows).
    small = (inst["snapshot"] / EIRTN_SMALL).read_bytes()
    lines = small.rstrip(b"\n").split(b"\n")
    assert lines[-1].startswith(b'"2016","Switzerland","Total","Persons returned to a third')
    lines[-1] = lines[-1].replace(b'":"', b'"5"')  # Switzerland 2016: missing -> 5
    corrected = b"\n".join(lines) + b"\n"
    snapshot(inst, "eurostat_correction", {EIRTN_SMALL: corrected})
    steps.land("eurostat-correction-land", "eurostat_ingest")
    failed = transform("eurostat_correction")
    assert failed is None, f"a re-issue of a small Eurostat extract did not publish: {failed}"
    assert state(corrected).state == "published"

    # Then the big extract with half its observations: compared with its own previous vintage
    # (28,545 rows), not with the small extract the dataset's previous run loaded.
    big = (inst["snapshot"] / EIRTN_BIG).read_bytes()
    lines = big.split(b"\n")
    half = b"\n".join(lines[: len(lines) // 2]) + b"\n"
    text, found = fails_at_raw_audit(inst, "eurostat_half", "eurostat_ingest",
                                     {EIRTN_BIG: half}, half)
    assert "[eurostat_raw_loads] row count not collapsing against the previous vintage" in text
    assert "dataset=migr_eirtn" in text and f"landing_file={found.entry.path}" in text, text
    assert "rows_previous=28545" in text, text
    rows_latest = int(text.split("rows_latest=")[1].split(",")[0])
    assert rows_latest < 28_545 // 2 + 100, f"not the half file's row count: {rows_latest}"


# --- 4. Cohesion --------------------------------------------------------------------------------

def test_a_cohesion_snapshot_with_a_tenth_of_the_rows_fails_with_both_counts(inst):
    text = (inst["snapshot"] / "cohesion" / "hgyj-gyin_sample.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    writer.writerows(rows[1::10])  # every tenth row: 100 of 1,000
    bad = out.getvalue().encode()
    text, _ = fails_at_raw_audit(inst, "cohesion_tenth", "cohesion_ingest",
                                 {"cohesion/hgyj-gyin_sample.csv": bad}, bad)
    assert "[cohesion_raw_snapshots] snapshot not shrinking" in text, text
    assert "rows_latest=100" in text and "rows_previous=1000" in text, text
    assert "dataset=hgyj-gyin" in text, text


# --- 5. a good release after the bad ones -------------------------------------------------------

def test_a_good_release_after_the_bad_files_publishes(inst):
    good = release_workbook(inst, "Source: FRAN data as of 04JUL25")
    snapshot(inst, "good", {"frontex/ibc.xlsx": good})
    steps.land("good-land", "frontex_ingest")
    failed = transform("good")
    assert failed is None, f"a good release after the bad files did not publish: {failed}"
    assert newest_release(inst) == ("2025-07-04", 173_460, 4_966_869)
    assert state(good).state == "published"


# --- 6. suspicious, then accepted on purpose ----------------------------------------------------

def pipeline_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=REPO_ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_a_suspicious_release_is_held_and_published_on_purpose(inst):
    """Every 2015 count halved: 4,966,869 -> 4,055,060 over the months both releases cover
    (-18.4 %, beyond WH_SUSPICIOUS_CHANGE_SHARE 0.05)."""
    def halve_2015(rows):
        columns = [j for j, h in enumerate(inst["header"]) if isinstance(h, str)
                   and h.endswith("2015")]
        for r in rows:
            for j in columns:
                r[j] = r[j] // 2
    bad = release_workbook(inst, "Source: FRAN data as of 05AUG25", halve_2015)
    text, found = fails_at_raw_audit(inst, "suspicious", "frontex_ingest",
                                     {"frontex/ibc.xlsx": bad}, bad)
    assert text.startswith("suspicious: Frontex release 2025-08-05"), text[:300]
    assert "against release 2025-07-04" in text and "against 4,966,869 (-18.4%)" in text, text
    assert "previous_total=4966869" in text and "change_share=-0.1836" in text, text
    assert "biggest_cells=Western Balkan Route / Land / Unknown Oct 2015: 204,286 -> 102,143" in text
    assert found.detail.split(": ", 2)[-1].startswith("suspicious:") or (
        ": suspicious: " in found.detail), f"reason does not start with suspicious: {found.detail}"
    assert newest_release(inst)[0] == "2025-07-04"

    # Accepting a file that was rejected for something else is refused.
    lost = next(s for s in files.states() if s.state == "rejected"
                and "rows of the previous release kept" in s.detail)
    refused = pipeline_run("readmit", lost.entry.sha256[:12], "--accept-suspicious")
    assert refused.returncode == 2 and "was not held as suspicious" in refused.stderr, (
        refused.stdout + refused.stderr)

    done = pipeline_run("readmit", found.entry.sha256[:12], "--accept-suspicious")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepted as suspicious" in done.stdout, done.stdout
    events = [e for e in Landing(Path(os.environ["WH_LANDING_DIR"])).events()
              if e.sha256 == found.entry.sha256]
    assert (events[-1].event, events[-1].by) == ("readmitted", "hand")
    assert events[-1].reason.startswith("accepted as suspicious"), events[-1]
    failed = transform("accepted")
    assert failed is None, f"the accepted suspicious release did not publish: {failed}"
    assert newest_release(inst) == ("2025-08-05", 173_460, 4_055_060), (
        "the accepted release is not the newest published one")
    assert state(bad).state == "published"
