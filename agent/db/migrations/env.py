"""Alembic's environment for the schema (sessions, the tool cache). ``agent.db.migrate.upgrade``
runs it on a connection it already holds (in a transaction, under a lock), passed as
``connection`` in the configuration's attributes; the ``alembic`` command line works with
``-x url=...`` as well."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from agent.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database: alembic -x url=postgresql+psycopg://... upgrade head")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
