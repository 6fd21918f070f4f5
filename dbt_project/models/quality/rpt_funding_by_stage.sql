{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Chart data of the report: funding amounts by source, as-of date and stage. Amounts are added
    only within one as-of date (a stage's amount recorded on two dates is two states of the same
    money, never a sum), and only rows that count in totals (a component is not added to the
    action it belongs to). The report charts each source's latest as-of date. -#}
select
    source,
    as_of_date,
    stage,
    any_value(stage_order) as stage_order,
    count(*)::bigint as items,
    sum(amount_eur) as amount_eur,
    max(amount_eur) as largest_item_eur,
    arg_max(programme_or_action_title, amount_eur) as largest_item
from {{ ref('fct_funding_disbursements') }}
where counts_in_totals
group by source, as_of_date, stage
