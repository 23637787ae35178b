"""hdh-migrate: move the Health Data Hub warehouse from Azure Blob Storage to a sovereign S3 store.

The core library (this package) imports no Airflow: the DAGs in ``dags/`` and the glue in ``plugins/``
only wrap it, and the ``hdh-migrate`` CLI drives the same functions.
"""

__version__ = "0.1.0"
