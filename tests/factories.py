"""The shared test world: users, pool images with real display files, studies."""

import hashlib
import itertools

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from pool.models import Image, Modality, Truth
from readerstudy.models import Assignment, Study, StudyCase

DEFAULT_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"reader{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"researcher{n}")
    is_staff = True
    is_superuser = True


def image_pixels(seed: int, size: int = 48) -> np.ndarray:
    """A smooth random grayscale picture, distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((6, 6))
    return np.kron(coarse, np.ones((size // 6, size // 6))).astype(np.float32)


_pixel_seeds = itertools.count(1)


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Image

    truth = Truth.REAL
    modality = Modality.CXR
    finding = "normal"
    source = factory.LazyAttribute(lambda image: "test-set" if image.truth == Truth.REAL else "ddpm-test")
    frame_index = 0
    original_format = "png"
    original_width = 48
    original_height = 48
    provenance = factory.LazyAttribute(
        lambda image: {"dataset": "test-set", "original_name": "case.png"}
        if image.truth == Truth.REAL
        else {"kind": "ddpm", "model": "test-model", "seed": 1}
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from pool.imaging import make_display_png

        seed = next(_pixel_seeds)
        display = make_display_png(image_pixels(seed), 64)
        kwargs.setdefault("sha256", hashlib.sha256(display + str(seed).encode()).hexdigest())
        image = model_class(*args, **kwargs)
        image.original.save("original.png", ContentFile(display), save=False)
        image.display.save("display.png", ContentFile(display), save=False)
        image.save()
        return image


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    title = factory.Sequence(lambda n: f"Study {n}")
    instructions = "Label each image **real**, **fake** or **unsure**."
    seed = factory.Sequence(lambda n: 1000 + n)


class StudyCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudyCase

    study = factory.SubFactory(StudyFactory)
    image = factory.SubFactory(ImageFactory)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    study = factory.SubFactory(StudyFactory)
    reader = factory.SubFactory(UserFactory)


class ResearcherFactory(UserFactory):
    """Staff in the researchers' group: everything a study needs, no superuser powers."""

    username = factory.Sequence(lambda n: f"research{n}")
    is_staff = True

    @factory.post_generation
    def researcher_group(self, create, extracted, **kwargs):
        if create:
            from access.roles import sync_researcher_group

            self.groups.add(sync_researcher_group())


class BareStaffFactory(UserFactory):
    """A staff account with no permission at all."""

    username = factory.Sequence(lambda n: f"barestaff{n}")
    is_staff = True
