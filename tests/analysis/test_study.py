"""End to end: analyse() on small studies whose figures can be checked by hand."""

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from readerstudy.analysis import (
    ESTIMATE_KEYS,
    SCHEMA,
    Estimate,
    NotDefined,
    ReadingTable,
    analyse,
    or_single_test,
    wilson,
)
from readerstudy.analysis.roc import auc_components, jackknife_aucs

R, U, F, X = 0, 1, 2, -1  # real, unsure, fake, not read


def make_table(answers, truth, confidence=None, repeats=(), groups=None):
    """``answers``: cases x readers codes (X = not read); ``truth``: per case, True = fake;
    ``repeats``: (reader, case, answer) second showings."""
    answers = np.asarray(answers)
    n_cases, n_readers = answers.shape
    case, reader = np.nonzero(answers != X)
    conf = np.full(case.size, np.nan)
    if confidence is not None:
        conf = np.asarray(confidence, float)[case, reader]
    rep = list(repeats)
    return ReadingTable(
        reader=np.r_[reader, [r for r, _, _ in rep]].astype(int),
        case=np.r_[case, [c for _, c, _ in rep]].astype(int),
        is_fake=np.r_[np.asarray(truth)[case], [truth[c] for _, c, _ in rep]].astype(bool),
        answer=np.r_[answers[case, reader], [a for _, _, a in rep]].astype(int),
        confidence=np.r_[conf, np.full(len(rep), np.nan)],
        showing=np.r_[np.ones(case.size), np.full(len(rep), 2)].astype(int),
        reader_labels=[f"r{j}" for j in range(n_readers)],
        case_labels=[f"c{i}" for i in range(n_cases)],
        case_groups=groups or {},
    )


# Four fake then four real cases, two readers.
TRUTH = [True] * 4 + [False] * 4
# fmt: off
ANSWERS = [
    [F, F], [F, R], [U, F], [R, F],  # fakes
    [R, R], [R, U], [U, R], [F, F],  # reals
]
# fmt: on


def all_slots(obj):
    """Every serialised estimate slot in a to_jsonable() tree."""
    if isinstance(obj, dict):
        if set(obj) == set(ESTIMATE_KEYS):
            yield obj
        else:
            for value in obj.values():
                yield from all_slots(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from all_slots(value)


def assert_clean_json(result):
    """JSON without NaN/inf; every slot either defined or carrying a reason."""
    payload = result.to_jsonable()
    json.dumps(payload, allow_nan=False)
    for slot in all_slots(payload):
        assert list(slot) == list(ESTIMATE_KEYS)
        if slot["not_defined"] is None:
            assert slot["estimate"] is not None
            assert slot["ci_low"] is not None or slot["note"]
        else:
            assert slot["estimate"] is None and slot["not_defined"].strip()
    return payload


def test_it_computes_primary_and_committed_figures_of_each_reader():
    result = analyse(make_table(ANSWERS, TRUTH), n_bootstrap=50)
    first = result.readers[0]
    assert first.table.fake_answered_fake == 2 and first.table.fake_answered_unsure == 1
    assert first.table.real_answered_real == 2 and first.table.real_answered_fake == 1
    # Primary: unsure counts as wrong.
    assert first.sensitivity == wilson(2, 4)
    assert first.specificity == wilson(2, 4)
    assert first.accuracy == wilson(4, 8)
    # Secondary, committed answers only: flatters the reader.
    assert first.committed.sensitivity == wilson(2, 3)
    assert first.committed.specificity == wilson(2, 3)
    assert first.committed.accuracy == wilson(4, 6)
    assert first.committed.unsure_rate == wilson(2, 8)
    assert first.committed.accuracy.estimate > first.accuracy.estimate
    second = result.readers[1]
    assert second.sensitivity.estimate == 3 / 4 and second.specificity.estimate == 2 / 4
    assert second.committed.accuracy.estimate == 5 / 7
    averaged = result.reader_averaged
    assert averaged.sensitivity.estimate == pytest.approx((2 / 4 + 3 / 4) / 2)
    assert averaged.committed.accuracy.estimate == pytest.approx((4 / 6 + 5 / 7) / 2)
    assert averaged.accuracy.n == 2
    assert averaged.accuracy.ci_low <= averaged.accuracy.estimate <= averaged.accuracy.ci_high
    assert "50 case-bootstrap resamples" in averaged.accuracy.note


def test_it_treats_unsure_as_a_third_category_in_primary_agreement_only():
    result = analyse(make_table(ANSWERS, TRUTH), n_bootstrap=0)
    # Pairs agree on cases 0, 7 (fake/fake) and 4 (real/real): 3 of 8.
    assert result.agreement.percent_agreement.estimate == pytest.approx(3 / 8)
    # Committed only: cases with two committed answers are 0, 1, 3, 4, 7: agree on 0, 4, 7.
    assert result.agreement_committed.percent_agreement.estimate == pytest.approx(3 / 5)
    assert result.agreement.categories == ("real", "unsure", "fake")
    assert result.agreement_committed.categories == ("real", "fake")
    (pair,) = result.agreement.pairwise_cohen_kappa
    codes = np.array(ANSWERS)
    assert pair.kappa.estimate == pytest.approx(
        cohen_kappa_score(codes[:, 0], codes[:, 1], labels=[0, 1, 2])
    )
    (committed_pair,) = result.agreement_committed.pairwise_cohen_kappa
    both = (codes != U).all(axis=1)
    assert committed_pair.n_cases == 5
    assert committed_pair.kappa.estimate == pytest.approx(
        cohen_kappa_score(codes[both, 0], codes[both, 1], labels=[0, 2])
    )
    assert "no bootstrap" in result.agreement.fleiss_kappa.note


def test_it_counts_votes_per_case():
    result = analyse(make_table(ANSWERS, TRUTH), n_bootstrap=0)
    assert [c.case for c in result.cases] == [f"c{i}" for i in range(8)]
    case2 = result.cases[2]
    assert (case2.truth, case2.n_real, case2.n_unsure, case2.n_fake) == ("synthetic", 0, 1, 1)
    assert case2.share_fake == wilson(1, 2)
    assert result.cases[7].truth == "real" and result.cases[7].share_fake.estimate == 1.0


def test_it_reports_fooling_rates_per_group():
    groups = {"generator": ["gan", "gan", "diffusion", "diffusion", None, None, None, None]}
    result = analyse(make_table(ANSWERS, TRUTH, groups=groups), n_bootstrap=0)
    rows = {(g.grouping, g.group, g.truth): g for g in result.groups}
    gan = rows[("generator", "gan", "synthetic")]
    # gan cases 0, 1: answers F F F R -> one of four readings fooled (answered real).
    assert gan.measure == "fooling_rate"
    assert (gan.n_cases, gan.n_readings, gan.n_answered_real) == (2, 4, 1)
    assert gan.rate == wilson(1, 4)
    diffusion = rows[("generator", "diffusion", "synthetic")]
    assert diffusion.rate == wilson(1, 4) and diffusion.unsure_rate == wilson(1, 4)
    real = rows[("generator", "(none)", "real")]
    assert real.measure == "answered_fake_rate" and real.rate == wilson(2, 8)
    overall = rows[("all", "all", "synthetic")]
    assert overall.rate == wilson(2, 8)


def test_it_measures_intra_reader_consistency_on_repeats():
    repeats = [(0, 0, F), (0, 1, R), (0, 4, R), (0, 7, R), (1, 2, F)]
    result = analyse(make_table(ANSWERS, TRUTH, repeats=repeats), n_bootstrap=0)
    r0 = result.intra_reader.readers[0]
    first, second = [F, F, R, F], [F, R, R, R]
    assert r0.n_pairs == 4
    assert r0.percent_agreement == wilson(2, 4)
    assert r0.kappa.estimate == pytest.approx(cohen_kappa_score(first, second, labels=[0, 1, 2]))
    r1 = result.intra_reader.readers[1]
    assert r1.n_pairs == 1 and isinstance(r1.kappa, NotDefined)
    assert result.intra_reader.pooled_percent_agreement == wilson(3, 5)
    # Repeats never enter the primary figures.
    assert result.readers[0].n_readings == 8
    assert result.summary.n_repeat_readings == 5


def test_it_computes_auc_per_reader_and_or_reader_average_from_confidence():
    rng = np.random.default_rng(5)
    n_cases, n_readers = 40, 3
    truth = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    answers = rng.choice([R, U, F], size=(n_cases, n_readers))
    confidence = rng.integers(1, 6, size=(n_cases, n_readers))
    result = analyse(make_table(answers, truth, confidence), n_bootstrap=0)
    scores = np.where(answers == F, confidence, np.where(answers == R, -confidence, 0))
    aucs, jackknife = [], []
    for j, roc in enumerate(result.roc.readers):
        assert roc.auc.estimate == pytest.approx(roc_auc_score(truth, scores[:, j]))
        a, v10, v01 = auc_components(scores[truth, j], scores[~truth, j])
        jp, jn = jackknife_aucs(a, v10, v01)
        aucs.append(a)
        jackknife.append(np.r_[jp, jn])
        assert roc.points[0].threshold is None and roc.points[-1].tpr == 1.0
    expected = or_single_test(np.array(aucs), np.array(jackknife).T)
    assert result.roc.reader_averaged_auc_random_readers == expected.random_readers
    assert result.roc.reader_averaged_auc_fixed_readers == expected.fixed_readers
    assert result.roc.or_df == expected.df and result.roc.n_readers == 3


def test_it_leaves_out_a_reader_whose_confidence_is_missing():
    truth = np.r_[np.ones(4, bool), np.zeros(4, bool)]
    answers = np.array(ANSWERS)
    confidence = np.full(answers.shape, 3.0)
    confidence[0, 1] = np.nan
    result = analyse(make_table(answers, truth, confidence), n_bootstrap=0)
    assert isinstance(result.roc.readers[0].auc, Estimate)
    assert "confidence missing on 1" in result.roc.readers[1].auc.reason
    assert result.roc.n_readers == 1
    assert isinstance(result.roc.reader_averaged_auc_random_readers, NotDefined)
    assert "left out" in result.roc.note


def test_it_keeps_all_readings_of_a_case_together_in_the_bootstrap():
    rng = np.random.default_rng(6)
    truth = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    single = rng.choice([R, U, F], size=(60, 1))
    twins = np.c_[single, single]
    one = analyse(make_table(single, truth), n_bootstrap=300, seed=3)
    two = analyse(make_table(twins, truth), n_bootstrap=300, seed=3)
    # The mean of two identical readers equals the one reader in every resample only when a
    # resample keeps both readers' readings of each drawn case together.
    for name in ("accuracy", "sensitivity", "specificity"):
        a = getattr(one.reader_averaged, name)
        b = getattr(two.reader_averaged, name)
        assert (a.estimate, a.ci_low, a.ci_high) == pytest.approx((b.estimate, b.ci_low, b.ci_high))
    # Identical readers agree perfectly in every resample: a zero-width interval, which is
    # reported as no interval with the reason.
    for name in ("fleiss_kappa", "krippendorff_alpha", "gwet_ac1", "percent_agreement"):
        value = getattr(two.agreement, name)
        assert (value.estimate, value.ci_low, value.ci_high) == (1.0, None, None)
        assert "no interval: every defined resample gave 1 (the resamples do not vary)" in value.note


def test_it_resamples_cases_within_truth_strata():
    from readerstudy.analysis.bootstrap import bootstrap_sums, case_weights

    weights = case_weights(7, 20, np.random.default_rng(0))
    assert weights.shape == (20, 7) and (weights.sum(axis=1) == 7).all()
    features = np.r_[np.ones((3, 1)), np.zeros((5, 1))]
    fake, real = bootstrap_sums(features, [slice(0, 3), slice(3, 8)], 40, seed=1)
    assert (fake[:, 0] == 3).all() and (real[:, 0] == 0).all()


def test_it_is_deterministic_for_a_seed():
    rng = np.random.default_rng(7)
    answers = rng.choice([R, U, F], size=(30, 4))
    truth = rng.random(30) < 0.5
    table = make_table(answers, truth)
    a = analyse(table, n_bootstrap=100, seed=11).to_jsonable()
    b = analyse(table, n_bootstrap=100, seed=11).to_jsonable()
    c = analyse(table, n_bootstrap=100, seed=12).to_jsonable()
    assert a == b
    assert a["reader_averaged"] != c["reader_averaged"]


def test_it_reports_degenerate_studies_as_not_defined_with_reasons():
    empty = ReadingTable(
        reader=[], case=[], is_fake=[], answer=[], reader_labels=[], case_labels=[]
    )
    result = analyse(empty)
    assert_clean_json(result)
    assert isinstance(result.reader_averaged.accuracy, NotDefined)
    assert isinstance(result.agreement.fleiss_kappa, NotDefined)
    assert "no confidence" in result.roc.note
    assert isinstance(result.intra_reader.pooled_kappa, NotDefined)

    # One reader.
    result = analyse(make_table(np.array(ANSWERS)[:, :1], TRUTH), n_bootstrap=20)
    assert_clean_json(result)
    assert result.agreement.pairwise_cohen_kappa == ()
    assert "two readers" in result.agreement.mean_pairwise_cohen_kappa.reason
    assert "two readers" in result.agreement.fleiss_kappa.reason
    assert "two or more readings" in result.agreement.krippendorff_alpha.reason
    assert isinstance(result.reader_averaged.accuracy, Estimate)

    # Everybody always answers "fake".
    result = analyse(make_table(np.full((8, 3), F), TRUTH), n_bootstrap=20)
    assert_clean_json(result)
    assert "one category" in result.agreement.fleiss_kappa.reason
    assert "one category" in result.agreement.krippendorff_alpha.reason
    assert "one and the same category" in result.agreement.pairwise_cohen_kappa[0].kappa.reason
    assert result.readers[0].specificity.estimate == 0.0  # a real 0, with its interval
    assert result.readers[0].specificity.ci_high > 0

    # No fakes / no reals.
    result = analyse(make_table(np.array(ANSWERS)[4:], [False] * 4), n_bootstrap=20)
    assert_clean_json(result)
    assert "no fake" in result.readers[0].sensitivity.reason
    assert isinstance(result.reader_averaged.sensitivity, NotDefined)
    result = analyse(
        make_table(np.array(ANSWERS)[:4], [True] * 4, confidence=np.full((4, 2), 2)), n_bootstrap=20
    )
    assert_clean_json(result)
    assert "no real" in result.readers[0].specificity.reason
    assert "no real images" in result.roc.readers[0].auc.reason

    # No confidence, no repeats.
    result = analyse(make_table(ANSWERS, TRUTH), n_bootstrap=20)
    assert "no confidence" in result.roc.reader_averaged_auc_random_readers.reason
    assert result.intra_reader.readers[0].kappa.reason == "no repeated cases"
    assert "no repeated cases" in result.intra_reader.pooled_percent_agreement.reason


def test_it_never_crashes_on_small_random_studies():
    rng = np.random.default_rng(8)
    for _ in range(150):
        n_cases, n_readers = rng.integers(1, 7), rng.integers(1, 5)
        answers = rng.choice([R, U, F, X], size=(n_cases, n_readers), p=[0.3, 0.2, 0.3, 0.2])
        answers[rng.random((n_cases, n_readers)) < rng.random() * 0.5] = rng.choice([R, F])
        truth = rng.random(n_cases) < rng.random()
        confidence = None
        if rng.random() < 0.7:
            confidence = rng.integers(1, 6, size=(n_cases, n_readers)).astype(float)
            confidence[rng.random(confidence.shape) < 0.1] = np.nan
        read = np.argwhere(answers != X)
        repeats = [
            (int(j), int(i), int(rng.integers(0, 3))) for i, j in read[rng.random(len(read)) < 0.3]
        ]
        groups = {"g": [rng.choice(["a", "b", ""]) for _ in range(n_cases)]}
        result = analyse(
            make_table(answers, truth, confidence, repeats, groups),
            n_bootstrap=int(rng.integers(0, 30)),
            seed=int(rng.integers(0, 1000)),
        )
        assert_clean_json(result)
        result.to_tables()


def test_it_serialises_to_stable_keys_and_flat_tables():
    result = analyse(make_table(ANSWERS, TRUTH, repeats=[(0, 0, F)]), n_bootstrap=10)
    payload = assert_clean_json(result)
    assert payload["schema"] == SCHEMA
    assert list(payload) == [
        "schema",
        "summary",
        "readers",
        "reader_averaged",
        "roc",
        "agreement",
        "agreement_committed",
        "cases",
        "groups",
        "intra_reader",
    ]
    assert payload["summary"]["positive_class"] == "fake (synthetic)"
    assert set(payload["readers"][0]) == {
        "reader",
        "n_readings",
        "n_fake",
        "n_real",
        "table",
        "accuracy",
        "sensitivity",
        "specificity",
        "committed",
    }
    tables = result.to_tables()
    assert set(tables) == {
        "readers",
        "reader_averaged",
        "auc",
        "roc_points",
        "agreement",
        "pairwise_kappa",
        "cases",
        "groups",
        "intra_reader",
    }
    for name, rows in tables.items():
        for row in rows:
            assert all(not isinstance(v, (dict, list)) for v in row.values()), name
    assert tables["readers"][0]["sensitivity_estimate"] == 0.5
    assert tables["readers"][0]["fake_answered_unsure"] == 1
    assert {row["statistic"] for row in tables["agreement"]} >= {"fleiss_kappa", "gwet_ac1"}


def test_it_notes_a_design_that_is_not_fully_crossed():
    rng = np.random.default_rng(9)
    truth = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    answers = rng.choice([R, U, F], size=(20, 3))
    answers[0, 0] = X
    confidence = rng.integers(1, 6, size=(20, 3))
    result = analyse(make_table(answers, truth, confidence), n_bootstrap=10)
    assert result.summary.fully_crossed is False
    assert "did not all read the same cases" in result.roc.note
    assert "no case was read by all" not in str(result.agreement.fleiss_kappa)
    assert result.agreement.fleiss_kappa.n == 19
