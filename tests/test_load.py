"""The raw load refuses parsed rows that do not fit their raw table, naming the file, so the run
rejects that file and publishes the rest (review of issue 19: a new source whose parser forgot
``source_row`` failed every run with a bare NOT NULL error and no file named)."""
from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from ingest.landing import Landing
from ingest.load import LoadFailed, _insert, ensure_raw_schema

GOOD = {"route": ["Central Mediterranean Route"], "route_as_published": ["Central Mediterranean Route"],
        "border_type": ["Sea"], "nationality": ["Bangladesh"], "month": [date(2025, 4, 1)],
        "detections": [2391], "source_row": [7]}


@pytest.fixture
def setup(tmp_path):
    landing = Landing(tmp_path / "landing")
    entry, _ = landing.land("frontex", "file:///probe.xlsx", b"probe bytes", date(2025, 6, 3))
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    ensure_raw_schema(con)
    yield con, entry
    con.close()


@pytest.mark.parametrize("change, rule, named", [
    (lambda f: f.drop(columns=["source_row"]), "columns", "lack required column(s) ['source_row']"),
    (lambda f: f.rename(columns={"nationality": "nationalty"}), "columns",
     "['nationalty'] the raw table does not declare"),
    (lambda f: f.assign(detections=[None]), "constraints", "NOT NULL"),
])
def test_rows_that_do_not_fit_the_raw_table_fail_naming_the_file(setup, change, rule, named):
    con, entry = setup
    with pytest.raises(LoadFailed) as caught:
        _insert(con, "raw.frontex_detections", entry, entry.release, change(pd.DataFrame(GOOD)),
                "run1")
    message = str(caught.value)
    assert caught.value.entry == entry, "the run must know which file to reject"
    assert entry.path in message and f"raw.frontex_detections {rule}" in message, message
    assert named in message, message
    assert con.execute("select count(*) from raw.load_log").fetchone()[0] == 0, \
        "a refused file must leave no load_log row behind"
    done = _insert(con, "raw.frontex_detections", entry, entry.release, pd.DataFrame(GOOD), "run2")
    assert done.rows_loaded == 1, "the same file with fitting rows loads on the next run"
