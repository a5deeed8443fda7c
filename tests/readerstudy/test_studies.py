"""Opening, closing, assigning readers, and the stored orders."""

import random

import pytest
from django.db.models import ProtectedError, RestrictedError

from pool.models import Truth
from readerstudy.models import Assignment, ReadingSlot, StudyCase, StudyStatus
from readerstudy.ordering import ALGORITHM, plan_order
from readerstudy.services.studies import (
    CaseRule,
    StudyRefused,
    add_cases_by_rule,
    assign_reader,
    close_study,
    draw_order,
    open_study,
)
from tests.factories import ImageFactory, StudyFactory, UserFactory
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


def stored_order(study, reader):
    return [
        (slot.case_id, slot.showing, slot.is_practice, slot.token)
        for slot in slots_of(study, reader)
    ]


def test_it_draws_and_stores_each_readers_order_when_the_study_opens(
    build_study, reader, other_reader
):
    study = build_study(readers=[reader, other_reader], n_real=3, n_synthetic=3, n_practice=2)
    assert study.status == StudyStatus.OPEN
    for person in (reader, other_reader):
        assignment = Assignment.objects.get(study=study, reader=person)
        assert assignment.order_drawn_at is not None
        assert assignment.order_algorithm == ALGORITHM
        assert len(slots_of(study, person)) == 8


def test_it_stores_exactly_the_reproducible_order(build_study, reader):
    study = build_study(
        readers=[reader],
        n_real=4,
        n_synthetic=4,
        n_practice=2,
        repeat_fraction=0.25,
        repeat_min_gap=2,
    )
    cases = list(study.cases.values_list("id", "is_practice"))
    expected = plan_order(
        seed=study.seed,
        reader_id=reader.id,
        case_ids=[case_id for case_id, practice in cases if not practice],
        practice_case_ids=[case_id for case_id, practice in cases if practice],
        repeat_fraction=0.25,
        repeat_min_gap=2,
    )
    stored = slots_of(study, reader)
    assert [(s.position, s.case_id, s.showing, s.is_practice) for s in stored] == [
        (p.position, p.case_id, p.showing, p.is_practice) for p in expected
    ]


def test_it_gives_readers_different_orders_and_tokens(build_study, reader, other_reader):
    study = build_study(readers=[reader, other_reader], n_real=5, n_synthetic=5)
    mine, theirs = slots_of(study, reader), slots_of(study, other_reader)
    assert [s.case_id for s in mine] != [s.case_id for s in theirs]
    assert {s.token for s in mine}.isdisjoint({s.token for s in theirs})
    assert sorted(s.case_id for s in mine) == sorted(s.case_id for s in theirs)


def test_it_keeps_orders_stable_under_later_edits(build_study, reader):
    study = build_study(readers=[reader], n_real=3, n_synthetic=3)
    before = stored_order(study, reader)
    study.title = "Renamed"
    study.instructions = "New words"
    study.save()
    assign_reader(study, UserFactory())
    close_study(study)
    open_study(study)  # reopening never redraws
    assert draw_order(Assignment.objects.get(study=study, reader=reader)) is False
    assert stored_order(study, reader) == before


def test_it_freezes_the_cases_once_orders_are_drawn(build_study, reader):
    study = build_study(readers=[reader])
    extra = StudyCase(study=study, image=ImageFactory())
    with pytest.raises(Exception, match="frozen"):
        extra.full_clean()
    with pytest.raises(StudyRefused, match="draft"):
        add_cases_by_rule(study, CaseRule(n_real=1, n_synthetic=0))
    case = study.cases.first()
    with pytest.raises(RestrictedError):
        case.delete()


def test_it_draws_the_order_of_a_reader_assigned_to_an_open_study(
    build_study, reader, other_reader
):
    study = build_study(readers=[reader])
    assignment = assign_reader(study, other_reader)
    assert assignment.order_drawn_at is not None
    assert len(slots_of(study, other_reader)) == 4
    assert assign_reader(study, other_reader) == assignment  # idempotent


def test_it_does_not_draw_orders_in_a_draft(build_study, reader):
    study = build_study(readers=[reader], open=False)
    assignment = assign_reader(study, UserFactory())
    assert assignment.order_drawn_at is None
    assert not ReadingSlot.objects.filter(assignment__study=study).exists()
    with pytest.raises(StudyRefused):
        draw_order(assignment)


def test_it_refuses_to_open_a_study_without_cases(reader):
    study = StudyFactory()
    Assignment.objects.create(study=study, reader=reader)
    StudyCase.objects.create(study=study, image=ImageFactory(), is_practice=True)
    with pytest.raises(StudyRefused, match="no cases"):
        open_study(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_it_refuses_to_open_a_study_without_readers(build_study):
    study = build_study(open=False)
    with pytest.raises(StudyRefused, match="no readers"):
        open_study(study)
    assert study.status == StudyStatus.DRAFT


def test_it_refuses_to_open_when_repeats_cannot_keep_the_gap(build_study, reader):
    study = build_study(readers=[reader], open=False, repeat_fraction=0.5, repeat_min_gap=4)
    with pytest.raises(StudyRefused, match="cannot open"):
        open_study(study)
    assert not ReadingSlot.objects.exists()


def test_it_refuses_to_open_twice_and_to_close_a_draft(build_study, reader):
    study = build_study(readers=[reader])
    with pytest.raises(StudyRefused, match="already open"):
        open_study(study)
    draft = build_study(readers=[reader], open=False)
    with pytest.raises(StudyRefused, match="not open"):
        close_study(draft)


def test_it_closes_and_reopens_keeping_the_orders(build_study, reader):
    study = build_study(readers=[reader])
    before = stored_order(study, reader)
    close_study(study)
    assert study.status == StudyStatus.CLOSED and study.closed_at is not None
    with pytest.raises(StudyRefused, match="closed"):
        assign_reader(study, UserFactory())
    open_study(study)
    assert study.status == StudyStatus.OPEN and study.closed_at is None
    assert stored_order(study, reader) == before


def test_it_adds_cases_by_rule(db):
    study = StudyFactory()
    for _ in range(4):
        ImageFactory(truth=Truth.REAL, finding="pneumonia", modality="CXR")
        ImageFactory(truth=Truth.SYNTHETIC, finding="pneumonia", modality="CXR")
        ImageFactory(truth=Truth.SYNTHETIC, finding="normal", modality="CXR")
        ImageFactory(truth=Truth.REAL, finding="pneumonia", modality="CT")
    added = add_cases_by_rule(
        study,
        CaseRule(n_real=2, n_synthetic=2, n_practice=3, modality="CXR", finding="Pneumonia"),
        rng=random.Random(5),
    )
    assert len(added) == 7
    cases = StudyCase.objects.filter(study=study).select_related("image")
    assert {(c.image.modality, c.image.finding) for c in cases} == {("CXR", "pneumonia")}
    main = [c.image.truth for c in cases if not c.is_practice]
    assert sorted(main) == ["real", "real", "synthetic", "synthetic"]
    practice = sorted(c.image.truth for c in cases if c.is_practice)
    assert practice in (["real", "real", "synthetic"], ["real", "synthetic", "synthetic"])


def test_it_adds_nothing_when_the_pool_is_too_small(db):
    study = StudyFactory()
    ImageFactory(truth=Truth.REAL)
    with pytest.raises(StudyRefused, match="2 real wanted, 1 available"):
        add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0))
    assert not study.cases.exists()


def test_it_never_adds_an_image_twice(db):
    study = StudyFactory()
    for _ in range(3):
        ImageFactory(truth=Truth.REAL)
    add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0))
    with pytest.raises(StudyRefused, match="1 available"):
        add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0))
    add_cases_by_rule(study, CaseRule(n_real=1, n_synthetic=0))
    assert study.cases.values("image").distinct().count() == 3


def test_it_protects_readings_images_and_studies(build_study, reader, client):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    image = slot.case.image
    with pytest.raises(ProtectedError):
        image.delete()  # in a study: protected
    from readerstudy.services.reading import AnswerData, record_answer

    record_answer(slot, AnswerData(answer="real"))
    with pytest.raises((ProtectedError, RestrictedError)):
        study.delete()
    with pytest.raises((ProtectedError, RestrictedError)):
        Assignment.objects.get(study=study, reader=reader).delete()


def test_it_deletes_a_study_that_has_no_readings(build_study, reader):
    study = build_study(readers=[reader])
    study.delete()
    assert not ReadingSlot.objects.exists()


def test_it_refuses_to_swap_a_case_that_has_readings(build_study, reader):
    from readerstudy.services.reading import AnswerData, record_answer

    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    record_answer(slot, AnswerData(answer="real"))
    case = StudyCase.objects.get(pk=slot.case_id)
    case.image = ImageFactory()
    with pytest.raises(Exception, match="cannot be swapped"):
        case.full_clean()
