{#- As-of: the figures as they stood on a past date, as DuckDB table macros in the built (and
    published) database, created by the post-hooks of the vintage models. Table names inside
    are written without the database name, so the macros work whatever the file is called;
    open the file itself (not ATTACHed under another name) to call them.

      select * from marts.border_crossings_as_of(DATE '2025-06-30')
      select * from marts.eurostat_observations_as_of(DATE '2020-01-01')
-#}

{#- Frontex detections as they stood on `d`: the newest release with release_date <= d, in its
    newest file that counted by then (a correction counts from the day it was landed; see
    rpt_border_crossings_vintages). Columns as marts.fct_border_crossings. -#}
{% macro create_border_crossings_as_of() %}
    create or replace macro {{ this.schema }}.border_crossings_as_of(d) as table
    with vintage as (
        select release_date, correction_number
        from {{ this.include(database=False) }}
        where counts_from <= d::date
        order by release_date desc, correction_number desc
        limit 1
    )
    select detections.* exclude (is_current_correction)
    from {{ ref('int_frontex__detections_keyed').include(database=False) }} as detections
    inner join vintage using (release_date, correction_number)
{% endmacro %}

{#- Eurostat observations as they stood on `d`: for each observation (dataset, freq, period,
    geo, citizen, dimensions with implied totals filled in), its value in the newest vintage
    that counted by then, newest in the order eurostat_current uses (see rpt_eurostat_vintages:
    a dated file counts from its update date, an undated one or a correction from the day it
    was landed). Every dimension is kept: filter sex, age and unit as needed. -#}
{% macro create_eurostat_observations_as_of() %}
    create or replace macro {{ this.schema }}.eurostat_observations_as_of(d) as table
    select * exclude (as_of_rank)
    from (
        select
            observations.dataset,
            observations.freq,
            observations.time_period as period,
            observations.geo,
            observations.citizen,
            {{ eurostat_observation_dimensions('observations.dimensions') }} as dimensions,
            observations.obs_value,
            observations.obs_flag,
            observations.conf_status,
            vintages.vintage_number,
            vintages.vintage_label,
            vintages.counts_from,
            observations.source_format,
            observations.last_update,
            observations.release_date,
            observations.landing_file,
            observations.source_row,
            row_number() over (
                partition by observations.dataset, observations.freq, observations.time_period,
                    observations.geo, observations.citizen,
                    {{ eurostat_observation_dimensions('observations.dimensions') }}
                order by vintages.vintage_number desc, observations.source_row
            ) as as_of_rank
        from {{ source('eurostat', 'observations').include(database=False) }} as observations
        inner join {{ this.include(database=False) }} as vintages
            on vintages.dataset = observations.dataset
           and vintages.landing_file = observations.landing_file
        where vintages.counts_from <= d::date
    )
    where as_of_rank = 1
{% endmacro %}
