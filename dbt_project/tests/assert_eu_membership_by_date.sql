{#- EU membership by date (seed eu_membership): the United Kingdom is a member state in 2016 and
    not in 2021, Croatia not in 2012 and one in 2014, in dim_country_eu_membership and in
    fct_returns.geo_is_eu_member_in_period (UK / HR as Eurostat's geo UK / HR); and
    dim_country.is_eu_member (membership today) agrees with the dates. Returns what is wrong. -#}
with

expected (country_code, year, is_eu_member) as (

    values ('GB', 2016, true), ('GB', 2021, false), ('HR', 2012, false), ('HR', 2014, true),
           ('GB', 2019, true), ('GB', 2020, false), ('HR', 2013, true), ('DE', 1958, true),
           ('PL', 2003, false), ('PL', 2004, true), ('NO', 2016, false)

),

by_year as (

    select
        'dim_country_eu_membership' as checked,
        expected.country_code,
        expected.year,
        expected.is_eu_member as expected,
        membership.is_eu_member as got
    from expected
    left join {{ ref('dim_country_eu_membership') }} as membership using (country_code, year)

),

in_facts as (

    select
        'fct_returns.geo_is_eu_member_in_period' as checked,
        expected.country_code,
        expected.year,
        expected.is_eu_member as expected,
        bool_and(returns.geo_is_eu_member_in_period) as got
    from expected
    inner join {{ ref('fct_returns') }} as returns
        on returns.geo_country_code = expected.country_code
        and returns.period_grain = 'year'
        and year(returns.period_start) = expected.year
    group by all
    having bool_and(returns.geo_is_eu_member_in_period) != bool_or(returns.geo_is_eu_member_in_period)
        or bool_and(returns.geo_is_eu_member_in_period) != expected.is_eu_member

),

today as (

    select
        'dim_country.is_eu_member' as checked,
        country_code,
        year(current_date) as year,
        coalesce(eu_member_from <= current_date and eu_member_until is null, false) as expected,
        is_eu_member as got
    from {{ ref('dim_country') }}
    where is_eu_member != coalesce(eu_member_from <= current_date and eu_member_until is null, false)

)

select * from by_year where got is distinct from expected
union all
select * from in_facts
union all
select * from today
