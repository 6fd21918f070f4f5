{#- Asylum applicants (migr_asyappctza), all sexes and ages, by applicant type (`ASY_APP` all
    applicants, `NASY_APP` first-time applicants; newer files call the dimension `applicant`).
    Context for returns. -#}
with

current_observations as (

    {{ eurostat_current(['migr_asyappctza'], {
        'applicant_type': "coalesce(json_extract_string(dimensions, '$.asyl_app'), json_extract_string(dimensions, '$.applicant'))"
    }) }}

),

renamed as (

    select * from current_observations

)

select * from renamed
