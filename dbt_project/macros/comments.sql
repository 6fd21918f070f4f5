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


{#- Columns of the internal schemas (staging and intermediate views, raw tables) that no YAML
    file describes get the description of the same column where the lineage has one: first the
    nearest upstream node (a source column of the raw table, a seed, a model), then the nearest
    downstream model (the mart that publishes it), so one column is described once and its
    copies say the same (docs/decisions.md 80). On-run-end, after persist_docs; a column found
    nowhere stays undescribed, and tests/test_published_docs.py names it. -#}
{% macro comment_internal_columns() %}
    {%- set statements = [] -%}
    {%- if execute -%}
        {%- set missing = run_query("select schema_name, table_name, column_name from duckdb_columns()
                                      where database_name = current_database()
                                        and schema_name in ('staging', 'intermediate', 'raw')
                                        and coalesce(comment, '') = ''") -%}
        {%- set siblings = {} -%}
        {%- set unresolved = [] -%}
        {%- set described_now = run_query("select schema_name, table_name, column_name, comment from duckdb_columns()
                                            where database_name = current_database()
                                              and schema_name in ('staging', 'intermediate', 'raw')
                                              and coalesce(comment, '') <> ''
                                            order by schema_name, table_name, column_index") -%}
        {%- for schema, table, column, comment in described_now -%}
            {%- do siblings.setdefault(schema ~ '|' ~ _family(table) ~ '|' ~ column, comment) -%}
        {%- endfor -%}
        {%- set by_relation = {} -%}
        {%- for node in graph.nodes.values() if node.resource_type in ('model', 'seed', 'snapshot') -%}
            {%- do by_relation.update({node.schema ~ '.' ~ (node.alias or node.name): node}) -%}
        {%- endfor -%}
        {%- for source in graph.sources.values() -%}
            {%- do by_relation.update({source.schema ~ '.' ~ source.identifier: source}) -%}
        {%- endfor -%}
        {%- set children = {} -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- for parent in node.depends_on.nodes -%}
                {%- do children.setdefault(parent, []).append(node.unique_id) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- for schema, table, column in missing -%}
            {%- set start = by_relation.get(schema ~ '.' ~ table) -%}
            {%- if start is not none -%}
                {%- set ns = namespace(found=none) -%}
                {%- for direction in ('up', 'down') if ns.found is none -%}
                    {%- set ns.frontier = [start.unique_id] -%}
                    {%- set ns.seen = [start.unique_id] -%}
                    {%- for depth in range(8) if ns.found is none and ns.frontier -%}
                        {%- set next = [] -%}
                        {%- for uid in ns.frontier -%}
                            {%- set node = graph.nodes.get(uid) or graph.sources.get(uid) -%}
                            {%- set linked = (node.depends_on.nodes if (direction == 'up' and node.depends_on is defined) else [])
                                             if direction == 'up' else children.get(uid, []) -%}
                            {%- for other in linked if other not in ns.seen -%}
                                {%- do ns.seen.append(other) -%}
                                {%- do next.append(other) -%}
                            {%- endfor -%}
                        {%- endfor -%}
                        {%- for uid in next | sort if ns.found is none -%}
                            {%- set node = graph.nodes.get(uid) or graph.sources.get(uid) -%}
                            {%- set described = (node.columns.get(column) or {}).get('description', '') if node else '' -%}
                            {%- if described | trim -%}
                                {%- set ns.found = described | trim -%}
                            {%- endif -%}
                        {%- endfor -%}
                        {%- set ns.frontier = next -%}
                    {%- endfor -%}
                {%- endfor -%}
                {%- if ns.found -%}
                    {%- do statements.append("comment on column " ~ schema ~ "." ~ adapter.quote(table) ~ "."
                        ~ adapter.quote(column) ~ " is " ~ duckdb_escape_comment(ns.found)) -%}
                    {%- do siblings.setdefault(schema ~ '|' ~ _family(table) ~ '|' ~ column, ns.found) -%}
                {%- else -%}
                    {%- do unresolved.append([schema, table, column]) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {#- Else the same column of a sibling relation of the same source in the same schema
            (stg_eurostat__returns for stg_eurostat__asylum_applicants; the other raw tables for
            a raw table): lineage columns (sha256, loaded_at ...) and Eurostat's period and
            flags mean the same in each. -#}
        {%- for schema, table, column in unresolved -%}
            {%- set described = siblings.get(schema ~ '|' ~ _family(table) ~ '|' ~ column) -%}
            {%- if described -%}
                {%- do statements.append("comment on column " ~ schema ~ "." ~ adapter.quote(table) ~ "."
                    ~ adapter.quote(column) ~ " is " ~ duckdb_escape_comment(described)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ statements | join(";\n") if statements else "select 1" }}
{% endmacro %}


{#- The source a relation belongs to: `stg_eurostat` of stg_eurostat__returns; a raw table's
    family is raw itself (all raw tables share their lineage columns). -#}
{% macro _family(table) %}{{ return(table.split('__')[0] if '__' in table else '') }}{% endmacro %}
