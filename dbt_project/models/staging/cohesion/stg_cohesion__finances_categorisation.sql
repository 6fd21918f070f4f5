{#- Cohesion Open Data hgyj-gyin, "2021-2027 Finances details (categorisation, multi funds)":
    EU amounts planned per category of intervention of each programme, for the home-affairs
    funds. Each category belongs to one dimension type (Intervention Field, Type of Action ...),
    and each dimension type splits the same programme amount again: sum within one dimension
    type only. One snapshot per snapshot date (the latest loaded for that date). -#}
with

source as (

    select * from {{ source('cohesion', 'records') }}
    where dataset_id = 'hgyj-gyin'
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
        json_extract_string(record, '$.programme_title_short') as programme_title,
        json_extract_string(record, '$.dimension_type') as dimension_type,
        json_extract_string(record, '$.category_code') as category_code,
        json_extract_string(record, '$.category_name') as category_name,
        json_extract_string(record, '$.priority_code') as priority_code,
        json_extract_string(record, '$.specific_objective_code') as specific_objective_code,
        json_extract_string(record, '$.status') as programme_status,
        json_extract_string(record, '$.version') as programme_version,

        -- numerics
        cast(json_extract_string(record, '$.eu_amount') as double) as eu_amount_eur,
        cast(json_extract_string(record, '$.total_amount') as double) as total_amount_eur,

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
