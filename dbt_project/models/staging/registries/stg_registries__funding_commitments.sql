{#- The funding commitments registry, newest landed version, each row placed in its action:
    rows that restate an action or give a later stage of it share its action_key; parts of a
    larger amount point at it (parent_action_key), so no total counts them twice
    (reference.funding_registry_actions, from the registry's NOTES). The partner becomes a
    country where the row names exactly one. -#}
with

source as (

    select * from {{ source('registries', 'funding_commitments') }}
    where sha256 = (
        select arg_max(sha256, loaded_at) from {{ source('registries', 'funding_commitments') }}
    )

),

actions as (

    select * from {{ ref('funding_registry_actions') }}

),

aliases as (

    select * from {{ ref('country_name_aliases') }}

),

countries as (

    select * from {{ ref('dim_country') }}

),

placed as (

    select
        source.*,
        coalesce(
            actions.action_key,
            trim(regexp_replace(lower(source.action_title), '[^a-z0-9]+', '_', 'g'), '_')
        ) as action_key,
        actions.parent_action_key,
        coalesce(actions.relation, 'first_mention') as relation,
        -- 'Türkiye; ICMPD' -> Türkiye; 'Lebanon (incl. Syrian refugees ...)' -> Lebanon
        trim(regexp_replace(split_part(source.beneficiary_or_partner, ';', 1), '\s*\(.*\)\s*$', '')) as partner_label
    from source
    left join actions on actions.action_title = source.action_title

),

renamed as (

    select
        -- ids
        placed.action_key,
        placed.parent_action_key,
        placed.relation,
        placed.action_title,
        placed.fund_code,
        placed.instrument,
        placed.stage,
        placed.direction,

        -- partner
        placed.beneficiary_or_partner,
        coalesce(aliases.country_code, countries.country_code) as country_code,

        -- numerics
        placed.amount_eur,

        -- dates
        placed.as_of_date,
        placed.as_of_precision,
        placed.period,

        -- citation
        placed.source as citation_source,
        placed.quote as citation_quote,
        placed.note,

        -- lineage
        placed.landing_file,
        placed.sha256,
        placed.source_row

    from placed
    left join aliases on aliases.label = placed.partner_label
    left join countries
        on countries.country_name = placed.partner_label
        and not countries.is_aggregate

)

select * from renamed
