"""Loss registry: each objective's value on hand-computed inputs, label smoothing, the gradient and R1
penalties, weight clipping, and the autoencoder/VAE reconstruction and KL terms."""

from __future__ import annotations

import math
import typing

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganstudio import losses
from ganstudio.catalog import GAN_LOSS_NAMES, LOSS_CHOICES, RECON_LOSS_NAMES, LossChoice
from ganstudio.config import ConfigError, LossConfig, from_dict
from ganstudio.losses import LOSSES, clip_weights_, gradient_penalty, kl_normal, r1_penalty, reconstruction_loss

LN2, LN3 = math.log(2), math.log(3)
# Logits 0 and ln 3 are the probabilities 1/2 and 3/4, so every log below is a log of a small fraction.
LOGITS = torch.tensor([0.0, LN3])


def test_registry_keys_are_the_config_choices():
    assert list(LOSSES) == ["minimax", "bce", "lsgan", "wgan", "wgan-gp", "hinge"]
    assert set(LOSSES) == set(GAN_LOSS_NAMES)
    assert set(GAN_LOSS_NAMES + RECON_LOSS_NAMES) == set(typing.get_args(LossConfig.model_fields["name"].annotation))
    assert all(loss.description for loss in LOSSES.values())
    assert [k for k, v in LOSSES.items() if v.probability] == ["minimax", "bce"]
    assert [k for k, v in LOSSES.items() if v.clip_weights] == ["wgan"]
    assert [k for k, v in LOSSES.items() if v.gradient_penalty] == ["wgan-gp"]
    assert [k for k, v in LOSSES.items() if v.label_smoothing] == ["minimax", "bce", "lsgan"]
    assert list(losses.RECON_LOSSES) == list(RECON_LOSS_NAMES) and all(map(callable, losses.RECON_LOSSES.values()))


def test_every_catalog_loss_has_its_code_and_every_registered_loss_its_row():
    assert set(LOSSES) | set(losses.RECON_LOSSES) == set(LOSS_CHOICES)
    for name, choice in LOSS_CHOICES.items():
        if choice.reconstruction:
            assert losses.RECON_LOSSES[name] is getattr(losses, f"{name}_recon")
        else:
            assert LOSSES[name].d is getattr(losses, f"{name.replace('-', '_')}_d")
            assert LOSSES[name].label_smoothing == choice.label_smoothing
            assert LOSSES[name].description == choice.description


def test_a_catalog_loss_without_its_functions_is_named_at_import():
    with pytest.raises(NotImplementedError, match="needs a function focal_d"):
        losses._gan_loss(LossChoice("focal", "a new loss"))


@pytest.mark.parametrize("name", GAN_LOSS_NAMES)
def test_the_config_takes_label_smoothing_exactly_for_the_losses_that_use_it(name):
    data = {"loss": {"name": name, "label_smoothing": 0.1}, "model": {"d_norm": "none"}}
    if LOSSES[name].label_smoothing:
        from_dict(data)
    else:
        with pytest.raises(ConfigError, match="label_smoothing"):
            from_dict(data)


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


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_a_differentiable_scalar(name, smoothing):
    real, fake = torch.randn(8, requires_grad=True), torch.randn(8, requires_grad=True)
    loss = LOSSES[name]
    total = loss.d(real, fake, smoothing=smoothing) + loss.g(fake)
    assert total.shape == ()
    total.backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


# --- one-sided label smoothing ---------------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.1, 0.25])
@pytest.mark.parametrize("name", ["minimax", "bce"])
def test_smoothed_bce_is_least_where_d_says_one_minus_s(name, s):
    # d/dr [(1 − s)·softplus(−r) + s·softplus(r)] = σ(r) − (1 − s): zero where σ(r) = 1 − s
    best = torch.tensor([math.log((1 - s) / s)], requires_grad=True)   # logit(1 − s)
    fake = torch.zeros(1)
    LOSSES[name].d(best, fake, smoothing=s).backward()
    assert best.grad.abs().item() < 1e-6
    at_best = LOSSES[name].d(best.detach(), fake, smoothing=s).item()
    for off in (-0.5, 0.5):
        assert LOSSES[name].d(best.detach() + off, fake, smoothing=s).item() > at_best
    real = torch.randn(32) * 4
    expected = (F.binary_cross_entropy_with_logits(real, torch.full((32,), 1 - s))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros(1)))
    torch.testing.assert_close(LOSSES[name].d(real, fake, smoothing=s), expected)


def test_smoothed_bce_stays_finite_for_huge_logits():
    huge = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss = LOSSES["bce"].d(huge, huge.detach(), smoothing=0.1)
    # real: mean(0.9·200 + 0.1·0, 0.9·0 + 0.1·200) = 100; fake: mean(0, 200) = 100
    assert loss.item() == pytest.approx(200.0)
    loss.backward()
    assert torch.isfinite(huge.grad).all()


@pytest.mark.parametrize("s", [0.1, 0.3])
def test_smoothed_lsgan_is_least_where_d_says_one_minus_s(s):
    real = torch.tensor([1 - s], requires_grad=True)
    loss = LOSSES["lsgan"].d(real, torch.zeros(1), smoothing=s)
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert real.grad.item() == pytest.approx(0.0)
    assert LOSSES["lsgan"].d(torch.tensor([1.0]), torch.zeros(1), smoothing=s).item() == pytest.approx(0.5 * s * s)


@pytest.mark.parametrize("name", ["wgan", "wgan-gp", "hinge"])
def test_losses_without_a_real_target_ignore_smoothing(name):
    real, fake = torch.randn(8), torch.randn(8)
    assert LOSSES[name].d(real, fake, smoothing=0.2).item() == LOSSES[name].d(real, fake).item()


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


class ConditionalCritic(nn.Module):
    """D(x, y) = <W[y], x>: ∇ₓD = W[y], so both penalties have closed forms per class."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weights.clone())   # (classes, pixels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.weight[labels]).sum(1)


CLASS_WEIGHTS = torch.tensor([[3.0, 0.0, 4.0, 0.0],      # ‖W[0]‖ = 5
                              [0.0, 1.0, 0.0, 0.0]])     # ‖W[1]‖ = 1


def test_gradient_penalty_passes_the_labels_to_a_conditional_critic():
    d = ConditionalCritic(CLASS_WEIGHTS)
    labels = torch.tensor([0, 1, 0, 0])
    gp = gradient_penalty(d, torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2), labels=labels)
    assert gp.item() == pytest.approx((3 * (5 - 1) ** 2 + (1 - 1) ** 2) / 4)   # 12


def test_r1_of_a_constant_critic_is_zero():
    d = linear_critic(torch.zeros(4))
    assert r1_penalty(d, torch.randn(6, 1, 2, 2)).item() == 0.0


def test_r1_of_a_linear_critic_is_the_squared_weight_norm():
    weight = torch.tensor([3.0, 0.0, 4.0, 0.0])
    d = linear_critic(weight)
    real = torch.randn(6, 1, 2, 2)
    r1 = r1_penalty(d, real)
    assert r1.item() == pytest.approx(25.0)
    r1.backward()  # create_graph: the penalty trains D; d/dw ‖w‖² = 2w
    torch.testing.assert_close(d[1].weight.grad.view(-1), 2 * weight)
    assert real.grad is None   # the caller's batch is not made to require grad


def test_r1_passes_the_labels_to_a_conditional_critic():
    d = ConditionalCritic(CLASS_WEIGHTS)
    r1 = r1_penalty(d, torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 1, 1]))
    assert r1.item() == pytest.approx((25 + 1 + 1 + 1) / 4)
    r1.backward()
    assert d.weight.grad.abs().sum().item() > 0


# --- autoencoder / VAE terms -----------------------------------------------------------------------------
def test_mse_reconstruction_is_zero_at_the_target_and_summed_per_image_on_the_unit_scale():
    target = torch.rand(5, 3, 8, 8) * 2 - 1
    loss = reconstruction_loss("mse", target.clone(), target)
    assert loss.shape == (5,) and torch.equal(loss, torch.zeros(5))
    recon = torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]])
    target = torch.tensor([[[[-1.0, -1.0], [0.0, 1.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    # image 0: differences on [0, 1] are 1, 0, 0, −½ -> 1.25; image 1: four pixels off by 1 -> 4
    torch.testing.assert_close(reconstruction_loss("mse", recon, target), torch.tensor([1.25, 4.0]))


def test_bernoulli_reconstruction_by_hand():
    # recon 0, 0, ½, −½ are p = ½, ½, ¾, ¼; targets ±1 are t = 1, 0, 1, 0
    recon = torch.tensor([[0.0, 0.0, 0.5, -0.5]]).view(1, 1, 2, 2)
    target = torch.tensor([[1.0, -1.0, 1.0, -1.0]]).view(1, 1, 2, 2)
    expected = 2 * LN2 + 2 * math.log(4 / 3)
    assert reconstruction_loss("bernoulli", recon, target).item() == pytest.approx(expected)
    recon, target = torch.rand(3, 1, 4, 4) * 1.8 - 0.9, torch.rand(3, 1, 4, 4) * 2 - 1
    by_torch = F.binary_cross_entropy((recon + 1) / 2, (target + 1) / 2, reduction="none").flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_loss("bernoulli", recon, target), by_torch)


def test_bernoulli_reconstruction_is_finite_where_the_decoder_saturates():
    target = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 2, 2)
    recon = torch.tensor([1.0, -1.0, -1.0, 1.0]).view(1, 1, 2, 2).requires_grad_(True)
    loss = reconstruction_loss("bernoulli", recon, target)
    assert torch.isfinite(loss).all() and loss.item() > 20   # two pixels at −log ε ≈ 13.8 each
    loss.sum().backward()
    assert torch.isfinite(recon.grad).all()
    assert reconstruction_loss("bernoulli", target, target).item() == pytest.approx(0.0, abs=1e-4)


def test_reconstruction_loss_names_the_choices_for_an_unknown_name():
    with pytest.raises(ValueError, match="mse, bernoulli"):
        reconstruction_loss("l1", torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))


def test_kl_normal_is_zero_at_the_prior_and_matches_torch():
    assert torch.equal(kl_normal(torch.zeros(4, 8), torch.zeros(4, 8)), torch.zeros(4))
    torch.manual_seed(0)
    mu, logvar = torch.randn(16, 8) * 2, torch.randn(16, 8) * 2
    kl = kl_normal(mu, logvar)
    assert kl.shape == (16,) and (kl >= 0).all()
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros(8), torch.ones(8))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(posterior, prior).sum(1))


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
