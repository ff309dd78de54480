"""Evaluating a generator against the real data: the Evaluator the engine and the CLI share.

It owns a feature extractor (chosen by ``eval.extractor``) and the real data's reference features,
cached per dataset + extractor + sample count, and turns generated images into FID, KID, IS,
precision/recall and density/coverage, each reported with its sample count and a warning when that
count is too small for the figure to mean much.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ganstudio.config import DataConfig, EvalConfig
from ganstudio.metrics.features import make_extractor
from ganstudio.metrics.reference import load_or_compute, reference_key
from ganstudio.metrics.scores import compute_metrics, diversity, nearest_neighbours, small_sample_warning

NAMES = {"fid": "FID", "kid": "KID", "is": "IS", "pr": "precision/recall", "dc": "density/coverage"}


@dataclass(frozen=True)
class EvalReport:
    metrics: dict[str, float]  # "fid", "kid", "kid_std", "is", "is_std", "precision", "recall", ...
    num_samples: int
    extractor: str
    seconds: float
    diversity_ratio: float  # spread of the generated features over that of as many real ones (1 = as varied)
    class_share: float | None  # share of the classes the generated images fall into (classifier only)
    warnings: list[str] = field(default_factory=list)

    def row(self) -> dict:
        """The metrics.jsonl fields: the figures plus the sample count they were measured at."""
        return {**self.metrics, "eval_samples": self.num_samples}


def dataset_id(data: DataConfig) -> str:
    """Names the real data a reference was computed on (source, files, size, channels, limit)."""
    where = str(data.path or data.import_from or "")
    digest = hashlib.blake2b(where.encode(), digest_size=4).hexdigest()
    source = data.source.replace(":", "-")
    return f"{source}-{digest}-{data.image_size}px-{data.channels}ch-{data.max_images or 'all'}"


class Evaluator:
    def __init__(self, data: DataConfig, config: EvalConfig, device: torch.device | str = "cpu") -> None:
        self.data, self.config, self.device = data, config, torch.device(device)
        self.extractor = make_extractor(config.extractor, channels=data.channels, image_size=data.image_size,
                                        device=self.device, inception_weights=config.inception_weights)
        self._reference: dict | None = None
        self._real_images: torch.Tensor | None = None

    # --- the real side ----------------------------------------------------------------------------------
    def real_images(self) -> torch.Tensor:
        """uint8 (N, C, H, W): the first ``eval.num_samples`` images of the training data."""
        if self._real_images is None:
            from ganstudio.data import load_images

            self._real_images = load_images(self.data, limit=self.config.num_samples).images
        return self._real_images

    def reference(self) -> dict:
        """{"features", "mu", "sigma"} of the real images, from the cache when it has them."""
        if self._reference is None:
            key = reference_key(dataset_id(self.data), self.extractor.name, self.config.num_samples)
            self._reference = load_or_compute(key, lambda: self.extractor.features(self.real_images()))
        return self._reference

    # --- the generated side -----------------------------------------------------------------------------
    def evaluate(self, fake: torch.Tensor) -> EvalReport:
        """Scores for generated uint8 images (N, C, H, W) against the reference."""
        start = time.perf_counter()
        reference = self.reference()
        wanted = self.config.metrics
        if self.extractor.num_classes:  # one pass through the network for both
            fake_features, probs = self.extractor.features_and_probabilities(fake)
        else:
            fake_features, probs = self.extractor.features(fake), None
        real_features = reference["features"].double()
        metrics = compute_metrics(real_features, fake_features, probs, wanted,
                                  real_stats=(reference["mu"], reference["sigma"]))
        warnings = [w for m in wanted if (w := small_sample_warning(m, len(fake), self.extractor.dim))]
        if "is" in wanted and probs is None:
            warnings.append(f"IS needs class probabilities; the {self.extractor.name} features have none")
        return EvalReport(metrics, len(fake), self.extractor.name, time.perf_counter() - start,
                          _diversity_ratio(real_features, fake_features), _class_share(probs), warnings)

    def neighbours(self, fake: torch.Tensor, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
        """(distances, indices) of each generated image's k nearest real images in feature space."""
        return nearest_neighbours(self.extractor.features(fake), self.reference()["features"].double(), k=k)


def _diversity_ratio(real: torch.Tensor, fake: torch.Tensor, n: int = 1000) -> float:
    """Mean pairwise feature distance of (up to n) generated images over that of as many real ones."""
    n = min(n, len(real), len(fake))
    spread = diversity(real[:n])
    return diversity(fake[:n]) / spread if spread > 0 else float("nan")


def _class_share(probs: torch.Tensor | None) -> float | None:
    """Share of classes that get at least a tenth of their fair share of the generated images."""
    if probs is None:
        return None
    k = probs.shape[1]
    counts = torch.bincount(probs.argmax(1), minlength=k).double()
    return float((counts >= 0.1 * len(probs) / k).double().mean())


def neighbour_sheet(fake: torch.Tensor, real: torch.Tensor, indices: torch.Tensor, gap: int = 6) -> np.ndarray:
    """One row per generated image: it, a gap, then its nearest real images; uint8 (H, W, C)."""
    rows, (c, h, _) = [], fake.shape[1:]
    for image, nearest in zip(fake, indices):
        tiles = [image, torch.zeros(c, h, gap, dtype=torch.uint8), *real[nearest]]
        rows.append(torch.cat(tiles, dim=2))
    sheet = torch.cat([torch.cat([r, torch.zeros(c, 2, r.shape[2], dtype=torch.uint8)], 1) for r in rows], 1)
    return np.ascontiguousarray(sheet.permute(1, 2, 0).numpy())
