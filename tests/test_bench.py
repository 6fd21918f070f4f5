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
