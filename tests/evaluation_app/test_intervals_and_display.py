"""Bootstrap intervals stored, shown and exported; figures at a study's display profile too."""

import csv
import io

import pytest

from evaluation.models import QualityEvaluation
from pool.models import Truth
from readerstudy import exports
from readerstudy.models import StudyCase
from readerstudy.services.presentation import profile_of
from tests.evaluation_app.test_evaluate_images import make_job, run
from tests.factories import ImageFactory, StudyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_extractor")]

INTERVAL_FIGURES = {"frechet_distance", "kid", "precision", "recall", "density", "coverage"}


@pytest.fixture
def job_for_a_study():
    """16 real images (8 held out: a reference half of 4) and 8 synthetic ones of a job that
    adds its images to a study presented at 96 px, cropped to a square."""
    for _ in range(16):
        ImageFactory(truth=Truth.REAL, finding="normal")
    study = StudyFactory()
    profile = profile_of(study)
    profile.display_size, profile.aspect = 96, "crop"
    profile.save()
    synthetic = [ImageFactory(truth=Truth.SYNTHETIC) for _ in range(8)]
    for image in synthetic:  # as the job does when it adds its images to the study
        StudyCase.objects.create(study=study, image=image)
    job = make_job(synthetic, name="shown")
    job.study = study
    job.save(update_fields=["study"])
    return job


def test_it_stores_intervals_and_the_display_profile_figures(job_for_a_study, admin_client):
    job = job_for_a_study
    out, _ = run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR", "--resamples", "40")
    report = QualityEvaluation.objects.get(generation_job=job).report
    for key in ("quality", "quality_display"):
        for metric in report[key]["metrics"]:
            if metric["name"] not in INTERVAL_FIGURES or metric["value"]["estimate"] is None:
                continue
            for slot in ("value", "baseline"):
                value = metric[slot]
                if value["estimate"] is None:
                    continue
                assert value["method"] == (
                    "percentile bootstrap, 40 resamples, median on the estimate"
                ), (key, metric["name"], slot)
                assert value["ci_low"] <= value["estimate"] <= value["ci_high"]
    profile = report["quality_display"]["profile"]
    assert (profile["display_size"], profile["aspect"]) == (96, "crop")
    assert profile["study"] == job.study.public_id
    fd = [report[key]["metrics"][0]["value"]["estimate"] for key in ("quality", "quality_display")]
    assert fd[0] != fd[1]  # other pixels, other figures
    assert "at the study's display profile" in out and "at the model's resolution" in out

    page = admin_client.get(f"/staff/generation/jobs/generation/{job.pk}/").content.decode()
    assert "At the model's resolution" in page
    assert f"At the display profile of study {job.study.public_id} (96 px)" in page
    assert "95% percentile bootstrap interval" in page

    text = "".join(exports.stream_csv(exports.table_rows("quality", job.study)))
    rows = list(csv.DictReader(io.StringIO(text)))
    frechet = [row for row in rows if row["figure"] == "frechet_distance"]
    assert [row["presentation"] for row in frechet] == ["model", "display"]
    for row in frechet:
        assert float(row["ci_low"]) <= float(row["synthetic_vs_real"]) <= float(row["ci_high"])
        assert float(row["baseline_ci_low"]) <= float(row["real_vs_real_baseline"])
        assert float(row["real_vs_real_baseline"]) <= float(row["baseline_ci_high"])


def test_it_gives_point_estimates_with_no_resamples_and_none_for_a_model(job_for_a_study):
    run("--synthetic", "model:shown", "--real", "modality=CXR", "--resamples", "0")
    report = QualityEvaluation.objects.get(generator__name="shown").report
    assert "quality_display" not in report  # a model is shown in no particular study
    assert all(m["value"]["ci_low"] is None for m in report["quality"]["metrics"])


def test_it_says_why_there_are_no_display_figures_when_the_study_cannot_present_the_images(
    job_for_a_study,
):
    job = job_for_a_study
    broken = job.outputs.first().image
    with open(broken.original.path, "wb") as handle:  # the display derivative is left intact
        handle.write(b"not an image")

    out, _ = run("--synthetic", f"job:{job.pk}", "--real", "modality=CXR", "--resamples", "0")

    report = QualityEvaluation.objects.get(generation_job=job).report
    display = report["quality_display"]
    assert "metrics" not in display and "cannot be presented" in display["not_defined"]
    assert f"Fidelity at the study's display profile: not defined ({display['not_defined']})" in (
        out
    )
    assert "Machine observer AUC" in out  # the rest of the summary is still printed
    text = "".join(exports.stream_csv(exports.table_rows("quality", job.study)))
    rows = [row for row in csv.DictReader(io.StringIO(text)) if row["presentation"] == "display"]
    assert [(row["figure"], row["note"]) for row in rows] == [("fidelity", display["not_defined"])]
    assert rows[0]["synthetic_vs_real"] == "" and rows[0]["n_synthetic"] == "8"
