"""Run Great Expectations suites on frames read from DuckDB.

GX's SQL datasource fails on DuckDB (upstream issues 10738/11579), so each check reads the frame
it needs through a read-only DuckDB connection and validates it as a pandas DataFrame in an
ephemeral GX context. Checks are written so that each frame is small or one release wide:
row-level suites read only the release being published (older ones were audited when they were),
and cross-table rules (totals, contiguity, row counts against the previous release) are computed
by DuckDB into a few rows that GX then checks. See docs/decisions.md for the measurements.
"""
from __future__ import annotations

import csv
import json
import gc
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest import duck

from expectations import data_docs, memo

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SOURCE_SUITES = Path(__file__).resolve().parents[1] / "ingest" / "sources"
SAMPLE_ROWS = 5
MAX_CATEGORIES = 10_000
"""A text column with at most this many distinct values (or at most one per CATEGORY_RATIO rows)
is validated as a Categorical."""
CATEGORY_RATIO = 20
OWN_DATASOURCE_ROWS = 500_000
"""Frames of at least this many rows are validated through a datasource of their own."""
CHUNK_ROWS = 3_000_000
"""Checks of bigger files validate them in parts of about this many rows (``parts``): a 3
million row frame and GX's work on it stay within a few hundred MiB."""


AUDIT_CHUNK_ROWS = 500_000
"""A check of more rows than this is validated in chunks (``_validate_in_chunks``): GX holds at
most this many rows (plus the rows breaking a uniqueness rule) whatever the table's size."""
ROW_WISE = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null",
    "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex", "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list", "expect_column_pair_values_to_be_equal",
    "expect_column_pair_values_a_to_be_greater_than_b", "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list"})
"""Expectations that hold for a table when they hold for each chunk of its rows (a rule per row,
or on the columns every chunk has): validated chunk by chunk, their results added up."""
UNIQUE = frozenset({"expect_compound_columns_to_be_unique"})
"""Validated on the rows whose key DuckDB finds more than once (every row that can break it)."""
TABLE_LEVEL = frozenset({"expect_table_row_count_to_be_between",
                         "expect_table_row_count_to_equal"})
"""Validated on a frame of the table's row count and no column (a RangeIndex: no memory)."""


def parts(rows: int, key: str, described: str) -> list[tuple[str, str, str]]:
    """(SQL condition, subject suffix, name suffix) of each part a check of ``rows`` rows is
    validated in: one part up to CHUNK_ROWS; beyond, parts split by
    ``hash(key) % parts``, ``key`` being the columns of the suite's grain, so that the rows of
    one grain (and any duplicate of it) fall into one part and every row rule holds for the
    whole when it holds for each part."""
    count = max(1, math.ceil(rows / CHUNK_ROWS))
    if count == 1:
        return [("", "", "")]
    return [(f" and hash({key}) % {count} = {part}",
             f", part {part + 1} of {count} by {described}",
             f".part{part + 1}of{count}") for part in range(count)]


@dataclass(frozen=True)
class Check:
    suite: str
    """File stem in ``expectations/suites`` or a source folder's ``suites/`` (``suite_path``)."""
    sql: str
    """The frame to validate."""
    subject: str
    """What is checked, for messages: table, release, landing file."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Values for ``{"$PARAMETER": name}`` references in the suite."""
    index_columns: tuple[str, ...] = ()
    """Columns that identify a failing row in messages."""
    files: tuple[str, ...] = ()
    """The landing files the frame comes from, when the check is about given files: a failure
    rejects them (``pipeline.files``)."""
    sources: tuple[str, ...] = ()
    """The sources (``ingest.catalog``) the check is about: a failure of a check without
    ``files`` rejects the files of these sources that the run loaded."""
    name_suffix: str = ""
    """Tells apart several checks of one suite in one audit (one per file of an archive)."""
    suspicious: bool = False
    """A failure holds the file as suspicious (plausible, but a change too big to publish
    unseen) rather than wrong: the error starts with ``suspicious:`` and says how to publish it
    on purpose (``python -m pipeline.run readmit FILE --accept-suspicious``)."""

    @property
    def name(self) -> str:
        return self.suite + self.name_suffix


class AuditFailed(Exception):
    """One or more expectations failed; the message names each, with sample rows."""

    def __init__(self, message: str, failed: list[Check] | None = None):
        super().__init__(message)
        self.failed = failed or []

    @property
    def files(self) -> set[str]:
        return {f for check in self.failed for f in check.files}


ACCEPTED_SUSPICIOUS = "accepted as suspicious"
"""Reason of the ``readmitted`` state event that ``readmit FILE --accept-suspicious`` records:
the checks marked ``suspicious`` pass for that file (its sha256) from then on."""


def accepted_suspicious() -> set[str]:
    """sha256 of the landed files accepted by hand as suspicious."""
    from ingest.config import settings
    from ingest.landing import READMITTED, Landing

    return {ev.sha256 for ev in Landing(settings().landing_dir).events()
            if ev.event == READMITTED and (ev.reason or "").startswith(ACCEPTED_SUSPICIOUS)}


def suite_path(name: str) -> Path:
    """``<name>.json`` in ``expectations/suites`` (the marts of several sources) or in a source
    folder's ``suites/`` (``ingest/sources/<name>/suites``)."""
    candidates = [SUITES_DIR / f"{name}.json",
                  *sorted(SOURCE_SUITES.glob(f"*/suites/{name}.json"))]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise FileNotFoundError(f"no suite {name}.json in {SUITES_DIR} or "
                                f"{SOURCE_SUITES}/*/suites")
    if len(found) > 1:
        raise ValueError(f"suite {name}.json is in {len(found)} places ({', '.join(map(str, found))}):"
                         " suite names are global, rename one")
    return found[0]


def load_suite_json(name: str) -> dict:
    return json.loads(suite_path(name).read_text(encoding="utf-8"))


def count_rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """``sql``'s count, 0 when its table does not exist yet."""
    try:
        return con.execute(sql).fetchone()[0]
    except duckdb.CatalogException:
        return 0


def sql_text(value) -> str:
    """``value`` as a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    return ", ".join(map(sql_text, values))


def _seed_column(path: Path, column: str, where=lambda row: True) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return sorted(row[column] for row in csv.DictReader(fh) if where(row))


def seed_parameters() -> dict:
    """The known funds, funding stages and member states (the seeds), for the funding suites."""
    from ingest.config import SEEDS_DIR
    return {"known_funds": _seed_column(SEEDS_DIR / "funds.csv", "fund_code"),
            "known_stages": _seed_column(SEEDS_DIR / "funding_stages.csv", "stage"),
            "member_states": _seed_column(SEEDS_DIR / "country_codes.csv", "eurostat_code",
                                          lambda r: r["is_eu_member"] == "true")}


DOCS_SITE = "warehouse_audit"


def _context(docs_dir: Path | None = None):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # GX logs every public function it registers at INFO on import: hundreds of lines per task.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    # The ephemeral context's own Data Docs site is a temporary directory: replace it by the
    # run folder's (or by none).
    for name in list(ctx.list_data_docs_sites()):
        ctx.delete_data_docs_site(name)
    if docs_dir is not None:
        ctx.add_data_docs_site(site_name=DOCS_SITE, site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir.resolve())}})
    return gx, ctx


def run_checks(db_path: Path, checks: list[Check], results_dir: Path, stage: str,
               compact_strings: bool = True, docs_dir: Path | None = None,
               memo_run_id: str | None = None) -> dict:
    """Run each check on ``db_path`` (opened read-only), save every GX result as JSON under
    ``results_dir``, build GX Data Docs into ``docs_dir`` (rendering offline) when given, and
    raise ``AuditFailed`` naming every failed expectation.

    With ``memo_run_id`` (the transform's audits, which own ``db_path``), a check whose rows and
    suite are those of a pass stored in ``meta.audit_memo`` reuses that result instead of
    validating again, and the passes of this audit are stored there when it succeeds
    (``expectations.memo``)."""
    gx, ctx = _context(docs_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    shared = None
    summary: dict[str, Any] = {"stage": stage, "db": str(db_path), "checks": []}
    failures: list[str] = []
    failed_checks: list[Check] = []
    passes: list[dict] = []
    with duck.connect(str(db_path), read_only=True) as con:
        # A per-connection setting: DuckDB 1.5 refuses it in connect(config=...).
        con.execute("set enable_progress_bar = false")
        for check in checks:
            started = time.perf_counter()
            suite_json = {**load_suite_json(check.suite), "name": check.name}
            key = None
            if memo_run_id is not None:
                key, rows = memo.frame_key(con, check.sql, suite_json, check.parameters,
                                           check.index_columns, gx.__version__)
                earlier = memo.lookup(con, check.name, key)
                if earlier is not None:
                    _reuse(check, earlier, rows, results_dir, summary,
                           time.perf_counter() - started)
                    continue
            else:
                rows = _rows(con, check.sql)
            if rows > AUDIT_CHUNK_ROWS and _chunkable(suite_json):
                result, shared = _validate_in_chunks(gx, ctx, con, check, suite_json, rows,
                                                     stage, compact_strings, shared)
                validated = rows
            else:
                frame = read_frame(con, check.sql, compact_strings, rows)
                validated = len(frame)
                shared, result = _validate(gx, ctx, check, suite_json, frame, stage, shared)
                del frame
            elapsed = time.perf_counter() - started
            outcome = result.to_json_dict()
            outcome["meta"] = {**(outcome.get("meta") or {}), "subject": check.subject,
                               "rows_validated": validated, "elapsed_s": round(elapsed, 3)}
            (results_dir / f"{check.name}.json").write_text(
                json.dumps(outcome, indent=2, default=str), encoding="utf-8")
            evaluated = len(result.results)
            failed = [r for r in result.results if not r.success]
            if key is not None and not failed:
                passes.append({"check": check.name, "key": key, "rows": validated,
                               "result": outcome})
            summary["checks"].append({
                "suite": check.name, "subject": check.subject, "rows": validated,
                "evaluated": evaluated, "failed": len(failed), "elapsed_s": round(elapsed, 3)})
            log.info("audit %s on %s: %d/%d expectations passed on %s rows (%.2f s)", check.name,
                     check.subject, evaluated - len(failed), evaluated, f"{validated:,}", elapsed)
            for r in failed:
                failures.append(describe_failure(check, r, validated))
            # Evidence against the check's files: an expectation evaluated and broken. One that
            # could not be evaluated (an exception in GX, a bug) fails the run but blames none.
            if any(_raised(r) is None for r in failed):
                failed_checks.append(check)
    if docs_dir is not None and _validated_any(summary):
        # Every result validated here, its suite and the index page, rendered once from the
        # context's results store (decision 81: a checkpoint action per check rendered the
        # whole site again after every check, about 0.2 s each).
        ctx.build_data_docs(site_names=[DOCS_SITE])
    if docs_dir is not None and docs_dir.is_dir():
        removed = data_docs.make_offline(docs_dir)
        log.info("Data Docs of the %s audit: %s (external assets not shipped, removed: %s)",
                 stage, docs_dir / "index.html", ", ".join(removed) or "none")
    summary["success"] = not failures
    (results_dir / f"audit_{stage}.json").write_text(json.dumps(summary, indent=2),
                                                     encoding="utf-8")
    if memo_run_id is not None and not failures:
        memo.remember(db_path, memo_run_id, passes)
    if failures:
        headline = f"{stage} audit failed, nothing published:"
        if failed_checks and all(c.suspicious for c in failed_checks):
            headline = ("suspicious: " + "; ".join(c.subject for c in failed_checks)
                        + f": held, not published (if the change is real, publish it on "
                        f"purpose: python -m pipeline.run readmit FILE --accept-suspicious); "
                        + headline)
        raise AuditFailed(headline + "\n" + "\n".join(failures), failed_checks)
    return summary


def _validated_any(summary: dict) -> bool:
    """Whether this audit validated any check (rather than reusing every result)."""
    return any("reused_from" not in c for c in summary["checks"])


def _reuse(check: Check, earlier: dict, rows: int, results_dir: Path, summary: dict,
           elapsed: float) -> None:
    """Record for ``check`` the stored result of the run that validated the same rows."""
    outcome = earlier["result"]
    outcome["meta"] = {**(outcome.get("meta") or {}), "subject": check.subject,
                       "reused_from": earlier["run_id"],
                       "validated_at": str(earlier["validated_at"])}
    (results_dir / f"{check.name}.json").write_text(
        json.dumps(outcome, indent=2, default=str), encoding="utf-8")
    evaluated = len(outcome.get("results") or [])
    summary["checks"].append({
        "suite": check.name, "subject": check.subject, "rows": rows, "evaluated": evaluated,
        "failed": 0, "elapsed_s": round(elapsed, 3), "reused_from": earlier["run_id"]})
    log.info("audit %s on %s: the same %s rows passed in run %s: its result reused (%d "
             "expectations, %.2f s to fingerprint)", check.name, check.subject, f"{rows:,}",
             earlier["run_id"], evaluated, elapsed)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(f"select count(*) from ({sql})").fetchone()[0]


def _validate(gx, ctx, check: Check, suite_json: dict, frame, stage: str, shared,
              name: str | None = None, own: bool | None = None):
    """GX's validation of ``frame`` against ``suite_json`` (as ``name``, default the check's):
    (the shared datasource, the result). ``own``: through a datasource of its own, dropped
    after it (default: for frames of OWN_DATASOURCE_ROWS or more)."""
    name = name or check.name
    suite = ctx.suites.add(gx.ExpectationSuite(**{**suite_json, "name": name}))
    # A datasource's execution engine caches every metric it computed (whole columns,
    # masks) and every batch: a big frame gets a datasource of its own, dropped after the
    # check, so that a file validated in parts holds one part at a time. Small frames
    # share one (adding a datasource costs about 0.2 s).
    own = len(frame) >= OWN_DATASOURCE_ROWS if own is None else own
    if own:
        datasource = ctx.data_sources.add_pandas(f"{stage}_frames_{name}")
    elif shared is None:
        datasource = shared = ctx.data_sources.add_pandas(f"{stage}_frames")
    else:
        datasource = shared
    asset = datasource.add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("frame")
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result_format = {"result_format": "SUMMARY",
                     "unexpected_index_column_names": (list(check.index_columns)
                                                       if len(frame.columns) else []),
                     "partial_unexpected_count": SAMPLE_ROWS}
    # The run keeps its result in the context's validation results store; the Data Docs are
    # rendered from that store once, after the last check (``_build_docs``).
    result = definition.run(batch_parameters={"dataframe": frame},
                            expectation_parameters=check.parameters,
                            result_format=result_format)
    if own:
        ctx.data_sources.delete(datasource.name)
        del batch, asset, definition, datasource
        gc.collect()
    return shared, result


def _kind(expectation: dict) -> str:
    kind = expectation.get("type") or expectation.get("expectation_type")
    return ("rows" if kind in ROW_WISE else "unique" if kind in UNIQUE
            else "table" if kind in TABLE_LEVEL else "other")


def _chunkable(suite_json: dict) -> bool:
    """Every expectation of the suite is of a kind ``_validate_in_chunks`` validates exactly."""
    kinds = [_kind(e) for e in suite_json["expectations"]]
    if "other" in kinds:
        log.info("suite %s: %s cannot be validated in chunks; validated whole",
                 suite_json["name"], [e.get("type") for e in suite_json["expectations"]
                                      if _kind(e) == "other"])
        return False
    return True


class _Merged:
    """One check's result from its chunks' GX results (``_validate_in_chunks``): the results of
    its expectations in the suite's order, each added up over the chunks it was validated on;
    every chunk's own GX result is kept beside them (``to_json_dict()['chunks']``)."""

    def __init__(self, results: list, chunks: list[dict]):
        self.results = results
        self.chunks = chunks

    def to_json_dict(self) -> dict:
        results = [r.to_json_dict() for r in self.results]
        return {"success": all(r.success for r in self.results), "results": results,
                "statistics": {"evaluated_expectations": len(results),
                               "successful_expectations": sum(r.success for r in self.results),
                               "unsuccessful_expectations": sum(not r.success
                                                                for r in self.results)},
                "meta": {"validated_in_chunks": len(self.chunks)}, "chunks": self.chunks}


_ADDED = ("element_count", "missing_count", "unexpected_count")


def _merge(parts: list) -> Any:
    """One expectation's results on several chunks as one: success when every chunk passed;
    counts added up; the first SAMPLE_ROWS sample rows in chunk order (the rows GX would have
    shown on the whole table, which it takes in order); the first exception raised."""
    from great_expectations.core import ExpectationValidationResult

    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {}
    for key in ("observed_value", "details"):
        for p in parts:
            if (p.result or {}).get(key) is not None and (not p.success or key not in merged):
                merged[key] = p.result[key]
                if not p.success:
                    break
    for key in _ADDED:
        if any(key in (p.result or {}) for p in parts):
            merged[key] = sum((p.result or {}).get(key) or 0 for p in parts)
    for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
        if any(key in (p.result or {}) for p in parts):
            merged[key] = [v for p in parts for v in (p.result or {}).get(key) or []][:SAMPLE_ROWS]
    if "unexpected_count" in merged:
        counted = merged.get("element_count") or 0
        nonmissing = counted - (merged.get("missing_count") or 0)
        merged["unexpected_percent"] = (100 * merged["unexpected_count"] / nonmissing
                                        if nonmissing else None)
        merged["unexpected_percent_total"] = (100 * merged["unexpected_count"] / counted
                                              if counted else None)
        merged["missing_percent"] = (100 * (merged.get("missing_count") or 0) / counted
                                     if counted else None)
    raised = next((p for p in parts if _raised(p) is not None), None)
    return ExpectationValidationResult(
        success=all(p.success for p in parts), expectation_config=parts[0].expectation_config,
        result=merged, exception_info=(raised.exception_info if raised is not None
                                       else parts[0].exception_info))


_IDENTITY = ("column", "column_list", "column_A", "column_B", "column_set")


def _matched(expectations: list[dict], indexes: list[int], results: list) -> list[tuple[int, Any]]:
    """Each GX result with the index of the suite's expectation it is of (GX lists results in
    its own order): the first not yet taken of the same type, meta and columns."""
    free = list(indexes)
    pairs = []
    for r in results:
        cfg = r.expectation_config
        for i in free:
            e = expectations[i]
            kwargs = e.get("kwargs") or {}
            if ((e.get("type") or e.get("expectation_type")) == cfg.type
                    and (e.get("meta") or {}) == (cfg.meta or {})
                    and all(kwargs.get(k) == cfg.kwargs.get(k) for k in _IDENTITY)):
                free.remove(i)
                pairs.append((i, r))
                break
        else:
            raise RuntimeError(f"GX result of {cfg.type} {cfg.kwargs} matches no expectation "
                               "of the suite")
    return pairs


def _gx_order(expectations: list[dict]) -> list[int]:
    """The order GX validates a suite's expectations in, and lists their results in: grouped
    by their ``column`` kwarg in order of first appearance, those without one (table, column
    pair, compound) forming one group where the first of them appears (GX 1.x
    ``Validator.process_expectations_for_validation``)."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(expectations):
        column = (e.get("kwargs") or {}).get("column")
        groups.setdefault(column if isinstance(column, str) else "\0no column", []).append(i)
    return [i for group in groups.values() for i in group]


def _duplicated_sql(frame_sql: str, columns: list[str]) -> str:
    """The rows of ``frame_sql`` whose ``columns`` (NULLs equal, as pandas compares them) occur
    more than once, in the frame's order."""
    quoted = [_quoted(c) for c in columns]
    on = " and ".join(f"n.{c} is not distinct from d.{c}" for c in quoted)
    return f"""with n as (select *, row_number() over () as "__audit_row" from ({frame_sql})),
                    d as (select {", ".join(quoted)} from n group by all having count(*) > 1)
               select n.* exclude ("__audit_row") from n semi join d on {on}
               order by n."__audit_row" """


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _validate_in_chunks(gx, ctx, con: duckdb.DuckDBPyConnection, check: Check, suite_json: dict,
                        rows: int, stage: str, compact_strings: bool, shared):
    """A check of many rows without holding them: row rules on chunks of AUDIT_CHUNK_ROWS
    streamed from one query; uniqueness on the rows whose key DuckDB finds twice or more (a
    duplicate is all GX needs to see to fail, and it sees every one); row counts on a frame of
    the count and no column. Each is a real GX validation; their results are then merged per
    expectation (``_merge``) in the suite's order, so that the failures read as they do when
    the check is validated whole: the same counts, the same sample rows."""
    import pandas as pd

    frame_sql = _frame_sql(con, check.sql, compact_strings, rows)
    expectations = suite_json["expectations"]
    by_kind: dict[str, list[int]] = {}
    for i, e in enumerate(expectations):
        by_kind.setdefault(_kind(e), []).append(i)
    found: dict[int, list] = {i: [] for i in range(len(expectations))}
    chunks: list[dict] = []

    def run(kind: str, indexes: list[int], frame, label: str) -> None:
        nonlocal shared
        sub = {**suite_json, "expectations": [expectations[i] for i in indexes]}
        name = f"{check.name}.{label}"
        # Each chunk through a datasource of its own: a shared one would keep every chunk.
        shared, result = _validate(gx, ctx, check, sub, frame, stage, shared, name, own=True)
        for i, r in _matched(expectations, indexes, result.results):
            found[i].append(r)
        chunks.append({"name": name, "kind": kind, "rows": len(frame),
                       "result": result.to_json_dict()})

    if by_kind.get("table"):
        run("table", by_kind["table"], pd.DataFrame(index=pd.RangeIndex(rows)), "row_count")
    for n, i in enumerate(by_kind.get("unique", [])):
        columns = list(expectations[i]["kwargs"]["column_list"])
        keys = ", ".join(_quoted(c) for c in columns)
        # The keys first (an aggregate, which spills), the rows in order only when there are
        # duplicates (a window over every row: only on data that fails).
        twice = con.execute(f"select count(*) from (select {keys} from ({frame_sql}) "
                            "group by all having count(*) > 1)").fetchone()[0]
        duplicated = con.execute(_duplicated_sql(frame_sql, columns) if twice
                                 else f"select * from ({frame_sql}) limit 0").df()
        run("unique", [i], duplicated, f"duplicates{n + 1}")
        del duplicated
    if by_kind.get("rows"):
        stream = con.cursor()
        try:
            result = stream.execute(frame_sql)
            vectors = max(1, AUDIT_CHUNK_ROWS // 2048)  # DuckDB hands over 2,048 at a time
            k = 0
            while len(frame := result.fetch_df_chunk(vectors)):
                k += 1
                run("rows", by_kind["rows"], frame, f"chunk{k}")
                del frame
        finally:
            stream.close()
    merged = [_merge(found[i]) for i in _gx_order(expectations)]
    log.info("audit %s: %s rows validated in %d chunks of at most %s rows, %d uniqueness rule(s) "
             "on the rows DuckDB found duplicated", check.name, f"{rows:,}",
             sum(c["kind"] == "rows" for c in chunks), f"{AUDIT_CHUNK_ROWS:,}",
             len(by_kind.get("unique", [])))
    return _Merged(merged, chunks), shared


def _frame_sql(con: duckdb.DuckDBPyConnection, sql: str, compact_strings: bool = True,
               rows: int | None = None) -> str:
    """The SELECT of the frame a check validates (``read_frame``)."""
    relation = con.sql(sql)
    if not compact_strings:
        return sql
    columns = []
    texts = [n for n, t in zip(relation.columns, relation.dtypes) if str(t) == "VARCHAR"]
    if rows is None:
        rows = con.execute(f"select count(*) from ({sql})").fetchone()[0] if texts else 0
    limit = max(MAX_CATEGORIES, rows // CATEGORY_RATIO)
    for name, dtype in zip(relation.columns, relation.dtypes):
        quoted = _quoted(name)
        if str(dtype) == "VARCHAR":
            values = [r[0] for r in con.execute(
                f"select distinct {quoted} from ({sql}) where {quoted} is not null "
                f"limit {limit + 1}").fetchall()]
            if 0 < len(values) <= limit:
                labels = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
                columns.append(f"{quoted}::enum({labels}) as {quoted}")
                continue
        columns.append(quoted)
    return f"select {', '.join(columns)} from ({sql})"


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, compact_strings: bool = True,
               rows: int | None = None):
    """The frame a check validates. Text columns with few distinct values for their rows (routes,
    border types, nationalities; at most MAX_CATEGORIES, or one per CATEGORY_RATIO rows) are cast
    to DuckDB ENUMs, which arrive in pandas as Categoricals: a tenth of
    the memory of Python strings and ten times faster to fetch (see ``make bench``)."""
    return con.sql(_frame_sql(con, sql, compact_strings, rows)).df()


def _raised(r) -> str | None:
    """The message of the exception an expectation raised while it was evaluated, or None. GX
    1.x keeps it per metric (``{metric id: {raised_exception, exception_message, ...}}``);
    older results kept one flat record."""
    info = r.exception_info or {}
    records = [info] if "raised_exception" in info else [
        v for v in info.values() if isinstance(v, dict)]
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message") or "an exception").strip()
    return None


def describe_failure(check: Check, r, rows: int) -> str:
    cfg = r.expectation_config
    rule = (cfg.meta or {}).get("rule") or cfg.type
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    res = r.result or {}
    if (raised := _raised(r)) is not None:
        detail = f"could not be evaluated: {raised.splitlines()[-1][:300]}"
    elif "unexpected_count" in res:
        detail = f"{res['unexpected_count']:,} of {rows:,} rows break it"
        samples = res.get("partial_unexpected_index_list") or []
        if samples:
            detail += "; e.g. " + "; ".join(
                ", ".join(f"{k}={_plain(v)}" for k, v in s.items()) for s in samples[:SAMPLE_ROWS])
        elif res.get("partial_unexpected_list"):
            detail += f"; e.g. {[_plain(v) for v in res['partial_unexpected_list'][:SAMPLE_ROWS]]}"
    else:
        detail = f"observed {_plain(res.get('observed_value'))}"
    return f"  - [{check.suite}] {rule} ({cfg.type} {kwargs}) on {check.subject}: {detail}"


def _plain(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10] if hasattr(value, "hour") and not (
            value.hour or value.minute or value.second) else value.isoformat()
    if hasattr(value, "item"):
        return str(value.item())
    return str(value)
