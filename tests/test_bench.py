"""``make bench`` (bench.speed) at a tiny scale: it runs end to end and writes rows of the
documented shape. Timings are never asserted: only that they are there and consistent."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import speed

REPO_ROOT = Path(__file__).resolve().parents[1]
KEYS = {"measure", "scale", "project_s", "anchor_s", "ratio", "peak_mib", "target", "met", "note",
        "n", "project_min", "project_max", "anchor_min", "anchor_max", "ratio_min", "ratio_max",
        "ratio_median", "load_before", "load_after", "tree_peak_mib", "process", "cpu_s",
        "anchor_cpu_s"}
GOAL_KEYS = {"goal", "scale", "target", "measured", "unit", "met", "note"}
DOC_KEYS = {"schema", "runs", "goals", "peak_memory", "settings", "rows"}


def check_document(doc: dict) -> None:
    """The results file's shape: rows, goals, peaks, settings, run."""
    assert set(doc) == DOC_KEYS, sorted(doc)
    assert doc["schema"] == speed.SCHEMA
    for run in doc["runs"]:
        assert run["rows"], run
        if "note" not in run:
            assert {"commit", "started", "finished", "arguments", "cpus", "memory_mib"} <= set(run)
    # Every row is owned by exactly one run listed.
    owners = [label for run in doc["runs"] for label in run["rows"]]
    assert sorted(owners) == sorted(f"{r['measure']}@{r['scale']:g}x" for r in doc["rows"])
    for row in doc["rows"]:
        assert set(row) == KEYS, row
        assert row["met"] in (True, False, None)
    assert doc["goals"], "no goals section"
    for goal in doc["goals"]:
        assert set(goal) == GOAL_KEYS, goal
        assert goal["met"] in (True, False, None)
        assert (goal["met"] is None) == (goal["measured"] is None), goal
    names = " ".join(g["goal"] for g in doc["goals"])
    for goal in ("one new release", "no-op rerun", "peak memory of any process",
                 "workbook-to-table", "every published figure unchanged"):
        assert goal in names, (goal, names)


@pytest.mark.slow  # make bench end to end in a subprocess (land, load, audit, two scales): ~2 min
def test_bench_speed_writes_rows_of_every_measure_asked(tmp_path, snapshot_dir):
    out = tmp_path / "latest.json"
    env = {**os.environ, "WH_SNAPSHOT_DIR": str(snapshot_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--scales", "0.005,0.01", "--only", "load,audit",
         "--repeats", "2", "--out", str(out), "--data", str(tmp_path / "data"),
         "--work", str(tmp_path / "work")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(out.read_text())
    check_document(doc)
    rows = doc["rows"]
    assert isinstance(rows, list) and rows
    for row in rows:
        assert isinstance(row["measure"], str) and isinstance(row["target"], str)
        assert isinstance(row["note"], str)
        assert row["project_s"] > 0 and row["peak_mib"] > 0, row
        if row["anchor_s"] is not None:
            assert row["anchor_s"] > 0
            assert math.isclose(row["ratio"], row["project_s"] / row["anchor_s"], rel_tol=0.01,
                                abs_tol=0.002), row
        if row["met"] is False:
            assert "MISSED" in row["note"], row
        if not row["measure"].startswith("linear:"):
            # Two samples each, interleaved with the anchor: median inside the spread, a load
            # average before and after each sample, the largest process named.
            assert row["n"] == 2, row
            assert row["project_min"] <= row["project_s"] <= row["project_max"], row
            assert row["anchor_min"] <= row["anchor_s"] <= row["anchor_max"], row
            assert row["ratio_min"] <= row["ratio_max"], row
            assert len(row["load_before"]) == len(row["load_after"]) == 2, row
            assert row["tree_peak_mib"] >= row["peak_mib"] and "bench.speed" in row["process"]
    measured = {(r["measure"], r["scale"]) for r in rows}
    for measure in ("land", "load", "audit", "linear:land", "linear:load", "linear:audit"):
        for scale in (0.005, 0.01):
            assert (measure, scale) in measured, (measure, scale, sorted(measured))
    by = {(r["measure"], r["scale"]): r for r in rows}
    assert by[("audit", 0.01)]["anchor_s"] == by[("load", 0.01)]["project_s"]
    assert "FAILED" not in by[("audit", 0.01)]["note"]
    # The anchors do the same work: land against read_csv, load against read_parquet.
    assert "read_csv" in by[("land", 0.01)]["target"]
    assert "read_parquet" in by[("load", 0.01)]["target"]
    # The caps the bench set for its own data are in the file.
    assert set(doc["settings"]) == {"0.005x", "0.01x"}
    for caps in doc["settings"].values():
        assert set(caps["env"]) == set(speed.CAPPED) and "WH_MAX_DOWNLOAD_MB=" in caps["why"]
    land = next(g for g in doc["goals"] if g["goal"].startswith("workbook-to-table")
                and g["scale"] == 0.01)
    # Measured: the median of the ratios sample by sample (each beside its anchor sample).
    assert land["measured"] == by[("land", 0.01)]["ratio_median"]
    assert by[("land", 0.01)]["ratio_min"] <= land["measured"] <= by[("land", 0.01)]["ratio_max"]
    assert land["met"] == (land["measured"] <= speed.LAND_RATIO)
    # The printed table holds the same rows, and the goals.
    for row in rows:
        assert row["note"] in done.stdout
    assert "Goals (issue 21)" in done.stdout


def test_misses_say_by_how_much():
    row = speed.judge(speed.row("load", 1, 1.6, 1.0, 100, "<= 1.25x", None, ""),
                      limit_ratio=1.25)
    assert row["met"] is False and "ratio 1.60 vs 1.25" in row["note"]
    row = speed.judge(speed.row("audit", 1, 1.0, 2.0, 1500, "peak", None, "x"),
                      limit_ratio=1.0, limit_peak=1024)
    assert row["met"] is False and "peak 1,500 MiB vs 1,024" in row["note"]
    assert "ratio" not in row["note"]
    row = speed.judge(speed.row("pipeline", 1, 40.0, None, 500, "<= 45 s", None, ""),
                      limit_s=45)
    assert row["met"] is True and row["note"] == ""


# --- the measure "storage" (issue 20; bench/object_storage.py) ----------------------------------
# Its timed runs (pipeline runs on local files and on SeaweedFS) are what make bench measures; the
# tests check what the bench makes of them, and run the reader part for real on a tiny warehouse.

def _obj(key: str, size: int, etag: str = "e"):
    from ingest.storage import Obj
    return Obj(key, etag, size, "2026-12-05T00:00:00Z")


def test_storage_rows_put_s3_against_local_with_median_and_spread():
    from bench import object_storage

    timings = {("pipeline", "local"): [(40.0, 38.0, 500), (44.0, 40.0, 510)],
               ("pipeline", "s3"): [(50.0, 45.0, 520), (54.0, 47.0, 530)],
               ("noop", "local"): [(10.0, 9.0, 300), (12.0, 9.5, 310)],
               ("noop", "s3"): [(11.0, 9.2, 320), (13.0, 9.8, 330)]}
    first = object_storage.objects_by_area(
        [_obj("landing/frontex/a.xlsx", 2 * 2**20), _obj("landing/manifest.jsonl", 10),
         _obj("warehouse/CURRENT", 40), _obj("warehouse/versions/r1.duckdb", 3 * 2**20)])
    assert first == {"landing": (2, 2 * 2**20 + 10), "warehouse": (2, 3 * 2**20 + 40)}
    before = [_obj("quality/q.duckdb", 5, "old"), _obj("landing/x", 1)]
    after = [_obj("quality/q.duckdb", 6, "new"), _obj("landing/x", 1), _obj("runs/r2/log", 7)]
    noop = object_storage.written_by(before, after)
    assert noop == {"quality": (1, 6), "runs": (1, 7)}, "unchanged landing/x counted as written"
    rows = object_storage.pipeline_rows(timings, {"pipeline": [6.0, 6.4], "noop": [0.3, 0.4]},
                                        [first], [noop], 2, {"pipeline": "2 file(s) left"})
    by = {r["measure"]: r for r in rows}
    assert sorted(by) == ["storage:noop", "storage:noop-cpu", "storage:pipeline",
                          "storage:pipeline-cpu"]
    for r in rows:
        assert set(r) == KEYS and r["scale"] == 1 and r["met"] is None, r
        assert math.isclose(r["ratio"], r["project_s"] / r["anchor_s"], rel_tol=0.01), r
    assert (by["storage:pipeline"]["project_s"], by["storage:pipeline"]["anchor_s"]) == (52, 42)
    assert (by["storage:pipeline-cpu"]["project_s"], by["storage:pipeline-cpu"]["anchor_s"]) == (
        46, 39)
    assert by["storage:pipeline"]["peak_mib"] == 530
    assert "s3 52.00 s (50.00 to 54.00, n=2), local 42.00 s (40.00 to 44.00, n=2)" in (
        by["storage:pipeline"]["note"])
    assert "4 objects, 5.0 MiB: landing 2 (2.0 MiB), warehouse 2 (3.0 MiB)" in (
        by["storage:pipeline"]["note"])
    assert "2 file(s) left" in by["storage:pipeline"]["note"]
    assert "S3 server's own CPU during the s3 run 6.20 s" in by["storage:pipeline-cpu"]["note"]
    assert "written by it: 2 objects" in by["storage:noop"]["note"]

    # A side whose runs failed: said, and not met.
    del timings[("noop", "s3")]
    rows = object_storage.pipeline_rows(timings, {}, [first], [], 2, {})
    noop = next(r for r in rows if r["measure"] == "storage:noop")
    assert noop["met"] is False and noop["project_s"] is None
    assert noop["note"].startswith("FAILED: 2 local and 0 s3 runs of 2 succeeded"), noop


def test_rows_replace_their_own_in_the_results_and_a_failed_run_leaves_them(tmp_path):
    out = tmp_path / "latest.json"
    old = [speed.row("load", 1, 1.0, 1.0, 10, "t", True, "old load"),
           speed.row("storage:pipeline", 1, 9.0, 8.0, 10, "t", None, "old storage")]
    # The format before schema 2, a bare list: its storage rows are kept (measured as they still
    # are), the others dropped (one sample, the load against other work).
    out.write_text(json.dumps(old + [{"measure": "storage:noop", "scale": 1, "project_s": 1.0,
                                      "anchor_s": 1.0, "ratio": 1.0, "peak_mib": 9, "target": "t",
                                      "met": None, "note": "old noop"}]))
    new = [speed.row("storage:pipeline", 1, 5.0, 4.0, 10, "t", None, "new storage"),
           speed.row("storage:reader", 1, 0.4, 0.2, None, "t", None, "new reader")]
    assert speed.write_rows(new, out, failed=False) == out
    doc = json.loads(out.read_text())
    check_document(doc)
    notes = [r["note"] for r in doc["rows"]]
    assert notes == ["old noop", "new storage", "new reader"], notes
    assert doc["runs"][0]["rows"] == ["storage:noop@1x"]
    assert "earlier results file" in doc["runs"][0]["note"]
    assert doc["runs"][1]["rows"] == ["storage:pipeline@1x", "storage:reader@1x"]
    speed.write_rows([speed.row("load", 1, 1.0, 1.0, 10, "t", True, "old load")], out, False)
    # Another run that replaces the load row: the first run no longer owns anything.
    speed.write_rows([speed.row("load", 1, 1.5, 1.0, 10, "t", True, "newer load")], out,
                     failed=False)
    doc = json.loads(out.read_text())
    check_document(doc)
    assert [run["rows"] for run in doc["runs"]] == [
        ["storage:noop@1x"], ["storage:pipeline@1x", "storage:reader@1x"], ["load@1x"]]
    before = out.read_text()
    written = speed.write_rows([speed.row("load", 1, 2.0, 1.0, 10, "t", False, "FAILED")], out,
                               failed=True, failures=["load @1x failed"])
    assert written.parent == tmp_path and written.name.startswith("failed-"), written
    assert out.read_text() == before, "a failed run changed the results file"
    failed = json.loads(written.read_text())
    assert failed["rows"][0]["note"] == "FAILED" and failed["failures"] == ["load @1x failed"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "staging left"
    out.write_text("{}")
    with pytest.raises(SystemExit, match="not a list of bench rows"):
        speed.write_rows(new, out, failed=False)


def _sample(seconds: float, **more) -> dict:
    return {"seconds": seconds, "peak_mib": 100.0, "tree_peak_mib": 120.0,
            "process": "python -m bench.speed --child x", "load_before": 1.0,
            "load_after": 1.5, "wall_s": seconds + 1, **more}


@pytest.fixture
def fake_bench(monkeypatch, tmp_path):
    """bench.speed.main with its children faked: no data generated, nothing timed. Returns the
    list of children started; ``fail`` (a kind, or ("interrupt", kind)) makes one fail."""
    from bench import _gen

    started: list[str] = []
    state = {"fail": None}

    def run_child(kind, spec, env, log, label):
        started.append(kind)
        assert env["WH_MAX_XLSX_UNPACKED_MB"] == "600", "the caps are not passed to the child"
        if state["fail"] == kind:
            raise speed.ChildFailed(f"{label} failed (exit 1)")
        if state["fail"] == ("interrupt", kind):
            raise KeyboardInterrupt
        extra = {"land": {"parts": {"frontex": 0.5, "eurostat": 0.5}, "files": 8},
                 "load": {"parts": {"frontex": 0.2, "eurostat": 0.2},
                          "rows": {"frontex": 900, "eurostat": 100}},
                 "read_csv": {"parts": {"frontex": 0.3}}, "read_parquet": {"parts": {"f": 0.1}},
                 "audit": {"gx_import_s": 2.0, "checks": 5, "rows_validated": 1000,
                           "error": None}}[kind]
        seconds = {"land": 1.0, "load": 0.4, "read_csv": 0.5, "read_parquet": 0.2,
                   "audit": 0.3}[kind]
        return _sample(seconds, **extra)

    def scale_snapshot(scale, log=print, data_dir=None):
        return tmp_path / "snap", {"frontex_rows": 900, "frontex_bytes": 10, "eurostat_rows": 100,
                                   "eurostat_files": ["a.csv"], "seconds": 0}

    monkeypatch.setattr(speed, "run_child", run_child)
    monkeypatch.setattr(_gen, "scale_snapshot", scale_snapshot)
    monkeypatch.setattr(speed, "caps_for", lambda snapshot: {
        "env": {"WH_MAX_DOWNLOAD_MB": "50", "WH_MAX_XLSX_UNPACKED_MB": "600"},
        "why": "WH_MAX_XLSX_UNPACKED_MB=600 (RAISED)"})
    monkeypatch.setattr(speed, "export_csv", lambda db, here: {"frontex": ("f.csv", [])})
    monkeypatch.setattr(speed, "parquet_files", lambda landing: {"frontex": ["f.parquet"]})
    monkeypatch.setenv("WH_SNAPSHOT_DIR", str(REPO_ROOT.parent / "shared" / "data"))
    out = tmp_path / "results" / "latest.json"

    def main(*extra: str) -> int:
        return speed.main(["--scales", "1", "--only", "audit", "--repeats", "3",
                           "--out", str(out), "--work", str(tmp_path / "work"), *extra])

    return {"main": main, "out": out, "started": started, "state": state}


def test_a_run_writes_goals_and_every_measure_three_interleaved_times(fake_bench, snapshot_dir):
    assert fake_bench["main"]() == 0
    doc = json.loads(fake_bench["out"].read_text())
    check_document(doc)
    # Round 1 the project first (the anchors read what it produced), then the order flips.
    assert fake_bench["started"] == [
        "land", "load", "read_csv", "read_parquet", "audit",
        "read_csv", "land", "read_parquet", "load", "audit",
        "land", "read_csv", "load", "read_parquet", "audit"]
    by = {r["measure"]: r for r in doc["rows"]}
    assert by["land"]["ratio"] == 2.0 and by["land"]["met"] is False
    assert by["load"]["ratio"] == 2.0 and by["load"]["n"] == 3
    assert by["load"]["load_before"] == [1.0] * 3 and by["load"]["load_after"] == [1.5] * 3
    assert doc["settings"]["1x"]["env"]["WH_MAX_XLSX_UNPACKED_MB"] == "600"
    land = next(g for g in doc["goals"] if g["goal"].startswith("workbook-to-table"))
    assert (land["scale"], land["measured"], land["met"]) == (1, 2.0, False)
    assert "1x" in doc["peak_memory"]


@pytest.mark.parametrize("fail", ["audit", "read_parquet", ("interrupt", "load")])
def test_a_failed_or_interrupted_run_never_overwrites_the_results(fake_bench, fail,
                                                                 snapshot_dir):
    out = fake_bench["out"]
    assert fake_bench["main"]() == 0
    before = out.read_text()
    fake_bench["state"]["fail"] = fail
    if isinstance(fail, tuple):
        with pytest.raises(KeyboardInterrupt):
            fake_bench["main"]()
    else:
        assert fake_bench["main"]() == 1
    assert out.read_text() == before, "a failed run changed the results file"
    [failed] = list(out.parent.glob("failed-*.json"))
    doc = json.loads(failed.read_text())
    assert doc["failures"] and set(doc) == DOC_KEYS | {"failures"}


def test_goals_say_what_was_measured_and_whether_it_is_met():
    def r(measure, scale, project, anchor, peak=100, **more):
        return speed.row(measure, scale, project, anchor, peak, "t", None, "", n=3,
                         ratio_min=0.1, ratio_max=0.5, process="dbt build", **more)

    rows = [r("noop", 1, 2.0, 40.0), r("noop", 10, 15.0, 100.0),
            r("new-release", 10, 20.0, 100.0), r("new-release", 1, 30.0, 40.0),
            r("land", 100, 30.0, 15.0, peak=1500), r("load", 100, 10.0, 8.0, peak=2500),
            speed.row("figures", 1, None, None, None, "t", True, "ok"),
            speed.row("figures", 10, None, None, None, "t", False, "WRONG: release x")]
    by = {(g["goal"].split(" <=")[0], g["scale"]): g for g in speed.goals(rows)}
    assert by[("a run with one new release", 10)]["measured"] == 0.2
    assert by[("a run with one new release", 10)]["met"] is True
    assert "at 1x 0.75 (no goal)" in by[("a run with one new release", 10)]["note"]
    assert by[("a no-op rerun", 1)]["met"] is True and by[("a no-op rerun", 10)]["met"] is False
    peak = by[("peak memory of any process", 100)]
    assert (peak["measured"], peak["met"]) == (2500, False)
    assert "load (dbt build)" in peak["note"] and "not run at 100x" in peak["note"]
    assert by[("workbook-to-table", 100)]["measured"] == 2.0
    figures = by[("every published figure unchanged", None)]
    assert (figures["measured"], figures["met"]) == (1, False) and "WRONG" in figures["note"]
    # Nothing measured: every goal there, met null.
    for goal in speed.goals([]):
        assert goal["met"] is None and goal["measured"] is None, goal


def test_figures_checked_against_the_known_ones_and_earlier_runs():
    first = {"recorded": {**speed.KNOWN, **speed.KNOWN_1X},
             "releases": {"2025-06-03": [173_460, 4_966_869]},
             "marts": {"fct_returns": [1, "7"], "fct_border_crossings": [2, "8"]}}
    new = {"recorded": first["recorded"],
           "releases": {**first["releases"], "2025-07-04": [175_000, 5_000_000]},
           "marts": {"fct_returns": [1, "7"], "fct_border_crossings": [3, "9"]}}
    assert speed.check_figures(1, first, first, new, "2025-07-04") == []
    wrong = {**first, "recorded": {**first["recorded"], "detections": 4_966_868}}
    assert "detections 4966868, known 4966869" in speed.check_figures(1, wrong, None, None,
                                                                      None)[0]
    noop = {**first, "marts": {**first["marts"], "fct_returns": [1, "6"]}}
    assert speed.check_figures(1, first, noop, None, None) == [
        "no-op run changed marts fct_returns"]
    moved = {**new, "releases": {**new["releases"], "2025-06-03": [173_460, 1]},
             "marts": {**new["marts"], "fct_returns": [2, "1"]}}
    found = " ".join(speed.check_figures(1, first, None, moved, "2025-08-01"))
    assert "release 2025-06-03 [173460, 1]" in found and "2025-08-01 not published" in found
    assert "fct_returns changed" in found


def test_caps_are_raised_for_the_generated_data_only_as_far_as_it_needs(tmp_path, monkeypatch):
    import zipfile

    (tmp_path / "frontex").mkdir()
    with zipfile.ZipFile(tmp_path / "frontex" / "w.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (3 * 2**20))
    (tmp_path / "eurostat").mkdir()
    (tmp_path / "eurostat" / "big.csv").write_bytes(b"x" * (2 * 2**20))
    caps = speed.caps_for(tmp_path)
    assert caps["env"] == {"WH_MAX_DOWNLOAD_MB": "50", "WH_MAX_XLSX_UNPACKED_MB": "512"}
    assert "RAISED" not in caps["why"]
    monkeypatch.setattr(speed, "_default_mb", lambda name: 1)
    caps = speed.caps_for(tmp_path)
    assert caps["env"] == {"WH_MAX_DOWNLOAD_MB": "3", "WH_MAX_XLSX_UNPACKED_MB": "4"}, caps
    assert "RAISED" in caps["why"] and "big.csv" in caps["why"] and "w.xlsx" in caps["why"]


def test_peak_memory_is_the_largest_process_of_the_tree(tmp_path):
    """A parent that starts a child holding about 300 MiB: the child is the peak, named."""
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); "
            "time.sleep(1.5)'], check=True)")
    w = speed.watch([sys.executable, "-c", code], dict(os.environ), tmp_path / "log", "tree")
    assert w.code == 0 and w.peak_mib > 290, w
    assert w.process.startswith("python"), w
    assert w.tree_peak_mib >= w.peak_mib
    assert w.load_before >= 0 and w.load_after >= 0


def test_the_new_release_is_a_month_later_and_parses(tmp_path, snapshot_dir):
    from datetime import date

    from bench import _gen
    from ingest.sources.frontex.source import parse_workbook

    name, header, rows, release = _gen.next_release(10, snapshot_dir)
    assert release == date(2025, 7, 13) and name == "ibc_2025_07_13.xlsx"
    assert header[-3:] == ["APR2025", "MAY2025", "JUN2025"]
    folder, info = _gen.new_release_snapshot(snapshot_dir, 1, snapshot_dir, tmp_path)
    assert info["release"] == "2025-07-04"
    files = sorted(p.name for p in (folder / "frontex").iterdir())
    assert files == ["ibc.xlsx", "ibc_2025_07_04.xlsx"], files
    assert (folder / "frontex" / "ibc.xlsx").resolve() == (snapshot_dir / "frontex" /
                                                           "ibc.xlsx").resolve()
    parsed = parse_workbook((folder / "frontex" / "ibc_2025_07_04.xlsx").read_bytes(), "x.xlsx")
    assert parsed.release_date == date(2025, 7, 4)
    assert len(parsed.rows) == info["frontex_rows"] > 173_460
    assert str(parsed.rows["month"].max())[:7] == "2025-06"


def test_only_storage_is_a_measure_and_help_says_so(capsys):
    with pytest.raises(SystemExit):
        speed.main(["--help"])
    assert "--only storage" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        speed.main(["--only", "storage,bogus"])
    assert "unknown measure(s) ['bogus']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.main(["--only", "storage", "--storage-repeats", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_server_cpu_counts_this_process():
    from bench import object_storage

    before = object_storage.server_cpu_s(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert object_storage.server_cpu_s(os.getpid()) > before


def _tiny_warehouse(path: Path, detections: int) -> Path:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_border_crossings_current as select "
                    f"date '2025-06-03' as release_date, {detections}::bigint as detections")
    return path


def test_reader_times_a_fresh_process_on_s3_and_on_the_local_file(tmp_path, s3_env,
                                                                  monkeypatch):
    """The reader part for real: reader-sql's SQL for a warehouse published to SeaweedFS and for
    a local file, each run by a fresh python in an empty folder; the answers compared."""
    from bench import object_storage
    from pipeline import warehouse

    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    build = warehouse.prepare_build("bench")
    _tiny_warehouse(tmp_path / "tiny" / "migration.duckdb", 4_966_869)
    build.write_bytes((tmp_path / "tiny" / "migration.duckdb").read_bytes())
    warehouse.publish("bench")
    local = _tiny_warehouse(tmp_path / "local" / "migration.duckdb", 4_966_869)
    envs = {"s3": speed.clean_env(**s3_env, WH_SCRATCH_DIR=str(tmp_path / "scratch")),
            "local": speed.clean_env(WH_WAREHOUSE=str(local))}
    assert "AWS_ENDPOINT_URL" not in object_storage.reader_env(envs["s3"])
    failures: list[str] = []
    r = object_storage.reader_times(tmp_path, envs, 1, failures)
    assert failures == [], failures
    assert set(r) == KEYS and r["measure"] == "storage:reader" and r["met"] is None, r
    assert r["project_s"] > 0 and r["anchor_s"] > 0, r
    assert "-> 2025-06-03: 4,966,869;" in r["note"], r["note"]
    assert "s3://" in (tmp_path / "reader-s3.sql").read_text()
    assert "ATTACH" in (tmp_path / "reader-local.sql").read_text()

    # The two sides disagree: a failure that says both answers.
    _tiny_warehouse(tmp_path / "other" / "migration.duckdb", 1)
    envs["local"] = speed.clean_env(WH_WAREHOUSE=str(tmp_path / "other" / "migration.duckdb"))
    again = tmp_path / "again"
    again.mkdir()
    r = object_storage.reader_times(again, envs, 1, failures)
    assert r["met"] is False and r["note"].startswith("FAILED"), r
    assert failures and "the answers differ" in failures[0], failures
