"""Add cases by rule and the balance step draw from the populations the researcher chose:
real images by dataset, synthetic ones by source, generator, checkpoint and generation job,
combined with modality and finding."""

import random

import pytest

from pool.models import Modality, Truth
from readerstudy.forms import CaseRuleForm
from readerstudy.models import StudyCase
from readerstudy.services.studies import (
    Balance,
    CaseRule,
    StudyRefused,
    add_cases_by_rule,
    add_images,
)
from tests.factories import ImageFactory, StudyFactory

pytestmark = pytest.mark.django_db


def real(source: str, **fields):
    return ImageFactory(truth=Truth.REAL, source=source, **fields)


def fake(generator: str, *, checkpoint: str = "step-2", job: int = 1, **fields):
    return ImageFactory(
        truth=Truth.SYNTHETIC,
        source=fields.pop("source", generator),
        generator=generator,
        checkpoint=checkpoint,
        generation_job=job,
        **fields,
    )


@pytest.fixture
def pool():
    """Adult and pediatric real images; fakes of an adult and a pediatric model."""
    return {
        "adult": [real("adult-cxr") for _ in range(3)],
        "pediatric": [real("pediatric-cxr") for _ in range(3)],
        "adult_fakes_old": [fake("adult-ddpm", checkpoint="step-100", job=7) for _ in range(2)],
        "adult_fakes_new": [fake("adult-ddpm", checkpoint="step-900", job=8) for _ in range(2)],
        "pediatric_fakes": [fake("ped-ddpm", checkpoint="step-100", job=9) for _ in range(3)],
    }


def ids(images) -> set[int]:
    return {image.pk for image in images}


def drawn(study, truth: str) -> set[int]:
    return set(
        StudyCase.objects.filter(study=study, image__truth=truth).values_list("image_id", flat=True)
    )


def test_it_draws_real_cases_only_from_the_chosen_datasets(pool):
    study = StudyFactory()
    rule = CaseRule(n_real=3, n_synthetic=0, real_sources=("adult-cxr",))
    add_cases_by_rule(study, rule, rng=random.Random(1))
    assert drawn(study, Truth.REAL) == ids(pool["adult"])


def test_it_draws_synthetic_cases_only_from_the_chosen_generator(pool):
    study = StudyFactory()
    rule = CaseRule(n_real=0, n_synthetic=4, generators=("adult-ddpm",))
    add_cases_by_rule(study, rule, rng=random.Random(1))
    assert drawn(study, Truth.SYNTHETIC) == ids(pool["adult_fakes_old"] + pool["adult_fakes_new"])


def test_it_tells_checkpoints_of_different_generators_apart(pool):
    study = StudyFactory()
    rule = CaseRule(n_real=0, n_synthetic=2, checkpoints=(("adult-ddpm", "step-100"),))
    add_cases_by_rule(study, rule, rng=random.Random(1))
    assert drawn(study, Truth.SYNTHETIC) == ids(pool["adult_fakes_old"])


def test_it_draws_synthetic_cases_from_chosen_generation_jobs(pool):
    study = StudyFactory()
    rule = CaseRule(n_real=0, n_synthetic=5, generation_jobs=(8, 9))
    add_cases_by_rule(study, rule, rng=random.Random(1))
    assert drawn(study, Truth.SYNTHETIC) == ids(pool["adult_fakes_new"] + pool["pediatric_fakes"])


def test_it_draws_synthetic_cases_by_source_for_imported_fakes():
    imported = [
        ImageFactory(truth=Truth.SYNTHETIC, source="vendor-fakes") for _ in range(2)
    ]
    ImageFactory(truth=Truth.SYNTHETIC, source="other-fakes")
    study = StudyFactory()
    add_cases_by_rule(study, CaseRule(n_real=0, n_synthetic=2, synthetic_sources=("vendor-fakes",)))
    assert drawn(study, Truth.SYNTHETIC) == ids(imported)


def test_it_combines_the_filters_with_modality_and_finding(pool):
    wanted_real = [real("adult-cxr", modality=Modality.CT, finding="nodule") for _ in range(2)]
    real("adult-cxr", modality=Modality.CT, finding="normal")
    real("pediatric-cxr", modality=Modality.CT, finding="nodule")
    wanted_fake = [
        fake("adult-ddpm", modality=Modality.CT, finding="nodule", checkpoint="ct-1", job=12)
        for _ in range(2)
    ]
    fake("adult-ddpm", modality=Modality.CT, finding="normal", checkpoint="ct-1", job=12)
    study = StudyFactory()
    rule = CaseRule(
        n_real=2,
        n_synthetic=2,
        modality=Modality.CT,
        finding="Nodule",
        real_sources=("adult-cxr",),
        generators=("adult-ddpm",),
        generation_jobs=(12,),
    )
    add_cases_by_rule(study, rule)
    assert drawn(study, Truth.REAL) == ids(wanted_real)
    assert drawn(study, Truth.SYNTHETIC) == ids(wanted_fake)


def test_it_builds_one_study_from_two_datasets_in_two_rules(pool):
    study = StudyFactory()
    add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0, real_sources=("adult-cxr",)))
    add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0, real_sources=("pediatric-cxr",)))
    chosen = drawn(study, Truth.REAL)
    assert len(chosen & ids(pool["adult"])) == 2 and len(chosen & ids(pool["pediatric"])) == 2


def test_it_refuses_and_adds_nothing_when_a_filtered_side_is_short(pool):
    study = StudyFactory()
    rule = CaseRule(n_real=4, n_synthetic=1, real_sources=("adult-cxr",))
    with pytest.raises(StudyRefused, match=r"4 real wanted, 3 available \(from adult-cxr\)"):
        add_cases_by_rule(study, rule)
    assert not study.cases.exists()


def test_it_balances_only_with_real_images_of_the_chosen_dataset(pool):
    study = StudyFactory()
    outcome = add_images(
        study.pk,
        [image.pk for image in pool["pediatric_fakes"]],
        balance=Balance(Modality.CXR, sources=("pediatric-cxr",)),
    )
    assert (outcome.added, outcome.balancing) == (3, 3)
    assert drawn(study, Truth.REAL) == ids(pool["pediatric"])


def test_it_balances_from_several_datasets_as_far_as_they_go(pool):
    study = StudyFactory()
    many_fakes = [fake("ped-ddpm") for _ in range(8)]
    outcome = add_images(
        study.pk,
        [image.pk for image in many_fakes],
        balance=Balance(Modality.CXR, sources=("pediatric-cxr", "adult-cxr")),
    )
    assert (outcome.added, outcome.balancing) == (8, 6)


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_it_offers_each_filter_on_the_rule_page_with_what_the_pool_holds(admin_client, pool):
    study = StudyFactory()
    page = admin_client.get(f"/admin/readerstudy/study/{study.pk}/add-cases/").content.decode()
    for text in ("adult-cxr", "pediatric-cxr", "ped-ddpm", "adult-ddpm: step-900", "#9 (ped-ddpm)"):
        assert text in page
    form = CaseRuleForm()
    assert [value for value, _ in form.fields["real_sources"].choices] == [
        "adult-cxr",
        "pediatric-cxr",
    ]
    assert [value for value, _ in form.fields["synthetic_sources"].choices] == [
        "adult-ddpm",
        "ped-ddpm",
    ]
    assert [value for value, _ in form.fields["generation_jobs"].choices] == ["9", "8", "7"]


def test_it_adds_cases_by_rule_with_filters_from_the_admin_page(admin_client, pool):
    study = StudyFactory()
    response = admin_client.post(
        f"/admin/readerstudy/study/{study.pk}/add-cases/",
        {
            "n_real": "3",
            "n_synthetic": "2",
            "n_practice": "0",
            "modality": "",
            "finding": "",
            "real_sources": ["pediatric-cxr"],
            "checkpoints": ["ped-ddpm|step-100"],
            "generation_jobs": ["9"],
        },
    )
    assert response.status_code == 302
    assert drawn(study, Truth.REAL) == ids(pool["pediatric"])
    assert drawn(study, Truth.SYNTHETIC) <= ids(pool["pediatric_fakes"])
    assert len(drawn(study, Truth.SYNTHETIC)) == 2
