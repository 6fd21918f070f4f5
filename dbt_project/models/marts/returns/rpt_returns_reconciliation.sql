{#- The warehouse against Eurostat's own headline figures (reference: stg_eurostat__published_figures).
    Levels (ordered_to_leave, returned, returned_to_third_country) are compared with fct_returns,
    and changes against the year (quarter) before are recomputed from it; shares of the EU total
    are listed, not recomputed. A published figure is rounded (158 000, 70 200, 484 160): it
    matches when the warehouse value rounds to it, i.e. within half its rounding unit (the
    power of ten of its trailing zeros, at least 5, Eurostat's own rounding; 0.5 or 0.05 points
    for changes). Newest publication first. -#}
with

published as (

    select * from {{ ref('stg_eurostat__published_figures') }}

),

returns as (

    select period, period_start, period_grain, geo, citizen, measure, persons, obs_flag
    from {{ ref('fct_returns') }}

),

classified as (

    select
        *,
        regexp_extract(indicator, '^(ordered_to_leave|returned_to_third_country|returned)', 1) as measure,
        case
            when indicator in ('ordered_to_leave', 'returned', 'returned_to_third_country') then 'level'
            when indicator like '%_pct_change_yoy' then 'change_yoy'
            when indicator like '%_pct_change_qoq' then 'change_qoq'
            else 'share'
        end as indicator_kind
    from published

),

compared as (

    select
        classified.*,
        current_period.persons as warehouse_persons,
        current_period.obs_flag as warehouse_flag,
        previous_period.persons as warehouse_previous_persons,
        case classified.indicator_kind
            when 'level' then current_period.persons::double
            when 'change_yoy' then round(100.0 * (current_period.persons / nullif(previous_period.persons, 0) - 1), 1)
            when 'change_qoq' then round(100.0 * (current_period.persons / nullif(previous_period.persons, 0) - 1), 1)
        end as warehouse_value
    from classified
    left join returns as current_period
        on current_period.period = classified.period
        and current_period.geo = classified.geo
        and current_period.citizen = classified.citizen
        and current_period.measure = classified.measure
    left join returns as previous_period
        on previous_period.geo = classified.geo
        and previous_period.citizen = classified.citizen
        and previous_period.measure = classified.measure
        and previous_period.period_grain = classified.period_grain
        and previous_period.period_start = case classified.indicator_kind
            when 'change_yoy' then classified.period_start - interval 1 year
            when 'change_qoq' then classified.period_start - interval 3 month
        end

),

with_tolerance as (

    select
        *,
        case
            when indicator_kind = 'level'
                then greatest(5, power(10, length(regexp_extract(published_value::bigint::varchar, '0*$')))) / 2
            when published_value != round(published_value) then 0.05
            else 0.5
        end as tolerance
    from compared

),

final as (

    select
        -- grain
        period,
        period_start,
        geo,
        citizen,

        -- labels (marts.dim_country, through Eurostat's code)
        geo_country.country_name as geo_label,
        citizen_country.country_name as citizen_label,

        indicator,
        indicator_kind,

        -- published
        published_value,
        published_on,
        published_note,
        source_url,

        -- warehouse
        warehouse_value,
        round(warehouse_value - published_value, 2) as difference,
        tolerance,
        case
            when indicator_kind = 'share' then 'not_reconciled'
            when warehouse_value is null then 'not_in_warehouse'
            when warehouse_value = published_value then 'match'
            when abs(warehouse_value - published_value) <= tolerance then 'match_within_rounding'
            else 'differs'
        end as status,
        row_number() over (order by published_on desc nulls last, period_start desc, source_row)
            as listing_order,

        -- lineage
        source_row

    from with_tolerance
    left join {{ ref('dim_country') }} as geo_country
        on geo_country.eurostat_code = with_tolerance.geo
    left join {{ ref('dim_country') }} as citizen_country
        on citizen_country.eurostat_code = with_tolerance.citizen

)

select * from final
order by listing_order
