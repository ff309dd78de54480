"""The real-data reference cache: computed once, reused, recomputed when its file is damaged."""

from __future__ import annotations

import logging

import pytest
import torch

from ganstudio.metrics import reference
from ganstudio.metrics.reference import cache_dir, load_or_compute, reference_key


class CountingFeatures:
    """A compute callback that counts its calls and returns fixed features."""

    def __init__(self, n: int = 40, d: int = 6, seed: int = 0):
        self.calls = 0
        self.features = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self.features


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "metrics"
    monkeypatch.delenv("GANSTUDIO_CACHE")
    assert cache_dir().name == "metrics" and "ganstudio" in str(cache_dir())


def test_reference_key_is_a_safe_distinct_file_stem():
    key = reference_key("folder:/home/me/My Photos/*.png", "inception-v3/pool3", 2000)
    assert "/" not in key and " " not in key and "*" not in key and "n2000" in key
    assert key == reference_key("folder:/home/me/My Photos/*.png", "inception-v3/pool3", 2000)
    assert len({reference_key("a/b", "x", 10), reference_key("a-b", "x", 10),
                reference_key("a/b", "x", 11), reference_key("a/b", "y", 10)}) == 4


def test_computes_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path))
    compute = CountingFeatures()
    key = reference_key("bundled", "random-64", 40)
    first = load_or_compute(key, compute)
    second = load_or_compute(key, compute)
    assert compute.calls == 1
    assert (tmp_path / "metrics" / f"{key}.pt").is_file()
    assert set(first) == {"features", "mu", "sigma"}
    assert first["features"].dtype == torch.float32 and first["features"].shape == (40, 6)
    assert first["mu"].dtype == first["sigma"].dtype == torch.float64
    torch.testing.assert_close(first["mu"], compute.features.mean(0))
    torch.testing.assert_close(first["sigma"], torch.cov(compute.features.T))
    for name in first:
        assert torch.equal(first[name], second[name])


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),  # truncated
    lambda path: path.write_bytes(b"not a torch file"),
    lambda path: torch.save({"format": 1, "key": path.stem, "features": torch.zeros(3, 2)}, path),  # no stats
    lambda path: torch.save({"format": 1, "key": "another", "features": torch.zeros(3, 2),
                             "mu": torch.zeros(2, dtype=torch.float64),
                             "sigma": torch.eye(2, dtype=torch.float64)}, path),  # someone else's entry
    lambda path: torch.save({"format": 1, "key": path.stem, "features": torch.zeros(3, 2),
                             "mu": torch.zeros(5, dtype=torch.float64),
                             "sigma": torch.eye(5, dtype=torch.float64)}, path),  # shapes disagree
    lambda path: torch.save([1, 2, 3], path),
])
def test_a_damaged_or_mismatched_file_is_recomputed(tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path))
    compute = CountingFeatures()
    key = reference_key("bundled", "random-64", 40)
    load_or_compute(key, compute)
    damage(tmp_path / "metrics" / f"{key}.pt")
    with caplog.at_level(logging.WARNING, logger=reference.__name__):
        again = load_or_compute(key, compute)
    assert compute.calls == 2 and "recomputing" in caplog.text
    torch.testing.assert_close(again["mu"], compute.features.mean(0))
    load_or_compute(key, compute)  # the rewritten file is good again
    assert compute.calls == 2


def test_a_file_that_cannot_be_written_still_gives_the_result(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GANSTUDIO_CACHE", str(blocker))  # cache_dir() would be a folder under a file
    with caplog.at_level(logging.WARNING, logger=reference.__name__):
        result = load_or_compute(reference_key("bundled", "x", 40), CountingFeatures())
    assert result["features"].shape == (40, 6) and "could not cache" in caplog.text


def test_unsafe_keys_and_bad_features_are_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="safe file name"):
        load_or_compute("../escape", CountingFeatures())
    with pytest.raises(ValueError, match=r"\(n >= 2, D\)"):
        load_or_compute("flat", lambda: torch.zeros(10))
