{#- Orders to leave and returns of third-country nationals (Eurostat), one row per period x
    reporting country x citizenship x measure: the newest vintage of each observation, missing
    values as NULL (never 0) with their flags. Annual and quarterly periods side by side: filter
    on period_grain. Aggregates (EU27_2020, EU28, TOTAL ...) are rows of their own, marked in
    dim_country: never add them to their parts. Codes come with their labels (geo_label,
    citizen_label) and keys into dim_country (geo_country_code, citizen_country_code);
    geo_is_eu_member_in_period says whether the reporting country was an EU member at the end of
    the period (the United Kingdom until 2019, Croatia from 2013); is_eu_total marks the one EU
    aggregate every model reads as the EU total of a period and citizenship (macros/eu_total.sql). -#}
with

staged as (

    select * from {{ ref('stg_eurostat__orders_to_leave') }}
    union all by name
    select * from {{ ref('stg_eurostat__returns') }}
    union all by name
    select * from {{ ref('stg_eurostat__returns_by_type') }}
    union all by name
    select * from {{ ref('stg_eurostat__returns_by_assistance') }}

),

observations as (

    select
        *,
        cast(period_start + case period_grain
            when 'year' then interval 1 year
            when 'half_year' then interval 6 month
            when 'quarter' then interval 3 month
            else interval 1 month
        end - interval 1 day as date) as period_end
    from staged

),

measures as (

    select * from {{ ref('eurostat_return_measures') }}

),

countries as (

    select * from {{ ref('dim_country') }}

),

final as (

    select
        -- grain
        observations.period,
        observations.period_start,
        observations.period_grain,
        observations.geo,
        observations.citizen,
        measures.measure,

        -- labels
        geo_country.country_name as geo_label,
        citizen_country.country_name as citizen_label,

        -- keys
        geo_country.country_code as geo_country_code,
        citizen_country.country_code as citizen_country_code,

        -- measures
        cast(observations.obs_value as bigint) as persons,

        -- flags
        observations.obs_flag,
        observations.conf_status,
        observations.is_missing,
        observations.is_provisional,
        observations.is_estimated,
        observations.is_confidential,
        observations.has_break,
        observations.definition_differs,
        observations.low_reliability,
        coalesce(geo_country.is_aggregate, false) as geo_is_aggregate,
        coalesce(citizen_country.is_aggregate, false) as citizen_is_aggregate,
        coalesce(geo_country.eu_member_from <= observations.period_end
                 and (geo_country.eu_member_until is null
                      or geo_country.eu_member_until >= observations.period_end), false)
            as geo_is_eu_member_in_period,
        -- the EU total of the period and citizenship: the one rule, macros/eu_total.sql
        {{ is_eu_total('observations.geo', 'observations.obs_value',
                       ['observations.period', 'observations.period_grain', 'observations.citizen']) }}
            as is_eu_total,

        -- lineage
        observations.dataset,
        observations.source_format,
        observations.last_update,
        observations.release_date,
        observations.landing_file,
        observations.sha256,
        observations.source_row

    from observations
    inner join measures
        on measures.flow = observations.flow
        and measures.detail = observations.detail
    left join countries as geo_country on geo_country.eurostat_code = observations.geo
    left join countries as citizen_country on citizen_country.eurostat_code = observations.citizen

)

select * from final
