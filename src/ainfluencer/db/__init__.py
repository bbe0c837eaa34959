"""Database: engine, sessions, ORM models and Alembic migrations."""
