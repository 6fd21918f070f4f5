{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Completeness of what this build holds, one row per source and subject:
    Frontex: months present per route in the newest release, of the months from its first to its
    last; Eurostat: member states reporting (citizenship TOTAL) of the EU aggregate's members, for
    the three latest years of each measure; Cohesion: snapshots flagged partial. -#}
with

frontex_latest as (

    select * from {{ ref('fct_border_crossings_current') }}

),

frontex as (

    select
        'frontex' as source,
        route as subject,
        count(distinct month)::bigint as present,
        (date_diff('month', (select min(month) from frontex_latest),
                   (select max(month) from frontex_latest)) + 1)::bigint as expected,
        'months present in release ' || any_value(release_date)::varchar
            || ', of the months from its first to its last' as note
    from frontex_latest
    group by route

),

members as (

    select * from {{ ref('eurostat_aggregate_members') }}

),

returns as (

    select * from {{ ref('fct_returns') }}

),

eurostat_periods as (

    -- One EU aggregate per measure and year: the EU total (fct_returns.is_eu_total).
    select distinct measure, period, geo as aggregate
    from returns
    where is_eu_total and citizen = 'TOTAL' and period_grain = 'year'

),

eurostat_reported as (

    select
        eurostat_periods.measure,
        eurostat_periods.period,
        eurostat_periods.aggregate,
        (count(distinct returns.geo) filter (where returns.persons is not null))::bigint as present,
        count(distinct members.member)::bigint as expected
    from eurostat_periods
    join members on members.aggregate = eurostat_periods.aggregate
    left join returns
        on returns.geo = members.member
       and returns.period = eurostat_periods.period
       and returns.measure = eurostat_periods.measure
       and returns.citizen = 'TOTAL'
    group by all

),

eurostat as (

    select
        'eurostat' as source,
        measure || ' ' || period as subject,
        present,
        expected,
        'member states reporting (citizenship TOTAL) of the ' || aggregate || ' members' as note
    from eurostat_reported
    qualify row_number() over (partition by measure order by period desc) <= 3

),

cohesion as (

    select
        'cohesion' as source,
        source as subject,
        count(*)::bigint as present,
        null::bigint as expected,
        coalesce(any_value(completeness_note) filter (where not is_complete_snapshot),
                 'complete') as note
    from {{ ref('fct_funding_disbursements') }}
    where source like 'cohesion_open_data:%'
    group by source

)

select * from frontex
union all
select * from eurostat
union all
select * from cohesion
