{#- Detections of irregular border crossings, as every loaded Frontex release states them.
    Releases revise recent months: filter on one release_date (the latest for current figures). -#}
with

detections as (

    select * from {{ ref('stg_frontex__detections') }}

),

nationalities as (

    select * from {{ ref('frontex_nationalities') }}

),

routes as (

    select * from {{ ref('dim_route') }}

),

final as (

    select
        -- grain
        detections.month,
        detections.route,
        detections.border_type,
        detections.nationality,
        detections.release_date,

        -- keys
        routes.route_key,
        nationalities.country_key as nationality_country_key,

        -- measures
        detections.detections,

        -- lineage
        detections.landing_file,
        detections.sha256,
        detections.source_row

    from detections
    left join nationalities on nationalities.frontex_label = detections.nationality
    left join routes on routes.route = detections.route

)

select * from final
