{#- Every row of reference.funding_registry_actions names exactly one row of the registry, so
    an edited title in either file is caught instead of silently losing a parent/child link.
    (Nothing to check before a registry is loaded.) -#}
with registry as (
    select action_title, count(*) as rows_in_registry
    from {{ ref('stg_registries__funding_commitments') }}
    group by 1
)
select actions.action_title, coalesce(registry.rows_in_registry, 0) as rows_in_registry
from {{ ref('funding_registry_actions') }} as actions
left join registry using (action_title)
where coalesce(registry.rows_in_registry, 0) <> 1
  and exists (select 1 from registry)
