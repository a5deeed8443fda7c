"""A feature extractor trained here, on the real pool: Inception weights cannot be downloaded.

The network is a small convolutional autoencoder with a finding-classification head on its
bottleneck:

- encoder: stride-2 3x3 convolutions (SiLU) from ``input_size`` down to 4 x 4, then a linear layer
  to the ``feature_dim``-dimensional bottleneck: **the features**;
- decoder: the mirror image (upsampling + 3x3 convolutions), trained to reconstruct the input
  (mean squared error), so that the features describe the whole image, not only what separates the
  findings;
- classifier: a linear layer on the bottleneck, trained with cross-entropy on the finding labels
  when at least two findings are present (otherwise the objective is reconstruction only).

Loss: MSE(reconstruction) + 0.1 x cross-entropy; Adam (lr 2e-3), batch 32, seeded.

Images are grey uint8 of any square size (non-square ones are centre-cropped), downsampled with
antialiased bilinear interpolation to ``input_size`` (64 by default). Training augments with random
shifts of a few pixels only; there is no intensity augmentation, so a brightness shift moves the
features. Features are standardised with the mean and standard deviation of the training images'
features, which are part of the saved weights.

A saved extractor is a folder::

    <folder>/extractor.json        kind, format, architecture, version, weights_sha256, config,
                                   classes, training details, library versions
    <folder>/weights.safetensors   every tensor (encoder, decoder, classifier, feature mean/std)

``extractor.sha256`` (the SHA-256 of ``weights.safetensors``) identifies the extractor: figures
computed with different extractors must never be compared (see ``QualityReport.comparable_with``).

The marker also lists a short fingerprint of every training image (``training_fingerprints``), so
``compare_sets`` can tell when the real images it is given were used to train the extractor. They
should not be: features of images the network was trained on are more alike than those of new
images, so a real-vs-real baseline drawn from the training images is optimistic (on the test
phantoms a perfect generator then scores a Fréchet distance 1.5-3 times its baseline, against
about 1 with held-out real images). Keep some real images out of the extractor's training for
evaluation.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.metrics import lowlevel
from evaluation.metrics.images import Images, as_image_list, stack_resized, to_unit_tensor
from evaluation.metrics.negatives import make_negatives

KIND = "spotthefake-feature-extractor"
FORMAT = 1
ARCHITECTURE = "cnn-autoencoder-classifier-realness+low-level/2"
MARKER = "extractor.json"
WEIGHTS = "weights.safetensors"
REALNESS_WEIGHT = 0.1


class ExtractorError(ValueError):
    """A feature-extractor folder is missing, incomplete, corrupt or of another kind."""


@dataclass(frozen=True)
class ExtractorConfig:
    input_size: int = 64
    width: int = 16
    feature_dim: int = 64
    n_classes: int = 0
    negatives: bool = True
    low_level: bool = True

    def __post_init__(self) -> None:
        size = self.input_size
        if not isinstance(size, int) or size < 8 or size & (size - 1):
            raise ValueError(f"input_size must be a power of two >= 8, got {size!r}")
        if self.width < 1 or self.feature_dim < 1 or self.n_classes < 0:
            raise ValueError("width and feature_dim must be positive, n_classes >= 0")

    @property
    def levels(self) -> int:
        """Number of stride-2 stages from input_size down to 4 x 4."""
        return int(np.log2(self.input_size // 4))

    def channels(self, level: int) -> int:
        return self.width * 2 ** min(level, 2)

    @property
    def output_dim(self) -> int:
        """Features given out: the bottleneck, the realness logit, the low-level statistics."""
        extra = lowlevel.dimension(self.input_size) if self.low_level else 0
        return self.feature_dim + int(self.negatives) + extra


class _Network(nn.Module):
    # Buffers (register_buffer below): declared so they read as tensors, not as Module | Tensor.
    feature_mean: torch.Tensor
    feature_transform: torch.Tensor

    def __init__(self, config: ExtractorConfig):
        super().__init__()
        self.config = config
        encoder: list[nn.Module] = []
        ch_in = 1
        for level in range(config.levels):
            ch = config.channels(level)
            encoder += [nn.Conv2d(ch_in, ch, 3, stride=2, padding=1), nn.SiLU()]
            ch_in = ch
        self.encoder = nn.Sequential(*encoder)
        self.top_channels = ch_in
        self.to_features = nn.Linear(ch_in * 16, config.feature_dim)
        self.from_features = nn.Linear(config.feature_dim, ch_in * 16)
        decoder: list[nn.Module] = []
        for level in reversed(range(config.levels)):
            ch_out = config.channels(level - 1) if level > 0 else config.width
            decoder += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch_in, ch_out, 3, padding=1),
                nn.SiLU(),
            ]
            ch_in = ch_out
        decoder += [nn.Conv2d(ch_in, 1, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)
        self.classifier = nn.Linear(config.feature_dim, max(config.n_classes, 1))
        self.realness = nn.Linear(config.feature_dim, 1)
        self.register_buffer("feature_mean", torch.zeros(config.output_dim))
        self.register_buffer("feature_transform", torch.eye(config.output_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (unstandardised) bottleneck of (n, 1, s, s) inputs in [0, 1]."""
        h = self.encoder(x * 2.0 - 1.0)
        return self.to_features(h.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.from_features(z)).view(-1, self.top_channels, 4, 4)
        return torch.sigmoid(self.decoder(h))

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unstandardised output features (float64) of (n, 1, s, s) inputs in [0, 1]."""
        z = self.encode(x)
        parts = [z.double()]
        if self.config.negatives:
            parts.append(self.realness(z).double())
        if self.config.low_level:
            parts.append(lowlevel.statistics(x))
        return torch.cat(parts, dim=1)


class FeatureModule(nn.Module):
    """The extractor as a ``torch.nn.Module`` for torchmetrics' ``feature=`` argument.

    Takes a uint8 (or [0, 1] float) batch (n, h, w) / (n, 1 or 3, h, w) of any size and returns
    the standardised features as float64, shape (n, num_features).
    """

    def __init__(self, network: _Network):
        super().__init__()
        self.network = network
        self.num_features = network.config.output_dim

    @torch.no_grad()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        x = to_unit_tensor(batch, self.network.config.input_size)
        raw = self.network.raw_features(x)
        mean = self.network.feature_mean.double()
        return (raw - mean) @ self.network.feature_transform.double()


def _state_bytes(network: _Network) -> bytes:
    """The weights as safetensors bytes, deterministic for given tensors.

    No ``metadata``: safetensors writes a multi-key metadata map in a random order, which would
    give the same weights a different SHA-256 each time. The JSON marker carries the description.
    """
    from safetensors.torch import save

    state = network.state_dict()
    return save({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()})


class FeatureExtractor:
    """A trained extractor: ``features(images)``, ``torchmetrics_module()``, ``save``/``load``."""

    def __init__(
        self,
        network: _Network,
        *,
        version: str,
        classes: Sequence[str],
        training: dict,
        training_fingerprints: Iterable[str] = (),
    ):
        network.eval()
        self._network = network
        self.version = version
        self.classes = tuple(classes)
        self.training = dict(training)
        #: :func:`fingerprint` of every training image: which real images the extractor has seen
        self.training_fingerprints = frozenset(training_fingerprints)
        self._weights = _state_bytes(network)
        self.sha256 = hashlib.sha256(self._weights).hexdigest()

    # ------------------------------------------------------------------------- identity
    @property
    def config(self) -> ExtractorConfig:
        return self._network.config

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`features`: the learned bottleneck (``config.feature_dim``), the
        realness logit and the low-level statistics."""
        return self.config.output_dim

    @property
    def identity(self) -> str:
        """Human-readable name for figure captions: version and the start of the weights' SHA-256."""
        return f"{self.version} (weights sha256 {self.sha256[:12]})"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": FORMAT,
            "architecture": ARCHITECTURE,
            "version": self.version,
            "weights_sha256": self.sha256,
            "config": asdict(self.config),
            "classes": list(self.classes),
            "training": self.training,
            "training_fingerprints": sorted(self.training_fingerprints),
        }

    # ------------------------------------------------------------------------- features
    def features(
        self, images: Images, *, batch_size: int = 64, learned_only: bool = False
    ) -> np.ndarray:
        """Features as the extractor's stored map makes them (see ``_standardise``): each
        learned feature divided by its spread over the training images, the low-level block
        whitened together, each group scaled by 1 / sqrt(its width); float64 array
        (n, feature_dim). An empty input gives (0, d).

        ``learned_only``: the learned bottleneck alone, (n, config.feature_dim): what an image
        shows rather than how its pixels are made (the memorization check's measure).
        """
        items = as_image_list(images)
        module = self.torchmetrics_module()
        out = [np.zeros((0, self.feature_dim))]
        for start in range(0, len(items), batch_size):
            batch = stack_resized(items[start : start + batch_size], self.config.input_size)
            out.append(module(batch).numpy())
        features = np.concatenate(out)
        return features[:, : self.config.feature_dim] if learned_only else features

    def seen(self, images: Images) -> np.ndarray:
        """Boolean per image: was this exact image (pixels and shape) used to train the extractor?"""
        return np.array(
            [fingerprint(image) in self.training_fingerprints for image in as_image_list(images)],
            bool,
        )

    def torchmetrics_module(self) -> FeatureModule:
        """For ``FrechetInceptionDistance(feature=...)`` / ``KernelInceptionDistance(feature=...)``."""
        return FeatureModule(self._network).eval()

    def reconstruct(self, images: Images) -> np.ndarray:
        """Decoder output (n, s, s) uint8 at ``input_size``: to eyeball what the features keep."""
        x = stack_resized(as_image_list(images), self.config.input_size)
        with torch.no_grad():
            y = self._network.decode(self._network.encode(x))
        return np.rint(y[:, 0].numpy() * 255).astype(np.uint8)

    # ------------------------------------------------------------------------- storage
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the extractor into ``folder`` (which must not exist or be empty); atomic rename."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ExtractorError(
                f"{folder} exists and is not empty: a saved extractor is never overwritten"
            )
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-extractor-", dir=folder.parent))
        try:
            (tmp / WEIGHTS).write_bytes(self._weights)
            marker = {**self.describe(), "libraries": _library_versions()}
            (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
            if folder.exists():
                folder.rmdir()
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> FeatureExtractor:
        """Load a saved extractor; checks kind, format and the SHA-256 of the weights."""
        from safetensors.torch import load as load_tensors

        folder = Path(folder)
        try:
            marker = json.loads((folder / MARKER).read_text())
        except FileNotFoundError:
            raise ExtractorError(f"{folder}: no {MARKER}; not a saved feature extractor") from None
        except (OSError, ValueError) as exc:
            raise ExtractorError(f"{folder / MARKER}: unreadable: {exc}") from None
        if not isinstance(marker, dict) or marker.get("kind") != KIND:
            raise ExtractorError(f"{folder}: not a {KIND} folder")
        if marker.get("format") != FORMAT or marker.get("architecture") != ARCHITECTURE:
            raise ExtractorError(
                f"{folder}: format {marker.get('format')} / architecture {marker.get('architecture')} "
                f"is not the supported {FORMAT} / {ARCHITECTURE}"
            )
        try:
            data = (folder / WEIGHTS).read_bytes()
        except FileNotFoundError:
            raise ExtractorError(f"{folder}: missing {WEIGHTS}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != marker.get("weights_sha256"):
            raise ExtractorError(
                f"{folder}: {WEIGHTS} has SHA-256 {digest}, but {MARKER} records "
                f"{marker.get('weights_sha256')}: the weights were changed or corrupted"
            )
        try:
            config = ExtractorConfig(**marker["config"])
            network = _Network(config)
            network.load_state_dict(load_tensors(data), strict=True)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ExtractorError(
                f"{folder}: weights do not match the recorded config: {exc}"
            ) from None
        extractor = cls(
            network,
            version=str(marker["version"]),
            classes=marker.get("classes", []),
            training=marker.get("training", {}),
            training_fingerprints=marker.get("training_fingerprints", []),
        )
        if extractor.sha256 != digest:  # re-serialisation must reproduce the file exactly
            raise ExtractorError(f"{folder}: the weights do not round-trip to the recorded SHA-256")
        return extractor


def fingerprint(image: np.ndarray) -> str:
    """Short SHA-256 of an image's shape and pixels (16 hex digits)."""
    digest = hashlib.sha256(f"{image.shape[0]}x{image.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:16]


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def train_feature_extractor(
    images: Images,
    labels: Sequence[str] | None = None,
    *,
    epochs: int = 30,
    seed: int = 0,
    input_size: int = 64,
    feature_dim: int = 64,
    width: int = 16,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    max_shift: int = 2,
    version: str | None = None,
    negatives: bool = True,
    low_level: bool = True,
) -> FeatureExtractor:
    """Train the extractor on real images (uint8 grey) and their finding labels (or None).

    Deterministic for a given seed, thread count and torch build (bit-identical weights, hence the
    same SHA-256; another thread count changes the order of floating-point sums). The global torch
    RNG is left untouched. With no labels, or a single finding, no classification objective is
    used. ``negatives`` adds the realness objective (real images against noise, blank, blurred and
    scrambled ones made from each batch); ``low_level`` appends the low-level statistics to the
    features. Raises ``ValueError`` for fewer than two images or labels that do not match.
    """
    items = as_image_list(images, "training images")
    _check_inputs(len(items), epochs)
    labels, classes, targets = _targets(labels, len(items))
    config = ExtractorConfig(
        input_size=input_size, width=width, feature_dim=feature_dim, n_classes=len(classes),
        negatives=negatives, low_level=low_level,
    )  # fmt: skip
    x = stack_resized(items, input_size)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed) if negatives else None
        network = _Network(config)
        optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
        network.train()
        step = _Step(network, optimizer, targets, generator)
        history = [_epoch(step, x, rng, batch_size, max_shift) for _epoch_number in range(epochs)]
        network.eval()
        _standardise(network, x)
    training = {
        "n_images": len(items), "epochs": epochs, "seed": seed, "batch_size": batch_size,
        "learning_rate": learning_rate, "max_shift": max_shift,
        "objective": _objective(targets is not None, negatives),
        "label_counts": {c: labels.count(c) for c in classes} if targets is not None else {},
        "loss_per_epoch": history,
    }  # fmt: skip
    return FeatureExtractor(
        network,
        version=version or f"{ARCHITECTURE}@{input_size}px",
        classes=classes,
        training=training,
        training_fingerprints=(fingerprint(image) for image in items),
    )


def _objective(findings: bool, negatives: bool) -> str:
    parts = ["reconstruction"]
    if findings:
        parts.append("finding classification")
    if negatives:
        parts.append("realness against noise, blank, blurred and scrambled images")
    return " + ".join(parts)


def _check_inputs(n_images: int, epochs: int) -> None:
    if n_images < 2:
        raise ValueError(f"training the feature extractor needs at least 2 images, got {n_images}")
    if epochs < 1:
        raise ValueError("epochs must be >= 1")


def _targets(labels: Sequence[str] | None, n_images: int):
    """(labels as str, class names, class index per image); no classes for fewer than two."""
    if labels is None:
        return None, [], None
    labels = [str(label) for label in labels]
    if len(labels) != n_images:
        raise ValueError(f"{len(labels)} labels for {n_images} images")
    classes = sorted(set(labels))
    if len(classes) < 2:
        return labels, [], None
    index = {name: i for i, name in enumerate(classes)}
    return labels, classes, torch.tensor([index[label] for label in labels])


@dataclass
class _Step:
    """One optimisation step on a batch: the losses of every objective, summed."""

    network: _Network
    optimizer: torch.optim.Optimizer
    targets: torch.Tensor | None
    generator: torch.Generator | None

    def __call__(self, batch: torch.Tensor, idx: torch.Tensor) -> float:
        network = self.network
        z = network.encode(batch)
        loss = F.mse_loss(network.decode(z), batch)
        if self.targets is not None:
            loss = loss + 0.1 * F.cross_entropy(network.classifier(z), self.targets[idx])
        if self.generator is not None:
            fake = network.encode(make_negatives(batch, self.generator))
            logits = network.realness(torch.cat([z, fake]))[:, 0]
            truth = torch.cat([torch.ones(len(z)), torch.zeros(len(fake))])
            loss = loss + REALNESS_WEIGHT * F.binary_cross_entropy_with_logits(logits, truth)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def _epoch(step: _Step, x, rng, batch_size: int, max_shift: int) -> float:
    """One pass over the images in a random order; the mean loss per image, rounded."""
    order = torch.from_numpy(rng.permutation(len(x)))
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        total += step(_shift(x[idx], max_shift, rng), idx) * len(idx)
        count += len(idx)
    return round(total / count, 6)


def _standardise(network, x) -> None:
    """Store the mean of the training images' features and the linear map that standardises
    them: each learned feature divided by its spread; the low-level statistics whitened together
    (Ledoit-Wolf shrunk correlation), because what gives a blurred image away is a combination,
    such as the fall of power from one band to the next, that varies little among real images
    while each band alone varies a lot. Each group is then scaled by 1 / sqrt(its width)."""
    with torch.no_grad():
        raw = torch.cat([network.raw_features(x[s : s + 256]) for s in range(0, len(x), 256)])
    raw = raw.double()
    std = raw.std(dim=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    transform = torch.diag(1.0 / std)
    config = network.config
    if config.low_level and len(raw) > 2:
        start = config.output_dim - lowlevel.dimension(config.input_size)
        scaled = ((raw - raw.mean(dim=0)) / std)[:, start:]
        transform[start:, start:] = torch.diag(1.0 / std[start:]) @ _whitening(scaled)
    network.feature_mean.copy_(raw.mean(dim=0))
    network.feature_transform.copy_(transform / _group_scale(config)[None, :])


def _whitening(scaled: torch.Tensor) -> torch.Tensor:
    """Symmetric inverse square root of the Ledoit-Wolf shrunk covariance of ``scaled``."""
    from sklearn.covariance import ledoit_wolf

    covariance, _shrinkage = ledoit_wolf(scaled.numpy(), assume_centered=True)
    values, vectors = np.linalg.eigh(covariance)
    root = (vectors / np.sqrt(np.clip(values, 1e-6, None))) @ vectors.T
    return torch.from_numpy(root)


def _group_scale(config: ExtractorConfig) -> torch.Tensor:
    """sqrt(width of its group) per feature: each group (bottleneck, realness, low-level
    statistics) then weighs the same in a distance, however many features it has; otherwise the
    64 learned features would drown a blurred image's few telling statistics."""
    widths = [config.feature_dim]
    if config.negatives:
        widths.append(1)
    if config.low_level:
        widths.append(lowlevel.dimension(config.input_size))
    return torch.cat([torch.full((w,), float(w) ** 0.5, dtype=torch.float64) for w in widths])


def _shift(batch: torch.Tensor, max_shift: int, rng: np.random.Generator) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (edge-replicated), one shift per batch."""
    if max_shift <= 0:
        return batch
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    s = batch.shape[-1]
    padded = F.pad(batch, (max_shift,) * 4, mode="replicate")
    return padded[..., max_shift + dy : max_shift + dy + s, max_shift + dx : max_shift + dx + s]
