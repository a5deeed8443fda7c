"""A study's synthetic half evaluated, in the `quality` CSV table and next to the readers."""

import csv
import io

import pytest

from evaluation.models import QualityEvaluation
from pool.models import Truth
from readerstudy import exports
from readerstudy.models import StudyCase
from tests.evaluation_app.test_evaluate_images import run
from tests.factories import ImageFactory, StudyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_extractor")]


@pytest.fixture
def evaluated_study():
    for _ in range(12):
        ImageFactory(truth=Truth.REAL, finding="normal")
    study = StudyFactory()
    for index in range(6):
        StudyCase.objects.create(study=study, image=ImageFactory(truth=Truth.SYNTHETIC),
                                 is_practice=index == 0)
    run("--synthetic", f"study:{study.public_id}", "--real", "modality=CXR,finding=normal")
    return study


def test_it_evaluates_the_study_synthetic_half_without_practice_cases(evaluated_study):
    evaluation = QualityEvaluation.objects.get(study=evaluated_study)
    assert evaluation.n_synthetic == 5


def test_it_exports_the_quality_table(evaluated_study):
    text = "".join(exports.stream_csv(exports.table_rows("quality", evaluated_study)))
    rows = list(csv.DictReader(io.StringIO(text)))
    figures = {row["figure"].split(" ")[0] for row in rows}
    assert {"frechet_distance", "kid", "machine_observer_auc", "memorized"} <= figures
    frechet = next(row for row in rows if row["figure"] == "frechet_distance")
    assert frechet["subject"] == "study" and frechet["real_vs_real_baseline"] != ""


def test_it_shows_the_machine_observer_next_to_the_readers(evaluated_study, client, staff):
    client.force_login(staff)
    html = client.get(f"/staff/studies/{evaluated_study.public_id}/results/").content.decode()
    assert "Machine observer vs readers" in html
    assert "held out, DeLong" in html
    assert "Blinding audit" in html
