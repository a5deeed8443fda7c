"""The two-way (readers and cases) bootstrap against a brute-force computation: each resample
built as a new study (drawn readers as columns, drawn cases as rows) and analysed with the
plain statistics, from the same random draws."""

import numpy as np
import pytest

from readerstudy.analysis import (
    Estimate,
    ReadingTable,
    analyse,
    category_counts,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha_nominal,
    percent_agreement,
)

R, U, F = 0, 1, 2
N_FAKE, N_REAL, N_READERS, B, SEED = 5, 4, 3, 60, 11


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(4)
    codes = rng.choice([R, U, F], size=(N_FAKE + N_REAL, N_READERS), p=[0.35, 0.2, 0.45])
    truth = np.r_[np.ones(N_FAKE, bool), np.zeros(N_REAL, bool)]
    case, reader = np.nonzero(np.ones_like(codes, bool))
    table = ReadingTable(
        reader=reader,
        case=case,
        is_fake=truth[case],
        answer=codes[case, reader],
        reader_labels=[f"r{j}" for j in range(N_READERS)],
        case_labels=[f"c{i}" for i in range(codes.shape[0])],
    )
    return codes, truth, table


def draws():
    """The draws as documented in `two_way_weights`: readers, then fake cases, then real."""
    rng = np.random.default_rng(SEED)
    for _ in range(B):
        readers = rng.integers(0, N_READERS, N_READERS)
        fakes = rng.integers(0, N_FAKE, N_FAKE)
        reals = N_FAKE + rng.integers(0, N_REAL, N_REAL)
        yield readers, np.r_[fakes, reals]


def value(slot) -> float:
    return slot.estimate if isinstance(slot, Estimate) else np.nan


def brute_force(codes, truth) -> dict[str, list[float]]:
    out = {name: [] for name in ("accuracy", "sensitivity", "fleiss", "alpha", "ac1", "pa")}
    for readers, cases in draws():
        sample = codes[np.ix_(cases, readers)]
        is_fake = truth[cases]
        correct = sample == np.where(is_fake, F, R)[:, None]
        out["accuracy"].append(float(np.mean(correct.mean(axis=0))))
        out["sensitivity"].append(float(np.mean(correct[is_fake].mean(axis=0))))
        counts = category_counts(sample, 3)
        out["fleiss"].append(value(fleiss_kappa(counts, len(readers))))
        out["alpha"].append(value(krippendorff_alpha_nominal(counts)))
        out["ac1"].append(value(gwet_ac1(counts, 3)))
        out["pa"].append(value(percent_agreement(counts)))
    return out


def interval(replicates: list[float]) -> tuple[float, float]:
    finite = np.array(replicates)[np.isfinite(replicates)]
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def test_it_matches_a_brute_force_two_way_bootstrap(study):
    codes, truth, table = study
    result = analyse(table, n_bootstrap=B, seed=SEED, bootstrap="two-way")
    expected = brute_force(codes, truth)
    pairs = {
        "accuracy": result.reader_averaged.accuracy,
        "sensitivity": result.reader_averaged.sensitivity,
        "fleiss": result.agreement.fleiss_kappa,
        "alpha": result.agreement.krippendorff_alpha,
        "ac1": result.agreement.gwet_ac1,
        "pa": result.agreement.percent_agreement,
    }
    for name, slot in pairs.items():
        assert (slot.ci_low, slot.ci_high) == pytest.approx(interval(expected[name]), abs=1e-9), (
            name
        )
        assert "two-way bootstrap" in slot.method and "random-reader interval" in slot.note
    assert result.summary.bootstrap == "two-way"


def test_it_keeps_the_case_bootstrap_as_the_default_and_says_readers_are_fixed(study):
    _codes, _truth, table = study
    result = analyse(table, n_bootstrap=B, seed=SEED)
    assert result.summary.bootstrap == "case"
    accuracy = result.reader_averaged.accuracy
    assert "readers fixed" in accuracy.method and "fixed-reader interval" in accuracy.note
    two_way = analyse(table, n_bootstrap=B, seed=SEED, bootstrap="two-way")
    # Same point estimates; the intervals differ because readers are resampled too.
    assert two_way.reader_averaged.accuracy.estimate == accuracy.estimate
    assert two_way.agreement.fleiss_kappa.estimate == result.agreement.fleiss_kappa.estimate


def test_it_refuses_an_unknown_bootstrap(study):
    with pytest.raises(ValueError, match="bootstrap must be one of"):
        analyse(study[2], bootstrap="readers")
