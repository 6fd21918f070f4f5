{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- What this build holds, per source and subject: the first and last period, the number of
    observations and their total, and the release they come from. The report compares it with the
    previous publish (new periods, new releases, totals that moved). Totals are only ever summed
    within one subject of one release or as-of date. -#}
with

frontex as (

    select
        'frontex' as source,
        route as subject,
        strftime(min(month), '%Y-%m') as first_period,
        strftime(max(month), '%Y-%m') as last_period,
        count(*)::bigint as observations,
        sum(detections)::double as total,
        'detections' as unit,
        any_value(release_date)::varchar as release
    from {{ ref('fct_border_crossings_current') }}
    group by route

),

returns_by_measure as (

    select
        dataset,
        measure,
        min(period) as first_period,
        max(period) as last_period,
        (count(*) filter (where persons is not null))::bigint as observations,
        max(coalesce(last_update::date, release_date))::varchar as release
    from {{ ref('fct_returns') }}
    group by dataset, measure

),

returns_eu_total as (

    -- One EU aggregate per dataset and measure in its last period: the EU total
    -- (fct_returns.is_eu_total; never two aggregates added).
    select f.dataset, f.measure, f.geo, f.persons
    from {{ ref('fct_returns') }} as f
    join returns_by_measure as m
      on m.dataset = f.dataset and m.measure = f.measure and m.last_period = f.period
    where f.is_eu_total and f.citizen = 'TOTAL' and f.persons is not null

),

eurostat_returns as (

    select
        'eurostat' as source,
        m.dataset || ' ' || m.measure as subject,
        m.first_period,
        m.last_period,
        m.observations,
        t.persons::double as total,
        'persons, ' || coalesce(t.geo, 'EU') || ', all citizenships, in the last period' as unit,
        m.release
    from returns_by_measure as m
    left join returns_eu_total as t using (dataset, measure)

),

eurostat_context as (

    {% set context = [ref('stg_eurostat__asylum_applicants'), ref('stg_eurostat__illegally_present')] %}
    {% for relation in context %}
    select
        'eurostat' as source,
        dataset as subject,
        min(period) as first_period,
        max(period) as last_period,
        (count(*) filter (where not is_missing))::bigint as observations,
        null::double as total,
        'observations' as unit,
        max(coalesce(last_update::date, release_date))::varchar as release
    from {{ relation }}
    group by dataset
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

funding as (

    select
        split_part(source, ':', 1) as source,
        source as subject,
        min(as_of_date)::varchar as first_period,
        max(as_of_date)::varchar as last_period,
        count(*)::bigint as observations,
        null::double as total,
        'amounts (as-of dates differ: not summed)' as unit,
        max(as_of_date)::varchar as release
    from {{ ref('fct_funding_disbursements') }}
    group by source

),

readmission as (

    select
        'readmission_registry' as source,
        'country-years with registry events' as subject,
        min(year)::varchar as first_period,
        max(year)::varchar as last_period,
        count(*)::bigint as observations,
        null::double as total,
        'country-years' as unit,
        null::varchar as release
    from {{ ref('fct_readmission_cooperation') }}
    where events_in_year is not null

)

select * from frontex
union all select * from eurostat_returns
union all select * from eurostat_context
union all select * from funding
union all select * from readmission
