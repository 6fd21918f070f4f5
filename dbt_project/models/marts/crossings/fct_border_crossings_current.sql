{{ config(materialized='view') }}
{#- The current Frontex release: the rows of fct_border_crossings of its newest release_date
    only, so current figures need no filter and can never add two releases. The one place the
    warehouse picks the newest release (issue 19): every model, the quality report, make run's
    summary and BI read current figures here; fct_border_crossings keeps every release for
    revisions. A view: no second copy of the rows. -#}
with

facts as (

    select * from {{ ref('fct_border_crossings') }}

)

select * from facts
where release_date = (select max(release_date) from facts)
