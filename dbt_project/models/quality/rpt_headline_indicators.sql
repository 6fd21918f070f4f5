{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- The headline indicators of the data-quality report, one row each, with the definition and
    unit an analyst needs to read them, the latest period and the one before. Every figure is one
    period of one release or as-of date: nothing here sums across releases or as-of dates. -#}
with

ytd as (

    -- the current release only, by construction
    select * from {{ ref('rpt_detections_ytd_by_route') }}

),

crossings_latest as (

    select * from {{ ref('fct_border_crossings_current') }}

),

last_month as (

    select max(month) as through_month from crossings_latest

),

twelve_months as (

    select
        sum(detections) filter (where crossings_latest.month > last_month.through_month - interval 12 month) as current_12,
        sum(detections) filter (where crossings_latest.month <= last_month.through_month - interval 12 month
                                  and crossings_latest.month > last_month.through_month - interval 24 month) as previous_12,
        any_value(last_month.through_month) as through_month,
        any_value(release_date) as release_date
    from crossings_latest, last_month
    group by all

),

eu_rates as (

    -- The EU total of each year (rpt_return_rates.is_eu_total), all citizenships.
    select *
    from {{ ref('rpt_return_rates') }}
    where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'
      and ordered_to_leave is not null and returned is not null

),

eu_latest as (

    -- The latest year against the year before in the same aggregate only: a year of one
    -- aggregate against a year of another would be a change of membership, not of returns
    -- (no previous value then).
    select
        *,
        lag(period) over (partition by geo order by period) as previous_period,
        lag(ordered_to_leave) over (partition by geo order by period) as previous_ordered,
        lag(returned) over (partition by geo order by period) as previous_returned,
        lag(return_rate) over (partition by geo order by period) as previous_rate
    from eu_rates
    qualify period = max(period) over ()

),

cohesion as (

    select
        max(as_of_date) as as_of_date,
        sum(amount_eur) filter (where as_of_date = (select max(as_of_date)
                                                    from {{ ref('fct_funding_disbursements') }}
                                                    where source like 'cohesion_open_data:%')
                                  and counts_in_totals and stage = 'planned') as planned_eur,
        string_agg(distinct fund_code, ', ' order by fund_code) as funds,
        any_value(completeness_note) filter (where not is_complete_snapshot) as partial_note
    from {{ ref('fct_funding_disbursements') }}
    where source like 'cohesion_open_data:%'

),

readmission as (

    select
        year,
        count(*) filter (where readmission_instrument in ('agreement', 'arrangement')) as with_instrument,
        count(*) filter (where art25a_status = 'measures_in_force') as with_measures
    from {{ ref('fct_readmission_cooperation') }}
    group by year

),

readmission_latest as (

    select
        *,
        lag(year) over (order by year) as previous_year,
        lag(with_instrument) over (order by year) as previous_with_instrument,
        lag(with_measures) over (order by year) as previous_with_measures
    from readmission
    qualify year = max(year) over ()

),

indicators as (

    select
        1 as position,
        'frontex_ytd' as indicator,
        'Irregular border crossings detected, year to date' as label,
        'Detections at the EU external borders, all routes, from January to the last month of the newest Frontex release, against the same months a year earlier. A person crossing twice is counted twice.' as definition,
        'detections' as unit,
        strftime(min(through_month), 'Jan-%b %Y') as period,
        sum(ytd_detections)::double as value,
        strftime(min(through_month) - interval 1 year, 'Jan-%b %Y') as previous_period,
        sum(prior_ytd_detections)::double as previous_value,
        'release ' || min(release_date)::varchar as basis,
        'marts.rpt_detections_ytd_by_route' as source_model
    from ytd

    union all

    select
        2, 'frontex_12_months',
        'Irregular border crossings detected, last 12 months',
        'Detections at the EU external borders, all routes, in the 12 months to the last month of the newest Frontex release, against the 12 months before. Recent months are restated in later releases.',
        'detections',
        strftime(through_month - interval 11 month, '%b %Y') || '-' || strftime(through_month, '%b %Y'),
        current_12::double,
        strftime(through_month - interval 23 month, '%b %Y') || '-' || strftime(through_month - interval 12 month, '%b %Y'),
        previous_12::double,
        'release ' || release_date::varchar,
        'marts.fct_border_crossings_current'
    from twelve_months

    union all

    select
        3, 'ordered_to_leave',
        'Third-country nationals ordered to leave',
        'Persons found illegally present and ordered to leave the territory of an EU member state in the year (Eurostat migr_eiord), all citizenships, ' || geo || '.',
        'persons', period, ordered_to_leave::double, previous_period, previous_ordered::double,
        geo, 'marts.rpt_return_rates'
    from eu_latest

    union all

    select
        4, 'returned',
        'Third-country nationals returned following an order to leave',
        'Persons who left the EU following an order to leave, in the year (Eurostat migr_eirtn), all citizenships, ' || geo || '.',
        'persons', period, returned::double, previous_period, previous_returned::double,
        geo, 'marts.rpt_return_rates'
    from eu_latest

    union all

    select
        5, 'return_rate',
        'Return rate',
        'Persons returned divided by persons ordered to leave in the same year. Both are flows of that year, not a cohort: a person ordered to leave in one year may leave in the next, so the rate can pass 100% for a citizenship or a country.',
        'percent', period, 100 * return_rate, previous_period, 100 * previous_rate,
        geo, 'marts.rpt_return_rates'
    from eu_latest

    union all

    select
        6, 'cohesion_planned',
        'Cohesion 2021-2027 planned amounts for home-affairs funds',
        'EU amounts planned for ' || coalesce(funds, 'no fund') || ' in the Cohesion Open Data financial plans, at one as-of date (amounts of different dates are never added).',
        'EUR', as_of_date::varchar, planned_eur, null, null,
        'as of ' || as_of_date::varchar
            || coalesce('; PARTIAL snapshot, the sum is a lower bound: ' || partial_note, ''),
        'marts.fct_funding_disbursements'
    from cohesion

    union all

    select
        7, 'readmission_instruments',
        'Third countries with an EU readmission agreement or arrangement',
        'Countries with an EU readmission agreement or a non-binding readmission arrangement in force during the year (curated registry).',
        'countries', year::varchar, with_instrument::double, previous_year::varchar,
        previous_with_instrument::double, 'registry', 'marts.fct_readmission_cooperation'
    from readmission_latest

    union all

    select
        8, 'art25a_measures',
        'Third countries under Visa Code Art. 25a measures',
        'Countries with restrictive visa measures under Article 25a of the Visa Code in force during the year (curated registry).',
        'countries', year::varchar, with_measures::double, previous_year::varchar,
        previous_with_measures::double, 'registry', 'marts.fct_readmission_cooperation'
    from readmission_latest

)

select
    *,
    case when previous_value is not null and previous_value <> 0 and unit <> 'percent'
         then round(100 * (value - previous_value) / previous_value, 1) end as change_pct
from indicators
