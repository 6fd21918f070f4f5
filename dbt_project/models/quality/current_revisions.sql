{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Revisions, one row per changed cell: Frontex route totals per month changed by each vintage
    of each release (a release's first file against the release before, and every correction of
    a release against what it corrected), Eurostat observations changed by the vintage staging
    now reads. `is_newest` marks the newest release's (all of Eurostat's here); `size_rank` ranks
    by size within a source's newest. What a revision is lives in the revisions marts. -#}
with

frontex as (

    select
        'frontex' as source,
        route as subject,
        strftime(month, '%Y-%m') as cell,
        previous_detections::double as previous_value,
        detections::double as current_value,
        revision::double as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        strftime(month, '%b %Y') || ' (' || cells_revised::varchar
            || ' of its cells revised'
            || case when is_correction
                    then ', correction of release ' || release_date::varchar else '' end
            || ')' as cell_label,
        is_correction,
        first_detections::double as first_value,
        first_release_date::varchar as first_release,
        release_date in (select release_date
                         from {{ ref('fct_border_crossings_current') }}) as is_newest
    from {{ ref('rpt_border_crossings_route_revisions') }}

),

eurostat as (

    select
        'eurostat' as source,
        dataset as subject,
        period || ' ' || geo || ' x ' || citizen || ' ' || dimensions as cell,
        previous_obs_value as previous_value,
        obs_value as current_value,
        revision as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        cell_label,
        is_correction,
        first_obs_value as first_value,
        first_vintage_label as first_release,
        true as is_newest
    from {{ ref('rpt_eurostat_revisions') }}
    where is_current_vintage

),

unioned as (

    select * from frontex
    union all
    select * from eurostat

)

select
    *,
    row_number() over (partition by source, is_newest
                       order by abs(change) desc nulls last, subject, cell) as size_rank
from unioned
