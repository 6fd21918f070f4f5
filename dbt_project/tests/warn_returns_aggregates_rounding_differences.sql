{{ config(severity='warn') }}
{#- EU aggregates that differ from the sum of their members within Eurostat's rounding: expected,
    reported as a warning so the size of the effect stays visible. -#}
select * from {{ ref('rpt_returns_aggregate_check') }}
where status = 'within_rounding'
