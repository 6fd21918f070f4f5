{#- Rows that the actions seed puts in one action must agree: one fund and one parent per
    action, and one amount per stage and date (a restatement with another amount would make
    the fact pick one). -#}
with rows as (
    select * from {{ ref('stg_registries__funding_commitments') }} where amount_eur is not null
),
per_action as (
    select action_key, 'fund or parent differs' as problem,
           list(distinct fund_code) as funds, list(distinct coalesce(parent_action_key, '-')) as parents,
           null::double[] as amounts
    from rows group by action_key
    having count(distinct fund_code) > 1 or count(distinct coalesce(parent_action_key, '-')) > 1
),
per_stage as (
    select action_key, 'amount differs for one stage and date' as problem,
           null::varchar[] as funds, null::varchar[] as parents, list(distinct amount_eur) as amounts
    from rows group by action_key, stage, as_of_date
    having count(distinct amount_eur) > 1
)
select * from per_action
union all
select * from per_stage
