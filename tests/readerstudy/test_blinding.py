"""Nothing a reader's browser receives tells real from synthetic.

A reader goes through a mixed study with the test client, and every response is kept:
home, study intro, each case page (full and htmx partial), each image, each answer's
response (plain form and htmx), each revisit, and the completion page. Then:

* no response (bodies and header values) contains a truth label, source, finding,
  file name, provenance value, hash or image public id;
* after the slot tokens, CSRF tokens and numbers are replaced by placeholders, the
  responses of cases in the same position class (practice, first case, middle, last)
  are byte-identical, headers included (only Date is left out), whatever the truth;
* every image has the same headers and the same length.

Only a practice case's feedback, after the answer, may name the truth; it is checked to
do so, which also shows the collection would see a leak.
"""

import re
from collections import defaultdict
from dataclasses import dataclass

import pytest

from pool.models import Image, Truth
from readerstudy.services.presentation import profile_of
from readerstudy.services.studies import open_study
from tests.factories import ImageFactory, StudyFactory
from tests.readerstudy.helpers import HTMX, answer_payload, case_url, slots_of

pytestmark = pytest.mark.django_db

IGNORED_HEADERS = {"date"}
HTML_LENGTH = "content-length"  # numbers such as "Case 9" / "Case 10" change an HTML length

CSRF_FIELD = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+(")')
CSRF_HEADER = re.compile(r'("X-CSRFToken": ")[^"]+(")')
NUMBER = re.compile(r"\d+")

REAL_IMAGES = [
    {
        "finding": "pneumonia",
        "source": "hospital-north-2019",
        "provenance": {"dataset": "north", "original_name": "patient-0042-ap.dcm"},
    },
    {
        "finding": "effusion",
        "source": "hospital-south-2021",
        "provenance": {"dataset": "south", "original_name": "scan_7731.png"},
    },
    {
        "finding": "cardiomegaly",
        "source": "public-archive-cxr",
        "provenance": {"dataset": "archive", "original_name": "img-99-pa.jpg"},
    },
    {
        "finding": "nodule",
        "source": "hospital-north-2019",
        "provenance": {"dataset": "north", "original_name": "patient-0107-pa.dcm"},
    },
]
SYNTHETIC_IMAGES = [
    {
        "finding": "pneumonia",
        "source": "ddpm-cxr-64-run3",
        "provenance": {"kind": "ddpm", "model": "unet-37m-epoch90", "seed": 1234567},
    },
    {
        "finding": "effusion",
        "source": "roentgen-lora-v2",
        "provenance": {
            "kind": "stable-diffusion",
            "model": "roentgen-lora-v2",
            "prompt": "left pleural effusion",
        },
    },
    {
        "finding": "cardiomegaly",
        "source": "ddpm-cxr-64-run3",
        "provenance": {"kind": "ddpm", "model": "unet-37m-epoch90", "seed": 7654321},
    },
    {
        "finding": "atelectasis",
        "source": "medfusion-ct",
        "provenance": {"kind": "ldm", "model": "medfusion-ct-finetune", "seed": 42},
    },
]


@dataclass
class Received:
    kind: str
    group: tuple
    truth: str | None
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def text(self) -> str:
        return self.body.decode("latin-1")


def build_mixed_study(reader, profile=None, **options):
    study = StudyFactory(
        title="Chest film reading",
        instructions="Label each image. Take your time.",
        **options,
    )
    for fields in REAL_IMAGES:
        study.cases.create(image=ImageFactory(truth=Truth.REAL, **fields))
    for fields in SYNTHETIC_IMAGES:
        study.cases.create(image=ImageFactory(truth=Truth.SYNTHETIC, **fields))
    study.cases.create(
        image=ImageFactory(truth=Truth.REAL, finding="normal", source="practice-real-set"),
        is_practice=True,
    )
    study.cases.create(
        image=ImageFactory(truth=Truth.SYNTHETIC, finding="normal", source="practice-ddpm"),
        is_practice=True,
    )
    study.assignments.create(reader=reader)
    if profile:
        stored = profile_of(study)
        for name, value in profile.items():
            setattr(stored, name, value)
        stored.save()
    open_study(study)
    return study


def forbidden_strings() -> set[str]:
    """Everything about the images a reader must never receive."""
    found = {
        "synthetic",
        "truth",
        "provenance",
        "finding",
        "ddpm",
        "generator",
        "display/",
        "originals/",
    }
    for image in Image.objects.all():
        found |= {image.public_id, image.sha256, image.source, image.finding}
        for name in (image.display.name, image.original.name):
            found |= {name, name.rsplit("/", 1)[-1], name.rsplit("/", 1)[-1].rsplit(".", 1)[0]}
        found |= {str(value) for value in image.provenance.values() if len(str(value)) > 3}
    return {value.lower() for value in found if value}


def normalise(text: str, tokens: list[str]) -> str:
    for token in tokens:
        text = text.replace(token, "TOKEN")
    text = CSRF_FIELD.sub(r"\1CSRF\2", text)
    text = CSRF_HEADER.sub(r"\1CSRF\2", text)
    return NUMBER.sub("N", text)


def signature(item: Received, tokens: list[str]) -> tuple:
    headers = tuple(
        sorted(
            (name.lower(), normalise(value, tokens))
            for name, value in item.headers
            if name.lower() not in IGNORED_HEADERS
            and not (name.lower() == HTML_LENGTH and item.kind != "image")
        )
    )
    if item.kind == "image":
        # Pixels differ, of course; the file's structure must not (checked in the test).
        return (item.status, headers)
    return (item.status, headers, normalise(item.text(), tokens))


def leaks(received: list[Received], tokens: list[str]) -> list[str]:
    """Groups in which responses differ, described; empty when blinded."""
    groups: dict[tuple, dict[tuple, set]] = defaultdict(lambda: defaultdict(set))
    for item in received:
        groups[(item.kind, item.group)][signature(item, tokens)].add(item.truth)
    return [
        f"{kind} {group}: {len(variants)} different responses"
        for (kind, group), variants in groups.items()
        if len(variants) > 1
    ]


def read_through(client, study, reader) -> tuple[list[Received], list[Received]]:
    """Go through the whole study; returns (everything blinded, practice feedback)."""
    slots = slots_of(study, reader)
    main = [slot for slot in slots if not slot.is_practice]
    first_main, last = main[0].position, slots[-1].position

    def group_of(slot):
        if slot is None:
            return ("end",)
        if slot.is_practice:
            return ("practice",)
        return ("case", slot.position == first_main, slot.position == last)

    received, feedback = [], []

    def keep(kind, response, group=(), truth=None):
        item = Received(
            kind, group, truth, response.status_code, list(response.items()), response.content
        )
        received.append(item)
        return response

    keep("home-before", client.get("/"))
    keep("intro", client.get(f"/studies/{study.public_id}/"))
    keep("next", client.get(f"/studies/{study.public_id}/next/"))
    payload = answer_payload("unsure", 3 if study.collects_confidence else None, "", "1500")
    for index, slot in enumerate(slots):
        following = slots[index + 1] if index + 1 < len(slots) else None
        group, truth = group_of(slot), slot.case.image.truth
        keep("page", client.get(case_url(slot)), group, truth)
        keep("partial", client.get(case_url(slot), **HTMX), group, truth)
        keep("image", client.get(f"/read/{slot.token}/image.png"), ("image",), truth)
        keep("image", client.get(f"/read/{slot.token}/window/lung.png"), ("image",), truth)
        answered = (group, group_of(following))
        if slot.is_practice:
            for response in (
                client.post(case_url(slot), payload),
                client.get(f"/read/{slot.token}/feedback/"),
                client.post(case_url(slot), payload, **HTMX),
            ):
                feedback.append(
                    Received(
                        "feedback",
                        group,
                        truth,
                        response.status_code,
                        list(response.items()),
                        response.content,
                    )
                )
            continue
        keep("post", client.post(case_url(slot), payload), answered, truth)
        keep(
            "post-htmx", client.post(case_url(slot), payload, **HTMX), answered, truth
        )  # a double submit
        if study.allow_revisions:
            keep("revisit", client.get(case_url(slot)), group, truth)
            keep("revisit-htmx", client.get(case_url(slot), **HTMX), group, truth)
    keep("done", client.get(f"/studies/{study.public_id}/done/"))
    keep("home-after", client.get("/"))
    return received, feedback


@pytest.mark.parametrize(
    "options",
    [
        {
            "confidence_scale": 0,
            "allow_revisions": False,
            "repeat_fraction": 0.25,
            "repeat_min_gap": 3,
        },
        {"confidence_scale": 5, "allow_revisions": True, "repeat_fraction": 0.0},
        {
            "confidence_scale": 0,
            "profile": {
                "display_size": 256,
                "aspect": "crop",
                "source_resolution_mode": "lowest",
                "border_crop_percent": 5.0,
                "standardise_intensity": True,
            },
        },
    ],
    ids=["plain-with-repeats", "confidence-and-going-back", "harmonising-profile"],
)
def test_it_sends_nothing_that_separates_real_from_synthetic(client, reader, options):
    study = build_mixed_study(reader, **options)
    client.force_login(reader)
    received, feedback = read_through(client, study, reader)
    tokens = [slot.token for slot in slots_of(study, reader)]

    # 1. No forbidden string anywhere (bodies and header values).
    forbidden = forbidden_strings()
    for item in received:
        haystack = (item.text() + "\n" + "\n".join(f"{n}: {v}" for n, v in item.headers)).lower()
        found = sorted(word for word in forbidden if word in haystack)
        assert not found, f"{item.kind} {item.group} contains {found}"

    # 2. Within each position class, every response is identical, whatever the truth.
    assert leaks(received, tokens) == []
    middle = {
        item.truth
        for item in received
        if item.kind == "page" and item.group == ("case", False, False)
    }
    assert middle == {Truth.REAL, Truth.SYNTHETIC}, "the comparison must mix both truths"
    practice = {
        item.truth for item in received if item.kind == "page" and item.group == ("practice",)
    }
    assert practice == {Truth.REAL, Truth.SYNTHETIC}

    # 3. Every image: same status, headers and length.
    images = [item for item in received if item.kind == "image"]
    assert len({item.status for item in images}) == 1 and images[0].status == 200
    assert len({dict(item.headers)["Content-Length"] for item in images}) == 1
    assert len({len(item.body) for item in images}) == 1
    assert len({item.body[:41] for item in images}) == 1  # signature, IHDR and the IDAT header

    # 4. The practice feedback, and only it, names the truth (the collection sees leaks).
    for item in feedback:
        if item.status == 200:
            word = "real" if item.truth == Truth.REAL else "synthetic"
            assert f"this image is {word}." in item.text().lower()


def test_it_notices_a_difference_between_real_and_synthetic():
    """The comparison itself: a class name that follows the truth is caught."""
    same = [("Content-Type", "text/html")]
    received = [
        Received("page", ("case",), Truth.REAL, 200, same, b'<div class="v">abc</div>'),
        Received("page", ("case",), Truth.SYNTHETIC, 200, same, b'<div class="w">def</div>'),
    ]
    assert leaks(received, ["abc", "def"]) != []
    received[1].body = b'<div class="v">def</div>'
    assert leaks(received, ["abc", "def"]) == []
