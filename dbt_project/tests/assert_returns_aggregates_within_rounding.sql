{#- An EU aggregate of fct_returns further from the sum of its members than Eurostat's rounding
    to 5 explains: a parsing or mapping error (or a member missing from the members seed). -#}
select * from {{ ref('rpt_returns_aggregate_check') }}
where status = 'beyond_rounding'
