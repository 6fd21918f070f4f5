{#- Shared by the Eurostat staging models: one way to read raw.eurostat_observations.

    eurostat_current(datasets, details) selects the observations of `datasets` for all sexes,
    all ages and persons (legacy exports have no sex/age/unit columns: absent means total),
    adds one column per entry of `details` (name -> SQL expression over the row), and keeps,
    for each cell (dataset, freq, period, geo, citizen, details), the value of the newest
    vintage: SDMX files before legacy Data Browser exports (the exports predate the API), then
    the latest `last_update` / release date, then the latest load. Files of one vintage that
    disagree on a cell are caught by the test assert_eurostat_vintages_agree. -#}
{% macro eurostat_current(datasets, details={}) %}
    select * exclude (vintage_rank)
    from (
        select
            -- grain
            dataset,
            freq,
            time_period as period,
            {{ eurostat_period_start('time_period') }} as period_start,
            {{ eurostat_period_grain('freq') }} as period_grain,
            geo,
            citizen,
            {%- for name, expression in details.items() %}
            {{ expression }} as {{ name }},
            {%- endfor %}

            -- measures
            obs_value,

            -- flags, as published and decoded (the letters of both codings do not overlap)
            obs_flag,
            conf_status,
            obs_value is null as is_missing,
            coalesce(contains(obs_flag, 'p'), false) as is_provisional,
            coalesce(regexp_matches(obs_flag, '[esi]'), false) as is_estimated,
            coalesce(contains(obs_flag, 'c'), false) or coalesce(conf_status in ('C', 'N', 'P', 'D'), false) as is_confidential,
            coalesce(contains(obs_flag, 'b'), false) as has_break,
            coalesce(contains(obs_flag, 'd'), false) as definition_differs,
            coalesce(contains(obs_flag, 'u'), false) as low_reliability,

            -- lineage
            source_format,
            last_update,
            release_date,
            landing_file,
            sha256,
            source_row,
            loaded_at,

            row_number() over (
                partition by dataset, freq, time_period, geo, citizen
                    {%- for name, expression in details.items() %}, {{ expression }}{% endfor %}
                order by
                    case source_format when 'legacy_export' then 0 else 1 end desc,
                    coalesce(last_update, release_date::timestamp) desc nulls last,
                    loaded_at desc,
                    landing_file desc,
                    source_row
            ) as vintage_rank

        from {{ source('eurostat', 'observations') }}
        where dataset in ({% for d in datasets %}'{{ d }}'{% if not loop.last %}, {% endif %}{% endfor %})
          and coalesce(json_extract_string(dimensions, '$.sex'), 'T') = 'T'
          and coalesce(json_extract_string(dimensions, '$.age'), 'TOTAL') = 'TOTAL'
          and coalesce(json_extract_string(dimensions, '$.unit'), 'PER') = 'PER'
    )
    where vintage_rank = 1
{% endmacro %}

{#- First day of a Eurostat period: 2015, 2024-Q3, 2024-S2, 2024-07. -#}
{% macro eurostat_period_start(column) %}
    case
        when regexp_matches({{ column }}, '^\d{4}$') then make_date(cast({{ column }} as integer), 1, 1)
        when regexp_matches({{ column }}, '^\d{4}-Q[1-4]$')
            then make_date(cast(left({{ column }}, 4) as integer), 3 * cast(right({{ column }}, 1) as integer) - 2, 1)
        when regexp_matches({{ column }}, '^\d{4}-S[12]$')
            then make_date(cast(left({{ column }}, 4) as integer), 6 * cast(right({{ column }}, 1) as integer) - 5, 1)
        when regexp_matches({{ column }}, '^\d{4}-\d{2}$')
            then make_date(cast(left({{ column }}, 4) as integer), cast(right({{ column }}, 2) as integer), 1)
    end
{% endmacro %}

{% macro eurostat_period_grain(freq_column) %}
    case {{ freq_column }} when 'A' then 'year' when 'Q' then 'quarter' when 'S' then 'half_year' when 'M' then 'month' end
{% endmacro %}

{#- Every dimension other than sex, age and unit as one string (`c_dest=TOTAL,typ=VOL`), for
    datasets whose breakdown codes could not be confirmed offline. -#}
{% macro eurostat_breakdown() %}
    array_to_string(list_transform(list_sort(list_filter(json_keys(dimensions),
        lambda k: k not in ('sex', 'age', 'unit'))),
        lambda k: k || '=' || json_extract_string(dimensions, '$.' || k)), ',')
{% endmacro %}
