import pytest

from tests.readerstudy.helpers import StudyBuilder


@pytest.fixture
def build_study(db) -> StudyBuilder:
    return StudyBuilder()
