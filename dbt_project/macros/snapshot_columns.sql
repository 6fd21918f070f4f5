{#- A snapshot is carried from build to build (dbt never rebuilds it, --full-refresh included),
    so renaming one of its columns needs the table renamed in place, history kept: a pre-hook
    of the snapshot. Nothing happens when the table or the old column does not exist. -#}
{% macro rename_snapshot_column(old_name, new_name) %}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from duckdb_columns()
                                    where database_name = current_database()
                                      and schema_name = '" ~ this.schema ~ "'
                                      and table_name = '" ~ this.identifier ~ "'
                                      and column_name = '" ~ old_name ~ "'") -%}
        {%- if found.rows[0][0] > 0 -%}
            alter table {{ this }} rename column {{ adapter.quote(old_name) }} to {{ adapter.quote(new_name) }}
        {%- else -%}
            select 1
        {%- endif -%}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}
