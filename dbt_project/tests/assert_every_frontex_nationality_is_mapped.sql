{#- Every nationality label in every loaded Frontex release maps to dim_country through the
    frontex_nationalities seed. A new label in a release fails the build here, by name, instead
    of being dropped by a join. Fix: add it to seeds/frontex_nationalities.csv. -#}
select distinct
    detections.nationality as unmapped_frontex_label,
    detections.release_date,
    detections.landing_file
from {{ ref('stg_frontex__detections') }} as detections
left join {{ ref('frontex_nationalities') }} as nationalities
    on nationalities.frontex_label = detections.nationality
where nationalities.country_code is null
