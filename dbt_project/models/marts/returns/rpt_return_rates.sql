{#- The return rate: persons returned divided by persons ordered to leave, for the same reporting
    country, citizenship and period. Both are flows of that period: a person ordered to leave in
    one year may leave in the next, so this is a ratio of two flows, not the share of a cohort
    that left, and it can exceed 1. One row per reporting country x citizenship x period where
    orders to leave and a return flow are published (not missing). -#}
with

returns as (

    select * from {{ ref('fct_returns') }}

),

pivoted as (

    select
        period,
        period_start,
        period_grain,
        geo,
        citizen,
        any_value(geo_label) as geo_label,
        any_value(citizen_label) as citizen_label,
        any_value(geo_country_code) as geo_country_code,
        any_value(citizen_country_code) as citizen_country_code,
        bool_or(geo_is_aggregate) as geo_is_aggregate,
        bool_or(citizen_is_aggregate) as citizen_is_aggregate,
        bool_or(is_eu_total) as is_eu_total,
        max(persons) filter (where measure = 'ordered_to_leave') as ordered_to_leave,
        max(persons) filter (where measure = 'returned') as returned,
        max(persons) filter (where measure = 'returned_to_third_country') as returned_to_third_country,
        max(persons) filter (where measure = 'returned_voluntarily') as returned_voluntarily,
        max(persons) filter (where measure = 'returned_enforced') as returned_enforced,
        bool_or(is_provisional) filter (where measure in ('ordered_to_leave', 'returned')) as any_provisional,
        bool_or(is_estimated) filter (where measure in ('ordered_to_leave', 'returned')) as any_estimated,
        string_agg(distinct obs_flag, ',' order by obs_flag) filter (where measure in ('ordered_to_leave', 'returned')) as flags
    from returns
    group by all

),

final as (

    select
        -- grain
        period,
        period_start,
        period_grain,
        geo,
        citizen,

        -- labels
        geo_label,
        citizen_label,

        -- keys
        geo_country_code,
        citizen_country_code,

        -- flows
        ordered_to_leave,
        returned,
        returned_to_third_country,

        -- indicators
        round(returned / nullif(ordered_to_leave, 0), 4) as return_rate,
        round(returned_to_third_country / nullif(ordered_to_leave, 0), 4) as return_rate_third_country,
        round(returned_voluntarily / nullif(returned_voluntarily + returned_enforced, 0), 4) as voluntary_share,
        round(returned_enforced / nullif(returned_voluntarily + returned_enforced, 0), 4) as enforced_share,

        -- flags
        geo_is_aggregate,
        citizen_is_aggregate,
        coalesce(is_eu_total, false) as is_eu_total,
        coalesce(any_provisional, false) as any_provisional,
        coalesce(any_estimated, false) as any_estimated,
        flags

    from pivoted
    where ordered_to_leave is not null
      and (returned is not null or returned_to_third_country is not null)

)

select * from final
