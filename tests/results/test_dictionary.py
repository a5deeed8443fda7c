"""The data dictionary: every column of every exported table is defined, in the `dictionary`
table and in docs/results.md; headers are short, stable snake_case names."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings

from readerstudy import exports
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
#: The iMRMC R package's own column names (doIMRMC requires them as they are).
IMRMC_NAMES = {"readerID", "caseID", "modalityID", "score"}


@pytest.fixture
def study():
    return finished_study(
        {"alice": [("real", 4), ("fake", 5)], "bob": [("fake", 2), ("unsure", 1)]},
        ["real", "synthetic"], repeats={"alice": {0: ("real", 3)}},
    )


def exported_header(name: str, study) -> list[str]:
    if exports.TABLES[name].extension != "csv":
        return exports.table_header(name)
    text = "".join(exports.stream_csv(exports.table_rows(name, study)))
    return next(csv.reader(io.StringIO(text)))


def test_it_defines_every_column_of_every_table(study):
    rows = list(csv.DictReader(io.StringIO(
        "".join(exports.stream_csv(exports.table_rows("dictionary", study)))
    )))
    documented = {(r["table"], r["column"]): r for r in rows}
    assert "quality" in exports.TABLES  # the evaluation app's table is checked too
    for name in exports.TABLES:
        header = exported_header(name, study)
        assert header, name
        for column in header:
            entry = documented.get((name, column))
            assert entry is not None, (name, column)
            assert entry["definition"] and entry["definition"] != "(undocumented)", (name, column)
            assert entry["unit"], (name, column)
            assert SNAKE.match(column) or column in IMRMC_NAMES, (name, column)


def test_it_lists_the_dictionary_in_the_docs(study):
    docs = (Path(settings.BASE_DIR) / "docs" / "results.md").read_text()
    rows = list(exports.table_rows("dictionary", study))[1:]
    for column, table, _definition, _unit in rows:
        assert f"| `{column}` | {table} |" in docs, (table, column)


def test_it_writes_checkpoint_paths_relative_to_the_model_folder(settings):
    fields = exports.generator_fields(
        {"generator": "ddpm", "model": "tiny",
         "checkpoint": str(settings.MODEL_ROOT / "tiny" / "step-100.pt")},
        "synthetic",
    )
    assert fields[2] == "tiny/step-100.pt"
    assert str(settings.MODEL_ROOT) not in "".join(fields)
