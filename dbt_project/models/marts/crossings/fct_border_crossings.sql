{#- Detections of irregular border crossings, as every loaded Frontex release states them.
    Releases revise recent months: filter on one release_date (the latest for current figures).
    A release re-issued as a correction counts once, with its newest file; superseded files are
    in staging and in the revision history. -#}
select * exclude (is_current_correction)
from {{ ref('int_frontex__detections_keyed') }}
where is_current_correction
