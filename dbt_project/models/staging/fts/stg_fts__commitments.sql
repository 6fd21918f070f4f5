{#- FTS commitments of the migration and border budget lines, the newest landed workbook of each
    year. Amounts are the beneficiary's share of the commitment (a commitment with several
    beneficiaries has a row each; its total repeats on every row, so it is not summed). -#}
with

source as (

    select * from {{ source('fts', 'commitments') }}
    where sha256 in (
        select arg_max(sha256, loaded_at) from {{ source('fts', 'commitments') }} group by fts_year
    )

),

renamed as (

    select
        -- ids
        fts_year,
        fund as fund_code,
        budget_line_number,
        budget_line_name,
        programme_name,
        commitment_reference,
        beneficiary_name,
        beneficiary_country,
        action_location,
        subject,
        responsible_department,
        management_type,
        matched_by,

        -- numerics
        amount_eur,

        -- lineage
        landing_file,
        sha256,
        source_row

    from source

)

select * from renamed
