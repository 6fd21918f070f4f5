{#- Every loaded Frontex file's cells with their keys: the route in dim_route and the
    nationality in dim_country. One place for the mapping that marts.fct_border_crossings (the
    current file of each release) and the as-of macro border_crossings_as_of(d) (the file that
    stood on a date, which may since have been superseded) both read. -#}
with

detections as (

    select * from {{ ref('stg_frontex__detections') }}

),

nationalities as (

    select * from {{ ref('frontex_nationalities') }}

),

routes as (

    select * from {{ ref('frontex_routes') }}

),

countries as (

    select * from {{ ref('country_codes') }}

),

final as (

    select
        -- grain
        detections.month,
        detections.route,
        detections.border_type,
        detections.nationality,
        detections.release_date,
        detections.correction_number,

        -- keys
        routes.route_key,
        nationalities.country_code as nationality_country_code,

        -- labels
        countries.country_name as nationality_country_name,

        -- measures
        detections.detections,

        -- lineage
        detections.landing_file,
        detections.sha256,
        detections.source_row,

        -- corrections
        detections.is_current_correction

    from detections
    left join nationalities on nationalities.frontex_label = detections.nationality
    left join routes on routes.route = detections.route
    left join countries on countries.country_code = nationalities.country_code

)

select * from final
