{{ config(materialized='view', schema='quality', tags=['quality']) }}
{#- Per Eurostat returns dataset: the published (non-missing) observations of the vintage staging
    reads that a measure maps (seed eurostat_return_measures), against those that reached
    marts.fct_returns with the same value. The filters (all sexes and ages, persons, the newest
    vintage of each observation) are staging's own (macros/eurostat.sql), not written again
    here; the mart audit fct_returns_totals expects both counts and both totals to be equal, so
    a join that drops, doubles or changes an observation on its way to the fact blocks publish.
    A view, so that the audit reads the fact as it is when audited. -#}
with

staged as (

    select flow, dataset, period, geo, citizen, detail, obs_value
    from {{ ref('stg_eurostat__orders_to_leave') }}
    union all by name
    select flow, dataset, period, geo, citizen, detail, obs_value
    from {{ ref('stg_eurostat__returns') }}
    union all by name
    select flow, dataset, period, geo, citizen, detail, obs_value
    from {{ ref('stg_eurostat__returns_by_type') }}
    union all by name
    select flow, dataset, period, geo, citizen, detail, obs_value
    from {{ ref('stg_eurostat__returns_by_assistance') }}

),

mapped as (

    select staged.*, measures.measure
    from staged
    inner join {{ ref('eurostat_return_measures') }} as measures
        on measures.flow = staged.flow and measures.detail = staged.detail
    where staged.obs_value is not null

),

fact as (

    select dataset, period, geo, citizen, measure, persons
    from {{ ref('fct_returns') }}

)

select
    mapped.dataset,
    count(*)::bigint as raw_cells,
    (count(fact.persons) filter (where fact.persons = mapped.obs_value))::bigint as cells_in_fact,
    sum(mapped.obs_value)::bigint as raw_persons,
    coalesce(sum(fact.persons) filter (where fact.persons = mapped.obs_value), 0)::bigint
        as fact_persons
from mapped
left join fact using (dataset, period, geo, citizen, measure)
group by mapped.dataset
