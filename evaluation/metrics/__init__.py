"""Numerical core of the evaluation (no Django): see ``docs`` in each module.

- :func:`train_feature_extractor` / :class:`FeatureExtractor` (``features``, ``save``, ``load``,
  ``torchmetrics_module``): the project's own feature network, identified by its weights' SHA-256.
  Its features: the learned bottleneck, a realness logit (trained against noise, blank, blurred
  and scrambled images: ``negatives``) and low-level statistics (``lowlevel``).
- :func:`compare_sets` -> :class:`QualityReport`: Fréchet distance, KID, precision, recall,
  density, coverage and MS-SSIM diversity, each beside its real-vs-real baseline, the first six
  and their baselines with bootstrap intervals (``bootstrap``).
- :func:`find_memorized` -> :class:`MemorizationReport`: nearest training image of every synthetic
  image by features and by pixel correlation; flags against thresholds calibrated on the real set.
- :func:`machine_observer` -> :class:`ObserverResult`: held-out AUC of a real-vs-synthetic
  classifier, DeLong interval.
- :func:`audit` -> :class:`AuditReport`: per-cue AUC of everything but anatomy that a browser
  receives; ``blocking(0.65)``.

Figures are :class:`~readerstudy.analysis.Estimate` or :class:`~readerstudy.analysis.NotDefined`
(with the reason), the value types of the reader-study statistics, so ``to_jsonable`` serialises
both alike.

Names are loaded on first use (PEP 562) so that a module needing one constant, like the web
process's blinding audit, does not pull torch and scikit-learn in with the rest (the audit, light,
is imported at once).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# eager: the function `audit` shares its module's name, and a module imported first would
# shadow it; the module needs no torch or scikit-learn
from evaluation.metrics.audit import (
    BLOCKING_THRESHOLD,
    AuditItem,
    AuditReport,
    CueResult,
    audit,
    image_cues,
    sniff_format,
)

if TYPE_CHECKING:
    from evaluation.metrics.distances import KernelDistance, frechet_distance, kernel_distance
    from evaluation.metrics.diversity import Diversity, ms_ssim_diversity, scales_for
    from evaluation.metrics.features import (
        ExtractorError,
        FeatureExtractor,
        train_feature_extractor,
    )
    from evaluation.metrics.images import InsufficientData
    from evaluation.metrics.manifold import PRDC, prdc
    from evaluation.metrics.memorization import (
        MemorizationMatch,
        MemorizationReport,
        find_memorized,
    )
    from evaluation.metrics.observer import (
        ObserverResult,
        machine_observer,
        machine_observer_from_features,
    )
    from evaluation.metrics.quality import (
        IncomparableReports,
        MetricComparison,
        QualityReport,
        check_comparable,
        compare_sets,
    )

_EXPORTS: dict[str, str] = {
    "Diversity": "evaluation.metrics.diversity",
    "ExtractorError": "evaluation.metrics.features",
    "FeatureExtractor": "evaluation.metrics.features",
    "IncomparableReports": "evaluation.metrics.quality",
    "InsufficientData": "evaluation.metrics.images",
    "KernelDistance": "evaluation.metrics.distances",
    "MemorizationMatch": "evaluation.metrics.memorization",
    "MemorizationReport": "evaluation.metrics.memorization",
    "MetricComparison": "evaluation.metrics.quality",
    "ObserverResult": "evaluation.metrics.observer",
    "PRDC": "evaluation.metrics.manifold",
    "QualityReport": "evaluation.metrics.quality",
    "check_comparable": "evaluation.metrics.quality",
    "compare_sets": "evaluation.metrics.quality",
    "find_memorized": "evaluation.metrics.memorization",
    "frechet_distance": "evaluation.metrics.distances",
    "kernel_distance": "evaluation.metrics.distances",
    "machine_observer": "evaluation.metrics.observer",
    "machine_observer_from_features": "evaluation.metrics.observer",
    "ms_ssim_diversity": "evaluation.metrics.diversity",
    "prdc": "evaluation.metrics.manifold",
    "scales_for": "evaluation.metrics.diversity",
    "train_feature_extractor": "evaluation.metrics.features",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BLOCKING_THRESHOLD",
    "PRDC",
    "AuditItem",
    "AuditReport",
    "CueResult",
    "Diversity",
    "ExtractorError",
    "FeatureExtractor",
    "IncomparableReports",
    "InsufficientData",
    "KernelDistance",
    "MemorizationMatch",
    "MemorizationReport",
    "MetricComparison",
    "ObserverResult",
    "QualityReport",
    "audit",
    "check_comparable",
    "compare_sets",
    "find_memorized",
    "frechet_distance",
    "image_cues",
    "kernel_distance",
    "machine_observer",
    "machine_observer_from_features",
    "ms_ssim_diversity",
    "prdc",
    "scales_for",
    "sniff_format",
    "train_feature_extractor",
]
