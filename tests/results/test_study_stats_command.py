"""python manage.py study_stats STUDY [--json]."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from readerstudy.analysis import ESTIMATE_KEYS, SCHEMA
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

TOP_LEVEL = [
    "schema", "study", "summary", "readers", "reader_averaged", "roc", "agreement",
    "agreement_committed", "cases", "groups", "intra_reader", "designs",
]


def stats(study_id: str, *options) -> str:
    """Options first, then the study after `--` (public ids may start with '-')."""
    out = io.StringIO()
    call_command("study_stats", *options, "--", study_id, stdout=out)
    return out.getvalue()


@pytest.fixture
def study():
    return finished_study(
        {"alice": [("real", 4), ("fake", 5), ("unsure", 2), ("real", 3)],
         "bob": [("fake", 2), ("fake", 4), ("real", 5), ("unsure", 1)]},
        ["real", "synthetic", "real", "synthetic"],
        repeats={"bob": {0: ("fake", 3)}},
    )


def test_it_prints_every_statistic_as_json_with_the_documented_keys(study):
    payload = json.loads(stats(study.public_id, "--json", "--bootstrap", "100"))
    assert list(payload) == TOP_LEVEL
    assert payload["schema"] == SCHEMA
    assert payload["study"]["public_id"] == study.public_id
    assert payload["summary"]["n_readings"] == 8 and payload["summary"]["n_repeat_readings"] == 1
    assert payload["summary"]["n_bootstrap"] == 100
    assert tuple(payload["readers"][0]["sensitivity"]) == ESTIMATE_KEYS
    assert payload["readers"][0]["sensitivity"]["method"] == "wilson"
    assert payload["roc"]["confidence_collected"] is True
    bob = payload["intra_reader"]["readers"][1]
    assert bob["reader"] == "bob" and bob["n_pairs"] == 1


def test_it_says_not_defined_with_reasons_for_degenerate_data():
    lonely = finished_study({"alice": [("fake", None), ("fake", None)]}, ["real", "synthetic"],
                            confidence=False)
    payload = json.loads(stats(str(lonely.pk), "--json", "--bootstrap", "0"))
    assert payload["roc"]["readers"][0]["auc"]["not_defined"] == (
        "no confidence ratings were collected"
    )
    assert payload["intra_reader"]["pooled_kappa"]["not_defined"] == "no repeated cases"
    assert payload["agreement"]["fleiss_kappa"]["not_defined"]
    assert payload["agreement"]["mean_pairwise_cohen_kappa"]["not_defined"] == (
        "needs at least two readers"
    )

    text = stats(lonely.public_id, "--bootstrap", "0")
    assert "not defined: no confidence ratings were collected" in text
    assert "not defined: no repeated cases" in text
    assert "nan" not in text.lower()


def test_it_prints_a_readable_summary(study):
    text = stats(study.public_id, "--bootstrap", "50")
    assert text.startswith(f"Study {study.title!r}")
    assert "PRIMARY, intention to diagnose: unsure counts as wrong" in text
    assert "  alice: 4 read (2 synthetic, 2 real)" in text
    assert "reader-averaged AUC, Obuchowski-Rockette, random readers" in text
    assert "per generator (model):" in text and "tiny (ddpm)" in text


def test_it_refuses_an_unknown_study():
    with pytest.raises(CommandError, match="no study"):
        stats("nope", "--json")


def test_it_offers_the_two_way_bootstrap(study):
    payload = json.loads(stats(study.public_id, "--json", "--bootstrap", "50",
                               "--bootstrap-kind", "two-way"))
    assert payload["summary"]["bootstrap"] == "two-way"
    assert "two-way bootstrap" in payload["reader_averaged"]["accuracy"]["method"]
    text = stats(study.public_id, "--bootstrap", "50")
    assert "Reader average (case bootstrap, percentile: readers fixed)" in text
    with pytest.raises(CommandError):
        stats(study.public_id, "--bootstrap-kind", "readers")
