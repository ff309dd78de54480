"""DiffAugment and instance noise: shapes and layouts kept, draws only from the given generator,
gradients through every transform, and each transform's maths checked on images built to show it."""

from __future__ import annotations

import pytest
import torch

from ganstudio.config import TrainConfig
from ganstudio.engine import augment
from ganstudio.engine.augment import AUGMENTS, diff_augment, instance_noise, instance_noise_std

POLICIES = [["color"], ["translation"], ["cutout"], ["color", "translation", "cutout"]]


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 4, c: int = 3, side: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, side, side, generator=rng(seed + 100)) * 2 - 1


def test_augments_are_the_config_choices():
    choices = TrainConfig.model_fields["augment"].annotation.__args__[0].__args__
    assert set(AUGMENTS) == set(choices)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("side", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_like_the_input(policy, side, channels):
    x = images(3, channels, side)
    out = diff_augment(x, policy, rng())
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.is_contiguous()
    assert not torch.equal(out, x)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_seed_replays_and_the_global_stream_is_left_alone(policy):
    x = images(8)
    state = torch.get_rng_state()
    first = diff_augment(x, policy, rng(1))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(diff_augment(x, policy, rng(1)), first)
    assert not torch.equal(diff_augment(x, policy, rng(2)), first)


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_flow_to_the_input(policy):
    x = images(4).requires_grad_(True)
    diff_augment(x, policy, rng()).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_an_empty_policy_returns_the_input_itself():
    x = images()
    assert diff_augment(x, [], rng()) is x


def test_an_unknown_transform_is_named():
    with pytest.raises(ValueError, match="'rotate'"):
        diff_augment(images(), ["rotate"], rng())


@pytest.mark.parametrize("policy", POLICIES)
def test_channels_last_input_gives_the_same_values_channels_last(policy):
    x = images(4, 3, 32)
    expected = diff_augment(x, policy, rng(3))
    out = diff_augment(x.contiguous(memory_format=torch.channels_last), policy, rng(3))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_the_policy_order_does_not_matter():
    x = images(4)
    assert torch.equal(diff_augment(x, ["cutout", "translation", "color"], rng(5)),
                       diff_augment(x, ["color", "translation", "cutout"], rng(5)))


# --- each transform's maths ------------------------------------------------------------------------------
def test_brightness_adds_one_offset_per_image():
    x = images(16)
    delta = augment.rand_brightness(x, rng()) - x
    per_image = delta.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image))
    assert (per_image.abs() <= 0.5).all()


def test_saturation_keeps_each_pixels_channel_mean_and_does_nothing_to_gray():
    x = images(8)
    torch.testing.assert_close(augment.rand_saturation(x, rng()).mean(1), x.mean(1))
    gray = images(8, 1)
    assert torch.equal(augment.rand_saturation(gray, rng()), gray)


def test_contrast_keeps_each_images_mean():
    x = images(8)
    out = augment.rand_contrast(x, rng())
    torch.testing.assert_close(out.mean((1, 2, 3)), x.mean((1, 2, 3)))
    assert not torch.allclose(out, x)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[i, j] = image[i + dy, j + dx], zero where that falls outside."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        image[..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


@pytest.mark.parametrize("side, reach", [(28, 4), (32, 4), (64, 8)])
def test_translation_is_a_shifted_copy_with_zero_fill(side, reach):
    # every pixel distinct and nonzero, so exactly one shift explains each output
    x = (torch.arange(2 * side * side, dtype=torch.float32) + 1).view(1, 2, side, side).repeat(32, 1, 1, 1)
    out = augment.rand_translation(x, rng())
    seen = set()
    for image, result in zip(x, out):
        matches = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
                   if torch.equal(shifted(image, dy, dx), result)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 1


@pytest.mark.parametrize("side", [28, 32, 64])
def test_cutout_zeroes_one_half_side_square_per_image(side):
    out = augment.rand_cutout(torch.ones(256, 3, side, side), rng())
    assert torch.equal(out[:, :1].expand_as(out), out)    # the same hole in every channel
    inside = 0
    for hole in out[:, 0] == 0:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert hole[top:bottom, left:right].all() and hole.sum() == (bottom - top) * (right - left)
        assert bottom - top <= side // 2 and right - left <= side // 2
        if top > 0 and left > 0 and bottom < side and right < side:   # clear of the border
            assert hole.sum() == (side // 2) ** 2
            inside += 1
    assert inside > 0


# --- instance noise --------------------------------------------------------------------------------------
def test_instance_noise_std_falls_linearly_to_zero():
    assert [instance_noise_std(0.2, 100, s) for s in (0, 25, 50, 100, 150)] == pytest.approx([0.2, 0.15, 0.1, 0, 0])


def test_instance_noise_has_the_asked_std_and_replays():
    x = torch.zeros(64, 3, 32, 32)
    noisy = instance_noise(x, 0.3, rng())
    assert noisy.std().item() == pytest.approx(0.3, rel=0.02)
    assert abs(noisy.mean().item()) < 0.01
    assert torch.equal(instance_noise(x, 0.3, rng()), noisy)
    assert instance_noise(x, 0.0, rng()) is x


def test_instance_noise_keeps_channels_last_and_gradients():
    x = images(4).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = instance_noise(x, 0.1, rng())
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_drives_a_cuda_batch():
    x = images(4).cuda()
    expected = diff_augment(x.cpu(), ["color", "translation", "cutout"], rng(4))
    out = diff_augment(x, ["color", "translation", "cutout"], rng(4))
    assert out.device == x.device
    torch.testing.assert_close(out.cpu(), expected)
    assert instance_noise(x, 0.1, rng()).device == x.device
