{#- Readmission cooperation per third country and year: the instrument in force (agreement,
    arrangement or none), the Art. 25a status, its nationals ordered to leave and returned (the
    EU total, fct_returns.is_eu_total: one aggregate for both flows, see macros/eu_total.sql)
    with the return rate, and its nationals detected crossing irregularly (the current Frontex
    release, fct_border_crossings_current, all routes). One row
    for every third country and year with data in any source, also without an instrument.
    Third countries: countries and territories of dim_country that are not EU members today. -#}
with

events as (

    select * from {{ ref('stg_registries__readmission_events') }}

),

intervals as (

    select * from {{ ref('int_readmission__instrument_intervals') }}

),

countries as (

    select * from {{ ref('dim_country') }}
    where is_country and not is_eu_member

),

detections as (

    select
        nationality_country_code as country_code,
        year(month) as year,
        sum(detections)::bigint as detections
    from {{ ref('fct_border_crossings_current') }}
    group by all

),

returns as (

    -- The EU total of each citizenship and year: one aggregate for both flows.
    select
        citizen_country_code as country_code,
        cast(period as integer) as year,
        max(persons) filter (where measure = 'ordered_to_leave') as orders_to_leave,
        max(persons) filter (where measure = 'returned') as returned,
        any_value(geo) as returns_geo,
        any_value(geo_label) as returns_geo_label
    from {{ ref('fct_returns') }}
    where is_eu_total
      and period_grain = 'year'
      and measure in ('ordered_to_leave', 'returned')
      and persons is not null
    group by all

),

registry_years as (

    select country_code, year(event_date) as year
    from events
    where scope = 'country'
    group by all

),

country_years as (

    select country_code, year from detections
    union
    select country_code, year from returns
    union
    select country_code, year from registry_years

),

assessed_years as (

    select distinct year(event_date) as year from events where effect = 'art25a_assessment'

),

yearly as (

    select
        country_years.country_code,
        country_years.year,
        make_date(country_years.year, 1, 1) as year_start,
        make_date(country_years.year, 12, 31) as year_end
    from country_years
    inner join countries using (country_code)

),

instrument as (

    select
        yearly.country_code,
        yearly.year,
        bool_or(intervals.instrument = 'agreement') as has_agreement,
        bool_or(intervals.instrument = 'arrangement') as has_arrangement,
        bool_or(intervals.instrument = 'art25a_measure') as has_art25a_measure,
        min(intervals.valid_from) filter (where intervals.instrument = 'agreement') as agreement_since,
        min(intervals.valid_from) filter (where intervals.instrument = 'arrangement') as arrangement_since,
        bool_or(intervals.has_caveat) as instrument_has_caveat
    from yearly
    left join intervals
        on intervals.country_code = yearly.country_code
        and intervals.valid_from <= yearly.year_end
        and (intervals.valid_to is null or intervals.valid_to >= yearly.year_start)
    group by all

),

year_events as (

    select
        yearly.country_code,
        yearly.year,
        bool_or(events.effect = 'art25a_measure_lifted' and year(events.event_date) = yearly.year) as art25a_lifted_in_year,
        bool_or(events.effect = 'art25a_proposed' and events.event_date <= yearly.year_end) as art25a_proposed_by_year,
        string_agg(strftime(events.event_date, '%Y-%m-%d') || ' (' || events.event_date_precision || ') '
                   || events.effect || ': ' || events.title, '; ' order by events.event_date)
            filter (where year(events.event_date) = yearly.year) as events_in_year,
        bool_or(events.has_caveat) filter (where year(events.event_date) = yearly.year) as events_have_caveat
    from yearly
    left join events on events.country_code = yearly.country_code
    group by all

),

final as (

    select
        -- grain
        yearly.country_code,
        yearly.year,

        -- labels
        countries.country_name,

        -- cooperation
        case
            when instrument.has_agreement then 'agreement'
            when instrument.has_arrangement then 'arrangement'
            else 'none'
        end as readmission_instrument,
        case
            when instrument.has_agreement then instrument.agreement_since
            when instrument.has_arrangement then instrument.arrangement_since
        end as instrument_since,
        case
            when instrument.has_art25a_measure then 'measures_in_force'
            when year_events.art25a_lifted_in_year then 'lifted'
            when year_events.art25a_proposed_by_year then 'proposed'
            when assessed_years.year is not null then 'assessed'
            else 'none'
        end as art25a_status,
        coalesce(year_events.art25a_lifted_in_year, false) as art25a_lifted_in_year,

        -- returns (its citizens, EU total) and detections (its nationals, all routes)
        returns.orders_to_leave,
        returns.returned,
        round(returns.returned / nullif(returns.orders_to_leave, 0), 4) as return_rate,
        returns.returns_geo,
        returns.returns_geo_label,
        detections.detections,

        -- the year's registry events, and whether anything used is unconfirmed
        year_events.events_in_year,
        coalesce(instrument.instrument_has_caveat, false)
            or coalesce(year_events.events_have_caveat, false) as registry_has_caveat

    from yearly
    inner join countries using (country_code)
    left join instrument using (country_code, year)
    left join year_events using (country_code, year)
    left join assessed_years using (year)
    left join returns using (country_code, year)
    left join detections using (country_code, year)

)

select * from final
