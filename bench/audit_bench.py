"""Benchmark of the audit path: time and peak memory of the Great Expectations raw audit on a
synthetic Frontex-shaped load of N rows (default 5 million), run in a fresh process per variant.

Variants:
  project  what the pipeline runs: ingest.sources.frontex.checks.raw_checks through expectations.audit
           (the frame holds the audited release's checked columns only; the release-level
           rules are computed by DuckDB)
  naive    the whole raw table (lineage columns included) fetched as one DataFrame of Python
           strings (a plain ``.df()``) and every rule evaluated on it by GX

Usage: python -m bench.audit_bench [--rows N] [--variants project,naive] [--out bench/out]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from ingest.load import ensure_raw_schema


def make_db(path: Path, rows: int) -> None:
    """Frontex-shaped rows: 9 routes x 2 border types x K nationalities x 196 months."""
    months = 196
    routes = ["Central Mediterranean Route", "Eastern Mediterranean Route",
              "Western Mediterranean Route", "Western African Route", "Western Balkan Route",
              "Eastern Borders Route", "Black Sea Route", "Circular Route from Albania to Greece",
              "Other"]
    nationalities = max(1, rows // (len(routes) * 2 * months))
    with duckdb.connect(str(path)) as con:
        ensure_raw_schema(con)
        con.execute(f"""
            insert into raw.frontex_detections (route, border_type, nationality, month,
                detections, source_row, landing_file, sha256, release_date, loaded_at)
            select r.route, b.border_type, 'Nationality ' || n.i, date '2009-01-01' + to_months(m.i),
                   (hash(r.route, b.border_type, n.i, m.i) % 500)::bigint, (n.i + 2)::integer,
                   'frontex/bench.xlsx', 'benchsha', date '2025-06-03', now()
            from (select unnest(?) as route) r,
                 (select unnest(['Land', 'Sea']) as border_type) b,
                 range({nationalities}) n(i), range({months}) m(i)""", [routes])
        con.execute("checkpoint")


def run_variant(variant: str, db: Path, out: Path) -> dict:
    from expectations import audit
    from ingest.sources.frontex import checks

    started = time.perf_counter()
    if variant == "project":
        summary = audit.run_checks(db, checks.raw_checks(db), out / variant, "raw")
    else:
        import pandas as pd

        base = checks.raw_checks(db)[0]
        # The first thing one would write: the whole table, dates compared as timestamps.
        params = {**base.parameters, "first_month": pd.Timestamp(checks.FIRST_MONTH),
                  "release_date": pd.Timestamp("2025-06-03")}
        full = audit.Check(
            "bench_naive", "select * replace (month::timestamp as month) from raw.frontex_detections",
            base.subject, params, base.index_columns[:-1])
        suite = audit.load_suite_json("frontex_raw_rows")
        suite["name"] = "bench_naive"
        suite["expectations"] = [e for e in suite["expectations"]
                                 if e["type"] != "expect_table_columns_to_match_set"]
        for e in suite["expectations"]:
            if e["kwargs"].get("column") == "month_index":
                e["kwargs"] = {"column": "month", "min_value": {"$PARAMETER": "first_month"},
                               "max_value": {"$PARAMETER": "release_date"}}
        suite["expectations"].append({"type": "expect_column_unique_value_count_to_be_between",
                                      "kwargs": {"column": "month", "min_value": 1}})
        (audit.SUITES_DIR / "bench_naive.json").write_text(json.dumps(suite))
        try:
            summary = audit.run_checks(db, [full], out / variant, "raw", compact_strings=False)
        finally:
            (audit.SUITES_DIR / "bench_naive.json").unlink()
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "seconds": round(elapsed, 2), "peak_rss_mb": round(peak_mb),
            "rows_validated": sum(c["rows"] for c in summary["checks"]),
            "passed": summary["success"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--variants", default="project,naive")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(args.child, args.db, args.out)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        make_db(db, args.rows)
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("select count(*) from raw.frontex_detections").fetchone()[0]
        print(f"synthetic raw load: {rows:,} rows ({time.perf_counter() - started:.1f} s)",
              flush=True)
        for variant in args.variants.split(","):
            done = subprocess.run(
                [sys.executable, "-m", "bench.audit_bench", "--child", variant, "--db", str(db),
                 "--out", str(args.out)], capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"  {variant:<8} {result['seconds']:>7.1f} s  peak {result['peak_rss_mb']:>6,} MB"
                  f"  ({result['rows_validated']:,} rows validated, passed={result['passed']})",
                  flush=True)
    (args.out / "audit_bench.json").write_text(json.dumps({"rows": rows, "results": results},
                                                          indent=2))
    print(f"results: {args.out / 'audit_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
