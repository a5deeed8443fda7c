"""Every "not defined" reason and every "no interval" note names the actual cause: one test per
situation, built from scratch."""

import numpy as np

from readerstudy.analysis import Estimate, NotDefined, ReadingTable, analyse
from readerstudy.analysis.agreement import gwet_ac1
from readerstudy.analysis.results import to_jsonable
from tests.analysis.test_study import X, make_table

R, U, F = 0, 1, 2


def with_design(table: ReadingTable, collects_confidence: bool) -> ReadingTable:
    return ReadingTable(
        reader=table.reader,
        case=table.case,
        is_fake=table.is_fake,
        answer=table.answer,
        confidence=table.confidence,
        showing=table.showing,
        reader_labels=table.reader_labels,
        case_labels=table.case_labels,
        collects_confidence=collects_confidence,
    )


TRUTH = [True] * 3 + [False] * 3


def test_it_says_a_study_with_a_scale_collected_confidence_even_when_every_answer_is_unsure():
    table = with_design(make_table(np.full((6, 2), U), TRUTH), collects_confidence=True)
    result = analyse(table, n_bootstrap=0)
    assert result.summary.confidence_collected is True
    auc = result.roc.readers[0].auc
    assert isinstance(auc, Estimate) and auc.estimate == 0.5 and auc.ci_low is None
    assert "every fake-score of this reader is the same (all tied)" in auc.note
    average = result.roc.reader_averaged_auc_fixed_readers
    assert average.ci_low is None and "the standard error is 0" in average.note
    assert "no confidence ratings were collected" not in str(to_jsonable(result))


def test_it_says_no_confidence_was_collected_when_the_study_does_not_ask_for_it():
    table = with_design(make_table(np.full((6, 2), F), TRUTH), collects_confidence=False)
    result = analyse(table, n_bootstrap=0)
    assert result.roc.readers[0].auc == NotDefined("no confidence ratings were collected")


def test_it_gives_perfect_separation_no_interval():
    answers = np.array([[F], [F], [F], [R], [R], [R]])
    result = analyse(make_table(answers, TRUTH, np.full((6, 1), 3)), n_bootstrap=0)
    auc = result.roc.readers[0].auc
    assert (auc.estimate, auc.ci_low, auc.ci_high, auc.se) == (1.0, None, None, 0.0)
    assert auc.note == "no interval: perfect separation: no variance estimate (DeLong SE is 0)"


def test_it_names_the_missing_confidence_as_the_reason_an_auc_is_not_defined():
    answers = np.array([[F], [F], [R], [R], [R], [F]])
    confidence = np.full((6, 1), 2.0)
    confidence[0, 0] = np.nan
    result = analyse(make_table(answers, TRUTH, confidence), n_bootstrap=0)
    reason = result.roc.readers[0].auc.reason
    assert reason.startswith("confidence missing on 1 committed answer(s)")
    assert "no fake-score" in reason


def test_it_says_perfect_agreement_not_one_category_for_a_kappa_of_one():
    answers = np.array([[F, F], [U, U], [R, R], [R, R], [U, U], [F, F]])
    kappa = analyse(make_table(answers, TRUTH), n_bootstrap=0).agreement.pairwise_cohen_kappa[0]
    assert kappa.kappa.estimate == 1.0 and kappa.kappa.ci_low is None
    assert kappa.kappa.note == (
        "no interval: perfect agreement (kappa 1) has a large-sample variance of 0"
    )


def test_it_says_one_rater_used_a_single_category_when_that_is_the_cause():
    answers = np.array([[F, F], [F, U], [F, R], [F, R], [F, U], [F, F]])
    kappa = analyse(make_table(answers, TRUTH), n_bootstrap=0).agreement.pairwise_cohen_kappa[0]
    assert kappa.kappa.estimate == 0.0 and kappa.kappa.ci_low is None
    assert "one rater used a single category" in kappa.kappa.note


def test_it_names_the_reader_without_committed_answers_for_committed_fleiss():
    answers = np.array([[F, F, U], [F, R, U], [R, R, U], [R, F, U], [F, F, U], [R, R, U]])
    result = analyse(make_table(answers, TRUTH), n_bootstrap=0)
    assert result.agreement_committed.fleiss_kappa.reason == (
        "1 of the 3 readers (r2) gave no committed (real/fake) answer, only unsure, so no case "
        "has a committed answer from every reader"
    )
    # The primary (all answers) Fleiss is defined: everyone read every case.
    assert isinstance(result.agreement.fleiss_kappa, Estimate)


def test_it_says_no_case_was_read_by_all_readers_when_that_is_the_cause():
    answers = np.array([[F, X], [X, R], [R, X], [X, F], [F, X], [X, R]])
    result = analyse(make_table(answers, TRUTH), n_bootstrap=0)
    assert result.agreement.fleiss_kappa.reason == "no case was read by all 2 readers"


def test_it_gives_no_bootstrap_interval_with_one_case_per_stratum():
    answers = np.array([[F, R, U], [R, R, F]])
    result = analyse(make_table(answers, [True, False]), n_bootstrap=50, seed=1)
    fleiss = result.agreement.fleiss_kappa
    assert fleiss.ci_low is None and fleiss.ci_high is None
    assert (
        "one case per truth stratum: every stratified resample redraws the same cases"
        in fleiss.note
    )
    accuracy = result.reader_averaged.accuracy
    assert accuracy.ci_low is None and "one case per truth stratum" in accuracy.note


def test_it_says_why_a_committed_accuracy_is_not_defined():
    answers = np.full((6, 1), U)
    result = analyse(make_table(answers, TRUTH), n_bootstrap=0)
    assert result.readers[0].committed.accuracy.reason == (
        "no committed (real/fake) answers: every answer was unsure"
    )


def test_it_documents_the_ac1_default_it_uses():
    counts = np.array([[2, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert 'chance_over="rated"' in gwet_ac1.__doc__
    assert gwet_ac1(counts, 3) == gwet_ac1(counts, 3, "rated")
    assert gwet_ac1(counts, 3) != gwet_ac1(counts, 3, "paired")
