{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- What `make run` prints after a publish (pipeline.summary), as label / value rows under
    section headings: the current release, its routes, the returns, funding and readmission
    marts, and the report's headline indicators. The figures are read from the marts and report
    models the quality report reads, never computed again, so the summary and the report cannot
    disagree; the printer knows nothing of any source, only how to show a value in its unit.
    A section with no rows (a source not loaded) is left out. -#}
with

crossings_release as (

    select
        'Frontex release ' || release_date::varchar || ', ' || strftime(min(month), '%b %Y')
            || ' - ' || strftime(max(month), '%b %Y') as section,
        count(*) as row_count,
        sum(detections) as detections
    from {{ ref('fct_border_crossings_current') }}
    group by release_date

),

routes_by_month as (

    select * from {{ ref('rpt_detections_by_route_month') }}

),

complete_year as (

    select year(month) as year
    from routes_by_month
    group by 1
    having count(distinct month) = 12
    order by 1 desc
    limit 1

),

ytd as (

    select * from {{ ref('rpt_detections_ytd_by_route') }}

),

returns_fact as (

    select count(*) as row_count, min(period) as first_period, max(period) as last_period
    from {{ ref('fct_returns') }}
    having count(*) > 0

),

eu_rates as (

    -- The EU total of each year (rpt_return_rates.is_eu_total), all citizenships.
    select * from {{ ref('rpt_return_rates') }}
    where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'

),

reconciliation as (

    select status, count(*) as figures
    from {{ ref('rpt_returns_reconciliation') }}
    group by status

),

funding_sources as (

    select
        source,
        count(*) as row_count,
        count(distinct programme_or_action_key) as items,
        string_agg(distinct stage, ', ' order by stage) as stages,
        any_value(completeness_note) filter (where not is_complete_snapshot) as partial_note
    from {{ ref('fct_funding_disbursements') }}
    group by source

),

absorption as (

    select * from {{ ref('rpt_funding_absorption') }}
    qualify row_number() over (order by allocated_eur desc, programme_or_action_title) <= 5

),

readmission as (

    select count(*) as country_years, count(distinct country_code) as countries
    from {{ ref('fct_readmission_cooperation') }}
    having count(*) > 0

),

profiles as (

    select * from {{ ref('rpt_third_country_profile') }}
    where detections_rank <= 5

),

headlines as (

    select * from {{ ref('rpt_headline_indicators') }}

),

lines as (

    select
        1 as section_position,
        section,
        1 as position,
        'rows' as label,
        row_count::double as value,
        'rows' as unit,
        null::double as previous_value,
        null::varchar as previous_period,
        null::double as change_pct,
        null::varchar as note
    from crossings_release

    union all

    select 1, section, 2, 'detections, all routes and months', detections::double, 'detections',
        null, null, null, null
    from crossings_release

    union all

    select 2, 'Detections by route, ' || complete_year.year::varchar || ' (latest complete year)',
        row_number() over (order by sum(detections) desc, route)::integer,
        route, sum(detections)::double, 'detections', null, null, null, null
    from routes_by_month
    join complete_year on year(routes_by_month.month) = complete_year.year
    group by route, complete_year.year

    union all

    select 3, 'Year to date through ' || strftime(through_month, '%b %Y')
            || ' against the same months a year earlier',
        row_number() over (order by ytd_detections desc, route)::integer,
        route, ytd_detections::double, 'detections', prior_ytd_detections::double, null,
        change_pct, null
    from ytd

    union all

    select 4, 'Eurostat returns, ' || first_period::varchar || ' - ' || last_period::varchar,
        1, 'rows (period x reporting country x citizenship x measure)', row_count::double,
        'rows', null, null, null, null
    from returns_fact

    union all

    select 5, 'EU return rate (returned / ordered to leave, same year; the EU total of each '
            || 'year, rpt_return_rates.is_eu_total)',
        row_number() over (order by period)::integer,
        period::varchar || ' ' || geo, 100 * return_rate, 'percent', null, null, null,
        'returned ' || coalesce(format('{:,}', returned), 'n/a') || ' of '
            || coalesce(format('{:,}', ordered_to_leave), 'n/a') || ' ordered to leave'
    from eu_rates

    union all

    select 6, 'Against Eurostat''s published headline figures (rpt_returns_reconciliation)',
        row_number() over (order by figures desc, status)::integer,
        replace(status, '_', ' '), figures::double, 'figures', null, null, null, null
    from reconciliation

    union all

    select 7, 'Funding (fct_funding_disbursements; amounts of different stages and as-of dates '
            || 'are never added up)',
        row_number() over (order by source)::integer,
        source, row_count::double, 'rows', null, null, null,
        format('{:,}', items) || ' programmes or actions; stages: ' || stages
            || coalesce('; PARTIAL SNAPSHOT: ' || partial_note, '')
    from funding_sources

    union all

    select 8, 'Funding absorption, paid / allocated, the five largest allocations '
            || '(rpt_funding_absorption)',
        row_number() over (order by allocated_eur desc, programme_or_action_title)::integer,
        left(programme_or_action_title, 60), 100 * absorption_rate, 'percent', null, null, null,
        'EUR ' || format('{:,.1f}', paid_eur / 1e6) || 'm paid of '
            || format('{:,.1f}', allocated_eur / 1e6) || 'm allocated'
    from absorption

    union all

    select 9, 'Readmission cooperation: ' || format('{:,}', readmission.country_years)
            || ' country-years, ' || format('{:,}', readmission.countries)
            || ' third countries; most detections',
        profiles.detections_rank::integer,
        profiles.detections_rank::varchar || '. ' || profiles.country_code || ' '
            || left(profiles.country_name, 24),
        coalesce(profiles.detections, 0)::double, 'detections', null, null, null,
        'in ' || coalesce(profiles.detections_year::varchar, 'n/a') || '; '
            || coalesce(profiles.readmission_instrument, 'n/a') || ', Art. 25a '
            || coalesce(profiles.art25a_status, 'n/a') || '; return rate '
            || coalesce(format('{:.0f}%', 100 * profiles.return_rate) || ' ('
                        || profiles.returns_year::varchar || ')', 'n/a')
    from profiles cross join readmission

    union all

    select 10, 'Headline indicators (the quality report''s; definitions there)',
        position::integer, label || coalesce(', ' || period, ''), value, unit, previous_value,
        previous_period, change_pct, null
    from headlines

)

select * from lines
