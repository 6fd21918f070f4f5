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

from expectations import data_docs

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
               compact_strings: bool = True, docs_dir: Path | None = None) -> dict:
    """Run each check on ``db_path`` (opened read-only), save every GX result as JSON under
    ``results_dir``, build GX Data Docs into ``docs_dir`` (rendering offline) when given, and
    raise ``AuditFailed`` naming every failed expectation."""
    gx, ctx = _context(docs_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    shared = None
    summary: dict[str, Any] = {"stage": stage, "db": str(db_path), "checks": []}
    failures: list[str] = []
    failed_checks: list[Check] = []
    with duck.connect(str(db_path), read_only=True) as con:
        # A per-connection setting: DuckDB 1.5 refuses it in connect(config=...).
        con.execute("set enable_progress_bar = false")
        for check in checks:
            started = time.perf_counter()
            frame = read_frame(con, check.sql, compact_strings)
            suite_json = {**load_suite_json(check.suite), "name": check.name}
            suite = ctx.suites.add(gx.ExpectationSuite(**suite_json))
            # A datasource's execution engine caches every metric it computed (whole columns,
            # masks) and every batch: a big frame gets a datasource of its own, dropped after the
            # check, so that a file validated in parts holds one part at a time. Small frames
            # share one (adding a datasource costs about 0.2 s).
            own = len(frame) >= OWN_DATASOURCE_ROWS
            if own:
                datasource = ctx.data_sources.add_pandas(f"{stage}_frames_{check.name}")
            elif shared is None:
                datasource = shared = ctx.data_sources.add_pandas(f"{stage}_frames")
            else:
                datasource = shared
            asset = datasource.add_dataframe_asset(check.name)
            batch = asset.add_batch_definition_whole_dataframe("frame")
            definition = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=check.name, data=batch, suite=suite))
            result_format = {"result_format": "SUMMARY",
                             "unexpected_index_column_names": list(check.index_columns),
                             "partial_unexpected_count": SAMPLE_ROWS}
            if docs_dir is None:
                result = definition.run(batch_parameters={"dataframe": frame},
                                        expectation_parameters=check.parameters,
                                        result_format=result_format)
            else:
                # Through a checkpoint, whose action renders the result into the Data Docs.
                from great_expectations.checkpoint import UpdateDataDocsAction

                checkpoint = ctx.checkpoints.add(gx.Checkpoint(
                    name=check.name, validation_definitions=[definition],
                    actions=[UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
                    result_format=result_format))
                outcome_of_run = checkpoint.run(batch_parameters={"dataframe": frame},
                                                expectation_parameters=check.parameters)
                result = next(iter(outcome_of_run.run_results.values()))
            elapsed = time.perf_counter() - started
            outcome = result.to_json_dict()
            outcome["meta"] = {**(outcome.get("meta") or {}), "subject": check.subject,
                               "rows_validated": len(frame), "elapsed_s": round(elapsed, 3)}
            (results_dir / f"{check.name}.json").write_text(
                json.dumps(outcome, indent=2, default=str), encoding="utf-8")
            evaluated = len(result.results)
            failed = [r for r in result.results if not r.success]
            summary["checks"].append({
                "suite": check.name, "subject": check.subject, "rows": len(frame),
                "evaluated": evaluated, "failed": len(failed), "elapsed_s": round(elapsed, 3)})
            log.info("audit %s on %s: %d/%d expectations passed on %s rows (%.2f s)", check.name,
                     check.subject, evaluated - len(failed), evaluated, f"{len(frame):,}", elapsed)
            for r in failed:
                failures.append(describe_failure(check, r, len(frame)))
            # Evidence against the check's files: an expectation evaluated and broken. One that
            # could not be evaluated (an exception in GX, a bug) fails the run but blames none.
            if any(_raised(r) is None for r in failed):
                failed_checks.append(check)
            if own:
                ctx.data_sources.delete(datasource.name)
                del frame, result, batch, asset, definition, datasource
                gc.collect()
    if docs_dir is not None and docs_dir.is_dir():
        removed = data_docs.make_offline(docs_dir)
        log.info("Data Docs of the %s audit: %s (external assets not shipped, removed: %s)",
                 stage, docs_dir / "index.html", ", ".join(removed) or "none")
    summary["success"] = not failures
    (results_dir / f"audit_{stage}.json").write_text(json.dumps(summary, indent=2),
                                                     encoding="utf-8")
    if failures:
        headline = f"{stage} audit failed, nothing published:"
        if failed_checks and all(c.suspicious for c in failed_checks):
            headline = ("suspicious: " + "; ".join(c.subject for c in failed_checks)
                        + f": held, not published (if the change is real, publish it on "
                        f"purpose: python -m pipeline.run readmit FILE --accept-suspicious); "
                        + headline)
        raise AuditFailed(headline + "\n" + "\n".join(failures), failed_checks)
    return summary


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, compact_strings: bool = True):
    """The frame a check validates. Text columns with few distinct values for their rows (routes,
    border types, nationalities; at most MAX_CATEGORIES, or one per CATEGORY_RATIO rows) are cast
    to DuckDB ENUMs, which arrive in pandas as Categoricals: a tenth of
    the memory of Python strings and ten times faster to fetch (see ``make bench``)."""
    relation = con.sql(sql)
    if not compact_strings:
        return relation.df()
    columns = []
    texts = [n for n, t in zip(relation.columns, relation.dtypes) if str(t) == "VARCHAR"]
    rows = con.execute(f"select count(*) from ({sql})").fetchone()[0] if texts else 0
    limit = max(MAX_CATEGORIES, rows // CATEGORY_RATIO)
    for name, dtype in zip(relation.columns, relation.dtypes):
        quoted = '"' + name.replace('"', '""') + '"'
        if str(dtype) == "VARCHAR":
            values = [r[0] for r in con.execute(
                f"select distinct {quoted} from ({sql}) where {quoted} is not null "
                f"limit {limit + 1}").fetchall()]
            if 0 < len(values) <= limit:
                labels = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
                columns.append(f"{quoted}::enum({labels}) as {quoted}")
                continue
        columns.append(quoted)
    return con.sql(f"select {', '.join(columns)} from ({sql})").df()


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
