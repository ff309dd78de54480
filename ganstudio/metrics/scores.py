"""Quality metrics as pure functions of feature tensors: FID, KID, IS, precision/recall, density/coverage.

Everything here takes ``(N, D)`` features (any float dtype, any device's tensor is moved to the CPU) and
computes in float64 on the CPU. Which network made the features is the caller's business
(``ganstudio.metrics.features``), and so is caching the real-data side (``ganstudio.metrics.reference``).

Why not torchmetrics: its FID, KID and IS are stateful ``Metric`` modules fed with *images*; they have no
public functional form taking features or precomputed ``(mu, sigma)``, so reusing cached real statistics
would mean writing into their private accumulator states. Precision/recall and density/coverage are not
in it at all. The maths is short, so it lives here in torch and ganstudio needs no extra dependency.

Pairwise distances go through ``torch.cdist`` in row chunks of about ``_CHUNK_ELEMENTS`` entries, so a
10k x 10k comparison needs ~128 MB at a time instead of 800 MB; both sets are first centred on a common
mean, which keeps the matmul form of cdist accurate (identical points come out at distance 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

_CHUNK_ELEMENTS = 2**24  # float64 distance entries per chunk: 128 MB
_KID_GRAM_LIMIT = 2**25  # precompute the full KID Gram matrices when they hold at most this many entries

METRIC_KEYS = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
}


# --- helpers ---------------------------------------------------------------------------------------
def _as64(x: Tensor, name: str = "features") -> Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) tensor, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or Inf values")
    return x


def _pair(a: Tensor, b: Tensor, need: int = 1, names: tuple[str, str] = ("real", "fake")) -> tuple[Tensor, Tensor]:
    """Both sets as float64, checked to share a dimension, centred on a common mean (distances unchanged)."""
    a, b = _as64(a, f"{names[0]} features"), _as64(b, f"{names[1]} features")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} features differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    if len(a) < need or len(b) < need:
        raise ValueError(f"need at least {need} samples in each set, got {len(a)} {names[0]} "
                         f"and {len(b)} {names[1]}")
    centre = torch.cat([a, b]).mean(0)
    return a - centre, b - centre


def _chunks(queries: Tensor, pool_size: int) -> Iterator[tuple[int, Tensor]]:
    """Row blocks of ``queries`` whose distance matrix to a pool of ``pool_size`` stays within the budget."""
    step = max(1, _CHUNK_ELEMENTS // max(pool_size, 1))
    for start in range(0, len(queries), step):
        yield start, queries[start:start + step]


def _kth_neighbour_distance(x: Tensor, k: int) -> Tensor:
    """Distance from each point of ``x`` to its k-th nearest *other* point of ``x`` (the k-NN radius)."""
    if len(x) <= k:
        raise ValueError(f"k = {k} nearest neighbours need more than {k} samples, got {len(x)}")
    radii = torch.empty(len(x), dtype=torch.float64)
    for start, block in _chunks(x, len(x)):
        # k + 1 smallest: the point itself (distance 0) comes first
        radii[start:start + len(block)] = torch.cdist(block, x).topk(k + 1, largest=False).values[:, -1]
    return radii


def _within_any_ball(queries: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """Boolean (Q,): does each query fall inside at least one ball (centre_i, radius_i)?"""
    inside = torch.empty(len(queries), dtype=torch.bool)
    for start, block in _chunks(queries, len(centres)):
        inside[start:start + len(block)] = (torch.cdist(block, centres) <= radii).any(1)
    return inside


# --- FID -------------------------------------------------------------------------------------------
def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)``, both float64."""
    x = _as64(features)
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(x)}")
    mu = x.mean(0)
    xc = x - mu
    return mu, (xc.T @ xc) / (len(x) - 1)


def _sqrt_psd(s: Tensor) -> Tensor:
    """Symmetric square root of a PSD matrix; eigenvalues a hair below 0 (round-off) are taken as 0."""
    vals, vecs = torch.linalg.eigh((s + s.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def fid_from_stats(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance ``||mu1 - mu2||² + Tr(s1 + s2 - 2 (s1 s2)^½)`` between two Gaussians.

    ``Tr (s1 s2)^½`` equals ``Tr (√s1 s2 √s1)^½``, and that matrix is symmetric PSD, so its eigenvalues
    come from ``eigh`` (no scipy, no complex parts from ``sqrtm`` on a nearly singular product).
    """
    mu1, mu2 = (torch.as_tensor(m).to("cpu", torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s).to("cpu", torch.float64) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
                         f"sigma {tuple(s1.shape)}, {tuple(s2.shape)}")
    root1 = _sqrt_psd(s1)
    product = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_covmean
    if not torch.isfinite(value):
        raise ValueError("FID is not finite: the statistics contain NaN or Inf")
    return max(float(value), 0.0)  # FID >= 0; a tiny negative is round-off


def fid(real: Tensor, fake: Tensor) -> float:
    """FID between two feature sets."""
    return fid_from_stats(*feature_stats(real), *feature_stats(fake))


# --- KID -------------------------------------------------------------------------------------------
def _poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    """The KID kernel ``(x·y / d + 1)³`` (Bińkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def _mmd2_unbiased(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> float:
    m = kxx.shape[0]
    off_diag = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(off_diag - 2 * kxy.mean())


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with the cubic kernel; (mean, std) over random subsets.

    ``subset_size`` is capped at the smaller set; subsets are drawn without replacement from a generator
    seeded with ``seed``, so the global RNG is untouched. The std is the population std over subsets.
    """
    x, y = _pair(real, fake, need=2)
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    gen = torch.Generator().manual_seed(seed)
    full = len(x) ** 2 + len(y) ** 2 + len(x) * len(y)
    # Kernel matrices of the whole sets cost one pass; per-subset ones cost `subsets` passes of m².
    grams = None
    if full <= _KID_GRAM_LIMIT and full < 3 * subsets * m * m:
        grams = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    scores = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        ix = torch.randperm(len(x), generator=gen)[:m]
        iy = torch.randperm(len(y), generator=gen)[:m]
        if grams is not None:
            kxx, kyy, kxy = grams[0][ix][:, ix], grams[1][iy][:, iy], grams[2][ix][:, iy]
        else:
            xs, ys = x[ix], y[iy]
            kxx, kyy, kxy = _poly_kernel(xs, xs), _poly_kernel(ys, ys), _poly_kernel(xs, ys)
        scores[i] = _mmd2_unbiased(kxx, kyy, kxy)
    return float(scores.mean()), float(scores.std(correction=0))


# --- IS --------------------------------------------------------------------------------------------
def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``; (mean, population std) over ``splits`` parts.

    ``probs`` are class probabilities ``(N, K)`` (rows summing to 1), not logits.
    """
    p = _as64(probs, "class probabilities")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=torch.float64), atol=1e-3):
        raise ValueError("class probabilities must be non-negative rows summing to 1 (apply softmax first)")
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits must be between 1 and the number of samples ({len(p)}), got {splits}")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(1).mean()  # 0·log 0 = 0
        scores.append(math.exp(float(kl)))
    s = torch.tensor(scores, dtype=torch.float64)
    return float(s.mean()), float(s.std(correction=0))


# --- k-NN manifold metrics -------------------------------------------------------------------------
def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls reaching each point's k-th nearest neighbour. Precision:
    the share of fakes inside the real manifold; recall: the share of reals inside the fake manifold.
    """
    x, y = _pair(real, fake)
    precision = _within_any_ball(y, x, _kth_neighbour_distance(x, k)).double().mean()
    recall = _within_any_ball(x, y, _kth_neighbour_distance(y, k)).double().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), both built on the real k-NN balls only.

    Density: real balls containing each fake, averaged and divided by k (≈ 1 when the distributions
    match, can exceed 1). Coverage: the share of real points whose ball contains at least one fake.
    """
    x, y = _pair(real, fake)
    radii = _kth_neighbour_distance(x, k)
    hits = torch.zeros((), dtype=torch.float64)
    nearest_fake = torch.full((len(x),), math.inf, dtype=torch.float64)
    for _, block in _chunks(y, len(x)):
        d = torch.cdist(block, x)
        hits += (d <= radii).sum()
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    density = hits / (k * len(y))
    coverage = (nearest_fake <= radii).double().mean()
    return float(density), float(coverage)


def nearest_neighbours(queries: Tensor, pool: Tensor, k: int = 1) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest ``pool`` points to each query: (distances, indices), both ``(Q, k)``, nearest first.

    Used by the memorisation check: generated samples whose nearest training image is (almost) at
    distance 0 are copies.
    """
    q, p = _pair(queries, pool, names=("query", "pool"))
    if not 1 <= k <= len(p):
        raise ValueError(f"k must be between 1 and the pool size ({len(p)}), got {k}")
    dists = torch.empty(len(q), k, dtype=torch.float64)
    index = torch.empty(len(q), k, dtype=torch.long)
    for start, block in _chunks(q, len(p)):
        top = torch.cdist(block, p).topk(k, largest=False)
        dists[start:start + len(block)], index[start:start + len(block)] = top.values, top.indices
    return dists, index


def diversity(features: Tensor) -> float:
    """Mean distance between distinct pairs of a batch; a collapse towards 0 signals mode collapse."""
    x = _as64(features)
    if len(x) < 2:
        raise ValueError(f"diversity needs at least 2 samples, got {len(x)}")
    x = x - x.mean(0)
    total = sum(float(torch.cdist(block, x).sum()) for _, block in _chunks(x, len(x)))
    return total / (len(x) * (len(x) - 1))  # the zero diagonal adds nothing


# --- all at once -----------------------------------------------------------------------------------
def compute_metrics(real_features: Tensor | None, fake_features: Tensor, fake_probs: Tensor | None,
                    metrics: Sequence[str], *,
                    real_stats: tuple[Tensor, Tensor] | None = None) -> dict[str, float]:
    """The metrics named (``catalog.METRIC_CHOICES``) as a flat dict of floats, e.g. ``{"fid": …, "kid_std": …}``.

    ``"is"`` needs ``fake_probs`` and is left out (no key) when they are None. ``real_stats = (mu,
    sigma)`` reuses cached real statistics for FID; ``real_features`` may then be None if FID is the
    only metric asked for.
    """
    unknown = [m for m in metrics if m not in METRIC_KEYS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_KEYS)}")
    needs_real = [m for m in metrics if m not in ("is", "fid") or (m == "fid" and real_stats is None)]
    if needs_real and real_features is None:
        raise ValueError(f"metric(s) {needs_real} need real features, got None")
    out: dict[str, float] = {}
    if "fid" in metrics:
        mu, sigma = real_stats if real_stats is not None else feature_stats(real_features)
        out["fid"] = fid_from_stats(mu, sigma, *feature_stats(fake_features))
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kid(real_features, fake_features)
    if "is" in metrics and fake_probs is not None:
        out["is"], out["is_std"] = inception_score(fake_probs, splits=min(10, len(fake_probs)))
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real_features, fake_features)
    if "dc" in metrics:
        out["density"], out["coverage"] = density_coverage(real_features, fake_features)
    return out


_OUTPUT_TO_METRIC = {key: name for name, keys in METRIC_KEYS.items() for key in keys}
_MIN_SAMPLES = {"kid": 1000, "is": 1000, "pr": 1000, "dc": 1000}  # fid: max(2000, dim), see below


def small_sample_warning(metric: str, n: int, dim: int) -> str | None:
    """A sentence for the log when ``n`` samples are too few for ``metric`` to be compared; else None.

    ``metric`` is a config name (``"fid"``, ``"pr"``, …) or an output key (``"precision"``, …).
    """
    name = metric if metric in METRIC_KEYS else _OUTPUT_TO_METRIC.get(metric)
    if name is None:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRIC_KEYS)}")
    if name == "fid":
        # Below dim samples the covariance is singular; below ~2000 FID's upward bias dominates.
        need = max(2000, dim)
        if n < need:
            return (f"FID@{n} is biased upwards at this sample count; "
                    f"use ≥ {need} samples for figures you compare")
        return None
    if n >= _MIN_SAMPLES[name]:
        return None
    need = _MIN_SAMPLES[name]
    return {
        "kid": f"KID@{n} is unbiased but noisy at this sample count (see kid_std); "
               f"use ≥ {need} samples for figures you compare",
        "is": f"IS@{n} is biased downwards with only {max(n // 10, 1)} samples a split; "
              f"use ≥ {need} samples for figures you compare",
        "pr": f"precision/recall@{n}: k-NN manifolds from so few samples are coarse; "
              f"use ≥ {need} samples for figures you compare",
        "dc": f"density/coverage@{n}: k-NN balls from so few samples are coarse; "
              f"use ≥ {need} samples for figures you compare",
    }[name]
