{{ config(materialized='table', schema='quality', tags=['quality']) }}
{#- Eurostat observations of the vintage staging reads (the newest-vintage rule lives in
    macros/eurostat.sql only), per dataset: how many are provisional, estimated, confidential or
    missing. -#}
{% set relations = [ref('fct_returns'), ref('stg_eurostat__asylum_applicants'),
                    ref('stg_eurostat__illegally_present')] %}
{% for relation in relations %}
select
    dataset,
    count(*)::bigint as observations,
    (count(*) filter (where is_provisional))::bigint as provisional,
    (count(*) filter (where is_estimated))::bigint as estimated,
    (count(*) filter (where is_confidential))::bigint as confidential,
    (count(*) filter (where is_missing))::bigint as missing
from {{ relation }}
group by dataset
{% if not loop.last %}union all{% endif %}
{% endfor %}
