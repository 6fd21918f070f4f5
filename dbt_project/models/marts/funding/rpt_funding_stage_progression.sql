{#- How far each programme or action has got: its stage events in stage order, each with its
    amount, the amount of the first commitment-group stage (earmarked, allocated, adopted ...),
    and the share of it reached (Morocco budget support: EUR 152m allocated, EUR 79.6m paid). -#}
with

disbursements as (

    select * from {{ ref('fct_funding_disbursements') }}

),

events as (

    select
        fund_code,
        programme_or_action_key,
        country_label,
        stage,
        stage_order,
        stage_group,
        arg_max(amount_eur, as_of_date) as amount_eur,
        max(as_of_date) as as_of_date,
        any_value(fund_name) as fund_name,
        any_value(programme_or_action_title) as programme_or_action_title,
        any_value(country_code) as country_code,
        any_value(country_name) as country_name,
        any_value(source) as source,
        bool_or(is_component) as is_component
    from disbursements
    group by fund_code, programme_or_action_key, country_label, stage, stage_order, stage_group

),

first_commitment as (

    select
        fund_code,
        programme_or_action_key,
        country_label,
        arg_min(amount_eur, stage_order) as committed_eur,
        arg_min(stage, stage_order) as committed_stage
    from events
    where stage_group = 'commitment'
    group by all

),

final as (

    select
        events.fund_code,
        events.fund_name,
        events.programme_or_action_key,
        events.programme_or_action_title,
        events.country_code,
        events.country_name,
        events.country_label,
        events.source,
        events.stage,
        events.stage_order,
        events.as_of_date,
        events.amount_eur,
        lag(events.stage) over progression as previous_stage,
        count(*) over (partition by events.fund_code, events.programme_or_action_key,
                                    events.country_label) as stages_recorded,
        first_commitment.committed_stage,
        first_commitment.committed_eur,
        round(events.amount_eur / nullif(first_commitment.committed_eur, 0), 4)
            as share_of_commitment,
        events.is_component
    from events
    left join first_commitment using (fund_code, programme_or_action_key, country_label)
    window progression as (partition by events.fund_code, events.programme_or_action_key,
                                        events.country_label order by events.stage_order)

)

select * from final
