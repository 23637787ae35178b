"""Alembic revisions (files named NNNN_*.py; this file is not a revision)."""
