{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Chart data of the report: funding amounts by source, as-of date, fund and stage. Amounts are added
    only within one as-of date (a stage's amount recorded on two dates is two states of the same
    money, never a sum), and only rows that count in totals (a component is not added to the
    action it belongs to). The report charts each source's latest as-of date, the stages of each
    fund side by side: a stage's amount is mostly other actions than another stage's, so the
    stages are not drawn as a funnel. -#}
select
    d.source,
    d.as_of_date,
    d.fund_code,
    -- The fund's short name as the registry writes it, first letter capital ("EU budget support").
    any_value(upper(left(f.registry_label, 1)) || substr(f.registry_label, 2)) as fund_label,
    d.stage,
    any_value(d.stage_order) as stage_order,
    count(*)::bigint as items,
    sum(d.amount_eur) as amount_eur,
    max(d.amount_eur) as largest_item_eur,
    arg_max(d.programme_or_action_title, d.amount_eur) as largest_item
from {{ ref('fct_funding_disbursements') }} as d
left join {{ ref('dim_fund') }} as f using (fund_code)
where d.counts_in_totals
group by d.source, d.as_of_date, d.fund_code, d.stage
