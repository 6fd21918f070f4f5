{#- Detections of irregular border crossings, as every loaded Frontex release states them.
    Releases revise recent months: filter on one release_date (the latest for current figures).
    A release re-issued as a correction counts once, with its newest file; superseded files are
    in staging and in the revision history.

    Incremental by release (decision 76): a run rebuilds only the releases whose current file is
    not the one this table holds (a new release, or a correction of one), deleting that release's
    rows first; the other releases' rows stay as they were published. Every run that could change
    more (code changed, a file left the warehouse, --rebuild, the first build) runs with
    --full-refresh, decided in check_for_changes. -#}
{{ config(
    materialized='incremental',
    unique_key='release_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail'
) }}
-- depends_on: {{ ref('stg_frontex__detections') }}

select * exclude (is_current_correction)
from {{ ref('int_frontex__detections_keyed') }}
where is_current_correction
{% if is_incremental() %}
    and release_date in (
        select release_date from (
            select distinct release_date, sha256
            from {{ ref('stg_frontex__detections') }}
            where is_current_correction
            except
            select distinct release_date, sha256 from {{ this }}
        )
    )
{% endif %}
