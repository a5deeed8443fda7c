import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached analyses are keyed on database state that a rolled-back test can reproduce."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
