"""The CSV tables: one row per reading, per case, and the iMRMC long format."""

import csv
import io

import pytest

from readerstudy import exports
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db

TRUTHS = ["real", "synthetic", "real", "synthetic"]


def table(rows) -> list[dict]:
    text = "".join(exports.stream_csv(rows))
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def study():
    return finished_study(
        {
            "alice": [("real", 4), ("fake", 5), ("unsure", 2), ("real", 3)],
            "bob": [("fake", 2), ("fake", 4), ("real", 5), ("unsure", 1)],
        },
        TRUTHS,
        practice=1,
        repeats={"alice": {1: ("real", 2)}},
    )


def test_it_writes_one_row_per_reading_with_truth_and_timing(study):
    rows = table(exports.readings_rows(study))
    assert len(rows) == 2 * (1 + 4) + 1
    alice = [row for row in rows if row["reader"] == "alice"]
    assert [row["position"] for row in alice] == ["1", "2", "3", "4", "5", "6"]
    assert alice[0]["is_practice"] == "1"
    assert alice[-1]["is_repeat"] == "1" and alice[-1]["answer"] == "real"
    second = alice[2]
    assert (second["truth"], second["answer"], second["confidence"]) == ("synthetic", "fake", "5")
    assert second["fake_score"] == "5"
    assert second["generator_kind"] == "ddpm" and second["generator_model"] == "tiny"
    assert second["seconds_on_case"] == "4.000" and second["client_ms"] == "3900"
    real = alice[1]
    assert real["generator_model"] == "" and real["fake_score"] == "-4"


def test_it_counts_votes_per_case_from_first_showings(study):
    rows = [row for row in table(exports.cases_rows(study)) if row["is_practice"] == "0"]
    assert [(r["answered_real"], r["answered_unsure"], r["answered_fake"]) for r in rows] == [
        ("1", "0", "1"), ("0", "0", "2"), ("1", "1", "0"), ("1", "1", "0"),
    ]
    assert rows[1]["share_fake"] == "1.0000"


def test_it_writes_the_imrmc_long_data_frame_with_truth_rows(study):
    rows = table(exports.mrmc_long_rows(study))
    truth = [row for row in rows if row["readerID"] == "truth"]
    assert [row["score"] for row in truth] == ["0", "1", "0", "1"]
    assert {row["modalityID"] for row in truth} == {"truth"}
    readings = [row for row in rows if row["readerID"] != "truth"]
    assert len(readings) == 8
    assert [row["score"] for row in readings if row["readerID"] == "bob"] == ["2", "4", "-5", "0"]


def test_it_streams_rows_lazily(study):
    rows = exports.readings_rows(study)
    assert next(rows) == exports.READINGS_HEADER


# ------------------------------------------------------------------ generator provenance


def test_it_reads_the_generation_engines_provenance_keys(settings):
    fields = dict(zip(exports.GENERATOR_COLUMNS, exports.generator_fields(
        {"generator": "stable-diffusion", "model": "sd-cxr",
         "base_checkpoint": str(settings.MODEL_ROOT / "sd-cxr" / "sd15"),
         "weights_sha256": "12" * 32, "lora_sha256": "34" * 32, "prompt": "chest x-ray",
         "scheduler": "dpm++", "steps": 30, "guidance": 7.5, "seed": 9, "job": 12},
        "synthetic",
    ), strict=True))
    assert fields == {
        "generator_kind": "stable-diffusion", "generator_model": "sd-cxr",
        "generator_checkpoint": "sd-cxr/sd15@sha256:" + "12" * 8 + " + lora sha256:" + "34" * 8,
        "generator_job": "12", "generator_seed": "9", "generator_prompt_or_class": "chest x-ray",
        "generator_sampler": "dpm++", "generator_steps": "30", "generator_guidance": "7.5",
    }


def test_it_accepts_the_older_kind_key_and_a_class_instead_of_a_prompt():
    fields = exports.generator_fields({"kind": "ddpm", "class": "effusion", "seed": None},
                                      "synthetic")
    assert fields[0] == "ddpm" and fields[5] == "effusion" and fields[4] == ""
    assert exports.generator_fields({"kind": "ddpm"}, "real") == ("",) * 9


# ------------------------------------------------------------------- statistics tables


def test_it_writes_one_row_per_reader_with_definitions_in_the_dictionary(study):
    rows = table(exports.readers_rows(study))
    assert [row["reader"] for row in rows] == ["alice", "bob"]
    dictionary = {(r["table"], r["column"]): r["definition"]
                  for r in table(exports.table_rows("dictionary", study))}
    sensitivity = dictionary[("readers", "sensitivity")]
    assert "unsure counts as wrong" in sensitivity and "synthetic answered fake / synthetic read" in sensitivity
    assert "SECONDARY" in dictionary[("readers", "committed_sensitivity")]
    sensitivity = "sensitivity"
    alice = rows[0]
    # alice: synthetic answered fake once of two, real answered real once of two (one unsure).
    assert alice[sensitivity] == "0.5" and alice["sensitivity_n"] == "2"
    assert float(alice["sensitivity_ci_low"]) == pytest.approx(0.0945, abs=1e-4)
    assert alice["n_repeat_pairs"] == "1" and alice["fake_answered_fake"] == "1"
    assert alice["unsure_rate_n"] == "4"
    # alice's fake-scores: fakes +5, -3; reals -4, 0 -> 3 of 4 pairs ordered: AUC 0.75.
    assert alice["auc"] == "0.75" and "DeLong" in dictionary[("readers", "auc")]
    assert rows[1]["intra_reader_kappa_note"] == "not defined: no repeated cases"
    assert rows[1]["intra_reader_kappa"] == ""


def test_it_writes_the_agreement_table_for_all_and_committed_answers(study):
    rows = table(exports.agreement_rows(study))
    assert exports.AGREEMENT_HEADER[:8] == [
        "statistic", "subset", "estimate", "ci_low", "ci_high", "n_cases", "n_readers", "note",
    ]
    assert [(r["statistic"], r["subset"]) for r in rows] == [
        (name, subset) for subset in ("all", "committed")
        for name, _ in exports.AGREEMENT_STATISTICS
    ]
    fleiss = rows[0]
    assert fleiss["n_cases"] == "4" and fleiss["n_readers"] == "2"
    assert float(fleiss["ci_low"]) <= float(fleiss["estimate"]) <= float(fleiss["ci_high"])
    assert "resamples" in fleiss["note"]
    mean_kappa = rows[4]
    assert mean_kappa["n_cases"] == "" and mean_kappa["note"].startswith("over 1 reader pair")


def test_it_says_not_defined_with_the_reason_for_a_single_reader():
    lonely = finished_study({"alice": [("real", None), ("fake", None)]}, ["real", "synthetic"],
                            confidence=False)
    rows = table(exports.agreement_rows(lonely))
    for row in rows:
        assert row["estimate"] == "" and row["note"].startswith("not defined: "), row
    readers = table(exports.readers_rows(lonely))
    assert readers[0]["auc_note"] == "not defined: no confidence ratings were collected"
    averaged = {r["statistic"]: r for r in table(exports.reader_averaged_rows(lonely))}
    assert averaged["auc_random_readers"]["note"].startswith("not defined: ")
    assert averaged["accuracy"]["estimate"] == "1.0"


def test_it_lists_every_reader_pair_and_the_fooling_rate_per_group(study):
    pairs = table(exports.pairwise_kappa_rows(study))
    assert [(p["subset"], p["reader_a"], p["reader_b"]) for p in pairs] == [
        ("all", "alice", "bob"), ("committed", "alice", "bob"),
    ]
    groups = table(exports.groups_rows(study))
    tiny = next(g for g in groups if g["grouping"] == "generator" and g["group"] == "tiny (ddpm)")
    assert (tiny["measure"], tiny["n_readings"], tiny["answered_real"]) == ("fooling_rate", "4", "1")
    assert {g["grouping"] for g in groups} == {
        "all", "generator", "generator_checkpoint", "generation_job", "modality", "finding",
    }


def test_it_registers_the_five_tables_of_the_spec_and_streams_each_for_an_empty_study():
    assert {"readings", "readers", "agreement", "cases", "imrmc"} <= set(exports.TABLES)
    empty = finished_study({}, [])
    for name, spec in exports.TABLES.items():
        rows = list(exports.table_rows(name, empty))
        assert rows[0], name  # a header even without data
        assert spec.description


def test_it_zips_several_tables_in_a_stream(study):
    import zipfile

    members = [(exports.csv_filename(study, name), exports.table_rows(name, study))
               for name in ("readings", "cases")]
    data = b"".join(exports.stream_zip(members, flush_bytes=64))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names == [f"study-{study.public_id}-readings.csv",
                         f"study-{study.public_id}-cases.csv"]
        readings = archive.read(names[0]).decode()
    assert readings.startswith("study,reader,position,")
    assert readings.count("\r\n") == 1 + 11


def test_it_every_table_is_documented():
    from pathlib import Path

    from django.conf import settings

    docs = (Path(settings.BASE_DIR) / "docs" / "results.md").read_text()
    for name in exports.TABLES:
        assert f"**`{name}`**" in docs, name
