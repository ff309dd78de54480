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


@pytest.fixture
def serve():
    """``serve(folder)``: the URL of an HTTP server on this machine that serves ``folder``."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_download_fetches_checks_and_caches_the_files(cache, debian_fashion_mnist, serve, monkeypatch):
    """torchvision's own download code, from a mirror on this machine: what data.download runs."""
    import hashlib

    from torchvision.datasets import FashionMNIST

    files = sorted(debian_fashion_mnist.glob("*.gz"))  # Debian recompressed them: their own md5s
    monkeypatch.setattr(FashionMNIST, "mirrors", [serve(debian_fashion_mnist)])
    monkeypatch.setattr(FashionMNIST, "resources", [(f.name, hashlib.md5(f.read_bytes()).hexdigest()) for f in files])
    data = load_images(DataConfig(source="torchvision:FashionMNIST", download=True), limit=100)
    expected = read_idx(debian_fashion_mnist / "train-images-idx3-ubyte.gz")[:100]
    assert np.array_equal(data.images[:, 0].numpy(), expected)
    assert (cache / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").stat().st_size == files[2].stat().st_size

    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing answers there
    again = load_images(DataConfig(source="torchvision:FashionMNIST", download=True), limit=100)
    assert torch.equal(again.images, data.images)  # from the cache: nothing fetched


def test_a_failed_download_says_how_to_do_without_the_network(cache, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing answers there
    with pytest.raises(DataError, match="could not download torchvision:MNIST.*data.import_from"):
        load_images(DataConfig(source="torchvision:MNIST", download=True))


def test_a_stop_during_a_download_answers_at_once_and_the_next_start_waits_on_it(cache, monkeypatch):
    """urllib cannot be interrupted: the stop returns without it, and a second start does not fetch
    the same files again beside it (two writers of one file)."""
    import threading
    import time

    import torchvision.datasets as tvd

    from ganstudio.data import Cancelled

    started, release, builds = threading.Event(), threading.Event(), []

    class SlowDownload:
        def __init__(self, root, download, **kwargs):
            builds.append(root)
            started.set()
            release.wait(30)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(tvd, "KMNIST", SlowDownload)
    cfg = DataConfig(source="torchvision:KMNIST", download=True)
    began = time.monotonic()
    with pytest.raises(Cancelled, match="downloading KMNIST"):
        load_images(cfg, cancelled=started.is_set)  # stopped once the download is under way
    assert time.monotonic() - began < 5 and not release.is_set()

    second = threading.Thread(target=lambda: pytest.raises(DataError, load_images, cfg), daemon=True)
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting on the first download
    release.set()
    second.join(30)
    assert not second.is_alive() and len(builds) == 1
