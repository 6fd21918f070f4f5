"""The funding marts on the recorded Cohesion Open Data sample and the commitments registry,
built once by the real loader and a real ``dbt build``."""
from __future__ import annotations

import csv
import shutil
from collections import defaultdict

import duckdb
import pytest

from pipeline import dbt


@pytest.fixture(scope="module")
def con(built_db):
    with duckdb.connect(str(built_db), read_only=True) as connection:
        yield connection


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def test_cohesion_amounts_by_member_state_within_one_dimension_type(con, snapshot_dir):
    """The sample's BMVI and ISF amounts, summed with the csv module per fund x member state x
    dimension type, then one dimension type per programme (Intervention Field where present)."""
    sums: dict[tuple, float] = defaultdict(float)
    types: dict[tuple, set] = defaultdict(set)
    with (snapshot_dir / "cohesion" / "hgyj-gyin_sample.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["fund"] in ("AMIF", "BMVI", "ISF"):
                sums[(row["fund"], row["ms"], row["cci"], row["dimension_type"])] += float(
                    row["eu_amount"])
                types[(row["fund"], row["ms"], row["cci"])].add(row["dimension_type"])
    expected = {}
    for (fund, ms, cci), kinds in types.items():
        kind = "Intervention Field" if "Intervention Field" in kinds else sorted(kinds)[0]
        expected[(fund, ms)] = (round(sums[(fund, ms, cci, kind)], 2), kind)
    got = {(f, c): (round(a, 2), d) for f, c, a, d in rows(con, """
        select fund_code, country_code, amount_eur, dimension_type
        from marts.fct_funding_disbursements where source = 'cohesion_open_data:hgyj-gyin'""")}
    assert got == expected
    assert got[("BMVI", "ES")] == (324_663_469.0, "Intervention Field")
    assert got[("ISF", "PL")] == (2_633_310.55, "Type of Action ISF")  # no Intervention Field
    assert len(got) == 7  # BMVI: EE ES LT PL; ISF: AT EE PL


def test_partial_sample_is_flagged_on_every_fact_row_it_feeds(con):
    assert rows(con, """select distinct is_complete_snapshot, completeness_note, as_of_date
                        from marts.fct_funding_disbursements
                        where source like 'cohesion_open_data:%'""") == [(
        False, "hgyj-gyin_sample.csv holds exactly 1,000 rows, the API's default page: a first "
               "page only, not the whole dataset", __import__("datetime").date(2023, 10, 16))]


def test_every_registry_amount_is_in_the_fact(con, snapshot_dir):
    with (snapshot_dir / "registries" / "funding_commitments.csv").open(encoding="utf-8") as fh:
        registry = [r for r in csv.DictReader(fh) if r["amount_eur"]]
    assert len(registry) == 76
    fact = rows(con, """select programme_or_action_title, stage, amount_eur
                        from marts.fct_funding_disbursements
                        where source = 'registry:funding_commitments'""")
    by_action = rows(con, """select s.action_title, s.stage, f.amount_eur
                             from staging.stg_registries__funding_commitments s
                             join marts.fct_funding_disbursements f
                               on f.programme_or_action_key = s.action_key
                              and f.stage = s.stage and f.as_of_date = s.as_of_date
                              and f.source = 'registry:funding_commitments'
                             where s.amount_eur is not null""")
    assert len(by_action) == 76  # every row with an amount reaches a fact row ...
    assert all(amount is not None for *_, amount in by_action)
    assert len(fact) == 71  # ... restatements of one action, stage and date collapse


def test_totals_and_parts_are_not_summed_twice(con):
    morocco = rows(con, """select stage, amount_eur, is_component, counts_in_totals
                           from marts.fct_funding_disbursements
                           where programme_or_action_key = 'morocco_budget_support'
                           order by stage_order""")
    assert morocco == [("allocated", 152_000_000.0, False, True),
                       ("paid", 79_600_000.0, False, True)]
    talent = rows(con, """select programme_or_action_key, amount_eur, counts_in_totals
                          from marts.fct_funding_disbursements
                          where programme_or_action_key like 'talent_partnerships%'
                          order by amount_eur desc""")
    assert talent[0] == ("talent_partnerships", 46_000_000.0, True)
    assert sum(a for k, a, counted in talent if not counted) == 46_000_000.0
    assert all(not counted for k, a, counted in talent[1:])


def test_absorption_and_stage_progression(con):
    assert rows(con, """select programme_or_action_key, country_code, allocated_eur, paid_eur,
                               absorption_rate
                        from marts.rpt_funding_absorption""") == [
        ("morocco_budget_support", "MA", 152_000_000.0, 79_600_000.0, 0.5237)]
    tunisia = rows(con, """select stage, amount_eur, previous_stage, share_of_commitment
                           from marts.rpt_funding_stage_progression
                           where programme_or_action_key = 'tunisia_2023_support'
                           order by stage_order""")
    assert tunisia == [("earmarked", 105_000_000.0, None, 1.0),
                       ("contracted", 53_000_000.0, "earmarked", 0.5048)]


def test_partner_countries_where_the_row_names_one(con):
    got = dict(rows(con, """select country_label, country_code from marts.fct_funding_disbursements
                            where source = 'registry:funding_commitments'
                              and country_label in ('The Gambia', 'Türkiye; ICMPD',
                                                    'Lebanon (incl. Syrian refugees and host communities)',
                                                    'Tunisia, Morocco, Egypt')"""))
    assert got == {"The Gambia": "GM", "Türkiye; ICMPD": "TR",
                   "Lebanon (incl. Syrian refugees and host communities)": "LB",
                   "Tunisia, Morocco, Egypt": None}


def test_an_actions_seed_row_that_no_longer_matches_fails_dbt_build_by_name(built_db, tmp_path):
    copy = tmp_path / "migration.duckdb"
    shutil.copyfile(built_db, copy)
    with duckdb.connect(str(copy)) as c:
        c.execute("""update raw.funding_commitments
                     set action_title = 'Budget support to Morocco – first and second tranche'
                     where action_title = 'Budget support to Morocco – tranches paid so far'""")
    with pytest.raises(dbt.DbtBuildFailed) as caught:
        dbt.build(copy, tmp_path)
    assert "assert_funding_registry_actions_match_the_registry" in str(caught.value)
