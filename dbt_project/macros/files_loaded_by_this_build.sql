{#- The landed files this build loaded (issue 21 decision 78, issue 22 decision 81): the
    raw.load_log rows of runs that never published (this run's; a failed run's build is thrown
    away with its loads, so the next build loads those files again). In a database never
    published (no meta.publish_log: the first publish, a build by hand, a test's), every loaded
    file. Used by the generic tests that follow new rows (tests_on_new_rows.sql) and by
    quality.current_cell_changes. -#}
{% macro files_loaded_by_this_build(database=none) -%}
    {%- set published = execute and adapter.get_relation(
            database=database or target.database, schema='meta',
            identifier='publish_log') is not none -%}
    select landing_file from raw.load_log
    {%- if published %} where run_id not in (select run_id from meta.publish_log){% endif %}
{%- endmacro %}
