{{ config(materialized='table', schema='quality', tags=['quality', 'every_run', 'per_build']) }}
{#- What this build changed, down to the cell: every value that a file loaded by this build
    (macro files_loaded_by_this_build: not yet in any publish) revised, added or removed against
    the vintage before it. Frontex: route x border type x nationality x month
    (rpt_border_crossings_revisions); Eurostat: dataset x country x citizenship x other
    dimensions x period (rpt_eurostat_revisions). Against the last successful publish by
    construction: the build starts from the published warehouse, and a failed run's loads are
    thrown away with its build. Every run builds it (tag every_run): a build that selects only
    other sources must not keep an earlier build's changes. Tag per_build: it describes the
    build, not the data (a full rebuild of the same files loads none and changes no cell), so
    tests/test_incremental.py leaves it out of "incremental == rebuild". `newest_rank` is 1 for the newest
    vintage this build loaded (of Frontex; of each Eurostat dataset; every funding cell).
    Funding keeps no vintages (a new registry or snapshot file replaces its rows), so its cells
    are compared with the published rows the fact's pre-hook kept (macros/published_copy.sql),
    for the funding sources whose files this build loaded: fund x programme or action x country
    x stage, the latest as-of date of each before and after (Cohesion snapshots are cumulative,
    a registry stage event restates or updates the stage); FTS commitments are per year, so the
    year is part of the cell. -#}
with

new_files as (

    {{ files_loaded_by_this_build() }}

),

frontex as (

    select
        'frontex' as source,
        route as subject,
        route || ' / ' || border_type || ' / ' || nationality || ' / '
            || strftime(month, '%b %Y') as cell_label,
        strftime(month, '%Y-%m') as period,
        route,
        border_type,
        nationality,
        change_type,
        previous_detections::double as previous_value,
        detections::double as current_value,
        revision::double as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        is_correction,
        dense_rank() over (order by release_date desc, correction_number desc) as newest_rank,
        landing_file
    from {{ ref('rpt_border_crossings_revisions') }}
    where landing_file in (select landing_file from new_files)

),

eurostat as (

    select
        'eurostat' as source,
        dataset as subject,
        dataset || ': ' || cell_label as cell_label,
        period,
        null::varchar as route,
        null::varchar as border_type,
        null::varchar as nationality,
        case when previous_obs_value is null then 'added'
             when obs_value is null then 'removed' else 'revised' end as change_type,
        previous_obs_value::double as previous_value,
        obs_value::double as current_value,
        revision::double as change,
        previous_vintage_label as previous_release,
        vintage_label as current_release,
        is_correction,
        dense_rank() over (partition by dataset order by vintage_number desc) as newest_rank,
        landing_file
    from {{ ref('rpt_eurostat_revisions') }}
    where landing_file in (select landing_file from new_files)

),
{% set funding_kept = published_copy_exists('fct_funding_disbursements') %}
funding_now as (

    select * from {{ ref('fct_funding_disbursements') }}

),

funding_before as (

    {% if funding_kept -%}
    select * from {{ published_copy('fct_funding_disbursements') }}
    {%- else -%}
    select * from funding_now where false
    {%- endif %}

),

funding_touched as (

    -- the fact's sources (Cohesion dataset, FTS, registry) whose rows come from a new file
    select distinct source from funding_now
    where {{ 'true' if funding_kept else 'false' }}
      and landing_file in (select landing_file from new_files)

),

funding_sides as (

    select 'after' as side, * from funding_now
    where source in (select source from funding_touched)
    union all by name
    select 'before' as side, * from funding_before
    where source in (select source from funding_touched)

),

funding_latest as (

    select
        *,
        case when as_of_precision = 'year' then as_of_date end as cell_year
    from funding_sides
    qualify row_number() over (
        partition by side, fund_code, programme_or_action_key, country_label, stage, source,
                     case when as_of_precision = 'year' then as_of_date end
        order by as_of_date desc) = 1

),

funding_pairs as (

    select
        coalesce(now_.fund_code, was.fund_code) as fund_code,
        coalesce(now_.programme_or_action_title, was.programme_or_action_title,
                 now_.programme_or_action_key, was.programme_or_action_key) as title,
        coalesce(now_.country_label, was.country_label) as country_label,
        coalesce(now_.stage, was.stage) as stage,
        coalesce(now_.as_of_precision, was.as_of_precision) as as_of_precision,
        was.fund_code is not null as was_there,
        now_.fund_code is not null as is_there,
        was.amount_eur as previous_value,
        now_.amount_eur as current_value,
        was.as_of_date as previous_as_of,
        now_.as_of_date as current_as_of,
        coalesce(now_.landing_file, was.landing_file) as landing_file
    from (select * from funding_latest where side = 'after') as now_
    full outer join (select * from funding_latest where side = 'before') as was
        on now_.fund_code = was.fund_code
       and now_.programme_or_action_key = was.programme_or_action_key
       and now_.country_label = was.country_label
       and now_.stage = was.stage
       and now_.source = was.source
       and now_.cell_year is not distinct from was.cell_year

),

funding as (

    select
        split_part(landing_file, '/', 1) as source,
        fund_code as subject,
        fund_code || ' / ' || title || ' / ' || country_label || ' / ' || stage as cell_label,
        strftime(coalesce(current_as_of, previous_as_of), '%Y-%m-%d') as period,
        null::varchar as route,
        null::varchar as border_type,
        null::varchar as nationality,
        case when not was_there then 'added'
             when not is_there then 'removed' else 'revised' end as change_type,
        previous_value::double as previous_value,
        current_value::double as current_value,
        (coalesce(current_value, 0) - coalesce(previous_value, 0))::double as change,
        {{ funding_as_of_label('previous_as_of', 'as_of_precision') }} as previous_release,
        {{ funding_as_of_label('current_as_of', 'as_of_precision') }} as current_release,
        coalesce(previous_as_of = current_as_of, false) as is_correction,
        1::bigint as newest_rank,
        landing_file
    from funding_pairs
    -- a cell whose amount is the same (restated, or a later snapshot with no change) is no change
    where not (was_there and is_there and previous_value is not distinct from current_value)

)

select * from frontex
union all
select * from eurostat
union all
select * from funding

