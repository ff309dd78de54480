"""Loss registry: each objective's value on hand-computed inputs, the gradient penalty, weight clipping."""

from __future__ import annotations

import math
import typing

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganstudio.config import GAN_LOSSES, RECON_LOSSES, LossConfig
from ganstudio.losses import LOSSES, clip_weights_, gradient_penalty

LN2, LN3 = math.log(2), math.log(3)
# Logits 0 and ln 3 are the probabilities 1/2 and 3/4, so every log below is a log of a small fraction.
LOGITS = torch.tensor([0.0, LN3])


def test_registry_keys_are_the_config_choices():
    assert list(LOSSES) == ["minimax", "bce", "lsgan", "wgan", "wgan-gp", "hinge"]
    assert set(LOSSES) == set(GAN_LOSSES)
    assert set(GAN_LOSSES + RECON_LOSSES) == set(typing.get_args(LossConfig.model_fields["name"].annotation))
    assert all(loss.description for loss in LOSSES.values())
    assert [k for k, v in LOSSES.items() if v.probability] == ["minimax", "bce"]
    assert [k for k, v in LOSSES.items() if v.clip_weights] == ["wgan"]
    assert [k for k, v in LOSSES.items() if v.gradient_penalty] == ["wgan-gp"]


def test_minimax_and_bce_on_probabilities_one_half_and_three_quarters():
    # D: −mean(log σ(r)) − mean(log(1 − σ(f))) with σ = [1/2, 3/4] for both real and fake:
    #    real term −½(ln ½ + ln ¾) = ½(ln 2 + ln 4/3); fake term −½(ln ½ + ln ¼) = ½(ln 2 + ln 4)
    expected_d = 0.5 * (LN2 + math.log(4 / 3)) + 0.5 * (LN2 + math.log(4))
    for name in ("minimax", "bce"):
        assert LOSSES[name].d(LOGITS, LOGITS).item() == pytest.approx(expected_d)
    # minimax G: mean(log(1 − σ(f))) = ½(ln ½ + ln ¼) = −1.5 ln 2
    assert LOSSES["minimax"].g(LOGITS).item() == pytest.approx(-1.5 * LN2)
    # non-saturating G: −mean(log σ(f)) = −½(ln ½ + ln ¾) = ½(2 ln 2 − ln 3) + ½ ln 2
    assert LOSSES["bce"].g(LOGITS).item() == pytest.approx(0.5 * (3 * LN2 - LN3))


def test_bce_d_matches_torch_and_stays_finite_for_huge_logits():
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    expected = (F.binary_cross_entropy_with_logits(real, torch.ones(64))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros(64)))
    torch.testing.assert_close(LOSSES["bce"].d(real, fake), expected)
    huge = torch.tensor([-200.0, 200.0])
    assert LOSSES["bce"].d(huge, huge).item() == pytest.approx(200.0)   # mean of (200, 0) + mean of (0, 200)
    assert LOSSES["bce"].g(huge).item() == pytest.approx(100.0)
    assert LOSSES["minimax"].g(huge).item() == pytest.approx(-100.0)


def test_lsgan():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    assert LOSSES["lsgan"].d(real, fake).item() == pytest.approx(0.5 * ((0 + 4) / 2 + (0 + 4) / 2))  # 2
    assert LOSSES["lsgan"].g(fake).item() == pytest.approx(0.5 * (1 + 1) / 2)                       # ½


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_wasserstein(name):
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    assert LOSSES[name].d(real, fake).item() == pytest.approx(1.0 - 2.0)
    assert LOSSES[name].g(fake).item() == pytest.approx(-1.0)


def test_hinge():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    # relu(1 − r) = [0.5, 0] -> 0.25; relu(1 + f) = [0, 1.5] -> 0.75
    assert LOSSES["hinge"].d(real, fake).item() == pytest.approx(1.0)
    assert LOSSES["hinge"].g(fake).item() == pytest.approx(0.75)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_a_differentiable_scalar(name):
    real, fake = torch.randn(8, requires_grad=True), torch.randn(8, requires_grad=True)
    loss = LOSSES[name]
    total = loss.d(real, fake) + loss.g(fake)
    assert total.shape == ()
    total.backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


def linear_critic(weight: torch.Tensor) -> nn.Module:
    linear = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        linear.weight.copy_(weight.view(1, -1))
    return nn.Sequential(nn.Flatten(), linear, nn.Flatten(0))


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    # ∇D(x̂) = w everywhere, so the penalty is (‖w‖ − 1)² whatever the interpolates are
    weight = torch.tensor([3.0, 0.0, 4.0, 0.0])          # ‖w‖ = 5
    d = linear_critic(weight)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(d, real, fake)
    assert gp.item() == pytest.approx(16.0)
    gp.backward()  # create_graph: the penalty trains D; d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w / ‖w‖
    torch.testing.assert_close(d[1].weight.grad.view(-1), 2 * 4 * weight / 5)


def test_gradient_penalty_draws_from_the_given_generator():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    first = gradient_penalty(d, real, fake, torch.Generator().manual_seed(7))
    state = torch.get_rng_state()
    again = gradient_penalty(d, real, fake, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left alone
    assert first.item() == again.item()
    assert gradient_penalty(d, real, fake, torch.Generator().manual_seed(8)).item() != first.item()


def test_clip_weights_bounds_every_parameter():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(10).add_(0.5)
    clip_weights_(d, 0.01)
    params = torch.cat([p.flatten() for p in d.parameters()])
    assert params.abs().max().item() <= 0.01
    assert (params.abs() == 0.01).any()
    assert all(p.grad is None for p in d.parameters()) and all(p.requires_grad for p in d.parameters())
