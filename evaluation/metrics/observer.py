"""The machine observer: can a classifier tell the synthetic images from the real ones?

Logistic regression (L2, ``C=1``, on the extractor's standardised learned features; the
low-level statistics are left out: with them, two identical sets split at random gave an AUC of
0.29 on the test phantoms, the classifier remembering each image's exact statistics) is fitted on a stratified
training split and scored on the held-out images (30% of each class by default, seeded). The
result is the held-out AUC (synthetic = positive class, Mann-Whitney with ties counting one half)
with a DeLong 95% interval (normal approximation, clipped to [0, 1]) and the held-out accuracy at
probability 0.5 with a Wilson interval: the machine's answer to the readers' question, 0.5 being
chance. It needs at least 4 images of each class (2 to train on, 2 to hold out); otherwise the
result is ``NotDefined`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from evaluation.metrics.features import FeatureExtractor
from readerstudy.analysis import Estimate, NotDefined, Value, auc_estimate, wilson

MIN_PER_CLASS = 4
METHOD = "logistic regression on extractor features; stratified held-out split"


@dataclass(frozen=True)
class ObserverResult:
    auc: Value  # held-out AUC, DeLong interval
    accuracy: Value  # held-out accuracy at p = 0.5, Wilson interval
    n_real: int
    n_synthetic: int
    n_train: int
    n_held_out: int
    held_out_fraction: float
    seed: int
    method: str
    extractor_version: str = ""
    extractor_sha256: str = ""

    @property
    def defined(self) -> bool:
        return isinstance(self.auc, Estimate)


def machine_observer_from_features(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    held_out: float = 0.3,
    seed: int = 0,
    C: float = 1.0,
) -> ObserverResult:
    real = np.asarray(real, np.float64)
    synthetic = np.asarray(synthetic, np.float64)
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    n_real, n_syn = len(real), len(synthetic)
    common: dict[str, Any] = {
        "n_real": n_real,
        "n_synthetic": n_syn,
        "held_out_fraction": held_out,
        "seed": seed,
        "method": METHOD,
    }
    if n_real < MIN_PER_CLASS or n_syn < MIN_PER_CLASS:
        reason = (
            f"the machine observer needs at least {MIN_PER_CLASS} real and {MIN_PER_CLASS} "
            f"synthetic images (2 of each to train on, 2 to hold out), got {n_real} real and "
            f"{n_syn} synthetic"
        )
        return ObserverResult(
            NotDefined(reason), NotDefined(reason), n_train=0, n_held_out=0, **common
        )
    x = np.concatenate([real, synthetic])
    y = np.r_[np.zeros(n_real, int), np.ones(n_syn, int)]
    # at least 2 of each class held out and at least 2 left to train on
    n_test = max(round(held_out * len(y)), 4)
    n_test = min(n_test, len(y) - 4)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test, stratify=y, random_state=seed
    )
    if min(np.bincount(y_test, minlength=2)) < 2 or min(np.bincount(y_train, minlength=2)) < 2:
        reason = "the stratified split left fewer than 2 images of a class on one side"
        return ObserverResult(
            NotDefined(reason),
            NotDefined(reason),
            n_train=len(y_train),
            n_held_out=len(y_test),
            **common,
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    model.fit(x_train, y_train)
    score = model.decision_function(x_test)
    auc = auc_estimate(score[y_test == 1], score[y_test == 0])
    correct = int(((score > 0).astype(int) == y_test).sum())
    accuracy = wilson(correct, len(y_test))
    return ObserverResult(auc, accuracy, n_train=len(y_train), n_held_out=len(y_test), **common)


def machine_observer(
    real,
    synthetic,
    extractor: FeatureExtractor,
    *,
    held_out: float = 0.3,
    seed: int = 0,
) -> ObserverResult:
    """Real vs synthetic on the extractor's features of uint8 grey images (see module doc)."""
    result = machine_observer_from_features(
        extractor.features(real, learned_only=True),
        extractor.features(synthetic, learned_only=True),
        held_out=held_out,
        seed=seed,
    )
    return ObserverResult(
        **{
            **result.__dict__,
            "extractor_version": extractor.version,
            "extractor_sha256": extractor.sha256,
        }
    )
