"""python manage.py export_study STUDY --table TABLE -o FILE."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from readerstudy.models import Study
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return finished_study(
        {"alice": [("real", 4), ("fake", 5)], "bob": [("fake", 2), ("fake", 4)]},
        ["real", "synthetic"],
    )


def run(study_id: str, *options) -> tuple[str, str]:
    """Options first, then the study after `--` (public ids may start with '-')."""
    out, err = io.StringIO(), io.StringIO()
    call_command("export_study", *options, "--", study_id, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_writes_a_table_to_a_file_by_public_id(study, tmp_path):
    target = tmp_path / "out" / "readings.csv"
    target.parent.mkdir()
    _, err = run(study.public_id, "--table", "readings", "-o", str(target))
    rows = list(csv.DictReader(target.open(newline="")))
    assert len(rows) == 4 and {r["reader"] for r in rows} == {"alice", "bob"}
    assert "readings: 4 row(s)" in err
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind


def test_it_finds_the_study_by_primary_key_and_writes_to_stdout(study):
    out, _ = run(str(study.pk), "--table", "mrmc_long", "-o", "-")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["readerID", "caseID", "modalityID", "score"]
    assert len(rows) == 1 + 2 + 4
    out, _ = run(str(study.pk), "--table", "imrmc", "-o", "-")
    lines = out.splitlines()
    assert lines[2:7] == ["NR: 2", "N0: 1", "N1: 1", "NM: 1", "BEGIN DATA:"]
    assert len(lines) == 7 + 2 + 4


def test_it_exports_the_statistics_tables(study):
    out, _ = run(study.public_id, "--table", "agreement", "-o", "-", "--bootstrap", "0")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["statistic"] == "fleiss_kappa"
    assert all(r["note"] for r in rows)  # "no bootstrap resamples requested" or a reason
    out, _ = run(study.public_id, "--table", "readers", "-o", "-", "--bootstrap", "0")
    assert [r["reader"] for r in csv.DictReader(io.StringIO(out))] == ["alice", "bob"]


def test_it_refuses_an_unknown_study(study):
    with pytest.raises(CommandError, match="no study with public id or pk 'missing'"):
        run("missing", "--table", "readings", "-o", "-")


def test_it_refuses_an_unknown_table(study):
    with pytest.raises(CommandError, match="invalid choice: 'votes'"):
        run(study.public_id, "--table", "votes", "-o", "-")


def test_it_refuses_a_missing_folder(study, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run(study.public_id, "--table", "cases", "-o", str(tmp_path / "nope" / "cases.csv"))


def test_it_refuses_a_folder_as_output(study, tmp_path):
    with pytest.raises(CommandError, match="is a folder"):
        run(study.public_id, "--table", "cases", "-o", str(tmp_path))


def test_it_takes_a_public_id_that_starts_with_a_dash_after_double_dash(study):
    Study.objects.filter(pk=study.pk).update(public_id="-dash-first")
    out, _ = run("-dash-first", "--table", "cases", "-o", "-")
    assert out.startswith("study,image_public_id,")
    with pytest.raises(CommandError, match="must come last, after '--'"):
        call_command("export_study", "-dash-first", "--table", "cases", "-o", "-")
