"""Where sessions and the tool cache are kept: one schema (``schema.py``) for SQLite and
PostgreSQL through SQLAlchemy Core, created and upgraded by Alembic migrations (``migrations/``);
``migrate.upgrade`` brings a database to the newest schema before a store uses it, and
``engine.py`` makes the engines (a file path: SQLite; a ``postgresql://`` URL: psycopg 3).

The tool cache shares the one migration history rather than keeping a version table of its own:
on PostgreSQL the natural deployment is one database for a service's sessions and tools, and one
history is one ``alembic upgrade head`` for it. The price is small: an SQLite file of either store
holds the other's tables too, empty.

A change to the schema is a new revision next to ``migrations/versions/0002_tool_cache.py``
(change ``schema.py`` to match), written by hand or drafted by Alembic against a database at head::

    python -c "from alembic import command; from agent.db.migrate import alembic_config; \\
        command.revision(alembic_config(), 'add a column', rev_id='0003')"
"""
