"""The bundled Fashion-MNIST subset: present, correct, and reproducible from the Debian files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganstudio.config import DataConfig
from ganstudio.data import load_images
from ganstudio.data.idx import read_idx
from ganstudio.data.sources import bundled_source
from ganstudio.resources import resource

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_bundled_subset.py"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def test_bundled_set_ships_with_its_licence():
    folder = resource("datasets", "fashion-mnist-10k")
    assert all((folder / name).is_file() for name in (*FILES, "LICENSE", "README.txt"))
    assert "Zalando SE" in (folder / "LICENSE").read_text() and "MIT" in (folder / "LICENSE").read_text()


def test_bundled_set_loads_from_resources_only():
    source = bundled_source(DataConfig())
    assert "/usr/share" not in source.name
    data = load_images(DataConfig())
    assert data.images.shape == (10_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (10_000,) and data.labels.dtype == torch.int64
    assert data.class_names[9] == "Ankle boot" and sorted(set(data.labels.tolist())) == list(range(10))
    assert data.warnings == []


def test_bundled_set_is_the_first_10k_training_images(debian_fashion_mnist):
    data = load_images(DataConfig())
    full_images = read_idx(debian_fashion_mnist / FILES[0])
    full_labels = read_idx(debian_fashion_mnist / FILES[1])
    assert np.array_equal(data.labels.numpy(), full_labels[:10_000])
    assert np.array_equal(data.images[:, 0].numpy(), full_images[:10_000])


@pytest.mark.parametrize(("size", "channels"), [(32, 1), (64, 1), (32, 3), (64, 3)])
def test_bundled_set_at_other_sizes_and_in_rgb(size, channels):
    data = load_images(DataConfig(image_size=size, channels=channels), limit=500)
    assert data.images.shape == (500, channels, size, size) and data.images.dtype == torch.uint8
    assert data.images.float().mean() > 40  # resized content, not blank
    if channels == 3:
        assert torch.equal(data.images[:, 0], data.images[:, 2])  # gray stays gray


def test_script_reproduces_the_committed_files_byte_for_byte(tmp_path, debian_fashion_mnist):
    subprocess.run([sys.executable, str(SCRIPT), "--source", str(debian_fashion_mnist), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == resource("datasets", "fashion-mnist-10k", name).read_bytes()
