"""The study's agreement analysis: all answers (q = 3) and committed answers only (q = 2),
with case-bootstrap or two-way (readers and cases) bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from readerstudy.analysis import agreement as ag
from readerstudy.analysis.bootstrap import CASE, bootstrapped
from readerstudy.analysis.dense import Dense
from readerstudy.analysis.readers import METHODS
from readerstudy.analysis.results import (
    AgreementAnalysis,
    Estimate,
    NotDefined,
    PairKappa,
    Value,
)
from readerstudy.analysis.table import FAKE, MISSING, REAL


@dataclass
class AgreementInput:
    answers: str
    categories: tuple[str, ...]
    codes: np.ndarray  # (cases x readers), 0..q-1 or MISSING
    counts: np.ndarray  # (cases x q)
    n_raters: int  # readers with any reading: Fleiss uses the cases read by all of them
    active: np.ndarray  # bool per reader: has any first reading (of any answer)

    @property
    def q(self) -> int:
        return len(self.categories)

    def features(self, counts: np.ndarray | None = None, n_raters: int | None = None):
        """Per-case features of Fleiss, Krippendorff and AC1, and their column slices."""
        counts = self.counts if counts is None else counts
        n_raters = self.n_raters if n_raters is None else n_raters
        parts = {
            "fleiss": ag.fleiss_features(counts, n_raters),
            "krippendorff": ag.krippendorff_features(counts),
            "ac1": ag.ac1_features(counts),
        }
        columns, start = {}, 0
        for name, part in parts.items():
            columns[name] = slice(start, start + part.shape[1])
            start += part.shape[1]
        return np.concatenate(list(parts.values()), axis=1), columns

    def statistics(self):
        """(name, feature block, replicate function) of every bootstrapped statistic."""
        q, m = self.q, self.n_raters
        return (
            ("fleiss", "fleiss", lambda s: ag.fleiss_from_sums(s, m)),
            ("krippendorff", "krippendorff", ag.krippendorff_from_sums),
            ("ac1", "ac1", lambda s: ag.ac1_from_sums(s, q)),
            ("percent_agreement", "ac1", ag.percent_agreement_from_sums),
        )


def agreement_inputs(dense: Dense) -> tuple[AgreementInput, AgreementInput]:
    n_raters = int(dense.active.sum())
    primary = AgreementInput(
        "all answers (real / unsure / fake)",
        ("real", "unsure", "fake"),
        dense.codes,
        ag.category_counts(dense.codes, 3),
        n_raters,
        dense.active,
    )
    committed_codes = np.full(dense.codes.shape, MISSING, np.int8)
    committed_codes[dense.codes == REAL] = 0
    committed_codes[dense.codes == FAKE] = 1
    committed = AgreementInput(
        "SECONDARY: committed answers only (real / fake; unsure treated as missing)",
        ("real", "fake"),
        committed_codes,
        ag.category_counts(committed_codes, 2),
        n_raters,
        dense.active,
    )
    return primary, committed


def pairwise(
    data: AgreementInput, reader_labels: tuple[str, ...]
) -> tuple[tuple[PairKappa, ...], Value]:
    tables = ag.pairwise_tables(data.codes, data.q)
    kappa, se, n = ag.kappa_from_tables(tables)
    R = len(reader_labels)
    pairs = [
        PairKappa(
            reader_labels[a],
            reader_labels[b],
            int(n[a, b]),
            ag.kappa_value(
                float(kappa[a, b]), float(se[a, b]), int(n[a, b]), empty="no case read by both"
            ),
        )
        for a in range(R)
        for b in range(a + 1, R)
    ]
    defined = [p.kappa.estimate for p in pairs if isinstance(p.kappa, Estimate)]
    if R < 2:
        mean: Value = NotDefined("needs at least two readers")
    elif not defined:
        mean = NotDefined("no reader pair has a defined kappa")
    else:
        mean = Estimate(
            float(np.mean(defined)),
            None,
            None,
            len(defined),
            "mean of the defined pairwise Cohen's kappas (Light's kappa)",
            note=(
                f"point estimate only; {len(pairs) - len(defined)} of {len(pairs)} pairs undefined"
            ),
        )
    return tuple(pairs), mean


def _fleiss(data: AgreementInput, reader_labels: tuple[str, ...]) -> Value:
    """Fleiss' kappa, with the actual cause when no case has an answer from every reader."""
    value = ag.fleiss_kappa(data.counts, data.n_raters)
    if not isinstance(value, NotDefined) or data.n_raters < 2:
        return value
    silent = data.active & ~(data.codes != MISSING).any(axis=0)
    if silent.any() and data.q == 2:
        names = ", ".join(label for label, s in zip(reader_labels, silent) if s)
        return NotDefined(
            f"{int(silent.sum())} of the {data.n_raters} readers ({names}) gave no committed "
            "(real/fake) answer, only unsure, so no case has a committed answer from every reader"
        )
    return value


def replicates(data: AgreementInput, sums: np.ndarray | None, columns) -> dict | None:
    """Replicates of every bootstrapped statistic from the case-bootstrap feature sums."""
    if sums is None:
        return None
    return {name: f(sums[:, columns[block]]) for name, block, f in data.statistics()}


def two_way_replicates(
    data: AgreementInput, reader_weights: np.ndarray, case_weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Replicates of a two-way bootstrap: a reader drawn k times counts as k raters of every
    case it read, so each resample has its own count matrix."""
    n_cases = data.codes.shape[0]
    # (cases*q x readers) indicator matrix: a block of resamples' counts is one product.
    onehot = np.stack([data.codes == k for k in range(data.q)], axis=1).astype(float)
    onehot = onehot.reshape(n_cases * data.q, -1)
    out = {name: np.empty(len(reader_weights)) for name, _, _ in data.statistics()}
    # Every feature is a function of one case's counts, so a block of resamples' count matrices
    # stacked row-wise gives all their features in one call (memory: block x cases x features).
    block_size = 32
    for start in range(0, len(reader_weights), block_size):
        stop = min(start + block_size, len(reader_weights))
        counts = (onehot @ reader_weights[start:stop].T).T.reshape(-1, data.q)
        features, columns = data.features(counts)
        features = features.reshape(stop - start, n_cases, -1)
        sums = np.einsum("bc,bcf->bf", case_weights[start:stop], features)
        # Only readers with readings are drawn, so every resample has data.n_raters raters.
        for name, part, f in data.statistics():
            out[name][start:stop] = f(sums[:, columns[part]])
    return out


def agreement(
    data: AgreementInput,
    reps: dict[str, np.ndarray] | None,
    reader_labels: tuple[str, ...],
    *,
    kind: str = CASE,
    collapse_cause: str = "",
) -> AgreementAnalysis:
    def boot(point: Value, name: str) -> Value:
        values = None if reps is None else reps[name]
        return bootstrapped(
            point, values, lambda r: r, METHODS[kind], kind=kind, collapse_cause=collapse_cause
        )

    pairs, mean = pairwise(data, reader_labels)
    return AgreementAnalysis(
        answers=data.answers,
        categories=data.categories,
        pairwise_cohen_kappa=pairs,
        mean_pairwise_cohen_kappa=mean,
        fleiss_kappa=boot(_fleiss(data, reader_labels), "fleiss"),
        krippendorff_alpha=boot(ag.krippendorff_alpha_nominal(data.counts), "krippendorff"),
        gwet_ac1=boot(ag.gwet_ac1(data.counts, data.q), "ac1"),
        percent_agreement=boot(ag.percent_agreement(data.counts), "percent_agreement"),
    )
