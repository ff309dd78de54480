"""torchvision sources offline: import from files a person has, the cache layout, and helpful errors."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ganstudio.config import DataConfig
from ganstudio.data import DataError, load_images
from ganstudio.data.idx import read_idx, write_idx
from ganstudio.data.torchvision_sources import cache_root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "datasets"


def test_cache_root_follows_the_environment(cache):
    assert cache_root() == cache


def test_fashion_mnist_imports_offline_from_the_debian_files(cache, debian_fashion_mnist):
    cfg = DataConfig(source="torchvision:FashionMNIST", import_from=debian_fashion_mnist)
    data = load_images(cfg)
    assert data.images.shape == (60_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10
    expected = read_idx(debian_fashion_mnist / "train-labels-idx1-ubyte.gz")
    assert np.array_equal(data.labels.numpy(), expected)

    raw = cache / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    from torchvision.datasets import FashionMNIST
    assert len(FashionMNIST(str(cache), train=True, download=False)) == 60_000  # torchvision finds it too

    cached = load_images(DataConfig(source="torchvision:FashionMNIST", download=False), limit=100)
    assert torch.equal(cached.images, data.images[:100])  # the next run needs neither network nor import


def test_mnist_family_import_accepts_uncompressed_and_dotted_names(cache, tmp_path):
    folder = tmp_path / "mine"
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    write_idx(folder / "train-images.idx3-ubyte", images)  # the spelling some mirrors use, not gzipped
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(12, dtype=np.uint8) % 10)
    data = load_images(DataConfig(source="torchvision:KMNIST", import_from=folder, image_size=32, channels=3))
    assert data.images.shape == (12, 3, 32, 32) and data.labels.tolist()[:3] == [0, 1, 2]
    assert data.class_names[0] == "o"


def test_damaged_import_is_refused_and_not_cached(cache, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    whole = gzip.compress(np.zeros(100, np.uint8).tobytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*damaged"):
        load_images(DataConfig(source="torchvision:MNIST", import_from=folder))
    assert not (cache / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "SVHN", "CelebA"])
def test_nothing_local_and_no_download_says_what_to_do(cache, name):
    with pytest.raises(DataError) as caught:
        load_images(DataConfig(source=f"torchvision:{name}", download=False))
    message = str(caught.value)
    assert "data.import_from" in message and "data.download" in message and str(cache) in message


@pytest.mark.parametrize("name", ["FashionMNIST", "CIFAR10", "SVHN", "CelebA"])
def test_import_from_a_folder_without_the_files_names_it(cache, tmp_path, name):
    (tmp_path / "holiday.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=rf"data.import_from = {tmp_path}.*holiday\.jpg"):
        load_images(DataConfig(source=f"torchvision:{name}", import_from=tmp_path))


def test_cifar10_files_that_fail_torchvisions_checksums_are_a_data_error(cache, tmp_path):
    fake = tmp_path / "cifar-10-batches-py"
    fake.mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        (fake / name).write_bytes(b"not the real thing")
    with pytest.raises(DataError, match="does not check out"):
        load_images(DataConfig(source="torchvision:CIFAR10", import_from=tmp_path))


def test_every_catalog_dataset_has_a_reader_and_every_reader_its_catalog_name():
    import typing

    from ganstudio.catalog import TORCHVISION_DATASETS
    from ganstudio.data.torchvision_sources import READERS

    assert list(READERS) == list(TORCHVISION_DATASETS)
    choices = typing.get_args(DataConfig.model_fields["source"].annotation)
    assert {c.removeprefix("torchvision:") for c in choices if c.startswith("torchvision:")} == set(READERS)
