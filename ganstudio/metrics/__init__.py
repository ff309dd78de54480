"""Quality metrics: feature extractors and the scores (FID, KID, IS, precision/recall) computed on their features."""

from ganstudio.metrics.features import (
    EXTRACTORS,
    FeatureError,
    FeatureExtractor,
    make_extractor,
    resolve_kind,
)

__all__ = ["EXTRACTORS", "FeatureError", "FeatureExtractor", "make_extractor", "resolve_kind"]
