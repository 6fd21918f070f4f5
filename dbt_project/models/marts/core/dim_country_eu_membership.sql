{#- EU membership by year, for questions such as "the member states in 2016" (the United Kingdom
    included) that dim_country.is_eu_member (membership today) cannot answer. One row per
    country or territory of dim_country and calendar year from 1958 (the Treaty of Rome) to the
    current year. `is_eu_member`: a member on 31 December of the year (Croatia from 2013, the
    United Kingdom until 2019); `is_eu_member_all_year`: a member every day of the year
    (Croatia from 2014, the United Kingdom until 2019); they differ only in a year of joining or
    leaving. It reads the date, so every run builds it (tag every_run, decision 76). -#}
{{ config(tags=['every_run']) }}
with

countries as (

    select * from {{ ref('dim_country') }}
    where is_country

),

years as (

    select cast(range as integer) as year
    from range(1958, year(current_date) + 1)

),

final as (

    select
        -- grain
        countries.country_code,
        years.year,

        -- labels
        countries.country_name,

        -- membership
        coalesce(countries.eu_member_from <= make_date(years.year, 12, 31)
                 and (countries.eu_member_until is null
                      or countries.eu_member_until >= make_date(years.year, 12, 31)), false)
            as is_eu_member,
        coalesce(countries.eu_member_from <= make_date(years.year, 1, 1)
                 and (countries.eu_member_until is null
                      or countries.eu_member_until >= make_date(years.year, 12, 31)), false)
            as is_eu_member_all_year,
        countries.eu_member_from,
        countries.eu_member_until

    from countries
    cross join years

)

select * from final
