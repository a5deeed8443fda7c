"""The iMRMC input file round trip, and one fake-score for the analysis and every export."""

import csv
import io
import math
import zipfile

import pytest

from readerstudy import exports
from readerstudy.analysis import fake_scores
from readerstudy.results import load_readings
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

TRUTHS = ["synthetic", "real", "synthetic", "real", "synthetic", "real"]


@pytest.fixture
def study():
    # carol's second answer is committed without its confidence: it has no fake-score.
    return finished_study(
        {
            "alice": [("fake", 4), ("real", 5), ("fake", 2), ("unsure", 3), ("real", 1),
                      ("real", 3)],
            "bob": [("fake", 5), ("fake", 1), ("unsure", 2), ("real", 4), ("fake", 3),
                    ("real", 5)],
            "carol": [("fake", 3), ("real", None), ("fake", 4), ("real", 2), ("unsure", 1),
                      ("fake", 2)],
        },
        TRUTHS,
        practice=1,
        repeats={"bob": {0: ("real", 2)}},
    )


def read_imrmc(text: str) -> dict:
    """A reader written from the iMRMC input format: free description lines, then the study
    lines `NR:`, `N0:`, `N1:`, `NM:` (any order), then `BEGIN DATA:` followed by
    `readerID,caseID,modalityID,score` rows; truth rows have readerID -1 and score 0
    (signal absent) or 1 (signal present). Reader and case ids must be integers."""
    lines = [line.strip() for line in text.splitlines()]
    begin = lines.index("BEGIN DATA:")
    header = {}
    for line in lines[:begin]:
        key, _, value = line.partition(":")
        if key in ("NR", "N0", "N1", "NM"):
            header[key] = int(value)
    assert set(header) == {"NR", "N0", "N1", "NM"}
    truth, scores = {}, {}
    for line in lines[begin + 1:]:
        if not line:
            continue
        reader, case, modality, score = line.split(",")
        reader, case = int(reader), int(case)
        if reader == -1:
            assert modality == "truth" and score in ("0", "1")
            truth[case] = int(score)
        else:
            scores[(reader, case, modality)] = float(score)
    assert sum(1 for t in truth.values() if t == 0) == header["N0"]
    assert sum(1 for t in truth.values() if t == 1) == header["N1"]
    assert len({r for r, _, _ in scores}) == header["NR"]
    assert len({m for _, _, m in scores}) == header["NM"]
    assert {c for _, c, _ in scores} <= set(truth)
    return {"header": header, "truth": truth, "scores": scores}


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney AUC by counting pairs, ties one half."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def text_of(name: str, study) -> str:
    filename = exports.csv_filename(study, name)
    return "".join(exports.stream_file(filename, exports.table_rows(name, study)))


def test_it_writes_an_imrmc_file_that_reproduces_the_dashboards_aucs(study, staff_client):
    parsed = read_imrmc(text_of("imrmc", study))
    assert parsed["header"] == {"NR": 3, "N0": 3, "N1": 3, "NM": 1}
    ids = list(csv.DictReader(io.StringIO(text_of("imrmc_ids", study))))
    readers = {int(r["id"]): r["label"] for r in ids if r["kind"] == "reader"}
    assert sorted(readers.values()) == ["alice", "bob", "carol"]
    payload = staff_client.get(f"/staff/studies/{study.public_id}/results/statistics.json").json()
    dashboard = {r["reader"]: r["auc"] for r in payload["roc"]["readers"]}
    for reader_id, name in readers.items():
        pos = [s for (r, c, _), s in parsed["scores"].items()
               if r == reader_id and parsed["truth"][c] == 1]
        neg = [s for (r, c, _), s in parsed["scores"].items()
               if r == reader_id and parsed["truth"][c] == 0]
        if name == "carol":
            # One reading without its fake-score is left out of the file; the dashboard
            # calls her AUC not defined rather than computing it on a subset.
            assert len(pos) + len(neg) == 5
            assert dashboard[name]["not_defined"].startswith("confidence missing on 1")
            continue
        assert auc(pos, neg) == pytest.approx(dashboard[name]["estimate"], abs=1e-12), name
    assert "1 committed reading(s) without a confidence rating" in text_of("imrmc", study)


def test_it_exports_every_readings_score_as_the_analysis_scores_it(study):
    table = load_readings(study).table
    analysis_scores = fake_scores(table.answer, table.confidence)
    expected = {
        (table.reader_labels[r], table.case_labels[c], int(s)): score
        for r, c, s, score in zip(table.reader, table.case, table.showing, analysis_scores)
    }
    rows = list(csv.DictReader(io.StringIO(text_of("readings", study))))
    checked = 0
    for row in rows:
        if row["is_practice"] == "1":
            continue
        key = (row["reader"], row["image_public_id"], 2 if row["is_repeat"] == "1" else 1)
        score = float(row["fake_score"]) if row["fake_score"] else math.nan
        assert score == pytest.approx(expected[key], nan_ok=True), key
        checked += 1
    assert checked == 3 * 6 + 1
    missing = [r for r in rows if r["reader"] == "carol" and r["answer"] == "real"
               and r["is_practice"] == "0"
               and r["confidence"] == ""]
    assert len(missing) == 1 and missing[0]["fake_score"] == ""  # never -1
    long = list(csv.DictReader(io.StringIO(text_of("mrmc_long", study))))
    scored = {(r["readerID"], r["caseID"]): float(r["score"]) for r in long
              if r["readerID"] != "truth"}
    assert len(scored) == 3 * 6 - 1
    for (reader, case), score in scored.items():
        assert score == expected[(reader, case, 1)]


def test_it_puts_the_imrmc_file_and_its_ids_in_the_zip(study, staff_client):
    response = staff_client.get(f"/staff/studies/{study.public_id}/results/all.zip")
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        imrmc = archive.read(f"study-{study.public_id}-imrmc.imrmc").decode()
    assert f"study-{study.public_id}-imrmc_ids.csv" in names
    assert f"study-{study.public_id}-dictionary.csv" in names
    assert read_imrmc(imrmc)["header"]["NR"] == 3
