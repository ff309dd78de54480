"""Feature extractors for the quality metrics: uint8 images in, float64 features (and class probabilities) out.

Three kinds, picked by :func:`make_extractor` (``eval.extractor`` in the config):

- ``classifier``: a small CNN trained on Fashion-MNIST and shipped in ``resources/feature_net/``
  (``scripts/train_feature_net.py`` makes it). Features are its 128-d penultimate layer, probabilities its
  softmax. The default for 1-channel 28 or 32 px data: it runs in milliseconds on a CPU and knows what
  clothes look like, where Inception-v3 would see blurry gray thumbnails upscaled to 299 px.
- ``inception``: the Inception-v3 of pytorch-fid / torch-fidelity (pool3 2048-d features, 1008-class
  logits for IS), so FID on RGB data is comparable with published numbers. See :mod:`.inception`.
- ``random``: a fixed-seed random projection. It has no notion of image content: use it only to compare
  runs with each other on the same data, never against numbers computed with another extractor.

``name`` is the cache key of an extractor's reference statistics: two extractors with the same name give
the same features for the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganstudio.catalog import EXTRACTOR_CHOICES
from ganstudio.data.decode import resize_crop, to_channels
from ganstudio.metrics.errors import FeatureError
from ganstudio.resources import resource

__all__ = ["EXTRACTORS", "ClassifierExtractor", "FashionCNN", "FeatureError", "FeatureExtractor",
           "InceptionExtractor", "RandomExtractor", "make_extractor", "resolve_kind"]

CLASSIFIER_FILE = ("feature_net", "fashion_cnn.pt")
CLASSIFIER_SIZE = 28


# --- the bundled classifier ------------------------------------------------------------------------
class FashionCNN(nn.Module):
    """conv32-pool-conv64-pool-fc128-fc10 with batch norm; inputs 1x28x28 in [-1, 1]."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, self.feature_dim, bias=False), nn.BatchNorm1d(self.feature_dim),
            nn.ReLU(inplace=True),  # the features: 128
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)


# --- the interface ---------------------------------------------------------------------------------
class FeatureExtractor:
    """uint8 images (N, C, H, W) on the CPU -> float64 features (N, dim) and, where the network has
    classes, softmax probabilities (N, num_classes), both on the CPU. Subclasses implement ``_batch``."""

    name: str  # cache key for reference statistics
    dim: int
    num_classes: int | None = None
    device: torch.device = torch.device("cpu")

    def features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        return self.features_and_probabilities(images, batch_size)[0]

    def probabilities(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor | None:
        if self.num_classes is None:
            return None
        return self.features_and_probabilities(images, batch_size)[1]

    def features_and_probabilities(
        self, images: torch.Tensor, batch_size: int = 500,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Both in one pass over the network; batches of ``batch_size`` bound the memory used."""
        _check_images(images, self.name)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        features = torch.empty((len(images), self.dim), dtype=torch.float64)
        probs = None if self.num_classes is None else torch.empty((len(images), self.num_classes),
                                                                  dtype=torch.float64)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                stop = min(start + batch_size, len(images))
                batch_features, logits = self._batch(images[start:stop])
                features[start:stop] = batch_features.to("cpu", torch.float64)
                if probs is not None:
                    probs[start:stop] = logits.to("cpu", torch.float64).softmax(dim=1)
        return features, probs

    def _batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch of uint8 images -> (features, logits or None), on any device, any float dtype."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device})"


def _check_images(images: torch.Tensor, name: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        what = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"feature extractor {name!r} takes uint8 images (N, C, H, W), got {what}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"feature extractor {name!r} takes 1 or 3 channels, got {images.shape[1]}")


# --- the three kinds -------------------------------------------------------------------------------
class ClassifierExtractor(FeatureExtractor):
    """The bundled Fashion-MNIST CNN: 128-d penultimate features and 10-class probabilities.

    Other sizes are resized (antialiased, as the data pipeline does) and centre-cropped to 28 px, RGB is
    turned to gray; both keep the features meaningful only for images that look like Fashion-MNIST."""

    def __init__(self, device: torch.device | str = "cpu", weights: Path | None = None) -> None:
        weights = Path(weights) if weights is not None else resource(*CLASSIFIER_FILE)
        try:
            saved = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FeatureError(f"the bundled feature network {weights} is missing; reinstall ganstudio or "
                               "make it with scripts/train_feature_net.py") from None
        meta = saved["meta"]
        self.model = FashionCNN(num_classes=meta["num_classes"])
        self.model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                    for k, v in saved["state_dict"].items()})
        self.device = torch.device(device)
        self.model.eval().requires_grad_(False).to(self.device)
        self.meta = meta  # test accuracy, epochs, seed, class names: see resources/feature_net/README.txt
        self.name, self.dim, self.num_classes = meta["version"], meta["feature_dim"], meta["num_classes"]

    def _batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = resize_crop(to_channels(images, 1), CLASSIFIER_SIZE)
        x = images.to(self.device).float().div_(127.5).sub_(1.0)  # the generators' range, [-1, 1]
        return self.model.features_and_logits(x)


class InceptionExtractor(FeatureExtractor):
    """pytorch-fid's Inception-v3: pool3 (2048-d) features and 1008-class probabilities (for IS)."""

    name, dim = "inception-fid", 2048

    def __init__(self, weights: Path, device: torch.device | str = "cpu") -> None:
        # imports torchvision (~1 s): only when Inception is chosen
        from ganstudio.metrics.inception import NUM_CLASSES, load_fid_inception, preprocess

        self.device = torch.device(device)
        self.model = load_fid_inception(weights, self.device)
        self.num_classes = NUM_CLASSES
        self._preprocess = preprocess

    def _batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # resize on the device: 299 x 299 floats are 27x the bytes of a 32 px uint8 image
        pool3 = self.model.pool3(self._preprocess(images.to(self.device)))
        return pool3, self.model.unbiased_logits(pool3)


class RandomExtractor(FeatureExtractor):
    """A fixed random Gaussian projection of the image, downsampled to at most 16 x 16, to 256 numbers.

    It knows nothing of what images show: scores computed with it rank runs on the same data against
    each other and are not comparable with anything else. Deterministic from ``seed`` (float64, CPU)."""

    def __init__(self, shape: tuple[int, int, int], *, dim: int = 256, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        channels, height, width = shape
        if height != width:
            raise FeatureError(f"the random extractor needs square images, got {height} x {width}")
        self.shape, self.side = tuple(shape), min(height, 16)
        inputs = channels * self.side * self.side
        generator = torch.Generator().manual_seed(seed)
        # scaled so that a feature's variance is about the pixels' mean square, whatever the size
        self.projection = torch.randn(inputs, dim, generator=generator, dtype=torch.float64) / inputs ** 0.5
        self.device = torch.device(device)
        self.name, self.dim = f"random-proj-v1-s{seed}-{channels}x{height}x{width}", dim

    def _batch(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        if tuple(images.shape[1:]) != self.shape:
            raise ValueError(f"extractor {self.name!r} was made for images {self.shape}, "
                             f"got {tuple(images.shape[1:])}")
        small = resize_crop(images.cpu(), self.side).flatten(1).double().div_(127.5).sub_(1.0)
        return small @ self.projection, None


# --- choosing one ----------------------------------------------------------------------------------
def _classifier(shape: tuple[int, int, int], device, inception_weights: Path | None) -> FeatureExtractor:
    return ClassifierExtractor(device)


def _inception(shape: tuple[int, int, int], device, inception_weights: Path | None) -> FeatureExtractor:
    from ganstudio.metrics.inception import find_weights  # imports torchvision (~1 s)

    return InceptionExtractor(find_weights(inception_weights), device)


def _random(shape: tuple[int, int, int], device, inception_weights: Path | None) -> FeatureExtractor:
    return RandomExtractor(shape, device=device)


# catalog.EXTRACTOR_CHOICES but "auto", which resolve_kind turns into one of these
EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {
    "classifier": _classifier, "inception": _inception, "random": _random}


def resolve_kind(kind: str, channels: int, image_size: int) -> str:
    """``auto`` -> the kind it stands for: classifier for gray 28/32 px, inception for RGB, else random."""
    if kind not in EXTRACTOR_CHOICES:
        raise FeatureError(f"eval.extractor = {kind!r} is not one of {', '.join(EXTRACTOR_CHOICES)}")
    if kind != "auto":
        return kind
    if channels == 1 and image_size in (28, 32):
        return "classifier"
    return "inception" if channels == 3 else "random"


def make_extractor(
    kind: str, *, channels: int, image_size: int, device: torch.device | str = "cpu",
    inception_weights: Path | None = None,
) -> FeatureExtractor:
    """The extractor for ``eval.extractor`` = ``kind`` and images of ``channels`` x ``image_size``².

    ``inception`` looks for its weights in ``inception_weights``, then the torch hub cache, then
    downloads them; offline and without the file it raises FeatureError saying what to download."""
    build = EXTRACTORS[resolve_kind(kind, channels, image_size)]
    return build((channels, image_size, image_size), device, inception_weights)
