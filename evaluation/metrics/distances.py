"""Fréchet distance and kernel (MMD) distance between two sets of features.

These are the FID / KID formulas, but on the project's own extractor's features, so the numbers
are comparable only within the project and only between figures made with the same extractor
(never with published FIDs).

- Fréchet distance: ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` with sample
  covariances (ddof 1). The trace term is computed as ``tr((S1^(1/2) S2 S1^(1/2))^(1/2))``: both
  square roots are of symmetric positive semi-definite matrices (``eigh``, negative round-off
  eigenvalues set to 0), which avoids the complex results and instability of ``sqrtm(S1 @ S2)``.
  It equals torchmetrics' ``FrechetInceptionDistance`` with a custom feature module.
- KID: the unbiased MMD^2 estimate with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over ``n_subsets`` random subsets of ``subset_size``
  from each set (torchmetrics' definition; its default subset size of 1000 is replaced by
  ``min(n1, n2, 1000)``). Seeded, unlike torchmetrics which draws from the global RNG. When the
  subset size equals both set sizes every subset is the whole set, so it is computed once. The
  cross term averages over all pairs (diagonal included), as in Bińkowski et al. and torchmetrics:
  unbiased for independent samples, but two *identical* sets give a small negative value of order
  ``-2/n`` (the mean self-similarity minus the mean similarity), not exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.metrics.images import InsufficientData


def _check_pair(
    a: np.ndarray, b: np.ndarray, minimum: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    for name, x in (("first", a), ("second", b)):
        if x.ndim != 2:
            raise ValueError(
                f"{what}: the {name} feature set must be 2-D (n, d), got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"{what}: the {name} feature set contains NaN or infinite values")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: feature dimensions differ ({a.shape[1]} vs {b.shape[1]})")
    if a.shape[0] < minimum or b.shape[0] < minimum:
        raise InsufficientData(
            f"{what} needs at least {minimum} images in each set, got {a.shape[0]} and {b.shape[0]}"
        )
    return a, b


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features ``a`` (n1, d) and ``b`` (n2, d).

    Needs at least 2 rows in each set (``InsufficientData`` otherwise). Never negative: round-off
    below zero is returned as 0.
    """
    a, b = _check_pair(a, b, 2, "the Fréchet distance")
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1 = np.cov(a, rowvar=False, ddof=1).reshape(a.shape[1], a.shape[1])
    s2 = np.cov(b, rowvar=False, ddof=1).reshape(b.shape[1], b.shape[1])
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_root)
    return max(value, 0.0)


@dataclass(frozen=True)
class KernelDistance:
    mean: float  # mean unbiased MMD^2 over subsets
    std: float  # standard deviation over subsets (ddof 0, as torchmetrics); 0 with one subset
    subset_size: int
    n_subsets: int


def polynomial_kernel(
    a: np.ndarray, b: np.ndarray, degree: int = 3, coef: float = 1.0
) -> np.ndarray:
    """``k(x, y) = (x.y / d + coef)^degree`` between every row of ``a`` and every row of ``b``."""
    return (a @ b.T / a.shape[1] + coef) ** degree


def polynomial_mmd2(a: np.ndarray, b: np.ndarray, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD^2 with ``k(x, y) = (x.y / d + coef)^degree`` (diagonals left out within sets)."""
    m, n = a.shape[0], b.shape[0]
    k_aa = polynomial_kernel(a, a, degree, coef)
    k_bb = polynomial_kernel(b, b, degree, coef)
    k_ab = polynomial_kernel(a, b, degree, coef)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kernel_distance(
    a: np.ndarray,
    b: np.ndarray,
    *,
    subset_size: int | None = None,
    n_subsets: int = 100,
    seed: int = 0,
) -> KernelDistance:
    """KID of features ``a`` and ``b``; ``subset_size`` defaults to ``min(n1, n2, 1000)``."""
    a, b = _check_pair(a, b, 2, "KID")
    largest = min(a.shape[0], b.shape[0])
    size = min(largest, 1000) if subset_size is None else int(subset_size)
    if size < 2:
        raise ValueError(f"KID subset size must be >= 2, got {size}")
    if size > largest:
        raise InsufficientData(
            f"KID subset size {size} is larger than the smaller set ({largest} images)"
        )
    if n_subsets < 1:
        raise ValueError("n_subsets must be >= 1")
    if size == a.shape[0] == b.shape[0]:
        return KernelDistance(polynomial_mmd2(a, b), 0.0, size, 1)
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2(
                a[rng.choice(a.shape[0], size, replace=False)],
                b[rng.choice(b.shape[0], size, replace=False)],
            )
            for _ in range(n_subsets)
        ]
    )
    return KernelDistance(float(values.mean()), float(values.std()), size, n_subsets)
