{#- Detections of irregular border crossings, as every loaded Frontex release states them.
    Releases revise recent months: filter on one release_date (the latest for current figures).
    A release re-issued as a correction counts once, with its newest file; superseded files are
    in staging and in the revision history. -#}
with

detections as (

    select * from {{ ref('stg_frontex__detections') }}
    where is_current_correction

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
        detections.correction_number,

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
