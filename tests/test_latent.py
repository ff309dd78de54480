"""Latent directions (random, GANSpace, encoder PCA) and the explorer (ganstudio/latent.py); no Qt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.engine.inference import generate, load_generator, seeded_noise
from ganstudio.latent import (
    LatentExplorer, RunExplorer, code_directions, encoder_directions, principal_directions, random_directions,
)
from ganstudio.models import build_models


class TinyConditionalG(nn.Module):
    """A stand-in cgan generator: z joined with a label embedding, one linear layer, 8 x 8 images."""

    def __init__(self, z_dim: int = 6, num_classes: int = 3) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = nn.Embedding(num_classes, 4)
        self.fc = nn.Linear(z_dim + 4, 64)

    def forward(self, z, labels=None):
        return torch.tanh(self.fc(torch.cat([z, self.embed(labels)], 1))).view(-1, 1, 8, 8)


def _dcgan(z_dim: int = 8, seed: int = 0) -> nn.Module:
    """A random 28 px DCGAN G whose batch-norm statistics are calibrated (a few forward passes in train
    mode), so in eval mode its images span the pixel range as a trained G's do, not a flat grey."""
    torch.manual_seed(seed)
    g, _ = build_models(ModelConfig(arch="dcgan", z_dim=z_dim, g_width=8), image_size=28, channels=1)
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the calibration batches
    g.train()
    with torch.no_grad():
        for i in range(4):
            g(seeded_noise(64, z_dim, 100 + i))
    for m in norms:
        m.momentum = 0.1
    return g.eval()


def _change(g: nn.Module, direction: torch.Tensor, z: torch.Tensor, step: float = 2.0) -> float:
    """Mean absolute pixel change (0-255) when each row of ``z`` moves ``step`` along ``direction``."""
    before = generate(g, z).astype(float)
    return float(np.abs(generate(g, z + step * direction).astype(float) - before).mean())


# --- directions ----------------------------------------------------------------------------------
def test_random_directions_are_orthonormal_and_seeded():
    d = random_directions(16, 5, seed=3)
    assert d.shape == (5, 16)
    assert torch.allclose(d @ d.T, torch.eye(5), atol=1e-5)
    assert torch.equal(d, random_directions(16, 5, seed=3))
    assert not torch.allclose(d, random_directions(16, 5, seed=4))
    with pytest.raises(ValueError, match="between 1 and the latent size 16"):
        random_directions(16, 17)


def test_principal_directions_of_a_linear_first_layer_are_its_top_singular_vectors():
    """G's first layer is y = M z here, so GANSpace must recover M's top right singular vectors. A random M
    stretches all directions about equally (which direction comes first is then down to the sample), so
    M gets the singular values 8, 4, 2, 1, … first."""
    g = _dcgan(z_dim=8)
    weight = g.main[0].weight  # ConvTranspose2d(z_dim, ch, s0): (z_dim, ch, s0, s0), so M = weight.flatten(1).T
    u, _, vh = torch.linalg.svd(weight.detach().flatten(1).T, full_matrices=False)
    spectrum = torch.tensor([8.0, 4, 2, 1, 1, 1, 1, 1]) * 0.1
    with torch.no_grad():
        weight.copy_((u @ torch.diag(spectrum) @ vh).T.reshape(weight.shape))
    found = principal_directions(g, 3, n=512, seed=0)
    cosines = (found * vh[:3]).sum(1).abs()
    assert cosines.min() > 0.98, cosines  # a 512-sample estimate: ~0.99, not 1


def test_principal_directions_are_orthonormal_ish_and_reproducible(trained_run):
    _, g = load_generator(trained_run)
    d = principal_directions(g, 5, n=256, seed=1)
    assert d.shape == (5, 8)
    assert torch.allclose(d.norm(dim=1), torch.ones(5), atol=1e-5)
    assert (d @ d.T - torch.eye(5)).abs().max() < 0.15  # least squares from a finite sample: close, not exact
    assert torch.equal(d, principal_directions(g, 5, n=256, seed=1))


def test_the_first_principal_direction_moves_the_image_more_than_random_ones():
    """GANSpace's premise: the directions G's first layer stretches most change the image most. A random
    G stretches every direction about equally, so give one direction u a known 4x stretch: the method
    must find u, and moving along it must change the image more than random directions do, on average
    over 16 samples and 12 random directions."""
    g = _dcgan(z_dim=8, seed=2)
    u = random_directions(8, 1, seed=9)[0]
    with torch.no_grad():
        layer = g.main[0].weight  # (z_dim, out, s0, s0): the first layer maps z through weight's first axis
        stretch = torch.eye(8) + 3 * torch.outer(u, u)
        layer.copy_(torch.einsum("ij,jklm->iklm", stretch, layer))
    first = principal_directions(g, 3, n=512, seed=0)[0]
    assert abs(float(first @ u)) > 0.95
    z = seeded_noise(16, 8, 5)
    random = torch.cat([random_directions(8, 4, seed=s) for s in range(3)])
    along_first = _change(g, first, z)
    along_random = np.mean([_change(g, d, z) for d in random])
    assert along_first > 1.5 * along_random, (along_first, along_random)


def test_principal_directions_of_a_conditional_generator():
    torch.manual_seed(0)
    g = TinyConditionalG()
    for labels in (None, 2, torch.tensor([0, 1] * 64)):
        d = principal_directions(g, 3, n=128, labels=labels)
        assert d.shape == (3, 6) and torch.isfinite(d).all()
        assert torch.allclose(d.norm(dim=1), torch.ones(3), atol=1e-5)


def test_encoder_directions_follow_the_codes_spread():
    """A linear 'encoder' that puts most of the images' variance on code axis 2: PCA finds axis 2 first."""
    torch.manual_seed(0)
    images = torch.randint(0, 256, (200, 1, 4, 4), dtype=torch.uint8)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 6, bias=False))
    with torch.no_grad():
        encoder[1].weight.mul_(0.1)
        encoder[1].weight[2] *= 30
    d = encoder_directions(encoder, images, 2, variational=False)
    assert d.shape == (2, 6) and abs(float(d[0, 2])) > 0.99
    assert torch.allclose(d @ d.T, torch.eye(2), atol=1e-5)
    vae = nn.Sequential(nn.Flatten(), nn.Linear(16, 12))  # (mu, logvar) side by side: only mu counts
    assert encoder_directions(vae, images, 3, variational=True).shape == (3, 6)
    axes, spread = code_directions(torch.randn(500, 3) * torch.tensor([1.0, 5.0, 0.5]), 3)
    assert torch.allclose(spread, torch.tensor([5.0, 1.0, 0.5]), rtol=0.15)
    assert axes[0, 1].abs() > 0.99


# --- the explorer --------------------------------------------------------------------------------
def test_explorer_renders_the_base_image_at_zero_and_moves_with_coefficients(trained_run):
    _, g = load_generator(trained_run)
    z = seeded_noise(1, 8, 3)[0]
    explorer = LatentExplorer(g, z, random_directions(8, 5, seed=0))
    base = explorer.render([0] * 5)
    assert base.dtype == np.uint8 and base.shape == (28, 28, 1)
    assert np.array_equal(base, generate(g, z[None])[0])
    assert np.array_equal(explorer.render(), base)  # missing coefficients are 0
    moved = explorer.render([3, 0, 0, 0, 0])
    assert not np.array_equal(moved, base)
    assert np.array_equal(moved, generate(g, (z + 3 * explorer.directions[0])[None])[0])
    assert explorer.g is not g and not explorer.g.training  # its own copy, in eval mode


def test_explorer_scales_and_labels():
    torch.manual_seed(0)
    g = TinyConditionalG()
    d = random_directions(6, 2, seed=0)
    explorer = LatentExplorer(g, torch.zeros(6), d, scales=torch.tensor([2.0, 1.0]), label=1)
    assert torch.allclose(explorer.latent([1.5, 0]), 3 * d[0])
    one, two = explorer.render([1, 0]), LatentExplorer(g, torch.zeros(6), d, label=2).render([2, 0])
    assert one.shape == (8, 8, 1) and not np.array_equal(one, two)  # another class, another image
    with pytest.raises(ValueError, match="needs a class between 0 and 2"):
        explorer.set_base(torch.zeros(6), label=None)
    with pytest.raises(ValueError, match=r"directions must be \(k, 6\)"):
        explorer.set_directions(torch.zeros(2, 5))


def test_run_explorer_of_a_gan_run(trained_run):
    from ganstudio.engine.inference import fixed_noise

    run = RunExplorer.load(trained_run)
    assert run.step == 6 and run.encoder is None and run.sources == ("fixed", "seed")
    assert run.source_size("fixed") == 16
    assert torch.equal(run.base("fixed", 3), fixed_noise(run.config)[3])
    assert torch.equal(run.base("seed", 7), seeded_noise(1, 8, 7)[0])
    with pytest.raises(ValueError, match="out of range"):
        run.base("fixed", 16)
    vectors, scales = run.directions("principal", 5)
    assert vectors.shape == (5, 8) and torch.equal(scales, torch.ones(5))
    assert run.directions("random", 5)[0].shape == (5, 8)


def test_fixed_noise_is_the_trainers(tiny_config):
    from ganstudio.engine import Trainer
    from ganstudio.engine.inference import fixed_noise

    trainer = Trainer(tiny_config)
    try:
        assert torch.equal(fixed_noise(tiny_config), trainer.fixed_noise.cpu())
    finally:
        trainer.close()


# --- real cgan and VAE runs ----------------------------------------------------------------------
def test_a_cgan_run_is_explored_one_class_at_a_time(cgan_run):
    run = RunExplorer.load(cgan_run)
    assert run.sources == ("fixed", "seed") and run.g.num_classes == 10
    vectors, _ = run.directions("principal", 4, label=3)
    assert vectors.shape == (4, 8) and torch.allclose(vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    z = run.base("seed", 1)
    images = [LatentExplorer(run.g, z, vectors, label=k).render() for k in (3, 4)]
    for k, image in zip((3, 4), images):
        assert np.array_equal(image, generate(run.g, z[None], torch.tensor([k]))[0])


def test_a_vae_run_starts_from_encoded_real_images_along_the_codes_axes(vae_run):
    from ganstudio.latent import encode

    run = RunExplorer.load(vae_run)
    assert run.sources == ("real", "seed") and run.encoder is not None and run.variational
    assert run.real.shape == (16, 1, 28, 28) and run.real.dtype == torch.uint8  # the held-out images
    codes = encode(run.encoder, run.real, variational=True)
    assert torch.allclose(run.base("real", 5), codes[5])
    vectors, scales = run.directions("principal", 5)
    assert torch.allclose(vectors @ vectors.T, torch.eye(5), atol=1e-5)
    spread = ((codes - codes.mean(0)) @ vectors.T).std(0)
    assert torch.allclose(scales, spread, rtol=1e-3)  # slider units: one standard deviation of the codes
    assert (scales[:-1] >= scales[1:]).all()
    explorer = LatentExplorer(run.g, run.base("real", 5), vectors, scales)
    assert torch.allclose(explorer.latent([1, 0, 0, 0, 0]), codes[5] + scales[0] * vectors[0])
