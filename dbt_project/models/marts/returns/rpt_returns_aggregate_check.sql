{#- Each EU aggregate of fct_returns (EU27_2020, EU28, EU27_2007) against the sum of its member
    states, per period x citizenship x measure. Eurostat rounds every published figure to the
    nearest 5, the aggregate included, so aggregate and sum may differ by up to 2.5 per member
    reported plus 2.5 for the aggregate: `within_rounding` (a warning, test
    warn_returns_aggregates_rounding_differences) versus `beyond_rounding` (an error, test
    assert_returns_aggregates_within_rounding). Only complete member sets are compared; the rest
    are listed as `members_incomplete`. -#}
with

returns as (

    select * from {{ ref('fct_returns') }}

),

members as (

    select * from {{ ref('eurostat_aggregate_members') }}

),

expected as (

    select aggregate, count(*) as members_expected from members group by aggregate

),

aggregate_rows as (

    select returns.*
    from returns
    where returns.geo in (select aggregate from expected)

),

member_sums as (

    select
        aggregate_rows.period,
        aggregate_rows.citizen,
        aggregate_rows.measure,
        aggregate_rows.geo as aggregate,
        any_value(aggregate_rows.period_grain) as period_grain,
        any_value(aggregate_rows.persons) as aggregate_persons,
        count(member_rows.persons) as members_reported,
        sum(member_rows.persons)::bigint as members_sum,
        list_sort(list(members.member) filter (where member_rows.persons is null)) as members_missing
    from aggregate_rows
    inner join members on members.aggregate = aggregate_rows.geo
    left join returns as member_rows
        on member_rows.geo = members.member
        and member_rows.period = aggregate_rows.period
        and member_rows.citizen = aggregate_rows.citizen
        and member_rows.measure = aggregate_rows.measure
    group by all

),

final as (

    select
        -- grain
        member_sums.period,
        member_sums.period_grain,
        member_sums.aggregate,
        member_sums.citizen,
        member_sums.measure,

        -- labels (marts.dim_country, through Eurostat's code)
        aggregate_country.country_name as aggregate_label,
        citizen_country.country_name as citizen_label,

        -- comparison
        member_sums.aggregate_persons,
        member_sums.members_sum,
        expected.members_expected,
        member_sums.members_reported,
        member_sums.members_missing,
        member_sums.aggregate_persons - member_sums.members_sum as difference,
        (2.5 * (member_sums.members_reported + 1))::double as tolerance,
        case
            when member_sums.aggregate_persons is null then 'aggregate_missing'
            when member_sums.members_reported < expected.members_expected then 'members_incomplete'
            when member_sums.aggregate_persons = member_sums.members_sum then 'match'
            when abs(member_sums.aggregate_persons - member_sums.members_sum)
                <= 2.5 * (member_sums.members_reported + 1) then 'within_rounding'
            else 'beyond_rounding'
        end as status

    from member_sums
    inner join expected using (aggregate)
    left join {{ ref('dim_country') }} as aggregate_country
        on aggregate_country.eurostat_code = member_sums.aggregate
    left join {{ ref('dim_country') }} as citizen_country
        on citizen_country.eurostat_code = member_sums.citizen

)

select * from final
