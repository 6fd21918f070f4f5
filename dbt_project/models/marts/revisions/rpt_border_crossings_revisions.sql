{#- Every change of a Frontex cell (month x route x border type x nationality) from one vintage
    to the next: each release restates the whole series since January 2009, so each vintage is
    compared with the one before it (release date, then correction number).

    A cell stated in the previous vintage and missing from this one (for a month this vintage
    covers) is `removed`: detections NULL, revision = minus the previous value. A cell missing
    from the previous vintage although it covered that month is `added`: previous_detections
    NULL, revision = the value. (The workbook leaves empty cells empty, so a missing cell reads
    as no detections: a cell that goes from missing to 0 is no revision.) A month newer than
    the previous vintage's last month is a first publication, not a revision, and is left out;
    first_release_date and first_detections say when and how each cell was first published. -#}
with

vintages as (

    select * from {{ ref('rpt_border_crossings_vintages') }}

),

cells as (

    select
        detections.month,
        detections.route,
        detections.border_type,
        detections.nationality,
        vintages.vintage_number,
        detections.detections
    from {{ ref('stg_frontex__detections') }} as detections
    inner join vintages using (release_date, correction_number)

),

firsts as (

    select
        month, route, border_type, nationality,
        min(vintage_number) as first_vintage_number,
        arg_min(detections, vintage_number) as first_detections
    from cells
    group by all

),

-- Each vintage's cells beside the previous vintage's: a full outer join of the cells of vintage
-- n with those of vintage n - 1 (a cell in one of the two only is added or removed). Measured at
-- 10x history (11 vintages, 1.9 million cells): 0.38 s against 0.77 s for the union of both sides
-- grouped by cell and vintage, with the same rows (decision 78).
compared as (

    select
        coalesce(cur.month, prev.month) as month,
        coalesce(cur.route, prev.route) as route,
        coalesce(cur.border_type, prev.border_type) as border_type,
        coalesce(cur.nationality, prev.nationality) as nationality,
        coalesce(cur.vintage_number, prev.vintage_number + 1) as vintage_number,
        cur.detections,
        prev.detections as previous_detections,
        cur.month is not null as in_current,
        prev.month is not null as in_previous
    from (select * from cells where vintage_number > 1) as cur
    full outer join (
        select * from cells
        where vintage_number < (select max(vintage_number) from vintages)
    ) as prev
        on cur.month = prev.month
       and cur.route = prev.route
       and cur.border_type = prev.border_type
       and cur.nationality = prev.nationality
       and cur.vintage_number = prev.vintage_number + 1

),

revisions as (

    select
        compared.*,
        vintages.release_date,
        vintages.correction_number,
        vintages.is_correction,
        vintages.vintage_label,
        vintages.landing_file,
        vintages.vintage_number = (select max(vintage_number) from vintages) as is_latest_vintage,
        previous.release_date as previous_release_date,
        previous.correction_number as previous_correction_number,
        previous.vintage_label as previous_vintage_label,
        case
            when compared.in_current and compared.in_previous then 'revised'
            when compared.in_current then 'added'
            else 'removed'
        end as change_type
    from compared
    inner join vintages on vintages.vintage_number = compared.vintage_number
    inner join vintages as previous on previous.vintage_number = compared.vintage_number - 1
    where coalesce(compared.detections, 0) <> coalesce(compared.previous_detections, 0)
      and compared.month <= least(vintages.last_month, previous.last_month)

),

final as (

    select
        -- grain
        revisions.month,
        revisions.route,
        revisions.border_type,
        revisions.nationality,
        revisions.release_date,
        revisions.correction_number,

        -- the vintage
        revisions.vintage_number,
        revisions.vintage_label,
        revisions.is_correction,
        revisions.is_latest_vintage,

        -- the change
        revisions.change_type,
        revisions.previous_release_date,
        revisions.previous_correction_number,
        revisions.previous_vintage_label,
        revisions.previous_detections,
        revisions.detections,
        coalesce(revisions.detections, 0) - coalesce(revisions.previous_detections, 0) as revision,
        row_number() over (
            partition by revisions.month, revisions.route, revisions.border_type,
                revisions.nationality
            order by revisions.vintage_number
        ) as revision_number,

        -- the first publication
        first.release_date as first_release_date,
        first.correction_number as first_correction_number,
        firsts.first_detections,

        -- lineage
        revisions.landing_file

    from revisions
    inner join firsts using (month, route, border_type, nationality)
    inner join vintages as first on first.vintage_number = firsts.first_vintage_number

)

select * from final
