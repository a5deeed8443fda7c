"""The staff home: the researcher's studies with progress and audit, recent jobs, entry points."""

import pytest
from django.utils import timezone

from evaluation.models import BlindingAudit, EvaluationStatus
from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus, TrainingRun
from readerstudy.models import Reading
from readerstudy.services.studies import close_study
from spotthefake.staff import audit_state
from tests.factories import BareStaffFactory, ResearcherFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder, slots_of
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

HOME = "/staff/"
# Session, user, permissions (2), studies, their latest audits, training runs, generation jobs.
HOME_QUERIES = 7  # besides the session's own (tests/sessions.py)


@pytest.fixture
def researcher(db):
    return ResearcherFactory()


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


def answer(slots, n: int) -> None:
    now = timezone.now()
    for slot in slots[:n]:
        Reading.objects.create(slot=slot, answer="real", served_at=now, answered_at=now)


def build_world(researcher, n_studies: int = 1) -> dict:
    build = StudyBuilder()
    reader = UserFactory()
    opened = build(readers=[reader], title="Open study", created_by=researcher)
    answer(slots_of(opened, reader), 3)  # 3 of 4
    draft = build(readers=[reader], open=False, title="Draft study", created_by=researcher)
    BlindingAudit.objects.create(
        study=draft,
        status=EvaluationStatus.SUCCEEDED,
        cases_signature="x",
        blocking=[{"name": "file size", "auc": 0.9, "direction": "higher"}],
    )
    for index in range(n_studies - 1):
        closed = build(readers=[reader], title=f"Closed study {index}", created_by=researcher)
        close_study(closed)
        BlindingAudit.objects.create(
            study=closed, status=EvaluationStatus.SUCCEEDED, cases_signature="x"
        )
    build(readers=[reader], title="Someone else's study")
    generator = GeneratorModel.objects.create(
        name=f"walker-{reader.pk}", kind=GeneratorKind.DDPM, findings=["normal"], resolution=32
    )
    TrainingRun.objects.create(
        generator=generator, total_steps=200, step=50, status=JobStatus.RUNNING
    )
    job = GenerationJob.objects.create(generator=generator, count=8, status=JobStatus.QUEUED)
    return {"open": opened, "draft": draft, "job": job}


def test_it_lists_the_researchers_studies_with_progress_audit_and_results(
    researcher_client, researcher
):
    world = build_world(researcher)
    page = researcher_client.get(HOME).content.decode()
    assert "Open study" in page and "Draft study" in page
    assert "Someone else&#x27;s study" not in page
    assert "3 of 4 (75%)" in page
    assert 'class="pct-75"' in page
    assert "no order drawn yet" in page  # the draft
    assert "1 cue to acknowledge" in page
    assert f'href="/staff/studies/{world["open"].public_id}/results/"' in page
    assert f'href="/admin/readerstudy/study/{world["draft"].pk}/change/"' in page
    everyone = researcher_client.get(HOME, {"studies": "all"}).content.decode()
    assert "Someone else&#x27;s study" in everyone


def test_it_lists_recent_jobs_with_their_progress(researcher_client, researcher):
    world = build_world(researcher)
    page = researcher_client.get(HOME).content.decode()
    assert "50 / 200 steps" in page and 'class="pct-25"' in page
    assert "0 / 8 images" in page
    assert f'href="/staff/generation/jobs/generation/{world["job"].pk}/"' in page


def test_it_offers_the_entry_points(researcher_client):
    page = researcher_client.get(HOME).content.decode()
    for url in (
        "/staff/import/",
        "/staff/generation/train/",
        "/staff/generation/generate/",
        "/staff/generation/jobs/",
        "/staff/readers/",
        "/admin/readerstudy/study/add/",
    ):
        assert f'href="{url}"' in page, url


def test_it_lists_in_a_fixed_number_of_queries(
    researcher_client, researcher, django_assert_num_queries
):
    build_world(researcher, n_studies=1)
    researcher_client.get(HOME)
    with django_assert_num_queries(HOME_QUERIES + session_queries()):
        researcher_client.get(HOME)
    build_world(researcher, n_studies=6)
    with django_assert_num_queries(HOME_QUERIES + session_queries()):
        page = researcher_client.get(HOME).content.decode()
    # Both worlds' own studies: an open and a draft each, and five closed ones.
    assert page.count('class="study-row') == 2 + 7


def test_it_is_for_researchers_only(client):
    client.force_login(BareStaffFactory())
    assert client.get(HOME).status_code == 403
    client.force_login(UserFactory())
    assert client.get(HOME).status_code == 302


def test_it_names_each_audit_state():
    assert audit_state(None).label == "not yet"
    running = BlindingAudit(status=EvaluationStatus.RUNNING)
    assert audit_state(running).label == "running"
    assert audit_state(BlindingAudit(status=EvaluationStatus.FAILED)).tone == "error"
    clean = BlindingAudit(status=EvaluationStatus.SUCCEEDED, blocking=[])
    assert (audit_state(clean).label, audit_state(clean).tone) == ("no cue found", "ok")
    cues = [{"name": "a"}, {"name": "b"}]
    leaking = BlindingAudit(status=EvaluationStatus.SUCCEEDED, blocking=cues)
    assert (audit_state(leaking).label, audit_state(leaking).tone) == (
        "2 cues to acknowledge",
        "warning",
    )
    leaking.acknowledged_at = timezone.now()
    assert audit_state(leaking).label == "2 cues, acknowledged"
