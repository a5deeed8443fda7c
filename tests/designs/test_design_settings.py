"""Design settings: defaults from HYPE-time, inconsistent staircases refused, frozen once drawn."""

import pytest
from django.core.exceptions import ValidationError

from readerstudy.admin import FROZEN_ONCE_DRAWN
from readerstudy.models import Design, Study
from readerstudy.services.designs import staircase_of

pytestmark = pytest.mark.django_db


def test_it_defaults_to_a_single_image_study_with_a_hype_staircase():
    study = Study(title="t")
    assert study.design == Design.SINGLE and not study.ask_finding
    s = staircase_of(study)
    assert (s.start, s.step, s.low, s.high, s.down, s.up) == (500, 30, 100, 1000, 3, 1)
    assert study.findings == ["normal", "pneumonia", "COVID-19", "other"]


def test_it_refuses_an_inconsistent_staircase_or_an_empty_vocabulary():
    with pytest.raises(ValidationError, match="between the shortest and longest"):
        Study(title="t", exposure_start_ms=50).full_clean()
    with pytest.raises(ValidationError, match="shortest exposure is longer"):
        Study(title="t", exposure_min_ms=900, exposure_max_ms=200).full_clean()
    with pytest.raises(ValidationError, match="findings"):
        Study(title="t", ask_finding=True, finding_vocabulary=" , ").full_clean()


def test_it_freezes_the_design_with_the_orders():
    assert {"design", "allow_reuse", "ask_finding", "exposure_start_ms"} <= set(FROZEN_ONCE_DRAWN)
