{#- The readmission fact and the report state the same EU-total returns for the same country and
    year: every country-year of fct_readmission_cooperation against the EU-total row of
    rpt_return_rates (the aggregate, orders to leave, returns and rate), and every bar of the
    report's return-rate chart (quality.rpt_return_rates_top_citizenships) against the fact.
    Both read fct_returns.is_eu_total (macros/eu_total.sql); a model that picked its own
    aggregate again would show up here. Returns the disagreeing country-years. -#}
with

cooperation as (

    select country_code, year, returns_geo, orders_to_leave, returned, return_rate
    from {{ ref('fct_readmission_cooperation') }}

),

third_countries as (

    -- the fact's scope: countries and territories not EU members today
    select country_code, eurostat_code from {{ ref('dim_country') }}
    where is_country and not is_eu_member

),

eu_rates as (

    select
        rates.citizen_country_code as country_code,
        cast(rates.period as integer) as year,
        rates.geo,
        rates.ordered_to_leave,
        rates.returned,
        rates.return_rate
    from {{ ref('rpt_return_rates') }} as rates
    inner join third_countries on third_countries.country_code = rates.citizen_country_code
    where rates.is_eu_total and rates.period_grain = 'year'

),

chart as (

    select
        third_countries.country_code,
        cast(chart.period as integer) as year,
        chart.geo,
        chart.ordered_to_leave,
        chart.returned,
        chart.return_rate_pct
    from {{ ref('rpt_return_rates_top_citizenships') }} as chart
    inner join third_countries on third_countries.eurostat_code = chart.citizen

)

select 'rpt_return_rates' as compared_with, eu_rates.country_code, eu_rates.year,
       cooperation.returns_geo, eu_rates.geo,
       cooperation.orders_to_leave, eu_rates.ordered_to_leave,
       cooperation.returned, eu_rates.returned
from eu_rates
left join cooperation using (country_code, year)
where cooperation.returns_geo is distinct from eu_rates.geo
   or cooperation.orders_to_leave is distinct from eu_rates.ordered_to_leave
   or cooperation.returned is distinct from eu_rates.returned
   or cooperation.return_rate is distinct from eu_rates.return_rate

union all

select 'rpt_return_rates_top_citizenships', chart.country_code, chart.year,
       cooperation.returns_geo, chart.geo,
       cooperation.orders_to_leave, chart.ordered_to_leave,
       cooperation.returned, chart.returned
from chart
left join cooperation using (country_code, year)
where cooperation.returns_geo is distinct from chart.geo
   or cooperation.orders_to_leave is distinct from chart.ordered_to_leave
   or cooperation.returned is distinct from chart.returned
   or round(100 * cooperation.return_rate, 2) is distinct from round(chart.return_rate_pct, 2)
