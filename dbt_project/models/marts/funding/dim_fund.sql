{#- The funds and instruments money comes from: EU funds (AMIF, BMVI, ISF, NDICI, IPA ...),
    modalities the sources name as such (budget support), and `OTHER` where a source names none. -#}
with

funds as (

    select * from {{ ref('funds') }}

),

final as (

    select
        -- ids
        fund_code,

        -- labels
        fund_name,
        registry_label,
        management_mode,
        mff_heading,
        policy_area,
        note

    from funds

)

select * from final
