{#- The readmission registry, newest landed version: one event per row, read through
    reference.readmission_event_effects. `event_key` identifies an event across versions of the
    registry (country, instrument type, title, status), so the snapshot snp_readmission_events
    keeps the history of an edited date or note instead of losing it. -#}
with

source as (

    select * from {{ source('registries', 'readmission_events') }}
    where sha256 = (
        select arg_max(sha256, loaded_at) from {{ source('registries', 'readmission_events') }}
    )

),

renamed as (

    select
        -- ids
        md5(concat_ws('|', coalesce(iso2, 'EU-wide'), instrument_type, title, status)) as event_key,
        iso2 as country_code,
        third_country,
        instrument_type,
        status,
        effect,
        scope,
        title,

        -- dates (first and last day the stated precision allows; no day invented)
        event_date,
        event_date_last,
        event_date_precision,

        -- citation and confidence
        legal_reference,
        source as citation_source,
        note,
        has_caveat,

        -- lineage
        landing_file,
        sha256,
        source_row

    from source

)

select * from renamed
