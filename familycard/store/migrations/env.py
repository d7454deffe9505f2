"""Alembic environment: migrations run on the engine :func:`familycard.store.operational.open_store` made."""

from __future__ import annotations

from alembic import context

from familycard.store.models import Base

target_metadata = Base.metadata
engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
