"""The metric maths against closed forms and constructed cases; small sizes, fixed seeds."""

from __future__ import annotations

import math

import pytest
import torch

from ganstudio.catalog import METRIC_CHOICES
from ganstudio.metrics import scores
from ganstudio.metrics.scores import (
    compute_metrics,
    density_coverage,
    diversity,
    feature_stats,
    fid,
    fid_from_stats,
    inception_score,
    kid,
    nearest_neighbours,
    precision_recall,
    small_sample_warning,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """These matrices are tiny: on a busy 2-core machine, 2 OpenMP threads make them ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gaussian(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


# --- FID -------------------------------------------------------------------------------------------
def test_feature_stats_match_torch_cov():
    x = gaussian(200, 5, 0)
    mu, sigma = feature_stats(x.float())
    assert mu.dtype == sigma.dtype == torch.float64
    torch.testing.assert_close(mu, x.mean(0))
    torch.testing.assert_close(sigma, torch.cov(x.T))


def test_fid_of_a_set_against_itself_is_zero():
    x = gaussian(500, 16, 1, scale=10.0)
    assert fid(x, x) < 1e-6 * 100  # scale² = 100


def test_fid_from_true_parameters_matches_the_diagonal_closed_form():
    g = torch.Generator().manual_seed(2)
    mu1, mu2 = torch.randn(2, 8, generator=g, dtype=torch.float64)
    v1, v2 = torch.rand(2, 8, generator=g, dtype=torch.float64) + 0.1  # variances
    expected = float((mu1 - mu2).square().sum() + (v1 + v2 - 2 * (v1 * v2).sqrt()).sum())
    assert fid_from_stats(mu1, torch.diag(v1), mu2, torch.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_fid_from_stats_handles_full_rotated_covariances():
    # the same diagonal covariances seen in a rotated basis: FID is rotation invariant
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    v1, v2 = torch.linspace(0.5, 3, 6, dtype=torch.float64), torch.linspace(2, 0.1, 6, dtype=torch.float64)
    mu1, mu2 = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    expected = fid_from_stats(mu1, torch.diag(v1), mu2, torch.diag(v2))
    rotated = fid_from_stats(q @ mu1, q @ torch.diag(v1) @ q.T, q @ mu2, q @ torch.diag(v2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_from_samples_approaches_the_closed_form():
    std1, std2 = torch.tensor([1.0, 2.0, 0.5, 1.5]), torch.tensor([1.5, 1.0, 0.5, 2.0])
    shift = torch.tensor([1.0, -1.0, 0.0, 2.0])
    a = gaussian(200_000, 4, 4) * std1
    b = gaussian(200_000, 4, 5) * std2 + shift
    expected = float(shift.square().sum() + (std1 - std2).square().sum())
    assert fid(a, b) == pytest.approx(expected, rel=1e-2)


def test_fid_of_singular_covariances_is_finite_and_non_negative():
    x = gaussian(10, 32, 6)  # fewer samples than dimensions: rank-deficient covariance
    value = fid(x, gaussian(10, 32, 7))
    assert math.isfinite(value) and value >= 0


# --- KID -------------------------------------------------------------------------------------------
def test_kid_is_near_zero_for_one_distribution_and_clearly_positive_for_a_shifted_one():
    a, b = gaussian(600, 16, 10), gaussian(600, 16, 11)
    same_mean, same_std = kid(a, b, subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    shifted_mean, shifted_std = kid(a, gaussian(600, 16, 12, shift=1.0), subsets=20, subset_size=200)
    assert shifted_mean > 10 * max(shifted_std, abs(same_mean))


def test_kid_is_seeded_and_leaves_the_global_rng_alone():
    a, b = gaussian(300, 8, 13), gaussian(300, 8, 14, shift=0.3)
    state = torch.random.get_rng_state()
    assert kid(a, b, subsets=5, subset_size=100, seed=3) == kid(a, b, subsets=5, subset_size=100, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())


def test_kid_full_gram_path_agrees_with_per_subset_path(monkeypatch):
    a, b = gaussian(150, 8, 15), gaussian(120, 8, 16, shift=0.5)
    fast = kid(a, b, subsets=30, subset_size=100)
    monkeypatch.setattr(scores, "_KID_GRAM_LIMIT", 0)
    slow = kid(a, b, subsets=30, subset_size=100)
    assert fast == pytest.approx(slow, rel=1e-10)


def test_kid_caps_the_subset_size_at_the_smaller_set():
    mean, std = kid(gaussian(50, 4, 17), gaussian(80, 4, 18), subsets=3, subset_size=1000)
    assert math.isfinite(mean) and math.isfinite(std)


# --- IS --------------------------------------------------------------------------------------------
def test_inception_score_is_one_for_identical_predictions():
    probs = torch.tensor([[0.2, 0.3, 0.5]]).repeat(100, 1)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_is_k_for_confident_predictions_spread_over_k_classes():
    k = 7
    probs = torch.eye(k)[torch.arange(k * 10 * 3) % k]  # each of the 10 splits holds every class equally
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        inception_score(torch.randn(20, 5), splits=2)


# --- precision / recall, density / coverage --------------------------------------------------------
def test_a_subset_of_the_real_points_has_precision_one():
    real = gaussian(400, 8, 20)
    precision, _ = precision_recall(real, real[:100], k=3)
    assert precision == 1.0


def test_a_far_away_set_has_precision_and_recall_zero():
    precision, recall = precision_recall(gaussian(300, 8, 21), gaussian(300, 8, 22, shift=100.0))
    assert precision == 0.0 and recall == 0.0


def test_same_distribution_has_high_precision_and_recall():
    precision, recall = precision_recall(gaussian(500, 4, 23), gaussian(500, 4, 24))
    assert precision > 0.8 and recall > 0.8


def test_collapsed_fakes_keep_precision_but_lose_recall():
    real = gaussian(500, 4, 25)
    collapsed = real[:5].repeat(100, 1) + 1e-3 * gaussian(500, 4, 26)
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.2


def test_chunked_distances_match_one_block(monkeypatch):
    real, fake = gaussian(200, 6, 27), gaussian(150, 6, 28, shift=0.3)
    whole = precision_recall(real, fake), density_coverage(real, fake)
    monkeypatch.setattr(scores, "_CHUNK_ELEMENTS", 512)  # a couple of rows per chunk
    assert (precision_recall(real, fake), density_coverage(real, fake)) == whole


def test_a_copy_of_the_real_set_has_coverage_one_and_density_about_one():
    real = gaussian(500, 8, 29)
    density, coverage = density_coverage(real, real.clone())
    assert coverage == 1.0 and 0.7 < density < 1.3


def test_a_far_away_set_has_density_and_coverage_zero():
    assert density_coverage(gaussian(200, 8, 30), gaussian(200, 8, 31, shift=100.0)) == (0.0, 0.0)


# --- nearest neighbours, diversity -----------------------------------------------------------------
def test_nearest_neighbours_find_planted_duplicates():
    pool = gaussian(1000, 16, 32)
    planted = torch.tensor([3, 500, 999])
    queries = torch.cat([gaussian(5, 16, 33, shift=5.0), pool[planted]])
    dists, index = nearest_neighbours(queries, pool, k=2)
    assert dists.shape == index.shape == (8, 2)
    assert torch.equal(index[5:, 0], planted)
    assert (dists[5:, 0] < 1e-6).all() and (dists[:5, 0] > 1.0).all()
    assert (dists[:, 0] <= dists[:, 1]).all()


def test_diversity_of_identical_points_is_zero_and_grows_with_spread():
    x = torch.full((50, 10), 3.7)
    assert diversity(x) == pytest.approx(0.0, abs=1e-9)
    assert diversity(gaussian(50, 10, 34, scale=2.0)) == pytest.approx(2 * diversity(gaussian(50, 10, 34)))


def test_diversity_of_two_points_is_their_distance():
    assert diversity(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


# --- compute_metrics, warnings ---------------------------------------------------------------------
@pytest.mark.parametrize("asked, keys", [
    (["fid"], {"fid"}),
    (["kid", "is"], {"kid", "kid_std", "is", "is_std"}),
    (["pr", "dc"], {"precision", "recall", "density", "coverage"}),
    (list(METRIC_CHOICES), {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density", "coverage"}),
])
def test_compute_metrics_returns_exactly_the_keys_asked(asked, keys):
    real, fake = gaussian(120, 6, 40), gaussian(100, 6, 41, shift=0.2)
    probs = torch.softmax(gaussian(100, 4, 42), 1)
    out = compute_metrics(real, fake, probs, asked)
    assert set(out) == keys and all(isinstance(v, float) for v in out.values())


def test_compute_metrics_skips_is_without_probabilities_and_reuses_real_stats():
    real, fake = gaussian(120, 6, 43), gaussian(100, 6, 44)
    out = compute_metrics(None, fake, None, ["fid", "is"], real_stats=feature_stats(real))
    assert set(out) == {"fid"}
    assert out["fid"] == pytest.approx(fid(real, fake), rel=1e-12)


def test_compute_metrics_names_what_is_wrong():
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(gaussian(10, 2, 0), gaussian(10, 2, 1), None, ["fidd"])
    with pytest.raises(ValueError, match="need real features"):
        compute_metrics(None, gaussian(10, 2, 1), None, ["pr"])
    with pytest.raises(ValueError, match="differ in dimension"):
        compute_metrics(gaussian(10, 2, 0), gaussian(10, 3, 1), None, ["pr"])


@pytest.mark.parametrize("metric", [*METRIC_CHOICES, "precision", "kid_std"])
def test_small_sample_warning_fires_for_few_samples_only(metric):
    assert small_sample_warning(metric, 100, 64)
    assert small_sample_warning(metric, 10_000, 64) is None


def test_fid_warning_asks_for_at_least_the_feature_dimension():
    message = small_sample_warning("fid", 2500, 4096)
    assert message and "FID@2500" in message and "4096" in message
    assert small_sample_warning("fid", 500, 64).startswith("FID@500 is biased upwards")


def test_every_catalog_metric_is_computed_and_every_computed_one_is_in_the_catalog():
    from ganstudio.metrics.scores import METRIC_KEYS

    assert set(METRIC_KEYS) == set(METRIC_CHOICES)
