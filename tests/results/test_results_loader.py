"""From the database to the statistics: the loader, its groupings, its cache."""

import math
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readerstudy.analysis import ReadingTable, analyse
from readerstudy.models import Reading, Study
from readerstudy.results import (
    NO_JOB,
    REAL_GROUP,
    find_study,
    generator_groups,
    load_readings,
    reader_progress,
    study_analysis,
)
from tests.results.world import finished_study, synthetic_provenance

pytestmark = pytest.mark.django_db

TRUTHS = ["real", "synthetic", "real", "synthetic"]
ANSWERS = {
    "alice": [("real", 4), ("fake", 5), ("unsure", 2), ("real", 3)],
    "bob": [("fake", 2), ("fake", 4), ("real", 5), ("unsure", 1)],
}


@pytest.fixture
def study():
    return finished_study(ANSWERS, TRUTHS, practice=1, repeats={"alice": {1: ("real", 2)}})


def test_it_loads_every_non_practice_reading_with_repeats_as_second_showings(study):
    table = load_readings(study).table
    assert table.reader_labels == ("alice", "bob")
    assert len(table.case_labels) == 4  # the practice case is not a case of the analysis
    assert len(table) == 8 + 1
    assert sorted(table.showing.tolist()) == [1] * 8 + [2]
    repeat = int(np.flatnonzero(table.showing == 2)[0])
    assert table.reader_labels[table.reader[repeat]] == "alice"
    assert table.answer[repeat] == 0 and table.confidence[repeat] == 2
    assert table.is_fake[repeat]


def test_it_codes_answers_truth_and_confidence_like_the_records_would(study):
    table = load_readings(study).table
    loaded = sorted(
        zip(
            [table.reader_labels[r] for r in table.reader],
            [table.case_labels[c] for c in table.case],
            table.answer.tolist(),
            table.is_fake.tolist(),
            table.confidence.tolist(),
            table.showing.tolist(),
        )
    )
    cases = list(table.case_labels)
    expected = []
    for reader, answers in ANSWERS.items():
        for index, (answer, confidence) in enumerate(answers):
            code = {"real": 0, "unsure": 1, "fake": 2}[answer]
            expected.append((reader, cases[index], code, TRUTHS[index] == "synthetic",
                             float(confidence), 1))
    expected.append(("alice", cases[1], 0, True, 2.0, 2))
    assert loaded == sorted(expected)


def test_it_gives_nan_confidence_when_none_was_collected():
    study = finished_study(ANSWERS, TRUTHS, confidence=False)
    table = load_readings(study).table
    assert np.isnan(table.confidence).all()


def test_its_analysis_equals_analyse_on_the_same_records(study):
    records = []
    table = load_readings(study).table
    for reader, answers in ANSWERS.items():
        for index, (answer, confidence) in enumerate(answers):
            records.append({"reader": reader, "case": table.case_labels[index],
                            "is_fake": TRUTHS[index] == "synthetic", "answer": answer,
                            "confidence": confidence})
    records.append({"reader": "alice", "case": table.case_labels[1], "is_fake": True,
                    "answer": "real", "confidence": 2, "showing": 2})
    expected = analyse(
        ReadingTable.from_records(records, reader_labels=["alice", "bob"],
                                  case_labels=table.case_labels),
        n_bootstrap=200, seed=3,
    ).to_jsonable()
    got = study_analysis(study, n_bootstrap=200, seed=3, use_cache=False).to_jsonable()
    for key in ("readers", "reader_averaged", "roc", "agreement", "agreement_committed",
                "cases", "intra_reader"):
        assert got[key] == expected[key], key


def test_it_groups_cases_by_generator_checkpoint_job_modality_and_finding():
    provenance = {
        1: synthetic_provenance(1),
        3: {"generator": "stable-diffusion", "model": "sd-cxr", "base_checkpoint": "/models/sd15",
            "weights_sha256": "cd" * 32, "lora_sha256": "ef" * 32, "prompt": "chest x-ray",
            "job": 12},
        4: {"kind": "image-api", "model": "hosted-1", "prompt": "a chest x-ray"},
    }
    study = finished_study(
        {"alice": [("real", 1)] * 5}, ["real", "synthetic", "real", "synthetic", "synthetic"],
        provenance=provenance, modalities={3: "CT"},
    )
    groups = load_readings(study).table.case_groups
    assert groups["generator"] == (
        REAL_GROUP, "tiny (ddpm)", REAL_GROUP, "sd-cxr (stable-diffusion)", "hosted-1 (image-api)"
    )
    assert groups["generator_checkpoint"][1] == "tiny (ddpm) @ tiny/step-100.pt@sha256:" + "ab" * 8
    assert groups["generator_checkpoint"][3] == (
        # An absolute path outside the model folder keeps its last two parts: no server path.
        "sd-cxr (stable-diffusion) @ models/sd15@sha256:" + "cd" * 8 + " + lora sha256:" + "ef" * 8
    )
    assert groups["generator_checkpoint"][4] == "hosted-1 (image-api) @ (checkpoint not recorded)"
    assert groups["generation_job"] == (REAL_GROUP, "job 7", REAL_GROUP, "job 12", NO_JOB)
    assert groups["modality"] == ("CXR", "CXR", "CXR", "CT", "CXR")
    assert groups["finding"] == ("normal", "pneumonia", "normal", "pneumonia", "normal")


def test_it_falls_back_to_the_source_when_provenance_names_no_generator():
    assert generator_groups({}, "synthetic", "old-gan")[0] == "old-gan"
    assert generator_groups(None, "synthetic", "")[0] == "(unknown)"
    assert generator_groups({"model": "m"}, "real", "x") == (REAL_GROUP,) * 3


def test_it_loads_in_three_queries_whatever_the_size(django_assert_num_queries):
    small = finished_study(ANSWERS, TRUTHS)
    large = finished_study(
        {f"reader{i}": [("fake", 3), ("real", 2)] * 4 for i in range(5)}, TRUTHS * 2,
        repeats={"reader1": {0: ("real", 1)}},
    )
    for study in (small, large):
        with django_assert_num_queries(3):
            load_readings(study)


def test_it_survives_a_study_without_readers_or_readings():
    empty = finished_study({}, [])
    analysis = study_analysis(empty, n_bootstrap=10)
    assert analysis.summary.n_readings == 0
    payload = analysis.to_jsonable()
    assert payload["reader_averaged"]["accuracy"]["not_defined"]
    assert payload["agreement"]["fleiss_kappa"]["not_defined"]


def test_it_caches_the_analysis_until_a_reading_changes(study):
    first = study_analysis(study, n_bootstrap=50)
    with CaptureQueriesContext(connection) as cached:
        again = study_analysis(study, n_bootstrap=50)
    assert again.to_jsonable() == first.to_jsonable()
    assert len(cached) == 3  # two aggregates for the key, the reader labels: no readings loaded

    # Bob changes his mind on the first case (position 1 is the practice case) (a revision moves answered_at and the count).
    reading = Reading.objects.get(slot__assignment__reader__username="bob", slot__position=2)
    reading.answer = "real"
    reading.revision_count += 1
    reading.answered_at += timedelta(minutes=5)
    reading.save()
    changed = study_analysis(study, n_bootstrap=50)
    bob = next(r for r in changed.readers if r.reader == "bob")
    assert bob.table.real_answered_real == 2


def test_it_recomputes_when_a_reading_changes_without_moving_the_clock(study):
    study_analysis(study, n_bootstrap=20)
    Reading.objects.filter(slot__assignment__reader__username="bob").update(revision_count=1)
    Reading.objects.filter(slot__assignment__reader__username="bob", slot__position=2).update(
        answer="real"
    )
    bob = next(r for r in study_analysis(study, n_bootstrap=20).readers if r.reader == "bob")
    assert bob.table.real_answered_real == 2


def test_it_recomputes_when_a_reader_is_renamed(study):
    study_analysis(study, n_bootstrap=20)
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bob").update(username="robert")
    labels = [r.reader for r in study_analysis(study, n_bootstrap=20).readers]
    assert labels == ["alice", "robert"]


def test_it_finds_a_study_by_public_id_or_pk(study):
    assert find_study(study.public_id) == study
    assert find_study(str(study.pk)) == study
    with pytest.raises(Study.DoesNotExist, match="no study with public id or pk 'nope'"):
        find_study("nope")


def test_it_reports_progress_per_reader():
    study = finished_study(
        {"alice": [("real", 1), ("fake", 2), None], "bob": [None, None, None]},
        ["real", "synthetic", "real"], practice=1,
    )
    progress = {row["reader"]: row for row in reader_progress(study)}
    assert (progress["alice"]["answered"], progress["alice"]["total"]) == (3, 4)
    assert progress["alice"]["practice"] == (1, 1)
    assert (progress["bob"]["answered"], progress["bob"]["total"]) == (1, 4)
    assert math.isclose(progress["bob"]["share"], 0.25)
    assert progress["bob"]["last_answer"] is not None
