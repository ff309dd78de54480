"""data.hflip: about half the real images are mirrored, on the device, and a resumed run mirrors the
same ones; the streaming path mirrors the same images as the in-memory one."""

import torch

from ganstudio.config import DataConfig
from ganstudio.data import ImageSet, TensorBatches, build_batches

CPU = torch.device("cpu")


def marked_set(n: int) -> ImageSet:
    """Image i is 0 with the value i + 1 in its top-left pixel: a mirrored one has it top-right."""
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(1, n + 1, dtype=torch.uint8)
    return ImageSet(images, None, None, [])


def flipping(n: int = 200, batch_size: int = 10, seed: int = 0) -> TensorBatches:
    batches = TensorBatches(marked_set(n), batch_size=batch_size, device=CPU, seed=seed)
    batches.hflip = True
    return batches


def mirrored(images: torch.Tensor) -> list[bool]:
    left, right = images[:, 0, 0, 0], images[:, 0, 0, -1]
    assert torch.all((left > -1) ^ (right > -1))  # the mark is in exactly one corner: nothing else moved
    return (right > -1).tolist()


def test_build_batches_sets_the_flag():
    assert build_batches(DataConfig(max_images=32, hflip=True), batch_size=8, device=CPU, seed=0).hflip
    assert not build_batches(DataConfig(max_images=32), batch_size=8, device=CPU, seed=0).hflip


def test_about_half_are_mirrored_and_each_epoch_draws_anew():
    batches = flipping()
    epochs = [[flag for _ in range(20) for flag in mirrored(batches.next()[0])] for _ in range(3)]
    for flags in epochs:
        assert 70 <= sum(flags) <= 130  # 200 fair coins: 100 ± 30 is beyond 4 standard deviations
    assert epochs[0] != epochs[1] != epochs[2]


def test_off_mirrors_nothing():
    batches = TensorBatches(marked_set(40), batch_size=10, device=CPU, seed=0)
    assert not any(flag for _ in range(8) for flag in mirrored(batches.next()[0]))


def test_resume_mirrors_the_same_images():
    first = flipping(seed=3)
    for _ in range(27):  # into the second epoch
        first.next()
    state = first.state_dict()
    expected = [first.next()[0] for _ in range(20)]  # crosses the next epoch boundary too
    resumed = flipping(seed=99)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, resumed.next()[0]) for a in expected)


def test_streaming_mirrors_what_in_memory_does():
    cfg = {"max_images": 24, "image_size": 28, "hflip": True}
    streamed = build_batches(DataConfig(memory_limit_mb=0, workers=0, **cfg), batch_size=8, device=CPU, seed=5)
    in_memory = build_batches(DataConfig(**cfg), batch_size=8, device=CPU, seed=5)
    plain = build_batches(DataConfig(**{**cfg, "hflip": False}), batch_size=8, device=CPU, seed=5)
    seen = []
    for _ in range(6):
        a, b, c = streamed.next()[0], in_memory.next()[0], plain.next()[0]
        assert torch.equal(a, b)
        flipped = [not torch.equal(x, y) for x, y in zip(b, c)]
        assert all(torch.equal(x, y.flip(2)) for x, y, f in zip(b, c, flipped) if f)
        seen += flipped
    assert 0 < sum(seen) < len(seen)
