"""A generation job keeps its study fair: its images record generator, checkpoint and job in
the pool, and its "keep the balance" step draws real images only from the chosen datasets."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from generation import services, tasks
from generation.forms import GenerateForm
from generation.models import JobStatus
from pool.importing import ImportLabels, import_bytes
from pool.models import Image, Modality, Truth
from readerstudy.models import StudyCase
from readerstudy.results import checkpoint_label
from tests.factories import StudyFactory
from tests.generation.conftest import real_png


def import_from(source: str, seeds, finding: str = "Pneumonia") -> list[Image]:
    images = []
    for seed in seeds:
        outcome = import_bytes(
            real_png(seed),
            name=f"{source}-{seed}.png",
            labels=ImportLabels(
                truth=Truth.REAL, modality=Modality.CXR, finding=finding, source=source
            ),
        )
        assert outcome.status == "imported", outcome.line()
        images += outcome.images
    return images


@pytest.fixture
def pediatric(real_pool):
    """Three pediatric pneumonia images next to the adult ("test") pool."""
    return import_from("pediatric-cxr", range(200, 203))


def new_job(generator, **fields):
    values = {"count": 2, "finding": "pneumonia", "steps": 2, "seed": 0, "batch_size": 2}
    return services.create_generation_job(generator=generator, **{**values, **fields})


def test_it_records_generator_checkpoint_and_job_on_each_generated_image(
    real_pool, tiny_generator
):
    job = new_job(tiny_generator)
    tasks.generate_images(job_pk=job.pk)
    images = [slot.image for slot in job.outputs.select_related("image")]
    assert len(images) == 2
    for image in images:
        assert (image.generator, image.generation_job) == ("tiny", job.pk)
        assert image.checkpoint and image.checkpoint == checkpoint_label(image.provenance)
        assert image.finding == "pneumonia"  # the vocabulary's spelling, from the first import


def test_it_balances_with_real_images_of_the_chosen_dataset_only(pediatric, tiny_generator):
    study = StudyFactory()
    job = new_job(
        tiny_generator, study=study, keep_study_balance=True, balance_sources=["pediatric-cxr"]
    )
    assert job.balance_sources == ["pediatric-cxr"]
    tasks.generate_images(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    reals = StudyCase.objects.filter(study=study, image__truth=Truth.REAL)
    assert reals.count() == 2
    assert set(reals.values_list("image__source", flat=True)) == {"pediatric-cxr"}
    tasks.generate_images(job_pk=job.pk)  # again: the study does not grow
    assert StudyCase.objects.filter(study=study).count() == 4


def test_it_says_in_the_log_when_the_chosen_dataset_runs_short(pediatric, tiny_generator):
    study = StudyFactory()
    job = new_job(
        tiny_generator, count=4, study=study, keep_study_balance=True,
        balance_sources=["pediatric-cxr"],
    )
    tasks.generate_images(job_pk=job.pk)
    job.refresh_from_db()
    assert "only 3 matching real CXR image(s) with finding pneumonia from pediatric-cxr" in (
        job.log_tail
    )


def test_it_refuses_a_dataset_with_no_real_images(real_pool, tiny_generator):
    with pytest.raises(services.InvalidJob, match="no real images from 'adult-cxr'"):
        new_job(
            tiny_generator, study=StudyFactory(), keep_study_balance=True,
            balance_sources=["adult-cxr"],
        )


def test_it_keeps_no_sources_without_the_balance_step(real_pool, tiny_generator):
    job = new_job(tiny_generator, balance_sources=["test"])
    assert job.balance_sources == []


def test_it_offers_the_real_datasets_on_the_generate_form(pediatric, tiny_generator):
    study = StudyFactory()
    form = GenerateForm(
        {
            "generator": str(tiny_generator.pk), "count": "2", "finding": "pneumonia",
            "scheduler": "ddim", "steps": "2", "guidance": "2.0", "seed": "0",
            "batch_size": "2", "study": str(study.pk), "keep_study_balance": "on",
            "balance_sources": ["pediatric-cxr"],
        }
    )
    assert [value for value, _ in form.fields["balance_sources"].choices] == [
        "pediatric-cxr",
        "test",
    ]
    assert form.is_valid(), form.errors
    assert form.job_kwargs()["balance_sources"] == ["pediatric-cxr"]


def test_it_takes_balance_sources_on_the_command_line(pediatric, tiny_generator):
    study = StudyFactory()
    call_command(
        "generate_images", "--model", "tiny", "--count", "1", "--finding", "pneumonia",
        "--steps", "2", "--study", str(study.pk), "--keep-balance",
        "--balance-source", "pediatric-cxr", "--no-progress", stdout=io.StringIO(),
    )
    reals = StudyCase.objects.filter(study=study, image__truth=Truth.REAL)
    assert list(reals.values_list("image__source", flat=True)) == ["pediatric-cxr"]
