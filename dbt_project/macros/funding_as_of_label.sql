{#- A funding amount's as-of date as people read it, at the precision the source gives it
    (FTS: a year; the registry: a month or a day; Cohesion snapshots: a day): 'as of Jul 2024'.
    Used by quality.current_cell_changes for the funding cells' before and after. -#}
{% macro funding_as_of_label(column, precision) -%}
    case when {{ column }} is null then null
         else 'as of ' || case {{ precision }}
                              when 'year' then strftime({{ column }}, '%Y')
                              when 'month' then strftime({{ column }}, '%b %Y')
                              else strftime({{ column }}, '%-d %b %Y') end end
{%- endmacro %}
