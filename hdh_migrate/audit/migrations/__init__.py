"""Alembic migrations of the state database (run by ``hdh_migrate.audit.state.open_state``)."""
