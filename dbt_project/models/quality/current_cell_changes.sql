{{ config(materialized='table', schema='quality', tags=['quality', 'every_run', 'per_build']) }}
{#- What this build changed, down to the cell: every value that a file loaded by this build
    (macro files_loaded_by_this_build: not yet in any publish) revised, added or removed against
    the vintage before it. Frontex: route x border type x nationality x month
    (rpt_border_crossings_revisions); Eurostat: dataset x country x citizenship x other
    dimensions x period (rpt_eurostat_revisions). Against the last successful publish by
    construction: the build starts from the published warehouse, and a failed run's loads are
    thrown away with its build. Every run builds it (tag every_run): a build that selects only
    other sources must not keep an earlier build's changes. Tag per_build: it describes the
    build, not the data (a full rebuild of the same files loads none and changes no cell), so
    tests/test_incremental.py leaves it out of "incremental == rebuild". `newest_rank` is 1 for the newest
    vintage this build loaded (of Frontex; of each Eurostat dataset). -#}
with

new_files as (

    {{ files_loaded_by_this_build() }}

),

frontex as (

    select
        'frontex' as source,
        route as subject,
        route || ' / ' || border_type || ' / ' || nationality || ' / '
            || strftime(month, '%b %Y') as cell_label,
        strftime(month, '%Y-%m') as period,
        route,
        border_type,
        nationality,
        change_type,
        previous_detections::double as previous_value,
        detections::double as current_value,
        revision::double as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        is_correction,
        dense_rank() over (order by release_date desc, correction_number desc) as newest_rank,
        landing_file
    from {{ ref('rpt_border_crossings_revisions') }}
    where landing_file in (select landing_file from new_files)

),

eurostat as (

    select
        'eurostat' as source,
        dataset as subject,
        dataset || ': ' || cell_label as cell_label,
        period,
        null::varchar as route,
        null::varchar as border_type,
        null::varchar as nationality,
        case when previous_obs_value is null then 'added'
             when obs_value is null then 'removed' else 'revised' end as change_type,
        previous_obs_value::double as previous_value,
        obs_value::double as current_value,
        revision::double as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        is_correction,
        dense_rank() over (partition by dataset order by vintage_number desc) as newest_rank,
        landing_file
    from {{ ref('rpt_eurostat_revisions') }}
    where landing_file in (select landing_file from new_files)

)

select * from frontex
union all
select * from eurostat
