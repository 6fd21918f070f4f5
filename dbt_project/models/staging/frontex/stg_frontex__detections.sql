with

source as (

    select * from {{ source('frontex', 'detections') }}

),

renamed as (

    select
        -- grain
        month,
        route,
        border_type,
        nationality,
        release_date,

        -- measures
        detections,

        -- lineage
        landing_file,
        sha256,
        source_row,
        loaded_at

    from source

)

select * from renamed
