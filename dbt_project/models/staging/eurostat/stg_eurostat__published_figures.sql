{#- Eurostat's published headline figures, from the newest landed transcription. `published_on`
    is the first date the note names ("Data extracted on 18 March 2025 ..."), for ordering. -#}
with

source as (

    select * from {{ source('eurostat', 'published_figures') }}
    where sha256 = (
        select arg_max(sha256, loaded_at) from {{ source('eurostat', 'published_figures') }}
    )

),

renamed as (

    select
        -- grain
        period,
        {{ eurostat_period_start('period') }} as period_start,
        case when contains(period, 'Q') then 'quarter' else 'year' end as period_grain,
        geo,
        citizen,
        indicator,
        source_row,

        -- measures
        value as published_value,

        -- provenance
        source_url,
        source_title,
        extracted_date_or_data_date as published_note,
        note,
        try_strptime(
            nullif(trim(coalesce(regexp_extract(extracted_date_or_data_date,
                '(\d{1,2} )?(January|February|March|April|May|June|July|August|September|October|November|December) (\d{4})', 1), '') || ' '
                || regexp_extract(extracted_date_or_data_date,
                '(January|February|March|April|May|June|July|August|September|October|November|December) (\d{4})', 0)), ''),
            ['%d %B %Y', '%B %Y']
        )::date as published_on,

        -- lineage
        landing_file,
        sha256

    from source

)

select * from renamed
