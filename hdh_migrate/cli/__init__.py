"""The ``hdh-migrate`` command line: ``main`` is the console script's entry point.

One module per group of verbs; each verb parses, calls the steps of ``runs/`` (the same calls the Airflow
tasks make) and prints. A verb imports what it runs inside its handler: every command builds the whole
parser, and ``hdh-migrate status`` must not pay for the storage SDKs (~0.35 s), ``copy`` for the state
database (SQLAlchemy, ~0.3 s) or Great Expectations (~6 s).
"""

from hdh_migrate.cli.main import main

__all__ = ["main"]
