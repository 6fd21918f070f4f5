"""An archive backfilled: Frontex workbooks of two older layouts and two releases, landed newer
first, beside the recorded release, go through the real transform steps (load, GX audits,
dbt build, audits, publish) and every release is published, with its revisions.

The archive workbooks are the ones tests/sources/frontex/test_frontex_layouts.py writes (never copies of public
files); the figures were added up by hand there.
"""
from __future__ import annotations

from datetime import date

import duckdb
import pytest

from ingest.landing import Landing
from pipeline import files, steps
from tests.sources.frontex import test_frontex_layouts as layouts
from tests.conftest import OTHER_SOURCE_DAGS, point_installation_at


@pytest.fixture(scope="module")
def archive_published(tmp_path_factory, recorded_workbook, snapshot_dir):
    root = tmp_path_factory.mktemp("archive")
    with pytest.MonkeyPatch.context() as mp:
        point_installation_at(mp, root, snapshot_dir)
        # The archive's 2020 release (test_frontex_layouts.archive_2020) is dated a year after
        # its newest month (April 2019): beyond the 150 days a real release allows.
        mp.setenv("WH_FRONTEX_RELEASE_LAG_DAYS", "400")
        landing = Landing(root / "landing")
        # Arrival order: the recorded 2025 release, then the archive, newer first.
        for name, content, release in (
                ("ibc.xlsx", recorded_workbook, date(2025, 6, 3)),
                ("ibc_2020.xlsx", layouts.archive_2020(), date(2020, 4, 5)),
                ("ibc_2019.xlsx", layouts.archive_2019(), date(2019, 4, 5))):
            landing.land("frontex", f"file:///archive/{name}", content, release)
        for dag_id in OTHER_SOURCE_DAGS:
            steps.land("archive", dag_id)
        for step in (steps.prepare, steps.load, steps.audit_raw, steps.dbt_build,
                     steps.audit_marts, steps.publish):
            step("archive")
        yield {"warehouse": root / "wh" / "migration.duckdb", "landing": landing,
               "states": files.states(landing, root / "wh" / "migration.duckdb")}


def query(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_every_release_of_the_archive_is_published_by_release_date(archive_published):
    got = query(archive_published["warehouse"], """
        select release_date::varchar, count(*), sum(detections), count(distinct sha256)
        from marts.fct_border_crossings group by 1 order by 1""")
    assert got == [("2019-04-05", 17, 2_545, 1), ("2020-04-05", 19, 4_293, 1),
                   ("2025-06-03", 173_460, 4_966_869, 1)]
    # Routes named the old way are the canonical routes in the fact, as published in raw.
    assert query(archive_published["warehouse"], """
        select route, sum(detections) from marts.fct_border_crossings
        where release_date = '2019-04-05' group by 1 order by 1""") == [
        ("Black Sea Route", 7), ("Central Mediterranean Route", 467),
        ("Circular Route from Albania to Greece", 1_197), ("Eastern Borders Route", 34),
        ("Western Balkan Route", 840)]
    assert query(archive_published["warehouse"], """
        select distinct route_as_published from raw.frontex_detections
        where route = 'Eastern Borders Route' and release_date = '2019-04-05'""") == [
        ("Eastern Land Borders",)]


def test_the_archive_files_are_published_and_none_superseded(archive_published):
    states = {s.entry.path.rsplit("_", 1)[0]: s.state for s in archive_published["states"]
              if s.entry.source == "frontex"}
    assert sorted(states.values()) == ["published"] * 3


def test_the_archive_revisions_are_in_the_revision_mart(archive_published):
    """The 2020 release revises two cells of the 2019 one (hand-read from the fixtures:
    Central Mediterranean / Sea / Tunisia, March 2019: 210 -> 214; Western Balkans / Land /
    Syria, January 2019: 300 -> 310)."""
    got = query(archive_published["warehouse"], """
        select route, nationality, strftime(month, '%Y-%m'), previous_release_date::varchar,
               release_date::varchar, previous_detections, detections, revision,
               first_detections, is_correction
        from marts.rpt_border_crossings_revisions
        where release_date = '2020-04-05' and change_type = 'revised'
        order by route""")
    assert got == [
        ("Central Mediterranean Route", "Tunisia", "2019-03", "2019-04-05", "2020-04-05",
         210, 214, 4, 210, False),
        ("Western Balkan Route", "Syria", "2019-01", "2019-04-05", "2020-04-05",
         300, 310, 10, 300, False)]


def test_as_of_a_date_gives_the_release_that_stood_then(archive_published):
    as_of = """select release_date::varchar, sum(detections)
               from marts.border_crossings_as_of(?::date) group by 1"""
    db = archive_published["warehouse"]
    for day, expected in (("2019-01-01", []),  # before the first release of the archive
                          ("2019-12-31", [("2019-04-05", 2_545)]),
                          ("2020-04-05", [("2020-04-05", 4_293)]),  # on its release date
                          ("2025-06-30", [("2025-06-03", 4_966_869)])):
        got = query(db, as_of, [day])
        assert got == expected, (
            f"as of {day} the warehouse should show "
            + (f"release {expected[0][0]} ({expected[0][1]:,} detections)" if expected
               else "nothing")
            + f", got {', '.join(f'release {r} ({n:,} detections)' for r, n in got) or 'nothing'}")
