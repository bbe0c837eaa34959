"""Alembic environment: uses the connection handed in by ainfluencer.db.migrate."""

import warnings

from alembic import context
from sqlalchemy.exc import SAWarning

from ainfluencer.db.models import Base

# SQLite batch migrations reflect the tables they copy, and SQLAlchemy cannot reflect the expression index
# ix_characters_name_lower. No batch operation recreates `characters` after 0002 creates that index, so
# nothing is lost; the warning only alarmed people at every first start.
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index",
                        category=SAWarning)

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from ainfluencer.db.engine import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
