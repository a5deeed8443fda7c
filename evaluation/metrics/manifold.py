"""Precision, recall, density and coverage (Naeem et al., ICML 2020) on k-NN manifolds.

With ``NND_k(x)`` the distance from ``x`` to its k-th nearest neighbour within its own set (itself
excluded) and ``B(x, r)`` the open ball of radius r (strictly closer than r):

- precision: share of synthetic samples inside at least one real ball ``B(r_i, NND_k(r_i))``;
- recall: share of real samples inside at least one synthetic ball ``B(s_j, NND_k(s_j))``;
- density: ``1/(k M) * sum_j #{i : s_j in B(r_i, NND_k(r_i))}`` (can exceed 1);
- coverage: share of real samples whose ball holds at least one synthetic sample.

Identical sets give precision = recall = coverage = 1 (density about 1). Distances are Euclidean
on the extractor's standardised features, computed in blocks, so memory stays O(n_real x 1024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from evaluation.metrics.images import InsufficientData

BLOCK = 1024


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    n_real: int
    n_synthetic: int


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between every row of ``a`` and every row of ``b`` (n_a, n_b)."""
    sq = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None))  # rounding can make a zero distance slightly negative


def kth_neighbour_distances(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(features)
    distances, _ = nn.kneighbors(features)
    return distances[:, k]  # column 0 is the row itself (or an exact duplicate at distance 0)


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> PRDC:
    real = np.asarray(real, np.float64)
    synthetic = np.asarray(synthetic, np.float64)
    if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
        raise ValueError(
            f"expected (n, d) feature arrays of equal d, got {real.shape} and {synthetic.shape}"
        )
    if k < 1:
        raise ValueError("k must be >= 1")
    if real.shape[0] <= k or synthetic.shape[0] <= k:
        raise InsufficientData(
            f"precision/recall/density/coverage with k={k} need more than {k} images in each set, "
            f"got {real.shape[0]} real and {synthetic.shape[0]} synthetic"
        )
    real_radii = kth_neighbour_distances(real, k)
    synthetic_radii = kth_neighbour_distances(synthetic, k)
    in_real_balls = np.zeros(synthetic.shape[0], np.int64)  # per synthetic: number of real balls
    real_covered = np.zeros(real.shape[0], bool)
    real_recalled = np.zeros(real.shape[0], bool)
    for start in range(0, synthetic.shape[0], BLOCK):
        dist = pairwise_distances(real, synthetic[start : start + BLOCK])  # (n_real, block)
        inside = dist < real_radii[:, None]
        in_real_balls[start : start + BLOCK] = inside.sum(axis=0)
        real_covered |= inside.any(axis=1)
        real_recalled |= (dist < synthetic_radii[start : start + BLOCK][None, :]).any(axis=1)
    return PRDC(
        precision=float((in_real_balls > 0).mean()),
        recall=float(real_recalled.mean()),
        density=float(in_real_balls.sum() / (k * synthetic.shape[0])),
        coverage=float(real_covered.mean()),
        k=k,
        n_real=real.shape[0],
        n_synthetic=synthetic.shape[0],
    )
