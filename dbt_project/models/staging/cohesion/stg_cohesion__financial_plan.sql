{#- Cohesion Open Data 9qee-iv7c, "2021-2027 Financial Plan details by year (All CPR funds)":
    the financial allocation of each programme, for the home-affairs funds (`total` over the
    programming years). One snapshot per snapshot date. -#}
with

source as (

    select * from {{ source('cohesion', 'records') }}
    where dataset_id = '9qee-iv7c'
      and fund in ('AMIF', 'BMVI', 'ISF')

),

latest_per_snapshot as (

    select * from source
    where sha256 in (
        select arg_max(sha256, loaded_at) from source group by snapshot_date
    )

),

renamed as (

    select
        -- ids
        cci,
        ms,
        fund as fund_code,
        json_extract_string(record, '$.cci_title') as programme_title,
        json_extract_string(record, '$.financial_allocation_category') as allocation_category,

        -- numerics
        cast(json_extract_string(record, '$.total') as double) as eu_amount_eur,

        -- snapshot
        snapshot_date,
        snapshot_date_basis,
        is_complete_snapshot,
        completeness_note,

        -- lineage
        landing_file,
        sha256,
        source_row

    from latest_per_snapshot

)

select * from renamed
