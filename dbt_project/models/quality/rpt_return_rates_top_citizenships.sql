{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Chart data of the report: the return rate of the twelve citizenships with most orders to
    leave, EU total (rpt_return_rates.is_eu_total), latest year. The rate divides two flows of
    the same year (not a cohort), so it can pass 100%: `exceeds_100` marks those. -#}
with

eu_all as (

    select *
    from {{ ref('rpt_return_rates') }}
    where is_eu_total and period_grain = 'year'
      and not citizen_is_aggregate and return_rate is not null

),

latest_period as (

    select max(period) as period from eu_all

),

chart_geo as (

    -- One aggregate for the whole chart: the first choice of the EU-total rule among the
    -- citizenships' EU totals of the latest year (citizenships whose EU total is another
    -- aggregate are left out, never mixed in).
    select arg_min(geo, {{ eu_total_rank('geo') }}) as geo
    from eu_all where period = (select period from latest_period)

),

latest as (

    select * from eu_all
    where period = (select period from latest_period) and geo = (select geo from chart_geo)

)

select
    latest.period,
    latest.geo,
    latest.citizen,
    coalesce(countries.country_name, latest.citizen) as citizen_label,
    latest.ordered_to_leave,
    latest.returned,
    100 * latest.return_rate as return_rate_pct,
    latest.return_rate > 1 as exceeds_100,
    row_number() over (order by latest.ordered_to_leave desc, latest.citizen) as orders_rank
from latest
left join {{ ref('country_codes') }} as countries on countries.eurostat_code = latest.citizen
qualify orders_rank <= 12
