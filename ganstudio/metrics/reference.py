"""The real-data side of every metric, computed once per dataset + feature extractor + sample count.

Extracting features from thousands of real images costs far more than any score, and it is the same
every evaluation, so the features and their FID statistics are kept in ``cache_dir()`` as one ``.pt``
per key. A file that cannot be read, or that holds something else than expected, is recomputed and
replaced: a cache never turns into an error. The key is the caller's promise that the data did not
change; put a content fingerprint into ``dataset_id`` where that can happen (an image folder).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import platformdirs
import torch
from torch import Tensor

from ganstudio.fileio import atomic_write
from ganstudio.metrics.scores import feature_stats

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the file layout changes; older files are then recomputed
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def cache_dir() -> Path:
    """``$GANSTUDIO_CACHE/metrics``, else the platform's user cache folder + ``/metrics``."""
    base = os.environ.get("GANSTUDIO_CACHE") or platformdirs.user_cache_dir("ganstudio")
    return Path(base) / "metrics"


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit] or "x"


def reference_key(dataset_id: str, extractor_name: str, n: int) -> str:
    """A file stem naming the cache entry, readable and unique.

    Readable parts are slugs of the inputs (paths and odd characters become ``-``); a short hash of the
    exact inputs keeps ``"a/b"`` and ``"a-b"`` apart.
    """
    digest = hashlib.sha256(f"{dataset_id}\0{extractor_name}\0{n}".encode()).hexdigest()[:12]
    return f"{_slug(dataset_id, 80)}__{_slug(extractor_name, 40)}__n{int(n)}__{digest}"


def load_or_compute(key: str, compute: Callable[[], Tensor]) -> dict[str, Tensor]:
    """The cached reference for ``key``, or ``compute()``'s features plus their statistics, cached.

    Returns ``{"features": (n, D) float32 CPU, "mu": (D,) float64, "sigma": (D, D) float64}``. The
    statistics come from the float64 features before they are stored as float32 (half the disk space;
    PR/DC/KID/nearest neighbours do not need more precision).
    """
    if not _SAFE_KEY.fullmatch(key):
        raise ValueError(f"reference key {key!r} is not a safe file name; build it with reference_key()")
    path = cache_dir() / f"{key}.pt"
    cached = _load(path, key)
    if cached is not None:
        return cached
    reference = _from_features(compute())
    record = {"format": FORMAT, "key": key, **reference}
    try:
        atomic_write(path, lambda f: torch.save(record, f))
    except OSError as err:  # a read-only or full cache costs time next run, not this result
        log.warning("could not cache reference statistics at %s: %s", path, err)
    return reference


def _from_features(features: Tensor) -> dict[str, Tensor]:
    features = torch.as_tensor(features).detach().cpu()
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"reference features must be (n >= 2, D), got shape {tuple(features.shape)}")
    mu, sigma = feature_stats(features)  # validates finiteness too
    return {"features": features.to(torch.float32).contiguous(), "mu": mu, "sigma": sigma}


def _load(path: Path, key: str) -> dict[str, Tensor] | None:
    """The cache file's reference if it is readable and consistent, else None (logged)."""
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file fails in many ways (zip, pickle, EOF); all mean recompute
        log.warning("reference cache %s is unreadable (%s); recomputing", path, err)
        return None
    problem = _problem(record, key)
    if problem:
        log.warning("reference cache %s %s; recomputing", path, problem)
        return None
    return {name: record[name] for name in ("features", "mu", "sigma")}


def _problem(record: object, key: str) -> str | None:
    """Why a loaded record cannot be used, or None when it can."""
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key:
        return "has another format or key"
    features, mu, sigma = (record.get(name) for name in ("features", "mu", "sigma"))
    if not all(isinstance(t, Tensor) for t in (features, mu, sigma)):
        return "lacks a tensor"
    if features.ndim != 2 or features.dtype != torch.float32:
        return f"holds features of shape {tuple(features.shape)} and dtype {features.dtype}"
    d = features.shape[1]
    if mu.shape != (d,) or sigma.shape != (d, d) or mu.dtype != torch.float64 or sigma.dtype != torch.float64:
        return f"holds statistics that do not match {d}-dimensional features"
    if not (torch.isfinite(features).all() and torch.isfinite(mu).all() and torch.isfinite(sigma).all()):
        return "holds NaN or Inf values"
    return None
