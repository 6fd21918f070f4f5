"""Write-audit-publish: the transform run that builds, checks and publishes the warehouse.

``pipeline.steps`` holds the steps the transform DAG wires together, ``pipeline.warehouse`` the
build and publish mechanics, ``pipeline.dbt`` the dbt invocation and ``pipeline.run`` the
``make run`` entry point (it runs the DAGs; ``pipeline.airflow_setup`` prepares Airflow,
``pipeline.summary`` prints what was published, ``pipeline.landed_files_cli`` holds the
landed-file commands).
"""
