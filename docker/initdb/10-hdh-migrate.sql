-- The migration-state database (hdh_migrate), next to Airflow's metadata database.
CREATE DATABASE hdh_migrate OWNER airflow;
