{#- Use the folder's schema name as is (staging, marts, reference), not "<target>_<schema>":
    BI tools query marts.fct_border_crossings. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
