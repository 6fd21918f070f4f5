{#- Every change of a Eurostat observation's value from one vintage to the next, vintages of a
    dataset in the order staging ranks them (rpt_eurostat_vintages, macro
    eurostat_vintage_order): the last vintage of an observation is the one staging publishes.

    An observation is (dataset, freq, period, geo, citizen, dimensions), with sex, age and unit
    filled in as totals where a legacy export has no such column, so a legacy export and an
    SDMX file of the same cell compare. Each observation is compared only across the vintages
    that state it: Eurostat files are extracts (a file may hold a few countries or years), so a
    missing observation is not a removal, and an observation first stated in a later vintage is
    a first publication, not a revision. A value that becomes missing (`:`) or stops being
    missing is a change (value NULL on that side, revision NULL). A change to the flags only is
    not listed. `is_correction`: the vintage has the same format and update date as the
    previous vintage of this observation, i.e. a file re-issued and loaded in a later run (files
    of one vintage loaded in the same run that disagree fail assert_eurostat_vintages_agree, so
    they never reach this mart). -#}
with

vintages as (

    select * from {{ ref('rpt_eurostat_vintages') }}

),

observations as (

    select
        observations.dataset,
        observations.freq,
        observations.time_period as period,
        observations.geo,
        observations.citizen,
        {{ eurostat_observation_dimensions('observations.dimensions') }} as dimensions,
        observations.dimension_labels,
        observations.obs_value,
        observations.obs_flag,
        vintages.vintage_number,
        vintages.vintage_label,
        vintages.source_format,
        {{ eurostat_format_rank('vintages.source_format') }} as format_rank,
        {{ eurostat_vintage_key('vintages.') }} as vintage_key,
        observations.landing_file
    from {{ source('eurostat', 'observations') }} as observations
    inner join vintages
        on vintages.dataset = observations.dataset
       and vintages.landing_file = observations.landing_file
    -- one row per observation and file (as staging, the first row of a file that repeats one)
    qualify row_number() over (
        partition by observations.dataset, observations.freq, observations.time_period,
            observations.geo, observations.citizen,
            {{ eurostat_observation_dimensions('observations.dimensions') }},
            observations.landing_file
        order by observations.source_row
    ) = 1

),

histories as (

    select
        *,
        lag(obs_value) over by_vintage as previous_obs_value,
        lag(obs_flag) over by_vintage as previous_obs_flag,
        lag(vintage_number) over by_vintage as previous_vintage_number,
        lag(vintage_label) over by_vintage as previous_vintage_label,
        lag(format_rank) over by_vintage as previous_format_rank,
        lag(vintage_key) over by_vintage as previous_vintage_key,
        first(vintage_label) over by_vintage as first_vintage_label,
        first(obs_value) over by_vintage as first_obs_value,
        row_number() over by_vintage = count(*) over by_observation as is_current_vintage
    from observations
    window
        by_observation as (partition by dataset, freq, period, geo, citizen, dimensions),
        by_vintage as (partition by dataset, freq, period, geo, citizen, dimensions
                       order by vintage_number
                       rows between unbounded preceding and current row)

),

final as (

    select
        -- grain
        dataset,
        freq,
        period,
        geo,
        citizen,
        dimensions,
        vintage_number,

        -- labels
        {{ eurostat_dimensions_label('dimensions', 'dimension_labels') }} as dimensions_label,
        period || ' ' || geo || ' x ' || citizen || ', '
            || {{ eurostat_dimensions_label('dimensions', 'dimension_labels') }} as cell_label,

        -- the vintage
        vintage_label,
        source_format,
        format_rank = previous_format_rank
            and vintage_key is not distinct from previous_vintage_key as is_correction,
        is_current_vintage,

        -- the change
        previous_vintage_number,
        previous_vintage_label,
        previous_obs_value,
        obs_value,
        obs_value - previous_obs_value as revision,
        previous_obs_flag,
        obs_flag,
        row_number() over (
            partition by dataset, freq, period, geo, citizen, dimensions order by vintage_number
        ) as revision_number,

        -- the first publication
        first_vintage_label,
        first_obs_value,

        -- lineage
        landing_file

    from histories
    where previous_vintage_number is not null
      and obs_value is distinct from previous_obs_value

)

select * from final
