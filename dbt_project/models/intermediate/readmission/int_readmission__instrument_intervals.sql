{#- Which instrument is in force for each third country over which dates:
    - an agreement from its entry into force (agreement_in_force), with no end in the registry;
    - an arrangement from its first conclusion (the earliest arrangement_concluded of that
      title), with no end in the registry;
    - an Art. 25a measure from its adoption until the lifting that ends it: a lifting ends the
      latest measure recorded as revoked before it, else the latest measure before it.
    Dates keep the registry's precision: `valid_from` is the first day the stated date can mean,
    `valid_to` (when there is one) the last day. -#}
with

events as (

    select * from {{ ref('stg_registries__readmission_events') }}
    where scope = 'country'

),

agreements as (

    select
        country_code,
        'agreement' as instrument,
        title,
        event_date as valid_from,
        event_date_precision as valid_from_precision,
        null::date as valid_to,
        has_caveat
    from events
    where effect = 'agreement_in_force' and instrument_type = 'eu_readmission_agreement'

),

arrangements as (

    select
        country_code,
        'arrangement' as instrument,
        title,
        min(event_date) as valid_from,
        arg_min(event_date_precision, event_date) as valid_from_precision,
        null::date as valid_to,
        bool_or(has_caveat) as has_caveat
    from events
    where effect = 'arrangement_concluded'
    group by country_code, title

),

measures as (

    select * from events where effect = 'art25a_measure_adopted'

),

liftings as (

    select * from events where effect = 'art25a_measure_lifted'

),

lifted_measure as (

    -- For each lifting, the measure it ends.
    select
        liftings.event_key as lifting_key,
        liftings.event_date_last as lifted_on,
        arg_max(measures.event_key, (measures.status = 'revoked', measures.event_date)) as measure_key
    from liftings
    inner join measures
        on measures.country_code = liftings.country_code
        and measures.event_date <= liftings.event_date_last
    group by liftings.event_key, liftings.event_date_last

),

art25a_measures as (

    select
        measures.country_code,
        'art25a_measure' as instrument,
        measures.title,
        measures.event_date as valid_from,
        measures.event_date_precision as valid_from_precision,
        lifted_measure.lifted_on as valid_to,
        measures.has_caveat
    from measures
    left join lifted_measure on lifted_measure.measure_key = measures.event_key

),

final as (

    select * from agreements
    union all
    select * from arrangements
    union all
    select * from art25a_measures

)

select * from final
