"""The Generate form offers only models that can make images now."""

import pytest

from generation.forms import GenerateForm
from generation.models import GeneratorKind, GeneratorModel, JobStatus, TrainingRun

pytestmark = pytest.mark.django_db


def offered(form: GenerateForm) -> list[str]:
    return [label for _pk, label in form.fields["generator"].widget.choices]


@pytest.fixture
def models(db, tmp_path):
    make = GeneratorModel.objects.create
    return {
        "trained": make(
            name="trained", kind=GeneratorKind.DDPM, findings=["normal"], trained_steps=100
        ),
        "untrained": make(name="untrained", kind=GeneratorKind.DDPM, findings=["normal"]),
        "sd-base": make(
            name="sd-base", kind=GeneratorKind.STABLE_DIFFUSION, base_checkpoint=str(tmp_path)
        ),
        "sd-training": make(
            name="sd-training", kind=GeneratorKind.STABLE_DIFFUSION, base_checkpoint=str(tmp_path)
        ),
        "sd-no-base": make(name="sd-no-base", kind=GeneratorKind.STABLE_DIFFUSION),
    }


def test_it_lists_only_models_with_a_usable_checkpoint(models):
    # A training run that has written nothing yet: its LoRA does not exist.
    TrainingRun.objects.create(
        generator=models["sd-training"], total_steps=10, status=JobStatus.RUNNING
    )
    form = GenerateForm()
    assert offered(form) == ["sd-base", "trained"]
    assert [model.name for model in form.unusable_models] == [
        "sd-no-base",
        "sd-training",
        "untrained",
    ]


def test_it_lists_a_model_once_its_first_checkpoint_is_recorded(models):
    assert "untrained" not in offered(GenerateForm())
    GeneratorModel.objects.filter(pk=models["untrained"].pk).update(
        trained_steps=10, checkpoints=[{"step": 10, "path": "x"}]
    )
    assert "untrained" in offered(GenerateForm())


def test_it_preselects_a_usable_model_when_the_link_names_an_untrained_one(models):
    form = GenerateForm(initial={"generator": str(models["untrained"].pk)})
    assert form.initial["generator"] == str(models["sd-base"].pk)


def test_it_names_the_models_left_out_on_the_page(staff_client, models):
    page = staff_client.get("/staff/generation/generate/").content.decode()
    assert 'id="unusable-models"' in page
    assert f'<a href="/staff/generation/models/{models["untrained"].pk}/">untrained</a>' in page
    assert f'<option value="{models["untrained"].pk}"' not in page
    assert f'<option value="{models["trained"].pk}"' in page


def test_it_says_so_when_no_model_can_generate(staff_client, db):
    GeneratorModel.objects.create(name="fresh", kind=GeneratorKind.DDPM, findings=["normal"])
    page = staff_client.get("/staff/generation/generate/").content.decode()
    assert 'id="no-usable-model"' in page
