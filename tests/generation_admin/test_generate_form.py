"""The Generate form: a finding for class-conditional models, a prompt for text models."""

import pytest

from generation.forms import GenerateForm
from generation.models import GeneratorKind, GeneratorModel
from readerstudy.models import Assignment, ReadingSlot, StudyCase, StudyStatus
from tests.factories import ImageFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def generate_data(generator, **overrides) -> dict:
    return {
        "generator": str(generator.pk),
        "count": "4",
        "finding": "normal",
        "prompt": "",
        "negative_prompt": "",
        "scheduler": "ddim",
        "steps": "10",
        "guidance": "2.0",
        "seed": "0",
        "batch_size": "2",
        **overrides,
    }


@pytest.fixture
def text_model(db, tmp_path):
    return GeneratorModel.objects.create(
        name="sd",
        kind=GeneratorKind.STABLE_DIFFUSION,
        base_checkpoint=str(tmp_path),
        resolution=512,
    )


def test_it_accepts_a_finding_the_model_was_trained_on(tiny_model):
    form = GenerateForm(generate_data(tiny_model, finding="Pneumonia"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["finding"] == "pneumonia"  # the model's spelling


def test_it_refuses_a_prompt_for_a_ddpm_model(tiny_model):
    form = GenerateForm(generate_data(tiny_model, prompt="a chest x-ray"))
    assert not form.is_valid()
    assert "class-conditional" in form.errors["prompt"][0]


def test_it_refuses_an_unknown_or_missing_finding_for_a_ddpm_model(tiny_model):
    form = GenerateForm(generate_data(tiny_model, finding="effusion"))
    assert not form.is_valid()
    assert "normal, pneumonia" in form.errors["finding"][0]
    form = GenerateForm(generate_data(tiny_model, finding=""))
    assert not form.is_valid()
    assert form.errors["finding"]


def test_it_refuses_a_ddpm_model_without_a_checkpoint(db):
    untrained = GeneratorModel.objects.create(
        name="untrained", kind=GeneratorKind.DDPM, findings=["normal"]
    )
    form = GenerateForm(generate_data(untrained))
    assert not form.is_valid()
    assert "no checkpoint yet" in form.errors["generator"][0]


def test_it_needs_a_prompt_or_a_finding_for_a_text_model(text_model):
    assert GenerateForm(
        generate_data(text_model, prompt="a frontal chest x-ray", finding="")
    ).is_valid()
    assert GenerateForm(generate_data(text_model, finding="pneumonia")).is_valid()
    form = GenerateForm(generate_data(text_model, finding=""))
    assert not form.is_valid()
    assert form.errors["prompt"]


@pytest.mark.parametrize(
    "field,value", [("scheduler", "heun"), ("count", "0"), ("steps", "0"), ("guidance", "-1")]
)
def test_it_refuses_bad_sampling_settings(tiny_model, field, value):
    assert field in GenerateForm(generate_data(tiny_model, **{field: value})).errors


def test_it_refuses_more_images_than_the_limit(tiny_model, settings):
    settings.GENERATION_MAX_COUNT = 10
    assert "count" in GenerateForm(generate_data(tiny_model, count="11")).errors


def test_it_offers_only_draft_studies_without_drawn_orders(tiny_model):
    draft = StudyFactory(title="Draft")
    StudyFactory(title="Open", status=StudyStatus.OPEN)
    drawn = StudyFactory(title="Drawn")
    case = StudyCase.objects.create(study=drawn, image=ImageFactory())
    assignment = Assignment.objects.create(study=drawn, reader=UserFactory())
    ReadingSlot.objects.create(assignment=assignment, case=case, position=1)
    form = GenerateForm()
    assert list(form.fields["study"].queryset) == [draft]
    refused = GenerateForm(generate_data(tiny_model, study=str(drawn.pk)))
    assert "study" in refused.errors


def test_it_keeps_the_balance_only_of_a_chosen_study(tiny_model):
    study = StudyFactory()
    assert GenerateForm(
        generate_data(tiny_model, study=str(study.pk), keep_study_balance="on")
    ).is_valid()
    form = GenerateForm(generate_data(tiny_model, keep_study_balance="on"))
    assert "keep_study_balance" in form.errors
