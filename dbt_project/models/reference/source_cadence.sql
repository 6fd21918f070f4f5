{#- One row per dbt source that declares its publisher's cadence (`config.meta.expected_cadence`
    in models/staging/<source>/_<source>__sources.yml): the thresholds of its `freshness`
    (warn_after: late, error_after: stale, in days) and its `loaded_at_field`, read from dbt's
    own graph. The sources' YAML is the one place they are written; `dbt source freshness` reads
    the same declarations, and pipeline.quality.freshness reads them from the YAML
    (tests/test_source_freshness.py: the three agree). -#}
{{ config(materialized='table', schema='reference') }}
{%- set rows = [] -%}
{%- if execute -%}
  {%- for node in graph.sources.values() | sort(attribute='unique_id') -%}
    {%- set meta = node.config.get('meta') or node.get('meta') or {} -%}
    {%- if meta.get('expected_cadence') -%}
      {%- set fresh = node.get('freshness') or {} -%}
      {%- set days = {} -%}
      {%- for when in ('warn_after', 'error_after') -%}
        {%- set after = fresh.get(when) or {} -%}
        {%- if after.get('count') is not none and after.get('period') != 'day' -%}
          {{ exceptions.raise_compiler_error(node.unique_id ~ ': freshness ' ~ when
             ~ ' must be counted in days (period: day), found ' ~ after.get('period')) }}
        {%- endif -%}
        {%- do days.update({when: after.get('count')}) -%}
      {%- endfor -%}
      {%- set row = [] -%}
      {%- for value in (node.source_name ~ '.' ~ node.name,
                        node.schema ~ '.' ~ (node.identifier or node.name),
                        meta.get('expected_cadence'), days['warn_after'], days['error_after'],
                        meta.get('age_basis'), node.get('loaded_at_field'),
                        meta.get('cadence_note')) -%}
        {%- do row.append('null' if value is none
                          else "'" ~ (value | string | replace("'", "''")) ~ "'") -%}
      {%- endfor -%}
      {%- do rows.append(row) -%}
    {%- endif -%}
  {%- endfor -%}
{%- endif -%}
{%- if rows -%}
select * from (values
  {%- for r in rows %}
  ({{ r[0] }}, {{ r[1] }}, {{ r[2] }}, {{ r[3] }}::integer, {{ r[4] }}::integer, {{ r[5] }},
   {{ r[6] }}, {{ r[7] }}){{ "," if not loop.last }}
  {%- endfor %}
) as cadence(source, raw_table, expected_cadence, late_after_days, stale_after_days, age_basis,
             loaded_at_field, note)
{%- else -%}
select null::varchar as source, null::varchar as raw_table, null::varchar as expected_cadence,
       null::integer as late_after_days, null::integer as stale_after_days,
       null::varchar as age_basis, null::varchar as loaded_at_field, null::varchar as note
where false
{%- endif %}
