{#- The EU total: the one rule for every model that picks an EU aggregate (issue 19).

    Eurostat publishes the EU as several aggregates of different compositions: EU27_2020 (the EU
    since February 2020, back-calculated by Eurostat), EU28 (July 2013 - January 2020) and
    EU27_2007 (January 2007 - June 2013). For one period and citizenship the warehouse's EU total
    is the first of them, in this order, that publishes a figure there (a non-missing value of
    any measure): the EU of today where published, else EU28, else EU27_2007. One aggregate per
    period and citizenship, for every measure: orders to leave and returns of a return rate
    always come from the same aggregate.

    fct_returns applies it once, as the column `is_eu_total`; rpt_return_rates carries it on.
    Every model that needs an EU total (fct_readmission_cooperation, the quality and report
    models), make run's summary and BI filter `is_eu_total` and never name the aggregates
    themselves (tests/test_one_rule.py greps for that). -#}

{#- The EU aggregates, first choice first. -#}
{% macro eu_total_aggregates() -%}
    {{ return(['EU27_2020', 'EU28', 'EU27_2007']) }}
{%- endmacro %}

{#- The rank of `geo` among the EU aggregates (1 = first choice); NULL for anything else. -#}
{% macro eu_total_rank(geo) -%}
    case {{ geo }}{% for code in eu_total_aggregates() %} when '{{ code }}' then {{ loop.index }}{% endfor %} end
{%- endmacro %}

{#- True on a row whose `geo` is the EU total of its `partition_by` (period x citizenship): the
    best-ranked EU aggregate with a non-missing `value` anywhere in the partition. False for
    every other row (other aggregates, member states, TOTAL). A window expression. -#}
{% macro is_eu_total(geo, value, partition_by) -%}
    coalesce({{ eu_total_rank(geo) }} = min(case when {{ value }} is not null then {{ eu_total_rank(geo) }} end)
        over (partition by {{ partition_by | join(', ') }}), false)
{%- endmacro %}
