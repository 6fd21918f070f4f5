{#- Year-to-date detections by route in the current release (fct_border_crossings_current),
    against the same months of the previous year: January up to the release's last month, in
    both years. One release only, so readers need no release filter. -#}
with

release_facts as (

    select * from {{ ref('fct_border_crossings_current') }}

),

period as (

    select max(month) as through_month from release_facts

),

by_route as (

    select
        release_facts.release_date,
        release_facts.route,
        period.through_month,
        (sum(detections) filter (
            where year(month) = year(period.through_month)
              and month(month) <= month(period.through_month)))::bigint as ytd_detections,
        (sum(detections) filter (
            where year(month) = year(period.through_month) - 1
              and month(month) <= month(period.through_month)))::bigint as prior_ytd_detections
    from release_facts cross join period
    group by release_facts.release_date, release_facts.route, period.through_month

),

final as (

    select
        -- grain
        release_date,
        route,

        -- period
        year(through_month) as year,
        through_month,

        -- measures
        coalesce(ytd_detections, 0)::bigint as ytd_detections,
        coalesce(prior_ytd_detections, 0)::bigint as prior_ytd_detections,
        (coalesce(ytd_detections, 0) - coalesce(prior_ytd_detections, 0))::bigint as change_detections,
        round(100.0 * (coalesce(ytd_detections, 0) - prior_ytd_detections)
              / nullif(prior_ytd_detections, 0), 1) as change_pct

    from by_route

)

select * from final
