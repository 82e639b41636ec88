"""Where sessions are kept: one schema (``schema.py``) for SQLite and PostgreSQL through SQLAlchemy
Core, created and upgraded by Alembic migrations (``migrations/``); ``migrate.upgrade`` brings a
database to the newest schema before a store uses it."""
