with

routes as (

    select * from {{ ref('frontex_routes') }}

),

final as (

    select
        -- ids
        route_key,

        -- labels
        route,
        dictionary_name,
        zones_included,
        route_order

    from routes

)

select * from final
