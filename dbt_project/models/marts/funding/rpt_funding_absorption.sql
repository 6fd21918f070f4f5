{#- Absorption: paid / allocated, for each fund x programme or action x country where a source
    gives both, each at its latest as-of date (snapshots are cumulative: the latest is the
    current figure; they are never added across dates). -#}
with

disbursements as (

    select * from {{ ref('fct_funding_disbursements') }}

),

latest as (

    select
        fund_code,
        programme_or_action_key,
        country_label,
        stage,
        arg_max(amount_eur, as_of_date) as amount_eur,
        max(as_of_date) as as_of_date,
        any_value(fund_name) as fund_name,
        any_value(programme_or_action_title) as programme_or_action_title,
        any_value(country_code) as country_code,
        any_value(country_name) as country_name,
        any_value(source) as source,
        bool_and(is_complete_snapshot) as is_complete_snapshot
    from disbursements
    where stage in ('allocated', 'paid')
    group by fund_code, programme_or_action_key, country_label, stage

),

paired as (

    select
        allocated.fund_code,
        allocated.fund_name,
        allocated.programme_or_action_key,
        allocated.programme_or_action_title,
        allocated.country_code,
        allocated.country_name,
        allocated.country_label,
        allocated.source,
        allocated.amount_eur as allocated_eur,
        allocated.as_of_date as allocated_as_of,
        paid.amount_eur as paid_eur,
        paid.as_of_date as paid_as_of,
        allocated.is_complete_snapshot and paid.is_complete_snapshot as is_complete_snapshot
    from latest as allocated
    inner join latest as paid
        on paid.fund_code = allocated.fund_code
        and paid.programme_or_action_key = allocated.programme_or_action_key
        and paid.country_label = allocated.country_label
        and paid.stage = 'paid'
    where allocated.stage = 'allocated'

),

final as (

    select
        *,
        round(paid_eur / nullif(allocated_eur, 0), 4) as absorption_rate
    from paired

)

select * from final
