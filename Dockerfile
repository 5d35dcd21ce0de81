# The Airflow image for docker-compose.yaml: the official image plus this project's pins.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt constraints.txt /opt/ohlcv/
RUN pip install --no-cache-dir -r /opt/ohlcv/requirements.txt -c /opt/ohlcv/constraints.txt
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
# Bytecode for the project's own files: task processes run with -B and would compile them
# from source in every task.
RUN python -m compileall -q /opt/airflow/dags /opt/airflow/plugins
