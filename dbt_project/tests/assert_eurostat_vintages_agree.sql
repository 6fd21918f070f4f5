{#- Two files of the same vintage (format and update date), loaded in the same run, that give
    different values for the same observation: staging cannot know which is right, so the build
    fails and names the cell. A file of the same vintage loaded in a later run is a correction:
    it supersedes the earlier one (staging prefers the later load) and the revisions mart
    (rpt_eurostat_revisions, is_correction) shows the change. Different vintages may differ too:
    that is a revision, and the newer wins. -#}
with

loads as (

    select landing_file, sha256, any_value(run_id) as run_id
    from {{ source('eurostat', 'load_log') }}
    group by landing_file, sha256

),

observations as (
    select
        observations.dataset, observations.freq, observations.time_period, observations.geo,
        observations.citizen, observations.dimensions,
        {{ eurostat_format_rank('observations.source_format') }} as format_rank,
        {{ eurostat_vintage_key('observations.') }} as vintage,
        coalesce(loads.run_id, 'unknown run') as run_id,
        observations.obs_value, observations.obs_flag, observations.landing_file,
        observations.source_row
    from {{ source('eurostat', 'observations') }} as observations
    left join loads using (landing_file, sha256)
)

select
    dataset, freq, time_period, geo, citizen, dimensions, format_rank, vintage, run_id,
    list(distinct coalesce(obs_value::varchar, ':')) as values_found,
    list(landing_file || ' row ' || source_row) as found_in
from observations
group by all
having count(distinct coalesce(obs_value::varchar, ':') || '|' || coalesce(obs_flag, '')) > 1
