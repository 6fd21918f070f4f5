"""The summary ``make run`` prints (pipeline.summary) and the modules of ``make run``, without
Airflow or dbt: the printer shows whatever label / value rows quality.rpt_run_summary holds,
and names no source (the figures and headings come from the dbt model; tests/test_one_rule.py
checks them on the built warehouse)."""
from __future__ import annotations

import re

import duckdb
import pytest

from pipeline.summary import summary
from tests.conftest import REPO_ROOT

MAKE_RUN_MODULES = ("pipeline/run.py", "pipeline/airflow_setup.py", "pipeline/summary.py",
                    "pipeline/landed_files_cli.py")
SOURCE_WORDS = re.compile(r"frontex|eurostat|cohesion|fts|registr(y|ies)", re.I)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "migration.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("""create schema quality;
            create table quality.rpt_run_summary (
                section_position integer, section varchar, position integer, label varchar,
                value double, unit varchar, previous_value double, previous_period varchar,
                change_pct double, note varchar)""")
    return path


def fill(path, rows):
    with duckdb.connect(str(path)) as con:
        con.executemany("insert into quality.rpt_run_summary values (?,?,?,?,?,?,?,?,?,?)", rows)


def test_each_section_once_its_rows_aligned_in_their_units(warehouse):
    fill(warehouse, [
        (2, "Second", 1, "a rate", 42.7, "percent", 40.0, "2015", None, "of 5 orders"),
        (1, "First, as of today", 2, "a much longer label", 5.0, "rows", None, None, None, None),
        (1, "First, as of today", 1, "amount", 806_300_000.0, "EUR", 700_000_000.0, None, 15.2,
         None),
        (2, "Second", 2, "partial", None, None, None, None, None, "PARTIAL: first page only"),
        (2, "Second", 3, "a gap", None, "persons", None, None, None, None),
    ])
    assert summary(warehouse).splitlines() == [
        "First, as of today:",
        "  amount               EUR 806.3m (was EUR 700m, +15.2%)",
        "  a much longer label      5 rows",
        "Second:",
        "  a rate    42.7 % (was 40.0 % in 2015)  of 5 orders",
        "  partial           PARTIAL: first page only",
        "  a gap    no data",
    ]


def test_an_empty_model_and_an_older_warehouse_say_so(warehouse, tmp_path):
    assert summary(warehouse) == "The warehouse holds no figures yet"
    older = tmp_path / "older" / "migration.duckdb"
    older.parent.mkdir()
    duckdb.connect(str(older)).close()
    assert summary(older) == ("This warehouse was published by an older version (no "
                              "quality.rpt_run_summary); the next run rebuilds it")


@pytest.mark.parametrize("module", MAKE_RUN_MODULES)
def test_the_modules_of_make_run_name_no_source(module):
    """What knows a source lives in its own folder (and in dbt): the CLI, the runner, the
    Airflow setup, the summary and the landed-file commands read the catalog and the models."""
    text = (REPO_ROOT / module).read_text(encoding="utf-8")
    found = [f"{module}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
             for m in SOURCE_WORDS.finditer(text)]
    assert not found, found
