{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Chart data of the report: detections per route and month, the whole history of the newest
    Frontex release (fct_border_crossings_current: months of different releases are never
    mixed), with each route's rank by its detections in the release's last 12 months (the chart
    draws the first five). -#}
with

by_month as (

    select
        route,
        month,
        sum(detections)::bigint as detections,
        any_value(release_date) as release_date
    from {{ ref('fct_border_crossings_current') }}
    group by route, month

),

last_12_months as (

    select
        route,
        coalesce(sum(detections) filter (
            where month > (select max(month) from by_month) - interval 12 month), 0)::bigint
            as detections_last_12_months
    from by_month
    group by route

),

ranked as (

    select
        *,
        row_number() over (order by detections_last_12_months desc, route)
            as rank_last_12_months
    from last_12_months

)

select
    by_month.*,
    ranked.detections_last_12_months,
    ranked.rank_last_12_months
from by_month
join ranked using (route)
