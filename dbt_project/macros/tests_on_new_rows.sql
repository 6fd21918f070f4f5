{#- Generic tests that follow what is new (issue 21, decision 78).

    A build that is not a full refresh runs the code of the last publish (check_for_changes
    forces --full-refresh when the code changed, a file leaves the warehouse, or on --rebuild),
    and every row it did not load was tested by the build that published it, with this code.
    So the generic tests of the models named in the project variable `tests_on_new_rows`
    (model name: its lineage column) check, in such a build, only the rows of the files this
    build loaded: the raw.load_log rows of runs that never published (this run's; a failed
    run's build is thrown away). A key test stays exact: every row of a release comes from its
    current file, and a new file brings the whole release.

    dbt renders a test's `where` config once, when it parses the project (and partial parsing
    keeps it): a flag cannot go there. This is dbt's own `get_where_subquery`, which dbt calls
    for each generic test when it runs, with that filter added; the test's own `where` still
    applies. Singular tests are not filtered. A database with no meta.publish_log (never
    published: a build run by hand, a test's) is tested whole. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set lineage = var('tests_on_new_rows', {}).get(relation.identifier) -%}
    {%- set conditions = [] -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {#- A database that was never published (no meta.publish_log: a build run by hand, a test's
        database) has no row another build tested: every row is checked. -#}
    {%- set published = lineage and not flags.FULL_REFRESH and execute and adapter.get_relation(
            database=relation.database, schema='meta', identifier='publish_log') is not none -%}
    {%- if published -%}
        {%- do conditions.append(
            lineage ~ " in (" ~ files_loaded_by_this_build(relation.database) ~ ")") -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
