{#- Year-to-date detections by route in the latest release, against the same months of the
    previous year: January up to the release's last month, in both years. -#}
with

facts as (

    select * from {{ ref('fct_border_crossings') }}

),

latest as (

    select max(release_date) as release_date from facts

),

release_facts as (

    select facts.* from facts inner join latest using (release_date)

),

period as (

    select max(month) as through_month from release_facts

),

by_route as (

    select
        release_facts.route,
        period.through_month,
        (sum(detections) filter (
            where year(month) = year(period.through_month)
              and month(month) <= month(period.through_month)))::bigint as ytd_detections,
        (sum(detections) filter (
            where year(month) = year(period.through_month) - 1
              and month(month) <= month(period.through_month)))::bigint as prior_ytd_detections
    from release_facts cross join period
    group by release_facts.route, period.through_month

),

final as (

    select
        -- grain
        (select release_date from latest) as release_date,
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
