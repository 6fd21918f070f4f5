{#- Every loaded Frontex file, one row per cell it states.

    A release (its `FRAN data as of` date) may come in more than one file: the publisher re-issues
    a workbook under the same date to correct it. Files of one release are numbered in the order
    they were landed (landing file names start with the fetch time), and only the newest is
    current: `is_current_correction`. Superseded files stay here and in the revision history. -#}
with

source as (

    select * from {{ source('frontex', 'detections') }}

),

files as (

    select
        sha256,
        release_date,
        row_number() over (
            partition by release_date order by min(landing_file), sha256
        ) as correction_number,
        count(*) over (partition by release_date) as files_of_release
    from source
    group by sha256, release_date

),

renamed as (

    select
        -- grain
        source.month,
        source.route,
        source.border_type,
        source.nationality,
        source.release_date,
        files.correction_number,

        -- measures
        source.detections,

        -- corrections
        files.correction_number = files.files_of_release as is_current_correction,

        -- lineage
        source.landing_file,
        source.sha256,
        source.source_row,
        source.loaded_at

    from source
    inner join files using (sha256, release_date)

)

select * from renamed
