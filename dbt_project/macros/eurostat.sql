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
                    {{ eurostat_vintage_order('desc') }},
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

{#- The order of Eurostat vintages, oldest first with 'asc', newest first with 'desc' (the order
    eurostat_current ranks them in, and the revisions mart and the as-of macro number them in):
    SDMX files after legacy Data Browser exports (the exports predate the API), then the update
    date (undated files first), then the load time (a later run's file of the same vintage is a
    correction), then the landing file name (which starts with the fetch time). All four are
    constant within one file, so a vintage is a file. -#}
{% macro eurostat_vintage_order(direction='asc', prefix='') %}
    {%- set nulls = 'nulls first' if direction == 'asc' else 'nulls last' -%}
    {{ eurostat_format_rank(prefix ~ 'source_format') }} {{ direction }},
                    {{ eurostat_vintage_key(prefix) }} {{ direction }} {{ nulls }},
                    {{ prefix }}loaded_at {{ direction }},
                    {{ prefix }}landing_file {{ direction }}
{%- endmacro %}

{#- SDMX files (1) rank above legacy Data Browser exports (0). -#}
{% macro eurostat_format_rank(column) -%}
    case {{ column }} when 'legacy_export' then 0 else 1 end
{%- endmacro %}

{#- The update date a file states (its last_update, else the export date its name carries). Two
    files of one dataset with the same format rank and key are the same vintage. -#}
{% macro eurostat_vintage_key(prefix='') -%}
    coalesce({{ prefix }}last_update, {{ prefix }}release_date::timestamp)
{%- endmacro %}

{#- When a landed file was fetched, from its name (`eurostat/<dataset>/<fetched_at>_<sha12>.csv`,
    `frontex/<fetched_at>_<sha12>.xlsx`), else when it was loaded. -#}
{% macro landed_at(landing_file, loaded_at) -%}
    coalesce(
        try_strptime(regexp_extract({{ landing_file }}, '(\d{8}T\d{6})\d*Z_[0-9a-f]+\.[^/]+$', 1),
                     '%Y%m%dT%H%M%S'),
        timezone('UTC', {{ loaded_at }}))
{%- endmacro %}

{#- The dimensions of an observation as one JSON text (`{"age": "TOTAL", "sex": "T", "unit":
    "PER"}`, keys sorted, the loader's spelling), with sex, age and unit filled in as totals where
    the file has no such column (legacy exports: absent means total, as in eurostat_current), so
    that a legacy export and an SDMX file state the same observation under the same key. -#}
{% macro eurostat_observation_dimensions(column='dimensions') -%}
    ('{' || array_to_string(list_transform(
        list_sort(list_distinct(list_concat(json_keys({{ column }}), ['age', 'sex', 'unit']))),
        lambda k: '"' || k || '": "' || coalesce(json_extract_string({{ column }}, '$.' || k),
            case k when 'age' then 'TOTAL' when 'sex' then 'T' else 'PER' end) || '"'), ', ')
     || '}')
{%- endmacro %}

{#- The dimensions as people read them (`age: Total, sex: Total, unit: Person`): each code's
    label as the file published it, else the label of the implied totals, else the code. -#}
{% macro eurostat_dimensions_label(dimensions, labels) -%}
    array_to_string(list_transform(json_keys({{ dimensions }}),
        lambda k: k || ': ' || coalesce(
            json_extract_string({{ labels }}, '$.' || k),
            case json_extract_string({{ dimensions }}, '$.' || k)
                when 'T' then 'Total' when 'TOTAL' then 'Total' when 'PER' then 'Person' end,
            json_extract_string({{ dimensions }}, '$.' || k))), ', ')
{%- endmacro %}
