"""Zero-width intervals are reported as no interval with the cause, in the JSON, on the
dashboard and in the CSV tables; a KID baseline <= 0 gives no baseline and no ratio."""

import csv
import io

import pytest

from evaluation.exports import _metric_row
from readerstudy import exports
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

PERFECT = "no interval: perfect separation: no variance estimate (DeLong SE is 0)"


@pytest.fixture
def separated():
    # Every synthetic image answered fake and every real one real: AUC 1, DeLong SE 0.
    return finished_study(
        {"alice": [("fake", 4), ("real", 5), ("fake", 3), ("real", 2)],
         "bob": [("fake", 5), ("real", 4), ("fake", 2), ("real", 3)]},
        ["synthetic", "real", "synthetic", "real"],
    )


def test_it_reports_perfect_separation_as_no_interval_everywhere(separated, staff_client):
    base = f"/staff/studies/{separated.public_id}/results/"
    payload = staff_client.get(base + "statistics.json").json()
    auc = payload["roc"]["readers"][0]["auc"]
    assert (auc["estimate"], auc["ci_low"], auc["ci_high"]) == (1.0, None, None)
    assert auc["note"] == PERFECT
    html = staff_client.get(base).content.decode()
    assert PERFECT in html and "[1.000, 1.000]" not in html
    readers = list(csv.DictReader(io.StringIO(
        "".join(exports.stream_csv(exports.table_rows("readers", separated)))
    )))
    assert readers[0]["auc"] == "1.0" and readers[0]["auc_ci_low"] == ""
    assert readers[0]["auc_note"] == PERFECT


def test_it_reports_a_collapsed_bootstrap_with_its_cause_in_the_csv():
    study = finished_study(
        {"alice": [("fake", 3), ("real", 2)], "bob": [("real", 1), ("real", 4)],
         "carol": [("unsure", 2), ("fake", 5)]},
        ["synthetic", "real"],
    )
    rows = {(r["statistic"], r["subset"]): r for r in csv.DictReader(io.StringIO(
        "".join(exports.stream_csv(exports.table_rows("agreement", study)))
    ))}
    fleiss = rows[("fleiss_kappa", "all")]
    assert fleiss["estimate"] != "" and fleiss["ci_low"] == "" and fleiss["ci_high"] == ""
    assert "one case per truth stratum" in fleiss["note"]


def test_it_gives_no_kid_baseline_or_ratio_when_the_baseline_is_not_positive():
    cells = _metric_row({
        "name": "kid", "value": {"estimate": 5.08}, "baseline": {"estimate": -0.73},
        "ratio": -6.92, "better": "lower",
    })
    assert cells[:6] == ["kid", 5.08, "", "", "", ""]
    assert cells[8:] == ["", ""]  # nor the baseline's own interval
    assert cells[7] == (
        "baseline and ratio not defined: the real-vs-real baseline is -0.73 (<= 0), so there is "
        "no scale to compare with"
    )
    positive = _metric_row({"name": "kid", "value": {"estimate": 5.0},
                            "baseline": {"estimate": 0.5}, "ratio": 10.0, "better": "lower"})
    assert positive[4:6] == [0.5, 10.0] and positive[7] == ""
