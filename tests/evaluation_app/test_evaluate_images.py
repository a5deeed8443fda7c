import io

import pytest
from django.core.management import CommandError, call_command

from evaluation.models import EvaluationStatus, FeatureExtractorVersion, QualityEvaluation
from evaluation.quality import enqueue_after_generation
from evaluation.tasks import evaluate_generation_job
from generation.models import GeneratedImage, GenerationJob, GeneratorModel, JobStatus
from pool.models import Truth
from tests.evaluation_app.helpers import image_with_display
from tests.factories import ImageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_extractor")]


def make_job(synthetic_images, name="tiny"):
    generator, _ = GeneratorModel.objects.get_or_create(name=name, defaults={"kind": "ddpm"})
    job = GenerationJob.objects.create(
        generator=generator, count=len(synthetic_images), status=JobStatus.SUCCEEDED
    )
    for index, image in enumerate(synthetic_images):
        GeneratedImage.objects.create(job=job, index=index, image=image)
    return job


@pytest.fixture
def real_pool():
    return [ImageFactory(truth=Truth.REAL, finding="normal") for _ in range(12)]


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_images", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_stores_an_evaluation_and_flags_an_exact_copy(real_pool):
    copied = real_pool[3]
    with copied.display.open("rb") as handle:
        copy = image_with_display(Truth.SYNTHETIC, handle.read())
    synthetic = [ImageFactory(truth=Truth.SYNTHETIC) for _ in range(7)] + [copy]
    job = make_job(synthetic)

    out, err = run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR,finding=normal")

    evaluation = QualityEvaluation.objects.get(generation_job=job)
    assert evaluation.status == EvaluationStatus.SUCCEEDED
    assert evaluation.n_real == 12 and evaluation.n_synthetic == 8
    report = evaluation.report
    assert {m["name"] for m in report["quality"]["metrics"]} >= {"frechet_distance", "kid"}
    assert report["observer"]["n_real"] == 6  # the held-out half only
    flagged = [m for m in report["memorization"]["matches"] if m["flagged"]]
    assert evaluation.flagged_count >= 1
    assert any(
        m["synthetic_image"] == copy.public_id and m["pixel_real_image"] == copied.public_id
        for m in flagged
    )
    assert "Fréchet distance" in out and "Machine observer AUC" in out and "WARNING" in out
    assert "evaluate" in err  # the tqdm bar

    # the same real images and settings: the extractor is reused, not retrained
    run("--synthetic", "model:tiny", "--real", "modality=CXR,finding=normal")
    assert FeatureExtractorVersion.objects.count() == 1
    latest = QualityEvaluation.objects.filter(generator__name="tiny").first()
    assert latest.extractor_id == evaluation.extractor_id
    assert latest.extractor.path.is_dir() and latest.extractor.trained_on_count == 6


def test_it_says_clearly_when_there_is_one_image(real_pool):
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC)])
    with pytest.raises(CommandError, match="at least 2 synthetic images, got 1"):
        run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR")
    assert QualityEvaluation.objects.get(generation_job=job).status == EvaluationStatus.FAILED


def test_it_says_clearly_when_real_images_are_too_few(db):
    ImageFactory(truth=Truth.REAL)
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC) for _ in range(3)])
    with pytest.raises(CommandError, match="at least 8 real images .* got 1"):
        run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR")


def test_it_rejects_a_bad_subject_or_filter(real_pool):
    with pytest.raises(CommandError, match="job:<pk>, model:<name> or study:<id>"):
        run("--synthetic", "tiny", "--real", "modality=CXR")
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC) for _ in range(3)])
    with pytest.raises(CommandError, match="bad real-image filter"):
        run("--synthetic", f"job:{job.pk}", "--real", "colour=red")


def test_it_matches_the_real_images_of_a_finding_through_its_synonyms(real_pool):
    from pool.models import Finding, FindingSynonym

    normal, _ = Finding.objects.get_or_create(name="normal")
    FindingSynonym.objects.create(finding=normal, name="no findings")
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC) for _ in range(4)])

    run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR,finding=No Findings")

    evaluation = QualityEvaluation.objects.get(generation_job=job)
    assert evaluation.status == EvaluationStatus.SUCCEEDED, evaluation.error
    assert evaluation.n_real == 12


def test_it_evaluates_a_job_after_it_succeeds_once(real_pool, django_capture_on_commit_callbacks, monkeypatch):
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC) for _ in range(6)])
    calls = []
    monkeypatch.setattr(evaluate_generation_job, "delay", lambda **kw: calls.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_after_generation(job.pk)
    assert calls == [{"job_pk": job.pk}]

    first = evaluate_generation_job(job_pk=job.pk)
    assert evaluate_generation_job(job_pk=job.pk) == first  # safe to run twice
    assert QualityEvaluation.objects.get(pk=first).real_filter == "modality=CXR"


def test_it_shows_the_evaluation_and_the_flagged_pairs_on_the_model_and_job_pages(
    real_pool, admin_client
):
    with real_pool[0].display.open("rb") as handle:
        copy = image_with_display(Truth.SYNTHETIC, handle.read())
    job = make_job([ImageFactory(truth=Truth.SYNTHETIC) for _ in range(5)] + [copy])
    run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR")
    run("--synthetic", "model:tiny", "--real", "modality=CXR")

    for url in (f"/staff/generation/jobs/generation/{job.pk}/", f"/staff/generation/models/{job.generator.pk}/"):
        page = admin_client.get(url).content.decode()
        assert "Quality evaluation" in page and "Machine observer AUC" in page
        assert "may copy a real image" in page
        assert f"/{copy.public_id}" in page and f"/{real_pool[0].public_id}" in page


def test_it_says_when_nothing_was_evaluated_yet(admin_client):
    job = make_job([])
    page = admin_client.get(f"/staff/generation/jobs/generation/{job.pk}/").content.decode()
    assert "Not evaluated yet" in page
