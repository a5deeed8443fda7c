"""Numerical core of the evaluation (no Django): see ``docs`` in each module.

- :func:`train_feature_extractor` / :class:`FeatureExtractor` (``features``, ``save``, ``load``,
  ``torchmetrics_module``): the project's own feature network, identified by its weights' SHA-256.
- :func:`compare_sets` -> :class:`QualityReport`: Fréchet distance, KID, precision, recall,
  density, coverage and MS-SSIM diversity, each beside its real-vs-real baseline.
- :func:`find_memorized` -> :class:`MemorizationReport`: nearest training image of every synthetic
  image by features and by pixel correlation; flags against thresholds calibrated on the real set.
- :func:`machine_observer` -> :class:`ObserverResult`: held-out AUC of a real-vs-synthetic
  classifier, DeLong interval.
- :func:`audit` -> :class:`AuditReport`: per-cue AUC of everything but anatomy that a browser
  receives; ``blocking(0.65)``.

Figures are :class:`~readerstudy.analysis.Estimate` or :class:`~readerstudy.analysis.NotDefined`
(with the reason), the value types of the reader-study statistics, so ``to_jsonable`` serialises
both alike.
"""

from evaluation.metrics.audit import (
    BLOCKING_THRESHOLD,
    AuditItem,
    AuditReport,
    CueResult,
    audit,
    image_cues,
    sniff_format,
)
from evaluation.metrics.distances import KernelDistance, frechet_distance, kernel_distance
from evaluation.metrics.diversity import Diversity, ms_ssim_diversity, scales_for
from evaluation.metrics.features import (
    ExtractorError,
    FeatureExtractor,
    train_feature_extractor,
)
from evaluation.metrics.images import InsufficientData
from evaluation.metrics.manifold import PRDC, prdc
from evaluation.metrics.memorization import MemorizationMatch, MemorizationReport, find_memorized
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
