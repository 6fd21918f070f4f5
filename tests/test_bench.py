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
KEYS = {"measure", "scale", "project_s", "anchor_s", "ratio", "peak_mib", "target", "met", "note"}


@pytest.mark.slow  # make bench end to end in a subprocess (load and audit, two scales): ~16 s
def test_bench_speed_writes_rows_of_every_measure_asked(tmp_path, snapshot_dir):
    out = tmp_path / "latest.json"
    env = {**os.environ, "WH_SNAPSHOT_DIR": str(snapshot_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--scales", "0.005,0.01", "--only", "load,audit",
         "--out", str(out), "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and rows
    for row in rows:
        assert set(row) == KEYS, row
        assert isinstance(row["measure"], str) and isinstance(row["target"], str)
        assert isinstance(row["note"], str)
        assert row["met"] in (True, False, None)
        assert row["project_s"] > 0 and row["peak_mib"] > 0, row
        if row["anchor_s"] is not None:
            assert row["anchor_s"] > 0
            assert math.isclose(row["ratio"], row["project_s"] / row["anchor_s"], rel_tol=0.01,
                                abs_tol=0.002), row
        if row["met"] is False:
            assert "MISSED" in row["note"], row
    measured = {(r["measure"], r["scale"]) for r in rows}
    for measure in ("land", "load", "audit", "linear:land", "linear:load", "linear:audit"):
        for scale in (0.005, 0.01):
            assert (measure, scale) in measured, (measure, scale, sorted(measured))
    audit = next(r for r in rows if r["measure"] == "audit" and r["scale"] == 0.01)
    load = next(r for r in rows if r["measure"] == "load" and r["scale"] == 0.01)
    assert audit["anchor_s"] == load["project_s"]
    assert "FAILED" not in audit["note"]
    # The printed table holds the same rows.
    for row in rows:
        assert row["note"] in done.stdout


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
    out.write_text(json.dumps(old))
    new = [speed.row("storage:pipeline", 1, 5.0, 4.0, 10, "t", None, "new storage"),
           speed.row("storage:reader", 1, 0.4, 0.2, None, "t", None, "new reader")]
    assert speed.write_rows(new, out, failed=False) == out
    notes = [r["note"] for r in json.loads(out.read_text())]
    assert notes == ["old load", "new storage", "new reader"], notes
    before = out.read_text()
    written = speed.write_rows([speed.row("load", 1, 2.0, 1.0, 10, "t", False, "FAILED")], out,
                               failed=True)
    assert written.parent == tmp_path and written.name.startswith("failed-"), written
    assert out.read_text() == before, "a failed run changed the results file"
    assert json.loads(written.read_text())[0]["note"] == "FAILED"
    out.write_text("{}")
    with pytest.raises(SystemExit, match="not a list of bench rows"):
        speed.write_rows(new, out, failed=False)


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
