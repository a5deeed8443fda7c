"""Moving the test database between migration states, for the data-migration tests."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """Migrate to `targets`; the historical models of the schema the database now has."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor = MigrationExecutor(connection)
    return executor._create_project_state(with_applied_migrations=True).apps


def leaves() -> list[tuple[str, str]]:
    """The newest migration of every app: the schema the code expects."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()
