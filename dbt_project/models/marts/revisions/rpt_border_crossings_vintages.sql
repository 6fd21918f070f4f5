{#- Every loaded Frontex file as a vintage: a release (its `FRAN data as of` date) and, when the
    publisher re-issued it under the same date, each correction, numbered in landing order by
    staging. Vintages are ordered by release date, then correction number.

    `counts_from` is the first day the vintage's figures stood: a release's first file from its
    release date (an archived workbook landed years later still counts from the day Frontex
    published it); a correction from the day it was landed (the workbook states no date of its
    own, and landing is the earliest the warehouse knew it). The as-of macro
    `border_crossings_as_of(d)`, created by this model's post-hook, reads this table and
    int_frontex__detections_keyed (hence the dependency below). -#}
-- depends_on: {{ ref('int_frontex__detections_keyed') }}
{{ config(post_hook=["{{ create_border_crossings_as_of() }}"]) }}
with

detections as (

    select * from {{ ref('stg_frontex__detections') }}

),

files as (

    select
        release_date,
        correction_number,
        any_value(is_current_correction) as is_current_correction,
        any_value(landing_file) as landing_file,
        any_value(sha256) as sha256,
        min(loaded_at) as loaded_at,
        count(*) as cells,
        sum(detections)::bigint as detections,
        max(month) as last_month
    from detections
    group by release_date, correction_number

),

final as (

    select
        -- grain
        release_date,
        correction_number,

        -- order
        row_number() over (order by release_date, correction_number) as vintage_number,
        correction_number > 1 as is_correction,
        is_current_correction,
        release_date::varchar
            || case when correction_number > 1 then ' correction ' || correction_number else '' end
            as vintage_label,

        -- as of
        {{ landed_at('landing_file', 'loaded_at') }} as landed_at,
        case
            when correction_number = 1 then release_date
            else greatest(release_date, ({{ landed_at('landing_file', 'loaded_at') }})::date)
        end as counts_from,

        -- contents
        cells,
        detections,
        last_month,

        -- lineage
        landing_file,
        sha256,
        loaded_at

    from files

)

select * from final
