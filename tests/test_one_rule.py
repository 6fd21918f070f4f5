"""Each rule once (issue 19, item 2).

"The current Frontex release" lives in one model, marts.fct_border_crossings_current; "the EU
total" (EU27_2020, else EU28, else EU27_2007) in one macro, dbt_project/macros/eu_total.sql,
applied once as fct_returns.is_eu_total. Everything else reads them: the dbt models, the quality
report (pipeline/report.py), make run's summary (pipeline/summary.py) and the BI examples of the
README and docs/bi.md. The first tests grep those files and fail naming any that filters the
newest release by hand or spells the EU aggregates itself; the others check, on the built
warehouse (session fixture ``built_db``), that the readers agree with each other and that the
published figures did not move."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO_ROOT

CURRENT_RELEASE_MODEL = "dbt_project/models/marts/crossings/fct_border_crossings_current.sql"
EU_TOTAL_MACRO = "dbt_project/macros/eu_total.sql"

HAND_FILTERS = {
    "newest Frontex release picked by hand (read marts.fct_border_crossings_current)": (
        re.compile(r"max\s*\(\s*(\w+\.)?release_date\s*\)", re.I),
        re.compile(r"arg_max\s*\([^()]*,\s*(\w+\.)?release_date\s*\)", re.I),
        re.compile(r"order\s+by\s+(\w+\.)?release_date\s+desc\s+limit\s+1\b", re.I),
    ),
    "EU aggregate named in code (filter is_eu_total; the rule is in macros/eu_total.sql)": (
        re.compile(r"""['"]EU(27_2020|28|27_2007)['"]"""),
    ),
}
"""What a hand-written rule looks like: the newest release picked with max(release_date) (or
its arg_max / order-by spellings), and an EU aggregate code as a SQL or Python string literal
(`geo in ('EU27_2020', 'EU28')`, `geo <> 'EU27_2020'`). Prose and example output name the
aggregates without quotes and are not matched."""

ALLOWED = {CURRENT_RELEASE_MODEL, EU_TOTAL_MACRO}
"""The one place of each rule."""


def scanned_files() -> list[Path]:
    files = [*sorted((REPO_ROOT / "dbt_project" / "models").rglob("*.sql")),
             *sorted((REPO_ROOT / "dbt_project" / "macros").glob("*.sql")),
             *sorted((REPO_ROOT / "pipeline").glob("*.py")),
             REPO_ROOT / "README.md", REPO_ROOT / "docs" / "bi.md"]
    return [f for f in files if f.relative_to(REPO_ROOT).as_posix() not in ALLOWED]


def hand_filters(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for rule, patterns in HAND_FILTERS.items():
            for pattern in patterns:
                for match in pattern.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    name = (path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT)
                            else path)
                    found.append(f"{name}:{line}: {rule}: {match.group(0)!r}")
    return found


def test_no_file_filters_the_newest_release_or_names_the_eu_aggregates_by_hand():
    files = scanned_files()
    assert len(files) > 40, [str(f) for f in files]  # the globs found the models
    found = hand_filters(files)
    assert not found, "rules written outside their one place:\n" + "\n".join(found)


@pytest.mark.parametrize("text", [
    "where release_date = (select max(release_date) from {{ ref('fct_border_crossings') }})",
    "select max( f.release_date ) as release_date from facts",
    "select arg_max(route, release_date) from marts.fct_border_crossings",
    "from marts.fct_border_crossings order by release_date desc limit 1",
    "where geo in ('EU27_2020', 'EU28') and citizen = 'TOTAL'",
    "arg_min(geo, geo <> 'EU27_2020')",
    'geo == "EU27_2007"',
])
def test_the_grep_sees_each_spelling_it_was_written_for(tmp_path, text):
    """Each spelling found before issue 19 (in 8 models, report.py, run.py, the README) is
    caught, with its file and line."""
    probe = tmp_path / "probe.sql"
    probe.write_text(f"select 1\n{text}\n", encoding="utf-8")
    found = hand_filters([probe])
    assert found and all(f.startswith(f"{probe}:2: ") for f in found), found


def test_the_one_places_hold_their_rule():
    model = (REPO_ROOT / CURRENT_RELEASE_MODEL).read_text(encoding="utf-8")
    assert re.search(r"max\s*\(\s*release_date\s*\)", model)
    macro = (REPO_ROOT / EU_TOTAL_MACRO).read_text(encoding="utf-8")
    assert "['EU27_2020', 'EU28', 'EU27_2007']" in macro
    fact = (REPO_ROOT / "dbt_project/models/marts/returns/fct_returns.sql").read_text()
    assert "is_eu_total(" in fact


@pytest.fixture(scope="module")
def con(built_db):
    with duckdb.connect(str(built_db), read_only=True) as connection:
        yield connection


def test_published_figures_unchanged(con):
    assert con.execute("""select release_date::varchar, count(*), sum(detections)
                          from marts.fct_border_crossings_current group by 1""").fetchall() \
        == [("2025-06-03", 173_460, 4_966_869)]
    assert con.execute("""select geo, ordered_to_leave, returned from marts.rpt_return_rates
                          where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'
                            and period = '2015'""").fetchall() == [("EU28", 533_395, 227_975)]


def test_readmission_fact_and_report_agree_on_each_country_year(con):
    """The same country-year's EU-total returns in the readmission fact, the returns mart and the
    report's chart (the dbt test assert_readmission_agrees_with_the_report says the same inside
    the build; this one also makes sure the comparison is not empty)."""
    compared = con.execute("""
        select count(*) from marts.fct_readmission_cooperation c
        join marts.rpt_return_rates r
          on r.citizen_country_code = c.country_code and r.period = c.year::varchar
         and r.period_grain = 'year' and r.is_eu_total
        where c.returns_geo = r.geo and c.orders_to_leave = r.ordered_to_leave
          and c.returned is not distinct from r.returned
          and c.return_rate is not distinct from r.return_rate""").fetchone()[0]
    assert compared > 500
    chart = con.execute("""
        select q.citizen, q.period, q.geo, q.ordered_to_leave, q.returned, q.return_rate_pct,
               c.returns_geo, c.orders_to_leave, c.returned, 100 * c.return_rate
        from quality.rpt_return_rates_top_citizenships q
        join marts.dim_country d on d.eurostat_code = q.citizen
        left join marts.fct_readmission_cooperation c
          on c.country_code = d.country_code and c.year = q.period::integer""").fetchall()
    assert len(chart) == 12
    for citizen, period, *report, geo, ordered, returned, rate in chart:
        assert (report[0], report[1], report[2]) == (geo, ordered, returned), (citizen, period)
        assert round(report[3], 2) == round(rate, 2), (citizen, period)
    [(profile_rate, fact_rate)] = con.execute("""
        select p.return_rate, c.return_rate from marts.rpt_third_country_profile p
        join marts.fct_readmission_cooperation c
          on c.country_code = p.country_code and c.year = p.returns_year
        where p.country_code = 'AL'""").fetchall()
    assert profile_rate == fact_rate


def test_one_eu_aggregate_per_period_and_citizenship(con):
    assert con.execute("""select count(*) from (
                              select period, citizen from marts.fct_returns where is_eu_total
                              group by all having count(distinct geo) > 1)""").fetchone()[0] == 0
    # The recorded extracts publish EU28 and EU27_2007 (citizenship TOTAL, 2010-2016) and EU28
    # alone per citizenship: EU28 is the EU total of every period and citizenship.
    assert con.execute("select distinct geo from marts.fct_returns where is_eu_total"
                       ).fetchall() == [("EU28",)]


def test_summary_reads_the_report_models(built_db):
    from pipeline.summary import summary

    text = summary(built_db)
    assert re.search(r"^Frontex release 2025-06-03, Jan 2009 - Apr 2025:\n  rows +173,460 rows\n"
                     r"  detections, all routes and months +4,966,869 detections$", text,
                     re.M), text
    assert "\nDetections by route, 2024 (latest complete year):\n" in text
    assert re.search(r"^  Eastern Mediterranean Route +69,954 detections$", text, re.M)
    assert re.search(r"^  2015 EU28 +42\.7 %  returned 227,975 of 533,395 ordered to leave$", text,
                     re.M)
    assert re.search(r"^  Return rate, 2016 +50\.1 % \(was 42\.7 % in 2015\)$", text, re.M)


def test_a_second_release_is_not_added_to_current_figures(built_db, tmp_path):
    """Load a second, newer release (every count doubled) beside the first: the current view and
    so every reader holds the newer one alone; the whole fact adds both (the hand filter that
    used to prevent that is gone from every reader)."""
    copy = tmp_path / "migration.duckdb"  # the same file name: views name their catalog
    shutil.copy(built_db, copy)
    with duckdb.connect(str(copy)) as c:
        c.execute("""insert into marts.fct_border_crossings
                     select * replace (date '2025-07-03' as release_date,
                                       2 * detections as detections)
                     from marts.fct_border_crossings""")
        assert c.execute("""select release_date::varchar, sum(detections)
                            from marts.fct_border_crossings_current group by 1""").fetchall() \
            == [("2025-07-03", 2 * 4_966_869)]
        assert c.execute("select sum(detections) from marts.fct_border_crossings").fetchone()[0] \
            == 3 * 4_966_869
