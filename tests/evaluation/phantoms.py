"""Synthetic "X-ray-like" images for the evaluation tests: smooth blobs + noise, tiny and fast."""

import numpy as np


def xray_like(
    n: int,
    size: int = 64,
    *,
    seed: int = 0,
    finding: str = "normal",
    brightness: float = 0.0,
    noise: float = 6.0,
) -> np.ndarray:
    """(n, size, size) uint8: dark surround, a bright chest with two darker lungs, random blobs.

    ``finding="opacity"`` adds a bright patch in one lung; ``brightness`` is added (0-255 scale)
    before clipping.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size), np.uint8)
    for i in range(n):
        cx, cy = 0.5 + rng.normal(0, 0.03), 0.52 + rng.normal(0, 0.03)
        body = np.exp(-((((xx - cx) / 0.38) ** 2 + ((yy - cy) / 0.45) ** 2) ** 2))
        img = 40 + 150 * body
        for side in (-1, 1):
            lx, ly = cx + side * rng.uniform(0.14, 0.19), cy - 0.03 + rng.normal(0, 0.02)
            ax, ay = rng.uniform(0.09, 0.13), rng.uniform(0.2, 0.27)
            img -= 70 * np.exp(-(((xx - lx) / ax) ** 2 + ((yy - ly) / ay) ** 2))
        for _ in range(rng.integers(2, 5)):
            bx, by, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.03, 0.08)
            img += rng.uniform(-25, 25) * np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / r**2)
        if finding == "opacity":
            ox = cx + rng.choice([-1, 1]) * 0.16
            img += 60 * np.exp(-((xx - ox) ** 2 + (yy - cy - 0.08) ** 2) / 0.07**2)
        img += brightness + rng.normal(0, noise, img.shape)
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def labelled_pool(n: int, size: int = 64, *, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Half "normal", half "opacity", interleaved."""
    normal = xray_like(n - n // 2, size, seed=seed, finding="normal")
    opacity = xray_like(n // 2, size, seed=seed + 1000, finding="opacity")
    images = np.empty((n, size, size), np.uint8)
    images[0::2], images[1::2] = normal, opacity
    return images, ["normal" if i % 2 == 0 else "opacity" for i in range(n)]


def white_noise(n: int, size: int = 64, *, seed: int = 0) -> np.ndarray:
    """(n, size, size) uint8 uniform white noise over the whole 0-255 range."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def blank(n: int, size: int = 64, *, seed: int = 0) -> np.ndarray:
    """(n, size, size) uint8 constant images, one grey level each (drawn from 40-200, the range
    of the phantoms' own mean brightness and around it)."""
    levels = np.random.default_rng(seed).integers(40, 201, n)
    return np.broadcast_to(levels[:, None, None], (n, size, size)).astype(np.uint8)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """Each image under a Gaussian blur of ``sigma`` pixels (edges reflected)."""
    from scipy.ndimage import gaussian_filter

    out = [gaussian_filter(image.astype(np.float64), sigma, mode="reflect") for image in images]
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)
