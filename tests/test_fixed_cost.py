"""Less fixed cost (issue 21, item 3; decision 74): the dbt docs page of a publish is reused
when what it shows did not change, and ``make run`` asks every source before it starts Airflow.

Fast: the docs fingerprint on a small database and a hand-written manifest, the page copied from
the previous publish's run folder (locally and through a real S3 server) without starting dbt,
and ``offers_new`` on the real Frontex source and landing; slow: a new column makes real dbt
generate the page again (on the session's recorded build). The whole runs (a no-op run without
Airflow, a publish reusing the docs and the report linking them) are in
tests/test_pipeline_e2e.py."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingest import storage
from ingest.config import settings
from ingest.landing import QUARANTINED, Landing
from ingest.source import land_new, offers_new
from ingest.sources.frontex.source import FrontexSource
from pipeline import dbt, scratch
from tests import workbooks
from tests.test_landing import snapshot_copy  # noqa: F401 (a fixture: an empty snapshot folder)

MANIFEST = {
    "metadata": {"generated_at": "2026-12-05T10:00:00Z", "invocation_id": "a"},
    "nodes": {"model.migration_warehouse.dim_route": {
        "resource_type": "model", "schema": "marts", "name": "dim_route",
        "description": "Routes.", "created_at": 1.0,
        "columns": {"route": {"name": "route", "description": "The route."}}}},
    "sources": {"source.migration_warehouse.raw.frontex": {
        "resource_type": "source", "schema": "raw", "name": "frontex", "created_at": 2.0}},
}


def _build(folder: Path, previous_run: str | None = "prev") -> Path:
    """A build database with one mart, one raw table, a schema dbt does not catalog and the
    publish log of the warehouse it started from; its manifest in ``<folder>/dbt/target``."""
    db = folder / "migration.duckdb"
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db)) as con:
        con.execute("create schema marts; create schema raw; create schema meta; "
                    "create schema elsewhere")
        con.execute("create table marts.dim_route (route varchar, n bigint)")
        con.execute("comment on table marts.dim_route is 'Routes.'")
        con.execute("insert into marts.dim_route values ('Central Mediterranean Route', 1)")
        con.execute("create table raw.frontex (detections bigint)")
        con.execute("create table elsewhere.notes (x int)")
        con.execute("create table meta.publish_log (run_id varchar, published_at timestamptz)")
        if previous_run:
            con.execute("insert into meta.publish_log values (?, now())", [previous_run])
    target = folder / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(MANIFEST))
    return db


def _target(db: Path) -> Path:
    return db.parent / "dbt" / "target"


def test_the_fingerprint_follows_what_the_docs_show(tmp_path):
    db = _build(tmp_path / "run")
    first = dbt.docs_fingerprint(db, _target(db))
    assert first and dbt.docs_fingerprint(db, _target(db)) == first
    with duckdb.connect(str(db)) as con:
        # Rows, and schemas dbt does not catalog, are not shown: the same page.
        con.execute("insert into marts.dim_route values ('Eastern Mediterranean Route', 2)")
        con.execute("create table elsewhere.more (y int)")
        # Nor a table no dbt node makes, in a schema dbt does (publish adds meta.publish_log
        # and the quality history after the docs: the first publish's build lacks them).
        con.execute("create table marts.publish_log (run_id varchar)")
    assert dbt.docs_fingerprint(db, _target(db)) == first, (
        "rows, or a table that is no dbt node, changed the docs fingerprint")
    # What changes at every dbt invocation is not shown either.
    manifest = json.loads((_target(db) / "manifest.json").read_text())
    manifest["metadata"]["generated_at"] = "2026-12-06T10:00:00Z"
    manifest["nodes"]["model.migration_warehouse.dim_route"]["created_at"] = 9.0
    manifest["nodes"]["model.migration_warehouse.dim_route"]["build_path"] = "runs/b/x.sql"
    (_target(db) / "manifest.json").write_text(json.dumps(manifest))
    assert dbt.docs_fingerprint(db, _target(db)) == first
    # A description, a new column, a type: another page.
    manifest["nodes"]["model.migration_warehouse.dim_route"]["description"] = "Routes (2)."
    (_target(db) / "manifest.json").write_text(json.dumps(manifest))
    described = dbt.docs_fingerprint(db, _target(db))
    assert described != first
    with duckdb.connect(str(db)) as con:
        con.execute("alter table marts.dim_route add column route_label varchar")
    widened = dbt.docs_fingerprint(db, _target(db))
    assert widened != described
    with duckdb.connect(str(db)) as con:
        con.execute("alter table raw.frontex alter detections type integer")
    assert dbt.docs_fingerprint(db, _target(db)) not in (widened, described, first)
    (_target(db) / "manifest.json").unlink()
    assert dbt.docs_fingerprint(db, _target(db)) is None


def test_a_selective_build_shows_the_same_docs_as_a_full_one(tmp_path):
    """A build that selects what its new files feed (decision 76) compiles only those nodes: the
    others have no compiled SQL and fewer macros in their manifest entry. Their page is the same
    (the SQL as written and the macros are), so the fingerprint must be too; else every new
    release generated the docs again (5.8 s at 10x)."""
    db = _build(tmp_path / "run")
    node = MANIFEST["nodes"]["model.migration_warehouse.dim_route"]
    written = {**node, "raw_code": "select 1 as route",
               "depends_on": {"macros": [], "nodes": ["seed.migration_warehouse.routes"]}}
    compiled = {**written, "compiled": True, "compiled_code": "select 1 as route",
                "extra_ctes": [], "extra_ctes_injected": True,
                "depends_on": {"macros": ["macro.dbt.statement"],
                               "nodes": ["seed.migration_warehouse.routes"]}}

    def fingerprint(entry: dict) -> str:
        manifest = {**MANIFEST, "nodes": {"model.migration_warehouse.dim_route": entry}}
        (_target(db) / "manifest.json").write_text(json.dumps(manifest))
        return dbt.docs_fingerprint(db, _target(db))

    selective = fingerprint(written)
    assert fingerprint(compiled) == selective, (
        "the compiled SQL or run-time macros of a node changed the docs fingerprint: a selective "
        "build would generate the docs again")
    # The failing rows a test stores are dropped at publish; a selective build keeps those of
    # its own tests only: not shown either.
    check = {"resource_type": "test", "schema": "marts", "name": "not_null_dim_route_route",
             "alias": "not_null_dim_route_route", "raw_code": "{{ test_not_null() }}"}
    manifest = {**MANIFEST, "nodes": {**MANIFEST["nodes"], "test.migration_warehouse.n": check}}
    (_target(db) / "manifest.json").write_text(json.dumps(manifest))
    without = dbt.docs_fingerprint(db, _target(db))
    with duckdb.connect(str(db)) as con:
        con.execute("create table marts.not_null_dim_route_route (route varchar)")
    assert dbt.docs_fingerprint(db, _target(db)) == without, (
        "a test's stored failing rows changed the docs fingerprint")
    # The SQL as written, and what a node depends on, are shown: other pages.
    assert fingerprint({**compiled, "raw_code": "select 2 as route"}) != selective
    assert fingerprint({**written, "depends_on": {"macros": [], "nodes": []}}) != selective


def _previous_publish(runs: Path, fingerprint: str, page: bytes = b"<html>prev docs</html>"):
    folder = runs / "prev" / "dbt"
    (folder / "target").mkdir(parents=True)
    (folder / "target" / dbt.DOCS_PAGE).write_bytes(page)
    (folder / dbt.DOCS_FINGERPRINT).write_text(json.dumps(
        {"fingerprint": fingerprint, "generated_by": "older"}))


def test_an_unchanged_page_is_copied_from_the_previous_publish_without_dbt(wh_env):
    """No dbt is started (this test is in the fast lane, which fails a test that starts dbt)."""
    runs = settings().runs_dir
    db = _build(runs / "cur")
    _previous_publish(runs, dbt.docs_fingerprint(db, _target(db)))
    page = dbt.docs(db, runs / "cur")
    assert page == _target(db) / dbt.DOCS_PAGE
    assert page.read_bytes() == b"<html>prev docs</html>"
    record = json.loads((runs / "cur" / "dbt" / dbt.DOCS_FINGERPRINT).read_text())
    assert record == {"fingerprint": dbt.docs_fingerprint(db, _target(db)),
                      "generated_by": "older", "copied_from": "prev"}


def test_a_new_column_or_no_previous_page_generates_the_page_with_dbt(built_db, wh_env):
    """Real dbt on the recorded build (the session's ``built_db``, copied with its manifest): a
    column added since the previous publish's page changes what the docs show, so ``dbt docs
    generate`` writes a page that has it; a previous publish that kept no page: generated too."""
    import shutil

    runs = settings().runs_dir
    db = runs / "cur" / built_db.name
    shutil.copytree(built_db.parent / "dbt" / "target", _target(db),
                    ignore=shutil.ignore_patterns("static_index.html", "index.html", "catalog.json"))
    shutil.copyfile(built_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("create schema if not exists meta")
        con.execute("create table meta.publish_log (run_id varchar, published_at timestamptz)")
        con.execute("insert into meta.publish_log values ('prev', now())")
    _previous_publish(runs, dbt.docs_fingerprint(db, _target(db)))
    assert dbt.docs(db, runs / "cur").read_bytes() == b"<html>prev docs</html>"  # unchanged
    with duckdb.connect(str(db)) as con:
        con.execute("alter table marts.dim_route add column route_note varchar")
    page = dbt.docs(db, runs / "cur")
    text = page.read_text(encoding="utf-8")
    assert "route_note" in text and "fct_border_crossings" in text
    record = json.loads((runs / "cur" / "dbt" / dbt.DOCS_FINGERPRINT).read_text())
    assert record == {"fingerprint": dbt.docs_fingerprint(db, _target(db)), "generated_by": "cur"}
    # The previous publish kept no page (its generation failed, or its folder went): generated.
    shutil.rmtree(runs / "prev")
    page.unlink()
    assert "route_note" in dbt.docs(db, runs / "cur").read_text(encoding="utf-8")


def test_on_object_storage_the_page_comes_from_the_previous_run_folder_in_the_bucket(
        s3_env, monkeypatch, tmp_path):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WH_SCRATCH_DIR", str(tmp_path / "scratch"))
    remote = storage.configured()
    with scratch.task("prev", "publish"):
        runs = settings().runs_dir
        db = _build(runs / "scratch_only")  # only to compute the fingerprint the same way
        _previous_publish(runs, dbt.docs_fingerprint(db, _target(db)), b"<html>s3 docs</html>")
    assert remote.get(f"runs/prev/dbt/target/{dbt.DOCS_PAGE}")[0] == b"<html>s3 docs</html>"
    with scratch.task("cur", "publish"):
        runs = settings().runs_dir
        assert not (runs / "prev").exists(), "the previous run folder is not on this host"
        db = _build(runs / "cur")
        page = dbt.docs(db, runs / "cur")
        assert page is not None and page.read_bytes() == b"<html>s3 docs</html>"
    # The run folder took it to the bucket, where the report step finds it.
    assert remote.get(f"runs/cur/dbt/target/{dbt.DOCS_PAGE}")[0] == b"<html>s3 docs</html>"
    record = json.loads(remote.get(f"runs/cur/dbt/{dbt.DOCS_FINGERPRINT}")[0])
    assert record["copied_from"] == "prev"


def test_offers_new_asks_like_land_new_and_lands_nothing(wh_env, snapshot_copy,
                                                         recorded_workbook, snapshot_dir):
    workbook = snapshot_copy / "frontex" / "ibc.xlsx"
    workbook.write_bytes(recorded_workbook)
    landing = Landing(settings().landing_dir)
    found = offers_new(FrontexSource(), landing)
    assert found is not None and found.url.startswith("file://") and found.url.endswith(
        "/frontex/ibc.xlsx") and found.quarantined is None
    assert landing.entries() == [], "offers_new landed something"
    assert not any(settings().landing_dir.rglob("*.xlsx")), "offers_new left a file in landing"
    assert len(land_new(FrontexSource(), landing)) == 1
    assert offers_new(FrontexSource(), landing) is None  # the same bytes: nothing new
    # A new release (other bytes under the same name) is noticed, and not landed.
    header, rows = workbooks.recorded_rows(snapshot_dir / "frontex" / "ibc.xlsx")
    workbook.write_bytes(workbooks.write_workbook(header=header, rows=rows[:50]))
    assert offers_new(FrontexSource(), landing) is not None
    assert len(landing.entries()) == 1
    # Bytes that were quarantined: said (land_new reports them as skipped), not landed again.
    workbook.write_bytes(b"<html><body>Maintenance</body></html>")
    with pytest.raises(Exception):
        land_new(FrontexSource(), landing)
    assert [e.status for e in landing.entries()].count(QUARANTINED) == 1
    again = offers_new(FrontexSource(), landing)
    assert again is not None and again.quarantined is not None, again
    assert "something new" not in str(again) and "quarantined" in str(again), (
        f"bytes quarantined before, offered again, are said to be new: {again}")
    assert len(landing.entries()) == 2


def test_two_audits_in_one_process_each_get_their_own_results_and_data_docs(tmp_path):
    """What GX work one process shares between audits (``make run`` runs audit_raw and
    audit_marts in one process): the import only; each ``run_checks`` gets a context of its own,
    so the second audit's Data Docs show its results alone, in its own folder, and a failure in
    one does not leak into the other (decision 74 measured a context kept per process: no
    faster)."""
    from expectations.audit import AuditFailed, Check, run_checks

    db = tmp_path / "audit.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create table good as select 10 as committed_eur, 5 as paid_eur")
        con.execute("create table bad as select 10 as committed_eur, 50 as paid_eur")
    suite = "fct_funding_paid_within_committed"
    first = run_checks(db, [Check(suite, "select * from good", "good", name_suffix="_good")],
                       tmp_path / "results_a", "raw", docs_dir=tmp_path / "docs_a")
    assert first["success"] and [c["suite"] for c in first["checks"]] == [suite + "_good"]
    with pytest.raises(AuditFailed, match="paid never above committed"):
        run_checks(db, [Check(suite, "select * from bad", "bad", index_columns=("committed_eur",),
                         name_suffix="_bad")],
                   tmp_path / "results_b", "marts", docs_dir=tmp_path / "docs_b")
    again = run_checks(db, [Check(suite, "select * from good", "good", name_suffix="_good")],
                       tmp_path / "results_c", "raw", docs_dir=tmp_path / "docs_c")
    assert again["success"]
    for folder, shown, absent in (("docs_a", "_good", "_bad"), ("docs_b", "_bad", "_good"),
                                  ("docs_c", "_good", "_bad")):
        pages = [p.relative_to(tmp_path / folder).as_posix()
                 for p in (tmp_path / folder).rglob("*.html")]
        validations = [p for p in pages if p.startswith("validations/")]
        assert validations and all(suite + shown in p for p in validations), (folder, pages)
        index = (tmp_path / folder / "index.html").read_text(encoding="utf-8")
        assert suite + shown in index and suite + absent not in index, folder
    assert sorted(p.name for p in (tmp_path / "results_b").iterdir()) == [
        "audit_marts.json", f"{suite}_bad.json"]


def test_a_page_edited_through_the_reports_hard_link_is_not_copied_into_a_publish(
        built_db, wh_env, tmp_path, monkeypatch):
    """The report's copy of a publish's docs page is a hard link to the run folder's page
    (decision 86): an analyst who edits it in place (an editor that saves into the same file)
    edits the run's page too. The next publish that shows the same docs copies that page
    (decision 74): it must not carry the edit on into every later publish, but generate the
    page again. Real dbt on the session's recorded build."""
    import shutil

    from pipeline import report

    monkeypatch.setenv("WH_REPORTS_DIR", str(tmp_path / "reports"))
    runs = settings().runs_dir
    for run_id in ("prev", "cur"):
        db = runs / run_id / built_db.name
        shutil.copytree(built_db.parent / "dbt" / "target", _target(db), ignore=(
            shutil.ignore_patterns("static_index.html", "index.html", "catalog.json")))
        shutil.copyfile(built_db, db)
        with duckdb.connect(str(db)) as con:
            con.execute("create schema if not exists meta")
            con.execute("create table meta.publish_log (run_id varchar, published_at timestamptz)")
            if run_id == "cur":
                con.execute("insert into meta.publish_log values ('prev', now())")
    page = dbt.docs(runs / "prev" / built_db.name, runs / "prev")
    linked = report._keep_once(page, settings().reports_dir / "runs" / "prev" / "dbt_docs"
                               / "index.html")
    assert linked.stat().st_ino == page.stat().st_ino, "the report's copy is not a hard link"
    with linked.open("a", encoding="utf-8") as out:  # saved in place
        out.write("<!-- an analyst's note -->")
    copied = dbt.docs(runs / "cur" / built_db.name, runs / "cur")
    assert copied is not None and b"an analyst's note" not in copied.read_bytes(), (
        "a page edited in place through the report's hard link was copied into the next publish")
    record = json.loads((runs / "cur" / "dbt" / dbt.DOCS_FINGERPRINT).read_text())
    assert record["generated_by"] == "cur" and "copied_from" not in record, record
