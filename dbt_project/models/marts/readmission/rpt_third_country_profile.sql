{#- One row per third country for BI and the report: the latest year with data in each source
    and its trend against the year before (detections, orders to leave, returns, return rate),
    the instruments with their dates and the Art. 25a events, ranked by detections in the
    latest year of the Frontex series that is complete for all countries. -#}
with

cooperation as (

    select * from {{ ref('fct_readmission_cooperation') }}

),

events as (

    select * from {{ ref('stg_registries__readmission_events') }}
    where scope = 'country'

),

detections_year as (

    -- The latest year with twelve months in the current Frontex release.
    select max(year) as year from (
        select year(month) as year from {{ ref('fct_border_crossings_current') }}
        group by 1 having count(distinct month(month)) = 12
    )

),

latest_returns as (

    select country_code, max(year) filter (where orders_to_leave is not null or returned is not null) as year
    from cooperation group by 1

),

by_country as (

    select
        cooperation.country_code,
        any_value(cooperation.country_name) as country_name,
        max(cooperation.year) as latest_year_with_data,

        -- detections in the latest complete year and the year before
        (max(cooperation.detections) filter (where cooperation.year = detections_year.year))::bigint as detections,
        (max(cooperation.detections) filter (where cooperation.year = detections_year.year - 1))::bigint as detections_previous_year,
        any_value(detections_year.year) as detections_year,

        -- returns in the latest year with returns data and the year before
        any_value(latest_returns.year) as returns_year,
        max(cooperation.orders_to_leave) filter (where cooperation.year = latest_returns.year) as orders_to_leave,
        max(cooperation.orders_to_leave) filter (where cooperation.year = latest_returns.year - 1) as orders_to_leave_previous_year,
        max(cooperation.returned) filter (where cooperation.year = latest_returns.year) as returned,
        max(cooperation.returned) filter (where cooperation.year = latest_returns.year - 1) as returned_previous_year,
        max(cooperation.return_rate) filter (where cooperation.year = latest_returns.year) as return_rate,
        max(cooperation.return_rate) filter (where cooperation.year = latest_returns.year - 1) as return_rate_previous_year,

        -- cooperation now
        arg_max(cooperation.readmission_instrument, cooperation.year) as readmission_instrument,
        arg_max(cooperation.instrument_since, cooperation.year) as instrument_since,
        arg_max(cooperation.art25a_status, cooperation.year) as art25a_status,
        bool_or(cooperation.registry_has_caveat) as registry_has_caveat
    from cooperation
    cross join detections_year
    left join latest_returns using (country_code)
    group by cooperation.country_code

),

art25a as (

    select
        country_code,
        string_agg(strftime(event_date, '%Y-%m-%d') || ' ' || effect || ': ' || title, '; '
                   order by event_date) as art25a_events
    from events
    where instrument_type like 'visa_code_art25a%'
    group by 1

),

final as (

    select
        row_number() over (order by coalesce(by_country.detections, 0) desc, by_country.country_code) as detections_rank,
        by_country.*,
        round(100.0 * (by_country.detections / nullif(by_country.detections_previous_year, 0) - 1), 1)
            as detections_change_pct,
        art25a.art25a_events
    from by_country
    left join art25a using (country_code)

)

select * from final
