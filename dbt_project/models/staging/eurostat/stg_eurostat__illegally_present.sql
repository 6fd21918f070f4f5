{#- Third-country nationals found to be illegally present (migr_eipre), all sexes and ages, by
    reason and place of apprehension (`TOTAL` for all; other codes WH_* are project codes for
    labels whose Eurostat codes could not be confirmed offline, see reference.eurostat_labels).
    Context for returns. -#}
with

current_observations as (

    {{ eurostat_current(['migr_eipre'], {
        'reason': "coalesce(json_extract_string(dimensions, '$.reason'), 'TOTAL')",
        'apprehension': "coalesce(json_extract_string(dimensions, '$.apprehen'), 'TOTAL')"
    }) }}

),

renamed as (

    select * from current_observations

)

select * from renamed
