{#- Third-country nationals ordered to leave, annual (migr_eiord) and quarterly (migr_eiord1),
    all sexes and ages; the newest vintage of each observation. -#}
with

current_observations as (

    {{ eurostat_current(['migr_eiord', 'migr_eiord1']) }}

),

renamed as (

    select
        'ordered_to_leave' as flow,
        'TOTAL' as detail,
        *
    from current_observations

)

select * from renamed
