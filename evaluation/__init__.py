"""Evaluation of synthetic images before (and beside) the readers' verdict.

The numerical core lives in :mod:`evaluation.metrics` (pure numpy / scipy / scikit-learn / torch /
torchmetrics, no Django import): a locally trained feature extractor, Fréchet distance, KID,
precision / recall / density / coverage, MS-SSIM diversity, each beside a real-vs-real baseline;
the memorization check, the machine observer and the blinding audit. This package becomes a Django
app later; keep Django code out of ``evaluation.metrics``.
"""
