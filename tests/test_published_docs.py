"""What a BI reader finds in the warehouse, read from DuckDB itself (not from dbt's YAML): every
table and every column of every published schema carries a description (a DuckDB comment,
written by dbt's persist_docs, the on-run-end hooks and publish); primary and foreign keys are
declared where BI tools look for them (duckdb_constraints()); integer counts are BIGINT, never
HUGEINT (a DuckDB sum() of BIGINT is HUGEINT, which pandas reads as float and polars as
Decimal(38,0)); country keys have one name in every schema; codes have labels beside them; and
a published file holds no dbt audit internals.

The warehouse is the session fixture ``published_db``: every recorded source landed, loaded and
built by the real steps and ``dbt build`` (``built_db``), then published with its quality
history as a run publishes it."""
from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from pipeline import warehouse

DOCUMENTED_SCHEMAS = ("marts", "reference")
"""Schemas where every table and every column must carry a description."""

PUBLISHED_SCHEMAS = ("marts", "reference", "quality", "snapshots", "staging", "intermediate")
"""Schemas a BI reader can query in the published file (those present are checked)."""

COUNTRY_DIMENSION = ("marts", "dim_country")
KEY_SUFFIX = "country_code"
"""dim_country's key, and the ending of every column that joins it: `country_code` itself, or
role-prefixed (`nationality_country_code`, `geo_country_code`, `citizen_country_code`)."""

EUROSTAT_CODE_COLUMNS = frozenset({"geo", "citizen", "aggregate", "returns_geo"})
"""Columns that keep Eurostat's own code (EL, UK, EU27_2020) as published: they join
dim_country on `eurostat_code`, not on the key, and sit beside a `*_country_code` key."""

SYSTEM_SCHEMAS = ("information_schema", "main", "pg_catalog")
BI_SCHEMAS = ("marts", "reference", "quality", "snapshots", "meta")
"""The schemas BI readers read (staging, intermediate and raw are internal: they keep the
publishers' own column names, like Eurostat's geo or Cohesion's ms)."""

CODE_SCHEME_COLUMNS = {("marts", "dim_country", "iso2"), ("marts", "dim_country", "iso3"),
                       ("reference", "country_codes", "iso2"), ("reference", "country_codes", "iso3"),
                       ("reference", "eurostat_aggregates", "code")}
"""Columns of the code tables that hold another scheme's code for a country (its ISO codes;
Eurostat's aggregate codes in the seed of aggregates), not a key joining dim_country by role."""

OTHER_KEY_NAMES = re.compile(r"(^|_)(iso_?[23]|iso_?code|country_(key|id|iso\w*)|ctry(_code)?|cntry\w*)$")
"""Spellings of a country key other than `country_code` (country_iso2, partner_iso2,
country_key, ctry_code ...): none may appear in any published schema outside the code tables."""

PRIMARY_KEYS = {
    "dim_country": ["country_code"],
    "dim_route": ["route_key"],
    "dim_fund": ["fund_code"],
    "dim_period": ["period", "period_grain"],
    "dim_country_eu_membership": ["country_code", "year"],
    "fct_returns": ["period", "geo", "citizen", "measure"],
    "fct_funding_disbursements": ["fund_code", "programme_or_action_key", "country_label", "stage",
                                  "as_of_date", "source"],
    "fct_readmission_cooperation": ["country_code", "year"],
    "rpt_return_rates": ["period", "geo", "citizen"],
    "rpt_third_country_profile": ["country_code"],
    "rpt_detections_ytd_by_route": ["release_date", "route"],
    "rpt_returns_aggregate_check": ["period", "period_grain", "aggregate", "citizen", "measure"],
    "rpt_funding_absorption": ["fund_code", "programme_or_action_key", "country_label"],
    "rpt_funding_stage_progression": ["fund_code", "programme_or_action_key", "country_label",
                                      "stage"],
    "rpt_border_crossings_vintages": ["release_date", "correction_number"],
    "rpt_eurostat_vintages": ["dataset", "vintage_number"],
    "rpt_border_crossings_route_revisions": ["route", "month", "release_date", "correction_number"],
    "rpt_eurostat_revisions": ["dataset", "freq", "period", "geo", "citizen", "dimensions",
                               "vintage_number"],
}
"""The primary key of every marts table (the grain its YAML states and its data tests check)."""

WITHOUT_KEY_CONSTRAINTS = {
    "fct_border_crossings": "every release: DuckDB's key indexes made it 3x slower to build and "
                            "4-7x bigger (decision 80); read fct_border_crossings_current",
    "rpt_border_crossings_revisions": "every changed cell of every release: the same cost",
    "rpt_returns_reconciliation": "one row per transcribed figure, no key in the data",
}
"""Marts tables with no declared keys, and why (their grain is still tested by dbt)."""

DIMENSION_OF = {"country_code": ("dim_country", "country_code"),
                "route_key": ("dim_route", "route_key"),
                "fund_code": ("dim_fund", "fund_code")}
"""A column named (or ending in, for country_code) the key of a dimension joins it: in every
table with declared keys it has a foreign key to that dimension."""


@pytest.fixture(scope="module")
def con(published_db):
    with duckdb.connect(str(published_db), read_only=True) as connection:
        yield connection


def _relations(con, schemas):
    return con.execute(f"""
        select schema_name, table_name, comment from duckdb_tables()
        where schema_name in ({", ".join("?" for _ in schemas)})
        union all
        select schema_name, view_name, comment from duckdb_views()
        where not internal and schema_name in ({", ".join("?" for _ in schemas)})
        order by 1, 2""", [*schemas, *schemas]).fetchall()


def test_every_marts_and_reference_table_has_a_description(con):
    relations = _relations(con, DOCUMENTED_SCHEMAS)
    assert {s for s, _, _ in relations} == set(DOCUMENTED_SCHEMAS)
    undocumented = [f"{s}.{t}" for s, t, comment in relations if not (comment or "").strip()]
    assert not undocumented, f"tables without a description (comment): {undocumented}"


def test_every_marts_and_reference_column_has_a_description(con):
    columns = con.execute("""
        select schema_name || '.' || table_name || '.' || column_name, comment
        from duckdb_columns() where schema_name in ('marts', 'reference')
        order by schema_name, table_name, column_index""").fetchall()
    assert len(columns) > 300
    undocumented = [name for name, comment in columns if not (comment or "").strip()]
    assert not undocumented, f"columns without a description (comment): {undocumented}"


def test_every_published_relation_has_a_description(con):
    """Staging and intermediate views too: DuckDB has no comments on schemas, so each view says
    it is internal in its own comment; raw tables get their source's description."""
    schemas = (*PUBLISHED_SCHEMAS, "raw")
    undocumented = [f"{s}.{t}" for s, t, comment in _relations(con, schemas)
                    if not (comment or "").strip()]
    assert not undocumented, f"relations without a description (comment): {undocumented}"
    internal = [f"{s}.{t}" for s, t, comment in _relations(con, ("staging", "intermediate", "raw"))
                if not comment.startswith("Internal")]
    assert not internal, f"internal relations whose description does not say so: {internal}"


def test_every_column_of_every_published_schema_has_a_description(con):
    """marts, reference, quality, snapshots and meta, and the internal staging, intermediate and
    raw too: every column a reader of the file can list carries a comment."""
    rows = con.execute(f"""
        select schema_name, schema_name || '.' || table_name || '.' || column_name, comment
        from duckdb_columns()
        where database_name = current_database()
          and schema_name not in ({", ".join("?" for _ in SYSTEM_SCHEMAS)})
        order by schema_name, table_name, column_index""", list(SYSTEM_SCHEMAS)).fetchall()
    schemas = {schema for schema, _, _ in rows}
    assert {*BI_SCHEMAS, "staging", "intermediate", "raw"} <= schemas, schemas
    undocumented = [name for _, name, comment in rows if not (comment or "").strip()]
    assert not undocumented, (f"{len(undocumented)} columns without a description (comment): "
                              f"{undocumented[:40]}")


def _constraints(con, kind):
    return con.execute("""
        select table_name, constraint_column_names, referenced_table, referenced_column_names
        from duckdb_constraints()
        where database_name = current_database() and schema_name = 'marts'
          and constraint_type = ?""", [kind]).fetchall()


def test_primary_keys_are_declared(con):
    """What Superset, Metabase and JDBC tools read to find each table's key."""
    declared = {table: columns for table, columns, _, _ in _constraints(con, "PRIMARY KEY")}
    assert declared == PRIMARY_KEYS, (
        f"primary keys differ: missing {sorted(PRIMARY_KEYS.keys() - declared.keys())}, "
        f"not expected {sorted(declared.keys() - PRIMARY_KEYS.keys())}, other columns "
        f"{ {t: declared[t] for t in declared.keys() & PRIMARY_KEYS.keys() if declared[t] != PRIMARY_KEYS[t]} }")
    tables = {t for t, in con.execute("select table_name from duckdb_tables() "
                                      "where schema_name = 'marts'").fetchall()}
    unkeyed = sorted(tables - declared.keys() - WITHOUT_KEY_CONSTRAINTS.keys())
    assert not unkeyed, (f"marts tables without a primary key: {unkeyed} (declare it in the "
                         "model's contract, or list the table in WITHOUT_KEY_CONSTRAINTS with why)")


def test_foreign_keys_join_every_key_column_to_its_dimension(con):
    """Every column of a keyed marts table that holds a dimension's key (any `*country_code`,
    `route_key`, `fund_code`) has a foreign key to it: a BI tool infers the join."""
    declared = {(table, tuple(columns)): (ref, tuple(ref_columns))
                for table, columns, ref, ref_columns in _constraints(con, "FOREIGN KEY")}
    expected = {}
    for table, column in con.execute("""
            select table_name, column_name from duckdb_columns() join duckdb_tables()
            using (database_name, schema_name, table_name)
            where schema_name = 'marts' order by all""").fetchall():
        if table in WITHOUT_KEY_CONSTRAINTS:
            continue
        key = "country_code" if column.endswith("country_code") else column
        if key in DIMENSION_OF and DIMENSION_OF[key] != (table, column):
            ref, ref_column = DIMENSION_OF[key]
            expected[(table, (column,))] = (ref, (ref_column,))
    assert len(expected) >= 14, expected
    assert declared == expected, (
        f"foreign keys missing: {sorted(expected.keys() - declared.keys())}; not expected: "
        f"{sorted(declared.keys() - expected.keys())}")


def test_one_country_key_name_in_every_published_schema(con):
    """One name for a country key everywhere: a column of a BI schema whose every value is a
    dim_country key is named `country_code` or `<role>_country_code` (or keeps Eurostat's own
    code under Eurostat's name, or is a code table's other scheme); and no schema, internal
    ones included, has another spelling of a country key (country_iso2, country_key ...)."""
    codes, eurostat = _country_sets(con)
    columns = con.execute(f"""
        select schema_name, table_name, column_name, data_type from duckdb_columns()
        where database_name = current_database()
          and schema_name not in ({", ".join("?" for _ in SYSTEM_SCHEMAS)}, 'raw')
        order by all""", list(SYSTEM_SCHEMAS)).fetchall()
    misnamed, other_names, keyed = [], [], []
    for schema, table, column, data_type in columns:
        name = f"{schema}.{table}.{column}"
        if OTHER_KEY_NAMES.search(column) and (schema, table, column) not in CODE_SCHEME_COLUMNS:
            other_names.append(name)
        if schema not in BI_SCHEMAS or data_type != "VARCHAR" or column.endswith(KEY_SUFFIX):
            keyed.append(name) if column.endswith(KEY_SUFFIX) else None
            continue
        if (schema, table, column) in CODE_SCHEME_COLUMNS:
            continue
        values = {v for v, in con.execute(
            f'select distinct "{column}" from "{schema}"."{table}" where "{column}" is not null '
            "limit 2000").fetchall()}
        if values and values <= codes and not (column in EUROSTAT_CODE_COLUMNS
                                                and values <= eurostat):
            misnamed.append(f"{name} ({sorted(values)[:3]})")
    assert not other_names, (f"country keys named otherwise than *{KEY_SUFFIX}: "
                             f"{other_names}")
    assert not misnamed, (f"columns holding dim_country keys must be named *{KEY_SUFFIX}: "
                          f"{misnamed}")
    assert {"snapshots.snp_readmission_events.country_code",
            "reference.country_name_aliases.country_code",
            "staging.stg_registries__readmission_events.country_code"} <= set(keyed)


@pytest.mark.parametrize("column", ["country_iso2", "partner_iso2", "country_key", "ctry_code",
                                    "iso2", "country_id", "iso_code"])
def test_the_name_rule_sees_other_spellings(column):
    assert OTHER_KEY_NAMES.search(column), column


@pytest.mark.parametrize("column", ["country_code", "geo_country_code", "country_name",
                                    "returns_geo", "country_label", "nationality"])
def test_the_name_rule_passes_the_convention(column):
    assert not OTHER_KEY_NAMES.search(column), column


def test_no_hugeint_in_published_schemas(con):
    hugeints = con.execute(f"""
        select schema_name || '.' || table_name || '.' || column_name || ' ' || data_type
        from duckdb_columns()
        where schema_name in ({", ".join("?" for _ in PUBLISHED_SCHEMAS)})
          and (data_type like '%HUGEINT%')
        order by 1""", list(PUBLISHED_SCHEMAS)).fetchall()
    assert not hugeints, ("HUGEINT columns (cast sums of counts to bigint): "
                          f"{[h for h, in hugeints]}")


def test_counts_are_bigint(con):
    types = dict(con.execute("""
        select table_name || '.' || column_name, data_type from duckdb_columns()
        where schema_name = 'marts' and column_name in ('detections', 'detections_previous_year',
              'members_sum', 'difference', 'persons', 'ytd_detections')""").fetchall())
    for column in ("fct_readmission_cooperation.detections", "rpt_third_country_profile.detections",
                   "rpt_third_country_profile.detections_previous_year",
                   "rpt_border_crossings_vintages.detections", "rpt_returns_aggregate_check.members_sum",
                   "rpt_returns_aggregate_check.difference", "fct_returns.persons",
                   "fct_border_crossings.detections"):
        assert types[column] == "BIGINT", column


def _country_sets(con):
    codes = {c for c, in con.execute(f"select {KEY_SUFFIX} from marts.dim_country").fetchall()}
    eurostat = {c for c, in con.execute(
        "select eurostat_code from marts.dim_country where eurostat_code is not null").fetchall()}
    return codes, eurostat


def test_dim_country_key_is_country_code(con):
    key = con.execute("""select column_name from duckdb_columns()
                         where schema_name = 'marts' and table_name = 'dim_country'
                         order by column_index limit 1""").fetchone()[0]
    assert key == KEY_SUFFIX
    assert con.execute(f"""select count(*) = count(distinct {KEY_SUFFIX})
                           from marts.dim_country""").fetchone()[0]


def test_country_keys_follow_one_naming_scheme(con):
    """Derived from the data: a text column of a mart whose every value is a dim_country key
    joins dim_country, so its name must end with `country_code` (or be one of the Eurostat code
    columns, whose values are then all Eurostat codes); and a column named `*country_code` must
    hold only dim_country keys. No `*_country_key` or `*_iso2` column is left."""
    codes, eurostat = _country_sets(con)
    columns = con.execute("""
        select table_name, column_name from duckdb_columns()
        where schema_name = 'marts' and data_type = 'VARCHAR' and table_name != 'dim_country'
        order by table_name, column_index""").fetchall()
    offending, bad_values, checked = [], [], []
    for table, column in columns:
        values = {v for v, in con.execute(
            f'select distinct "{column}" from marts."{table}" where "{column}" is not null '
            "limit 2000").fetchall()}
        joins_dim_country = bool(values) and values <= codes
        name = f"marts.{table}.{column}"
        if column.endswith(KEY_SUFFIX):
            checked.append(name)
            if not values <= codes:
                bad_values.append(f"{name}: {sorted(values - codes)[:5]}")
        elif joins_dim_country and not (column in EUROSTAT_CODE_COLUMNS and values <= eurostat):
            offending.append(name)
        if column.endswith(("country_key", "_iso2")) or column == "iso2":
            offending.append(name)
    assert not offending, (f"columns joining dim_country must be named *{KEY_SUFFIX}: "
                           f"{sorted(set(offending))}")
    assert not bad_values, f"*{KEY_SUFFIX} columns with values not in dim_country: {bad_values}"
    # The scheme is in use where the facts meet dim_country.
    for name in ("marts.fct_border_crossings.nationality_country_code",
                 "marts.fct_returns.geo_country_code", "marts.fct_returns.citizen_country_code",
                 "marts.fct_readmission_cooperation.country_code",
                 "marts.fct_funding_disbursements.country_code"):
        assert name in checked, name


def test_codes_have_labels_beside_them(con):
    """Every fact carries the label of each code it holds."""
    expected = {
        "fct_returns": {"geo_label", "citizen_label"},
        "rpt_return_rates": {"geo_label", "citizen_label"},
        "fct_border_crossings": {"nationality", "nationality_country_name", "route"},
        "fct_readmission_cooperation": {"country_name", "returns_geo_label"},
        "fct_funding_disbursements": {"country_name", "country_label", "fund_name"},
        "rpt_returns_reconciliation": {"geo_label", "citizen_label"},
        "rpt_returns_aggregate_check": {"aggregate_label", "citizen_label"},
        "rpt_funding_absorption": {"country_name", "fund_name"},
        "rpt_funding_stage_progression": {"country_name", "fund_name"},
    }
    for table, labels in expected.items():
        columns = {c for c, in con.execute("""select column_name from duckdb_columns()
                                             where schema_name = 'marts' and table_name = ?""",
                                          [table]).fetchall()}
        assert labels <= columns, (table, labels - columns)
    assert con.execute("""select geo_label, citizen_label from marts.fct_returns
                          where geo = 'EL' and citizen = 'TOTAL' limit 1""").fetchone() == (
        "Greece", "Total")
    assert con.execute("""select count(*) from marts.fct_returns
                          where geo_label is null or citizen_label is null""").fetchone() == (0,)
    # Every code of the reports has its label (all are dim_country rows, aggregates included).
    unlabelled = con.execute("""
        select 'rpt_returns_reconciliation.' || r.geo from marts.rpt_returns_reconciliation r
        where r.geo_label is null or r.citizen_label is null
        union all
        select 'rpt_returns_aggregate_check.' || a.aggregate from marts.rpt_returns_aggregate_check a
        where a.aggregate_label is null or a.citizen_label is null
        union all
        select 'rpt_funding_stage_progression.' || f.fund_code from marts.rpt_funding_stage_progression f
        where f.fund_name is null""").fetchall()
    assert unlabelled == [], f"codes without their label: {sorted(set(unlabelled))[:10]}"
    assert con.execute("""select distinct geo_label from marts.rpt_returns_reconciliation
                          where geo = 'EL'""").fetchall() == [("Greece",)]
    assert con.execute("""select distinct aggregate_label from marts.rpt_returns_aggregate_check
                          where aggregate = 'EU28'""").fetchall() == [
        ("European Union - 28 countries (2013-2020)",)]


@pytest.mark.parametrize("country, year, member", [
    ("GB", 2016, True), ("GB", 2021, False), ("HR", 2012, False), ("HR", 2014, True),
    ("GB", 2020, False), ("HR", 2013, True),
])
def test_eu_membership_by_year(con, country, year, member):
    assert con.execute("""select is_eu_member from marts.dim_country_eu_membership
                          where country_code = ? and year = ?""", [country, year]).fetchone() == (
        member,)


def test_member_states_in_2016_include_the_united_kingdom(con):
    members = {c for c, in con.execute("""select country_code from marts.dim_country_eu_membership
                                          where year = 2016 and is_eu_member""").fetchall()}
    assert len(members) == 28 and "GB" in members
    today = {c for c, in con.execute(
        "select country_code from marts.dim_country where is_eu_member").fetchall()}
    assert len(today) == 27 and "GB" not in today
    assert con.execute("""select eu_member_from, eu_member_until from marts.dim_country
                          where country_code = 'GB'""").fetchone()[1].isoformat() == "2020-01-31"
    # In the facts: the reporting countries that were members at the time.
    assert con.execute("""select bool_and(geo_is_eu_member_in_period) from marts.fct_returns
                          where geo = 'UK' and period = '2016'""").fetchone() == (True,)


def test_published_file_has_no_dbt_audit_schema(built_db, tmp_path, monkeypatch):
    """dbt stores failing rows of tests in audit_dbt (for diagnosis of failed builds, which are
    never published); publishing drops the schema, and keeps the descriptions."""
    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(tmp_path / "wh" / "runs"))
    build = warehouse.build_db("docs")
    build.parent.mkdir(parents=True)
    shutil.copyfile(built_db, build)
    with duckdb.connect(str(build), read_only=True) as c:
        assert c.execute("""select count(*) from duckdb_tables()
                            where schema_name = 'audit_dbt'""").fetchone()[0] > 0
    published = warehouse.publish("docs")
    with duckdb.connect(str(published), read_only=True) as c:
        assert c.execute("""select count(*) from duckdb_schemas()
                            where schema_name = 'audit_dbt'""").fetchone() == (0,)
        assert c.execute("""select count(*) from duckdb_columns() where schema_name = 'marts'
                            and (comment is null or comment = '')""").fetchone() == (0,)


def test_a_sqlalchemy_client_lists_every_column_with_its_description(built_db, tmp_path,
                                                                      monkeypatch):
    """What a BI server sees: the published file (with the quality history copied in, as the
    transform publishes it) opened through SQLAlchemy and duckdb-engine with the recipe of
    docs/bi.md. Every table of marts and quality has its comment through the inspector; every
    column, listed through the same client (SQLAlchemy 2.1 cannot reflect columns through
    duckdb-engine: docs/bi.md), has its description."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    from pipeline import quality

    monkeypatch.setenv("WH_WAREHOUSE", str(tmp_path / "wh" / "migration.duckdb"))
    monkeypatch.setenv("WH_RUNS_DIR", str(tmp_path / "wh" / "runs"))
    monkeypatch.setenv("WH_QUALITY_DB", str(tmp_path / "quality_history.duckdb"))
    build = warehouse.build_db("bi")
    build.parent.mkdir(parents=True)
    shutil.copyfile(built_db, build)
    published = warehouse.publish("bi", before_checkpoint=quality.copy_into)
    engine = create_engine(f"duckdb:///{published}", poolclass=NullPool,
                           connect_args={"read_only": True})
    try:
        with engine.connect() as client:
            columns = client.execute(text("""
                select schema_name, table_name, column_name, comment from duckdb_columns()
                where schema_name in ('marts', 'quality') order by all""")).all()
        tables = {(s, t) for s, t, _, _ in columns}
        inspector = inspect(engine)
        table_comments = {(s, t): inspector.get_table_comment(t, schema=s)["text"]
                          for s, t in tables}
    finally:
        engine.dispose()
    assert len([c for c in columns if c[0] == "marts"]) > 300
    assert {"runs", "results", "coverage", "rpt_headline_indicators"} <= {t for s, t in tables
                                                                    if s == "quality"}
    assert [f"{s}.{t}.{c}" for s, t, c, comment in columns if not (comment or "").strip()] == []
    assert [f"{s}.{t}" for (s, t), comment in table_comments.items()
            if not (comment or "").strip()] == []


def test_columns_the_contracts_keep_non_null_are_not_null_in_the_file(con):
    """A contracted table's column that must hold a value is a NOT NULL constraint, not a
    not_null data test (docs/decisions.md 90: one dbt node less per column, and what a BI tool
    reads as a required column). Every such column of the models' YAML is NOT NULL in the
    published file, and no not_null test is left on a contracted table's column."""
    import yaml

    from tests.conftest import REPO_ROOT

    wanted, tested = set(), []
    for path in sorted((REPO_ROOT / "dbt_project" / "models" / "marts").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            contracted = ((model.get("config") or {}).get("contract") or {}).get("enforced")
            for column in model.get("columns") or []:
                kinds = {c.get("type") for c in column.get("constraints") or []}
                if "not_null" in kinds:
                    assert contracted, f"{path.name}: {model['name']}.{column['name']} has a " \
                        "not_null constraint but no enforced contract (dbt would ignore it)"
                    wanted.add((model["name"], column["name"]))
                if contracted and "not_null" in (column.get("data_tests") or []):
                    tested.append(f"{model['name']}.{column['name']}")
    assert len(wanted) >= 60, f"only {len(wanted)} NOT NULL columns declared in the YAML"
    assert not tested, f"not_null tests left on contracted columns: {tested}"
    declared = {(table, columns[0]) for table, columns, _, _ in _constraints(con, "NOT NULL")}
    missing = sorted(wanted - declared)
    assert not missing, f"columns the YAML constrains NOT NULL but the published file does not: {missing}"
