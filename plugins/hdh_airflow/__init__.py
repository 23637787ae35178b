"""Airflow glue for hdh-migrate: Connections -> settings, task bodies, alerts.

Everything here wraps ``hdh_migrate`` (which imports no Airflow); the DAG files in ``dags/`` only wire
these functions into tasks.
"""
