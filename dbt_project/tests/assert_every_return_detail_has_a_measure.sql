{{ config(severity='warn') }}
{#- Staged return breakdowns (c_dest codes, or the dimensions of migr_eirt_vol / migr_eirt_ass)
    that no row of the seed eurostat_return_measures maps to a measure: they stay out of
    fct_returns. A warning, so the first live load of a new breakdown says what to map. -#}
with details as (
    select flow, detail, count(*) as observations
    from (
        select flow, detail from {{ ref('stg_eurostat__returns') }}
        union all
        select flow, detail from {{ ref('stg_eurostat__returns_by_type') }}
        union all
        select flow, detail from {{ ref('stg_eurostat__returns_by_assistance') }}
    )
    group by all
)
select details.*
from details
left join {{ ref('eurostat_return_measures') }} as measures using (flow, detail)
where measures.measure is null
