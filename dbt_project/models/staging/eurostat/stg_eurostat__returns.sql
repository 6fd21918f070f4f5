{#- Third-country nationals returned following an order to leave, annual (migr_eirtn) and
    quarterly (migr_eirtn1), all sexes and ages, by destination (`c_dest`: TOTAL all countries,
    THRD third countries). Legacy exports carry INDIC_MG instead of c_dest; its labels map to the
    same codes (reference.eurostat_labels). -#}
with

current_observations as (

    {{ eurostat_current(['migr_eirtn', 'migr_eirtn1'], {
        'detail': "coalesce(json_extract_string(dimensions, '$.c_dest'), json_extract_string(dimensions, '$.indic_mg'))"
    }) }}

),

renamed as (

    select
        'returns' as flow,
        *
    from current_observations

)

select * from renamed
