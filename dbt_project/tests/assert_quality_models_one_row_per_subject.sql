{#- The report's measures have one row per source and subject (per indicator for the
    headlines): two EU aggregates, two releases or two as-of dates for one subject would be
    added or compared by the report. Returns the duplicated keys. -#}
select 'current_coverage' as model, source || ' / ' || subject as key, count(*) as n
from {{ ref('current_coverage') }} group by all having count(*) > 1
union all
select 'current_completeness', source || ' / ' || subject, count(*)
from {{ ref('current_completeness') }} group by all having count(*) > 1
union all
select 'rpt_headline_indicators', indicator, count(*)
from {{ ref('rpt_headline_indicators') }} group by all having count(*) > 1
union all
select 'rpt_return_rates_top_citizenships', period || ' / ' || citizen, count(*)
from {{ ref('rpt_return_rates_top_citizenships') }} group by all having count(*) > 1
