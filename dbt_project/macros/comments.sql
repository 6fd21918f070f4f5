{#- The raw tables (written by the loaders, not by dbt) get the descriptions of their sources
    (models/staging/*/_*__sources.yml) as DuckDB comments, table and columns, at the end of
    every dbt run (on-run-end, dbt_project.yml): persist_docs covers only what dbt builds, and
    DuckDB has no comments on schemas. Tables or columns a source declares that the database
    does not hold are passed over. Returns the statements, which the hook runs. -#}
{% macro comment_raw_tables() %}
    {%- set statements = [] -%}
    {%- if execute -%}
        {%- set existing = run_query("select table_name, column_name from duckdb_columns()
                                       where database_name = current_database()
                                         and schema_name = 'raw'") -%}
        {%- set columns_of = {} -%}
        {%- for row in existing -%}
            {%- do columns_of.setdefault(row[0], []).append(row[1]) -%}
        {%- endfor -%}
        {%- for source in graph.sources.values()
                if source.schema == 'raw' and source.identifier in columns_of -%}
            {%- set relation = 'raw.' ~ source.identifier -%}
            {%- set description = (source.description or source.source_description or '') | trim -%}
            {%- if description -%}
                {%- do statements.append("comment on table " ~ relation ~ " is "
                    ~ duckdb_escape_comment('Internal (raw, written by the loaders; read through staging): ' ~ description)) -%}
            {%- endif -%}
            {%- for name, column in source.columns.items()
                    if name in columns_of[source.identifier] and (column.description or '') | trim -%}
                {%- do statements.append("comment on column " ~ relation ~ "." ~ adapter.quote(name)
                    ~ " is " ~ duckdb_escape_comment(column.description | trim)) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ statements | join(";\n") if statements else "select 1" }}
{% endmacro %}
