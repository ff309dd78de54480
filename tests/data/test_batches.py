"""Batches: shapes, ranges, epochs, and exact resume, for the in-memory and the streaming path."""

import io
import itertools

import numpy as np
import pytest
import torch

from ganstudio.config import DataConfig
from ganstudio.data import Batches, DataError, ImageSet, StreamBatches, TensorBatches, build_batches

CPU = torch.device("cpu")


def numbered_set(n: int = 10, labelled: bool = True) -> ImageSet:
    """Image i is filled with the value i (so a batch shows which images it holds); its label is i too."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    labels = torch.arange(n) if labelled else None
    return ImageSet(images, labels, [str(i) for i in range(n)] if labelled else None, [])


def indices(images: torch.Tensor) -> list[int]:
    """Which numbered images a float batch holds."""
    return ((images[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def take(batches: Batches, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [batches.next() for _ in range(k)]


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# --- in memory ---------------------------------------------------------------------------------------
def test_bundled_batches_in_memory(tmp_path):
    batches = build_batches(DataConfig(max_images=512), batch_size=64, device=CPU, seed=0)
    assert isinstance(batches, TensorBatches) and batches.in_memory
    assert (batches.num_images, batches.num_classes, batches.image_size, batches.channels) == (512, 10, 28, 1)
    images, labels = batches.next()
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32 and images.device == CPU
    assert images.min() >= -1 and images.max() <= 1 and images.min() == -1
    assert labels.shape == (64,) and labels.dtype == torch.int64 and 0 <= labels.min() <= labels.max() <= 9


def test_epochs_are_permutations_with_the_last_partial_batch_dropped():
    batches = TensorBatches(numbered_set(10), batch_size=3, device=CPU, seed=1)
    seen = []
    for _ in range(3):  # 10 // 3 = 3 batches per epoch
        images, labels = batches.next()
        assert indices(images) == labels.tolist()  # pixels and labels stay paired
        seen += labels.tolist()
    assert batches.epoch == 1 and len(set(seen)) == 9
    second = list(itertools.chain.from_iterable(labels.tolist() for _, labels in take(batches, 3)))
    assert batches.epoch == 2 and len(set(second)) == 9 and second != seen  # reshuffled


def test_unlabelled_images_get_label_minus_one():
    batches = TensorBatches(numbered_set(8, labelled=False), batch_size=4, device=CPU, seed=0)
    assert batches.num_classes is None and batches.next()[1].tolist() == [-1] * 4


def test_order_depends_on_the_seed_only_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = take(TensorBatches(numbered_set(), batch_size=2, device=CPU, seed=5), 12)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)
    assert_same(a, take(TensorBatches(numbered_set(), batch_size=2, device=CPU, seed=5), 12))
    other = take(TensorBatches(numbered_set(), batch_size=2, device=CPU, seed=6), 12)
    assert [y.tolist() for _, y in other] != [y.tolist() for _, y in a]


@pytest.mark.parametrize("k", [0, 3, 5, 7])  # 5 batches per epoch: before, inside, at and past a boundary
def test_in_memory_resume_is_exact(k):
    first = TensorBatches(numbered_set(10), batch_size=2, device=CPU, seed=3)
    take(first, k)
    state = roundtrip(first.state_dict())
    expected = take(first, 8)
    second = TensorBatches(numbered_set(10), batch_size=2, device=CPU, seed=777)  # the state's seed wins
    take(second, 2)  # and where it was does not matter
    second.load_state_dict(state)
    assert second.epoch == k // 5
    assert_same(take(second, 8), expected)


def test_batch_larger_than_dataset_and_mismatched_state():
    with pytest.raises(DataError, match="batch_size = 11 is larger than the 10 images"):
        TensorBatches(numbered_set(10), batch_size=11, device=CPU, seed=0)
    state = TensorBatches(numbered_set(10), batch_size=2, device=CPU, seed=0).state_dict()
    with pytest.raises(DataError, match="num_images = 10"):
        TensorBatches(numbered_set(12), batch_size=2, device=CPU, seed=0).load_state_dict(state)


# --- streaming -----------------------------------------------------------------------------------------
def stream_config(**kwargs) -> DataConfig:
    return DataConfig(memory_limit_mb=0, **{"workers": 0, "max_images": 40, **kwargs})


def test_streaming_matches_in_memory_batch_for_batch():
    streamed = build_batches(stream_config(image_size=32), batch_size=8, device=CPU, seed=4)
    in_memory = build_batches(DataConfig(max_images=40, image_size=32), batch_size=8, device=CPU, seed=4)
    assert isinstance(streamed, StreamBatches) and not streamed.in_memory
    assert (streamed.num_images, streamed.num_classes, streamed.image_size) == (40, 10, 32)
    assert_same(take(streamed, 12), take(in_memory, 12))  # 5 per epoch: crosses two epoch boundaries
    assert streamed.epoch == in_memory.epoch == 2


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_resume_is_exact(workers):
    cfg = stream_config(workers=workers)
    first = build_batches(cfg, batch_size=8, device=CPU, seed=2)
    take(first, 7)  # mid second epoch, with the workers' prefetch running ahead
    state = roundtrip(first.state_dict())
    expected = take(first, 6)
    first.close()
    second = build_batches(cfg, batch_size=8, device=CPU, seed=0)
    second.load_state_dict(state)
    assert_same(take(second, 6), expected)
    second.close()


def test_streaming_folder_replaces_files_that_fail_late(tmp_path, caplog, files):
    for i in range(6):
        files.save(tmp_path / f"{i}.png", np.full((8, 8), 40 * i, np.uint8))
    files.truncated(tmp_path / "3b.png", files.noise(64, 64, 1))  # header fine, pixels cut: only found when decoded
    (tmp_path / "x.txt").write_text("found at open")
    batches = build_batches(DataConfig(source="folder", path=tmp_path, memory_limit_mb=0, workers=0),
                            batch_size=7, device=CPU, seed=0)
    assert batches.num_images == 7 and "skipped 1 of 8 files" in batches.warnings[0]
    images, labels = batches.next()
    assert images.shape == (7, 1, 28, 28) and labels.tolist() == [-1] * 7
    assert any("3b.png" in r.getMessage() for r in caplog.records)
