{#- Third-country nationals who left by type of return (voluntary or enforced) (migr_eirt_vol), all sexes and ages.
    Its breakdown codes could not be confirmed offline, so the breakdown is kept whole as
    `detail` (macro eurostat_breakdown); the seed eurostat_return_measures says which details
    are which measure, and the warn-level test assert_every_return_detail_has_a_measure lists
    the details no row maps. -#}
with

current_observations as (

    {{ eurostat_current(['migr_eirt_vol'], {'detail': eurostat_breakdown()}) }}

),

renamed as (

    select 'returns_by_type' as flow, * from current_observations

)

select * from renamed
