"""Alembic migrations of the state database (run by ``hdh_migrate.state.open_state``)."""
