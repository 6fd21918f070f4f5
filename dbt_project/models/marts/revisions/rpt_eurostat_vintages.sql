{#- Every loaded Eurostat file as a vintage of its dataset, numbered per dataset in the order
    eurostat_current ranks them (macro eurostat_vintage_order): SDMX after legacy exports, then
    the update date (undated first), then the load time, then the landing file.

    A file with the same format and update date as the file before it, loaded in a later run,
    is a correction of that vintage (`is_correction`) and supersedes it; files of one vintage
    loaded in the same run are extracts of it, and where they disagree the test
    assert_eurostat_vintages_agree fails the build.

    `counts_from` is the first day the vintage's figures stood: the update date the file states
    (last_update, else the export date in a legacy file's name); for an undated file, or a
    correction, the day it was landed. The as-of macro `eurostat_observations_as_of(d)`,
    created by this model's post-hook, reads this table. -#}
{{ config(post_hook=["{{ create_eurostat_observations_as_of() }}"]) }}
with

observations as (

    select * from {{ source('eurostat', 'observations') }}

),

loads as (

    select landing_file, sha256, any_value(run_id) as run_id
    from {{ source('eurostat', 'load_log') }}
    group by landing_file, sha256

),

files as (

    select
        dataset,
        landing_file,
        any_value(sha256) as sha256,
        any_value(source_format) as source_format,
        any_value(last_update) as last_update,
        any_value(release_date) as release_date,
        min(loaded_at) as loaded_at,
        count(*) as observations
    from observations
    group by dataset, landing_file

),

numbered as (

    select
        files.*,
        loads.run_id,
        row_number() over (
            partition by files.dataset order by {{ eurostat_vintage_order('asc', 'files.') }}
        ) as vintage_number,
        {{ eurostat_format_rank('files.source_format') }} as format_rank,
        {{ eurostat_vintage_key('files.') }} as vintage_key,
        {{ landed_at('files.landing_file', 'files.loaded_at') }} as landed_at
    from files
    left join loads using (landing_file, sha256)

),

corrections as (

    select
        *,
        -- the file before it is of the same vintage (format and update date) and was loaded
        -- by an earlier run (files of one vintage loaded together are extracts of it, and must
        -- agree: test assert_eurostat_vintages_agree)
        coalesce(
            lag(format_rank) over by_vintage = format_rank
                and lag(vintage_key) over by_vintage is not distinct from vintage_key
                and lag(run_id) over by_vintage is distinct from run_id,
            false) as is_correction
    from numbered
    window by_vintage as (partition by dataset order by vintage_number)

),

final as (

    select
        -- grain
        dataset,
        landing_file,

        -- order
        vintage_number,
        is_correction,
        vintage_number = count(*) over (partition by dataset) as is_newest,
        coalesce(last_update::varchar, release_date::varchar,
                 'undated ' || source_format || ' file loaded ' || strftime(loaded_at, '%Y-%m-%d'))
            as vintage_label,

        -- as of
        landed_at,
        case
            when vintage_key is null or is_correction
                then greatest(vintage_key::date, landed_at::date)
            else vintage_key::date
        end as counts_from,

        -- the file
        source_format,
        last_update,
        release_date,
        observations,

        -- lineage
        sha256,
        run_id,
        loaded_at

    from corrections

)

select * from final
