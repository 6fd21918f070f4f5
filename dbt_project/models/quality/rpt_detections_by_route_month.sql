{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Chart data of the report: detections per route and month, the whole history of the newest
    Frontex release (fct_border_crossings_current: months of different releases are never
    mixed). -#}
select
    route,
    month,
    sum(detections)::bigint as detections,
    any_value(release_date) as release_date
from {{ ref('fct_border_crossings_current') }}
group by route, month
