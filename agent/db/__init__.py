"""Where sessions are kept: one schema (``schema.py``) for SQLite and PostgreSQL through SQLAlchemy
Core, created and upgraded by Alembic migrations (``migrations/``); ``migrate.upgrade`` brings a
database to the newest schema before a store uses it.

A change to the schema is a new revision next to ``migrations/versions/0001_sessions_and_turns.py``
(change ``schema.py`` to match), written by hand or drafted by Alembic against a database at head::

    python -c "from alembic import command; from agent.db.migrate import alembic_config; \\
        command.revision(alembic_config(), 'add a column', rev_id='0002')"
"""
