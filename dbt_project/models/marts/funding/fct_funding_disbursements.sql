{#- Money for migration and borders, one row per fund x programme or action x member state or
    partner country x stage x as-of date x source:
    - Cohesion Open Data: EU amounts of the home-affairs national programmes, planned by category
      (hgyj-gyin, summed within ONE dimension type: Intervention Field where the programme has it)
      and allocated in the financial plan (9qee-iv7c); each snapshot is cumulative, so rows of
      different as-of dates are never added together; `is_complete_snapshot` false marks a
      partial snapshot (the recorded first page of 1000 rows);
    - FTS: legal commitments of the migration and border budget lines, by year, beneficiary
      country and budget line;
    - the commitments registry: stage events per action, with the quote and source;
      `is_component` marks amounts that are part of a larger one (count only rows with
      `counts_in_totals`). -#}
with

countries as (

    select * from {{ ref('dim_country') }}

),

categorisation as (

    select * from {{ ref('stg_cohesion__finances_categorisation') }}

),

dimension_type_chosen as (

    -- One dimension type per programme and snapshot: Intervention Field where present.
    select cci, fund_code, snapshot_date,
           arg_min(dimension_type, case when dimension_type = 'Intervention Field' then 0 else 1 end
                                   || dimension_type) as dimension_type
    from categorisation
    group by all

),

cohesion_planned as (

    select
        categorisation.fund_code,
        categorisation.cci as programme_or_action_key,
        any_value(categorisation.programme_title) as programme_or_action_title,
        any_value(countries.country_code) as country_code,
        categorisation.ms as country_label,
        'planned' as stage,
        categorisation.snapshot_date as as_of_date,
        'day' as as_of_precision,
        sum(categorisation.eu_amount_eur) as amount_eur,
        'cohesion_open_data:hgyj-gyin' as source,
        bool_and(categorisation.is_complete_snapshot) as is_complete_snapshot,
        any_value(categorisation.completeness_note) as completeness_note,
        categorisation.dimension_type,
        null::varchar as parent_action_key,
        false as is_component,
        null::varchar as citation_source,
        null::varchar as citation_quote,
        any_value(categorisation.landing_file) as landing_file,
        count(*) as source_rows
    from categorisation
    inner join dimension_type_chosen using (cci, fund_code, snapshot_date, dimension_type)
    left join countries on countries.eurostat_code = categorisation.ms
    group by categorisation.fund_code, categorisation.cci, categorisation.ms,
             categorisation.snapshot_date, categorisation.dimension_type

),

cohesion_allocated as (

    select
        plan.fund_code,
        plan.cci as programme_or_action_key,
        any_value(plan.programme_title) as programme_or_action_title,
        any_value(countries.country_code) as country_code,
        plan.ms as country_label,
        'allocated' as stage,
        plan.snapshot_date as as_of_date,
        'day' as as_of_precision,
        sum(plan.eu_amount_eur) as amount_eur,
        'cohesion_open_data:9qee-iv7c' as source,
        bool_and(plan.is_complete_snapshot) as is_complete_snapshot,
        any_value(plan.completeness_note) as completeness_note,
        null::varchar as dimension_type,
        null::varchar as parent_action_key,
        false as is_component,
        null::varchar as citation_source,
        null::varchar as citation_quote,
        any_value(plan.landing_file) as landing_file,
        count(*) as source_rows
    from {{ ref('stg_cohesion__financial_plan') }} as plan
    left join countries on countries.eurostat_code = plan.ms
    group by plan.fund_code, plan.cci, plan.ms, plan.snapshot_date

),

fts_committed as (

    select
        commitments.fund_code,
        coalesce(commitments.budget_line_number, commitments.programme_name) as programme_or_action_key,
        any_value(coalesce(commitments.budget_line_name, commitments.programme_name)) as programme_or_action_title,
        any_value(countries.country_code) as country_code,
        coalesce(commitments.beneficiary_country, 'not stated') as country_label,
        'committed' as stage,
        make_date(commitments.fts_year, 12, 31) as as_of_date,
        'year' as as_of_precision,
        sum(commitments.amount_eur) as amount_eur,
        'fts' as source,
        true as is_complete_snapshot,
        'the yearly FTS workbook, filtered to migration and border budget lines' as completeness_note,
        null::varchar as dimension_type,
        null::varchar as parent_action_key,
        false as is_component,
        null::varchar as citation_source,
        null::varchar as citation_quote,
        any_value(commitments.landing_file) as landing_file,
        count(*) as source_rows
    from {{ ref('stg_fts__commitments') }} as commitments
    left join countries
        on countries.country_name = commitments.beneficiary_country and not countries.is_aggregate
    group by commitments.fund_code, programme_or_action_key, country_label, commitments.fts_year

),

registry as (

    select
        fund_code,
        action_key as programme_or_action_key,
        arg_min(action_title, source_row) as programme_or_action_title,
        country_code,
        arg_min(beneficiary_or_partner, source_row) as country_label,
        stage,
        as_of_date,
        any_value(as_of_precision) as as_of_precision,
        max(amount_eur) as amount_eur,
        'registry:funding_commitments' as source,
        true as is_complete_snapshot,
        'curated: every amount stated in the source document' as completeness_note,
        null::varchar as dimension_type,
        any_value(parent_action_key) as parent_action_key,
        any_value(parent_action_key) is not null as is_component,
        arg_min(citation_source, source_row) as citation_source,
        arg_min(citation_quote, source_row) as citation_quote,
        any_value(landing_file) as landing_file,
        count(*) as source_rows
    from {{ ref('stg_registries__funding_commitments') }}
    where amount_eur is not null
    group by fund_code, action_key, country_code, stage, as_of_date

),

unioned as (

    select * from cohesion_planned
    union all by name
    select * from cohesion_allocated
    union all by name
    select * from fts_committed
    union all by name
    select * from registry

),

stages as (

    select * from {{ ref('funding_stages') }}

),

funds as (

    select * from {{ ref('dim_fund') }}

),

final as (

    select
        -- grain
        unioned.fund_code,
        unioned.programme_or_action_key,
        unioned.country_code,
        unioned.country_label,
        unioned.stage,
        unioned.as_of_date,
        unioned.source,

        -- labels
        funds.fund_name,
        unioned.programme_or_action_title,
        countries.country_name,
        stages.stage_order,
        stages.stage_group,
        unioned.as_of_precision,
        unioned.dimension_type,

        -- measures
        unioned.amount_eur,

        -- totals and completeness
        unioned.is_component,
        unioned.parent_action_key,
        not unioned.is_component as counts_in_totals,
        unioned.is_complete_snapshot,
        unioned.completeness_note,

        -- citation and lineage
        unioned.citation_source,
        unioned.citation_quote,
        unioned.landing_file,
        unioned.source_rows

    from unioned
    left join stages on stages.stage = unioned.stage
    left join funds on funds.fund_code = unioned.fund_code
    left join countries on countries.country_code = unioned.country_code

)

select * from final
