"""Blinding of the pair and exposure pages: nothing a reader receives follows the truth.

The same collection and comparison as tests/readerstudy/test_blinding.py: every response of a
reader going through the study, grouped by position class; within a group, responses must be
identical (tokens, CSRF and numbers normalised) whether the synthetic image is on the left or
the right (pairs) or the image is real or synthetic (exposure); no response carries a truth
label, source, provenance value, hash or image id; every image has the same headers and length.
Sides come from the stored draw, and exposures from the reader's earlier answers only: with a
reader who is always wrong, the exposures climb by one step a screen, whatever the images.
"""

import pytest

from pool.models import Image, Truth
from readerstudy.models import Design, ReadingSlot
from readerstudy.services.studies import open_study
from tests.designs.helpers import accept_audit
from tests.factories import ImageFactory, StudyFactory
from tests.readerstudy.helpers import case_url, slots_of
from tests.readerstudy.test_blinding import (
    REAL_IMAGES,
    SYNTHETIC_IMAGES,
    Received,
    forbidden_strings,
    leaks,
)

pytestmark = pytest.mark.django_db
VOCABULARY = "normal, abnormal, other"


def build(reader, **options):
    study = StudyFactory(title="Chest film reading", instructions="Take your time.", **options)
    # Three rounds of the four pairs: with 10 middle screens, the chance that every one has the
    # fake on the same side (and the comparison would not mix both) is 2 in 1024.
    for real, synthetic in zip(REAL_IMAGES * 3, SYNTHETIC_IMAGES * 3, strict=True):
        # Pairs are matched on finding: give each synthetic image its real partner's finding.
        study.cases.create(image=ImageFactory(truth=Truth.REAL, **real))
        study.cases.create(
            image=ImageFactory(truth=Truth.SYNTHETIC, **{**synthetic, "finding": real["finding"]})
        )
    for truth, source in ((Truth.REAL, "practice-real-set"), (Truth.SYNTHETIC, "practice-ddpm")):
        study.cases.create(
            image=ImageFactory(truth=truth, finding="normal", source=source), is_practice=True
        )
    study.assignments.create(reader=reader)
    accept_audit(study)
    open_study(study)
    return study


def read_through(client, study, reader, payload):
    slots = slots_of(study, reader)
    first = next(s.position for s in slots if not s.is_practice)
    received = []

    def group_of(slot):
        if slot.is_practice:
            return ("practice",)
        return ("case", slot.position == first, slot.position == slots[-1].position)

    def keep(kind, response, group, truth):
        received.append(
            Received(
                kind, group, truth, response.status_code, list(response.items()), response.content
            )
        )

    for slot in slots:
        truth = slot.case.image.truth  # pairs: the left image's truth = the side of the fake
        group = group_of(slot)
        keep("page", client.get(case_url(slot)), group, truth)
        keep("image", client.get(f"/read/{slot.token}/image.png"), ("image",), truth)
        if slot.right_case_id:
            keep("image", client.get(f"/read/{slot.token}/right.png"), ("image",), truth)
        response = client.post(case_url(slot), payload)
        if not slot.is_practice:
            keep("post", response, group, truth)
    return received


def check(received, study, reader, allowed=()):
    tokens = [slot.token for slot in slots_of(study, reader)]
    forbidden = forbidden_strings() - set(allowed)
    for item in received:
        haystack = (item.text() + "\n".join(f"{n}: {v}" for n, v in item.headers)).lower()
        found = sorted(word for word in forbidden if word in haystack)
        assert not found, f"{item.kind} {item.group} contains {found}"
    assert leaks(received, tokens) == []
    middle = {i.truth for i in received if i.kind == "page" and i.group == ("case", False, False)}
    assert middle == {Truth.REAL, Truth.SYNTHETIC}, "the comparison must mix both sides/truths"
    images = [item for item in received if item.kind == "image"]
    assert {item.status for item in images} == {200}
    assert len({dict(item.headers)["Content-Length"] for item in images}) == 1
    same = {
        tuple(sorted((n, v) for n, v in item.headers if n.lower() != "date")) for item in images
    }
    assert len(same) == 1


@pytest.mark.parametrize("ask_finding", [False, True], ids=["plain", "with-finding"])
def test_it_blinds_pair_pages(client, reader, ask_finding):
    study = build(
        reader, design=Design.PAIR, ask_finding=ask_finding, finding_vocabulary=VOCABULARY
    )
    client.force_login(reader)
    payload = {"side": "left", "finding": "other"}
    received = read_through(client, study, reader, payload)
    # The question's own words ("which one is synthetic?", "what finding do you see?") are the
    # same on every page, and so is the vocabulary (which holds the practice images' "normal");
    # the images' other findings, sources and ids never appear.
    check(
        received,
        study,
        reader,
        allowed={"synthetic", "finding", "normal"} if ask_finding else {"synthetic"},
    )
    lefts = [s.case.image.truth for s in slots_of(study, reader) if not s.is_practice]
    assert set(lefts) == {Truth.REAL, Truth.SYNTHETIC}  # sides vary, by the stored draw


def test_it_blinds_exposure_pages_and_moves_exposures_only_by_earlier_answers(client, reader):
    study = build(
        reader,
        design=Design.EXPOSURE,
        exposure_start_ms=400,
        exposure_step_ms=20,
        staircase_down=1,
        staircase_up=1,
    )
    client.force_login(reader)
    received = read_through(client, study, reader, {"answer": "unsure", "achieved_ms": "400"})
    check(received, study, reader)
    exposures = list(
        ReadingSlot.objects.filter(assignment__reader=reader, is_practice=False)
        .order_by("position")
        .values_list("exposure_ms", flat=True)
    )
    assert exposures == [400 + 20 * i for i in range(len(exposures))]
    assert Image.objects.filter(truth=Truth.SYNTHETIC).exists()
