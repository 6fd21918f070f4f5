{#- Two landed files of the same vintage (format and update date) that give different values
    for the same observation: staging would have to pick one arbitrarily, so the build fails
    and names the cell. (Different vintages may differ: that is a revision, and the newer wins.) -#}
with observations as (
    select
        dataset, freq, time_period, geo, citizen, dimensions,
        case source_format when 'legacy_export' then 0 else 1 end as format_rank,
        coalesce(last_update, release_date::timestamp) as vintage,
        obs_value, obs_flag, landing_file, source_row
    from {{ source('eurostat', 'observations') }}
)
select
    dataset, freq, time_period, geo, citizen, dimensions, format_rank, vintage,
    list(distinct coalesce(obs_value::varchar, ':')) as values_found,
    list(landing_file || ' row ' || source_row) as found_in
from observations
group by all
having count(distinct coalesce(obs_value::varchar, ':') || '|' || coalesce(obs_flag, '')) > 1
