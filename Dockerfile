# The official Airflow image plus the project's Python requirements; built by docker-compose.yml.
# The project code itself is mounted at /opt/project, not copied, so the image only changes
# when requirements.txt does.
FROM apache/airflow:3.3.2-python3.11

# The official image installs into the airflow user's environment; installing as root would
# bypass it. Pinning apache-airflow to the image's own version stops a requirement from
# silently up- or downgrading Airflow.
USER airflow
COPY --chown=airflow:0 requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
