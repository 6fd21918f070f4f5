{#- Every nationality label in every loaded Frontex release maps to dim_country through the
    frontex_nationalities seed. A new label in a release fails the build here, by name, instead
    of being dropped by a join. Fix: add it to seeds/frontex_nationalities.csv. Read from the raw
    table, whose labels staging keeps as they are (staging's view numbers every file of every
    release first: the same labels at several times the cost). -#}
select distinct
    detections.nationality as unmapped_frontex_label,
    detections.release_date,
    detections.landing_file
from {{ source('frontex', 'detections') }} as detections
left join {{ ref('frontex_nationalities') }} as nationalities
    on nationalities.frontex_label = detections.nationality
where nationalities.country_code is null
