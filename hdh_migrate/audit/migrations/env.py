"""Alembic environment: run on the connection ``state.upgrade`` passes in (no alembic.ini needed).

Run by hand, for a DBA who wants to see the SQL: ``alembic -x url=postgresql+psycopg2://... upgrade head --sql``
with ``script_location`` pointing here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    context.configure(url=context.get_x_argument(as_dictionary=True).get("url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
