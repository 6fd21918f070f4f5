{#- Revisions of each route's monthly total from one Frontex vintage to the next (release date,
    then correction number): the figure a reader of the route's series sees change. Cells
    missing from a vintage count as no detections; months newer than the previous vintage's
    last month are first publications and are left out (as in rpt_border_crossings_revisions,
    which lists the cells behind each change: `cells_revised`). -#}
with

vintages as (

    select * from {{ ref('rpt_border_crossings_vintages') }}

),

totals as (

    select
        detections.route,
        detections.month,
        vintages.vintage_number,
        sum(detections.detections)::bigint as detections
    from {{ ref('stg_frontex__detections') }} as detections
    inner join vintages using (release_date, correction_number)
    group by all

),

firsts as (

    select
        route, month,
        min(vintage_number) as first_vintage_number,
        arg_min(detections, vintage_number) as first_detections
    from totals
    group by all

),

paired as (

    select route, month, vintage_number, detections as current_value,
           null::hugeint as previous_value
    from totals
    where vintage_number > 1
    union all
    select route, month, vintage_number + 1, null, detections
    from totals
    where vintage_number < (select max(vintage_number) from vintages)

),

compared as (

    select
        route, month, vintage_number,
        coalesce(max(current_value), 0) as detections,
        coalesce(max(previous_value), 0) as previous_detections
    from paired
    group by all

),

cells as (

    select route, month, vintage_number, count(*) as cells_revised
    from {{ ref('rpt_border_crossings_revisions') }}
    group by all

),

final as (

    select
        -- grain
        compared.route,
        compared.month,
        vintages.release_date,
        vintages.correction_number,

        -- keys
        routes.route_key,

        -- the vintage
        vintages.vintage_number,
        vintages.vintage_label,
        vintages.is_correction,
        vintages.vintage_number = (select max(vintage_number) from vintages) as is_latest_vintage,

        -- the change
        previous.release_date as previous_release_date,
        previous.correction_number as previous_correction_number,
        previous.vintage_label as previous_vintage_label,
        compared.previous_detections::bigint as previous_detections,
        compared.detections::bigint as detections,
        (compared.detections - compared.previous_detections)::bigint as revision,
        round(100.0 * (compared.detections - compared.previous_detections)
              / nullif(compared.previous_detections, 0), 1) as revision_pct,
        coalesce(cells.cells_revised, 0) as cells_revised,

        -- the first publication
        first.release_date as first_release_date,
        firsts.first_detections::bigint as first_detections,

        -- lineage
        vintages.landing_file

    from compared
    inner join vintages on vintages.vintage_number = compared.vintage_number
    inner join vintages as previous on previous.vintage_number = compared.vintage_number - 1
    inner join firsts on firsts.route = compared.route and firsts.month = compared.month
    inner join vintages as first on first.vintage_number = firsts.first_vintage_number
    left join cells
        on cells.route = compared.route and cells.month = compared.month
       and cells.vintage_number = compared.vintage_number
    left join {{ ref('dim_route') }} as routes on routes.route = compared.route
    where compared.detections <> compared.previous_detections
      and compared.month <= least(vintages.last_month, previous.last_month)

)

select * from final
