{#- Every period a fact uses: Frontex months and Eurostat years and quarters, with their start,
    end and calendar parts, so BI tools can line up monthly crossings with annual returns. -#}
with

periods as (

    select distinct strftime(month, '%Y-%m') as period, month as period_start, 'month' as period_grain
    from {{ ref('fct_border_crossings') }}
    union
    select distinct period, period_start, period_grain
    from {{ ref('fct_returns') }}

),

final as (

    select
        -- ids
        period,
        period_grain,

        -- dates
        period_start,
        cast(period_start + case period_grain
            when 'year' then interval 1 year
            when 'half_year' then interval 6 month
            when 'quarter' then interval 3 month
            else interval 1 month
        end - interval 1 day as date) as period_end,

        -- calendar
        year(period_start) as year,
        quarter(period_start) as quarter,
        case when period_grain = 'month' then month(period_start) end as month

    from periods

)

select * from final
