{#- The rows of a table as the last publish had them, for a model that compares them with the
    rows it builds now (issue 22, decision 88: quality.current_cell_changes, for the facts that
    replace their rows rather than keep vintages: funding). `keep_published_copy()` is a
    pre-hook of the table: the build database starts as a copy of the published warehouse, so
    before the table is rebuilt `this` holds the published rows, and they are copied to
    `quality.<table>__as_published`, once per build (a build retried after its worker died keeps
    the dead attempt's copy). A build that does not rebuild the table makes no copy (and a first
    build, with no table yet, none either). `published_copy_exists(name)` says at run
    time whether this build made one. `drop_published_copies()` (on-run-end, before the
    comments) removes every copy, so none reaches the published file or outlives its build. -#}
{% macro published_copy(identifier) -%}
    quality.{{ identifier }}__as_published
{%- endmacro %}


{% macro keep_published_copy() -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema,
                                            identifier=this.identifier) if execute else none -%}
    {%- if existing is not none -%}
        create schema if not exists quality;
        {#- Not "or replace": a build retried after its worker died (Airflow retries a transform
            task whose worker was lost; it starts from the run folder the dead attempt left)
            may find the fact already rebuilt with this build's rows and the dead attempt's copy
            still there (its on-run-end hook never ran). That copy holds the published rows. -#}
        create table if not exists {{ published_copy(this.identifier) }} as select * from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{% macro published_copy_exists(identifier) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query("select count(*) from duckdb_tables()
                               where database_name = current_database()
                                 and schema_name = 'quality'
                                 and table_name = '" ~ identifier ~ "__as_published'") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}


{% macro drop_published_copies() -%}
    {%- set statements = [] -%}
    {%- if execute -%}
        {%- set copies = run_query("select table_name from duckdb_tables()
                                    where database_name = current_database()
                                      and schema_name = 'quality'
                                      and suffix(table_name, '__as_published')") -%}
        {%- for row in copies -%}
            {%- do statements.append("drop table quality." ~ adapter.quote(row[0])) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ statements | join(";\n") if statements else "select 1" }}
{%- endmacro %}
