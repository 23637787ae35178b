"""The ``hdh-migrate`` command line: ``main`` is the console script's entry point."""

from hdh_migrate.cli.main import main

__all__ = ["main"]
