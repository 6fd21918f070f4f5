"""What makes a transform run build (pipeline.changes): a landed file not in the published
warehouse, a rejected file still in it, other code; nothing else. A real landing and a real
DuckDB file published the way publish writes its logs."""
from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pytest

from ingest.config import settings
from ingest.landing import REJECTED, Landing
from ingest.load import ensure_raw_schema
from pipeline import changes


def publish(entries, fingerprint: str | None) -> None:
    """A published warehouse holding ``entries`` in raw.load_log, built by ``fingerprint``."""
    path = settings().warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        ensure_raw_schema(con)
        con.execute("delete from raw.load_log")
        for e in entries:
            con.execute("""insert into raw.load_log (source, raw_table, landing_file, sha256,
                               release_date, rows_loaded, run_id, loaded_at)
                           values (?, 'raw.frontex_detections', ?, ?, ?, 1, 'r1', now())""",
                        [e.source, e.path, e.sha256, e.release])
        con.execute("create schema if not exists meta")
        con.execute("""create table if not exists meta.publish_log (run_id varchar,
                           published_at timestamptz, code_fingerprint varchar)""")
        con.execute("insert into meta.publish_log values ('r1', ?, ?)",
                    [datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc), fingerprint])


@pytest.fixture
def landing(wh_env):
    landing = Landing(settings().landing_dir)
    entry, _ = landing.land("frontex", "file:///snapshot/frontex/ibc.xlsx", b"release one",
                            date(2025, 6, 3))
    return landing, entry


def test_no_published_warehouse_builds(landing):
    found = changes.pending()
    assert found.reasons == ["no published warehouse yet"]
    assert found.full_refresh == ["no published warehouse yet"], "a first build must be full"


def test_everything_published_with_this_code_is_nothing_new(landing):
    _, entry = landing
    publish([entry], changes.code_fingerprint())
    found = changes.pending()
    assert found.nothing_new and found.reasons == []
    assert found.last_run_id == "r1"
    assert found.since() == "the publish of run r1 (2026-11-01 09:30 UTC)"


def test_a_landed_file_not_in_the_warehouse_builds(landing):
    landing, first = landing
    publish([first], changes.code_fingerprint())
    second, _ = landing.land("frontex", "file:///snapshot/frontex/ibc2.xlsx", b"release two",
                             date(2025, 7, 3))
    found = changes.pending()
    [reason] = found.reasons
    assert reason == f"1 landed file(s) not in the warehouse yet: {second.path}"
    # Only new files, same code: what they feed is built, the rest kept (decision 76).
    assert found.full_refresh == [], found.full_refresh


def test_a_file_rejected_after_it_was_published_builds(landing):
    landing, entry = landing
    publish([entry], changes.code_fingerprint())
    landing.record([entry], REJECTED, reason="wrong counts", by="hand")
    found = changes.pending()
    [reason] = found.reasons
    assert reason == f"1 rejected file(s) still in the warehouse: {entry.path}"
    assert found.full_refresh == ["files leave the warehouse"], (
        "rows leaving the facts must rebuild every model, got " + repr(found.full_refresh))


def test_a_rejected_file_never_published_is_nothing_new(landing):
    landing, entry = landing
    publish([entry], changes.code_fingerprint())
    bad, _ = landing.land("frontex", "file:///snapshot/frontex/bad.xlsx", b"bad", date(2025, 6, 3))
    landing.record([bad], REJECTED, reason="audit failed")
    assert changes.pending().nothing_new


@pytest.mark.parametrize("fingerprint, reason", [
    ("0123456789abcdef", "the code that builds the warehouse changed since it was published"),
    (None, "no code fingerprint recorded for the published warehouse"),
])
def test_other_code_builds(landing, fingerprint, reason):
    _, entry = landing
    publish([entry], fingerprint)
    found = changes.pending()
    assert found.reasons == [reason]
    assert found.full_refresh == [reason], "other code must rebuild every model"


def test_every_raw_table_is_a_dbt_source_a_run_can_select():
    """A run builds what its files feed by selecting their dbt sources (pipeline.dbt); a raw
    table no dbt source declares would make every run build everything."""
    from ingest import catalog
    from pipeline import dbt

    for spec in catalog.SOURCES:
        selectors = dbt.source_selectors({spec.raw_table})
        assert selectors is not None and len(selectors) == 1 and \
            selectors[0].startswith("source:") and selectors[0].endswith("+"), (
                f"{spec.raw_table} (source {spec.name}) is not a dbt source: {selectors}")
    assert dbt.source_selectors({"raw.frontex_detections"}) == ["source:frontex.detections+"]
    assert dbt.source_selectors({"raw.frontex_detections", "raw.not_a_source"}) is None
