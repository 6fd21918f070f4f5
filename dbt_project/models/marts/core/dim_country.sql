{#- One row per country, territory, non-country label or aggregate any source uses. Codes by
    scheme: ISO 3166-1 alpha-2/alpha-3 and Eurostat's geo/citizen code (EL and UK where ISO has
    GR, GB). Eurostat's aggregates (EU27_2020, EU28, TOTAL, EXT_EU27_2020 ...) are rows too, keyed
    by their Eurostat code and marked is_aggregate, so facts can point at them and no query sums
    them with their parts by accident. EU membership: `is_eu_member` is today's; the dates of
    joining and leaving (seed eu_membership) give membership at any date, by year in
    dim_country_eu_membership. -#}
with

codes as (

    select * from {{ ref('country_codes') }}

),

membership as (

    select * from {{ ref('eu_membership') }}

),

aggregates as (

    select * from {{ ref('eurostat_aggregates') }}

),

countries as (

    select
        -- ids
        codes.country_code,
        iso2,
        iso3,
        eurostat_code,

        -- labels
        country_name,
        category,

        -- flags
        category in ('country', 'territory', 'partially_recognised', 'former_country') as is_country,
        false as is_aggregate,
        is_eu_member,
        membership.eu_member_from,
        membership.eu_member_until,
        is_schengen_member

    from codes
    left join membership on membership.country_code = codes.country_code

),

eurostat_aggregates as (

    select
        -- ids
        code as country_code,
        null::varchar as iso2,
        null::varchar as iso3,
        code as eurostat_code,

        -- labels
        name as country_name,
        'aggregate' as category,

        -- flags
        false as is_country,
        true as is_aggregate,
        false as is_eu_member,
        null::date as eu_member_from,
        null::date as eu_member_until,
        false as is_schengen_member

    from aggregates

),

final as (

    select * from countries
    union all
    select * from eurostat_aggregates

)

select * from final
