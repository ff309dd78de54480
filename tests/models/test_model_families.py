"""Every family from build_models: GAN, class-conditional GAN, autoencoder and VAE, on both bodies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.models import build_models, describe, label_dim, model_inputs
from ganstudio.models.conditional import ConcatDiscriminator, ProjectionDiscriminator

SIZES = (28, 32, 64)
SMALL = {"z_dim": 16, "g_width": 8, "d_width": 8, "num_classes": 5}  # narrow nets keep the shape tests fast
KINDS = {  # one entry per family, the cgan once per way D sees the label
    "gan": {"family": "gan"},
    "cgan-projection": {"family": "cgan", "conditioning": "projection"},
    "cgan-concat": {"family": "cgan", "conditioning": "concat"},
    "autoencoder": {"family": "autoencoder"},
    "vae": {"family": "vae"},
}
ADVERSARIAL = ("gan", "cgan-projection", "cgan-concat")


def small(kind: str, **fields) -> ModelConfig:
    return ModelConfig(**{**SMALL, **KINDS[kind], **fields})


def labels_for(model: nn.Module, n: int) -> tuple[torch.Tensor, ...]:
    return (torch.arange(n) % model.num_classes,) if model.num_classes else ()


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("arch,d_arch", [("mlp", "same"), ("dcgan", "same"), ("mlp", "dcgan"), ("dcgan", "mlp"),
                                          ("resnet", "same"), ("dcgan", "resnet")])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", (1, 3))
def test_shapes_and_ranges(kind, arch, d_arch, size, channels):
    torch.manual_seed(0)
    g, d = build_models(small(kind, arch=arch, d_arch=d_arch), image_size=size, channels=channels)
    assert g.z_dim == 16 and g.num_classes == (5 if kind.startswith("cgan") else 0)
    images = g(torch.randn(5, 16), *labels_for(g, 5))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    if kind in ADVERSARIAL:
        logits = d(images, *labels_for(d, 5))
        assert logits.shape == (5,) and d.num_classes == g.num_classes
    else:
        logits = d(images)
        assert logits.shape == (5, d.out_features) and d.out_features == (32 if kind == "vae" else 16)
    assert logits.requires_grad and torch.isfinite(logits).all()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mixed_bodies_come_from_arch_and_d_arch(kind):
    # the "mlp-g-conv-d" preset, and the reverse
    g, d = build_models(small(kind, arch="mlp", d_arch="dcgan"), image_size=28, channels=1)
    assert any(isinstance(m, nn.Linear) for m in g.modules()) and not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, nn.Conv2d) for m in d.modules()) and not any(isinstance(m, nn.Linear) for m in d.modules())
    g, d = build_models(small(kind, arch="dcgan", d_arch="mlp"), image_size=28, channels=1)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, nn.Linear) for m in d.modules()) and not any(isinstance(m, nn.Conv2d) for m in d.modules())


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_conditional_generator_draws_the_label(arch):
    torch.manual_seed(0)
    g, _ = build_models(small("cgan-projection", arch=arch), image_size=32, channels=3)
    g.eval()  # batch norm on running statistics: each row depends on its own z and label only
    z = torch.randn(1, 16).expand(5, 16)
    images = g(z, torch.arange(5))
    assert g.embed.embedding_dim == label_dim(5) == 5
    scale = images.abs().max()  # an untrained MLP's images are tiny (~1e-6): compare against their scale
    for a in range(5):
        for b in range(a + 1, 5):
            assert (images[a] - images[b]).abs().max() > 0.01 * scale, (a, b)
    torch.testing.assert_close(g(z[:2], torch.tensor([3, 3])), images[[3, 3]])


def test_label_embedding_is_capped():
    assert label_dim(10) == 10 and label_dim(1000) == 128


@pytest.mark.parametrize("kind", ["cgan-projection", "cgan-concat"])
def test_conditional_models_refuse_missing_labels(kind):
    g, d = build_models(small(kind), image_size=28, channels=1)
    with pytest.raises(ValueError, match="generator is class-conditional.*labels"):
        g(torch.randn(2, 16))
    with pytest.raises(ValueError, match="discriminator is class-conditional.*labels"):
        d(torch.randn(2, 1, 28, 28))


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_unconditional_models_ignore_labels(arch):
    g, d = build_models(small("gan", arch=arch), image_size=28, channels=1)
    g.eval(), d.eval()
    z, labels = torch.randn(3, 16), torch.tensor([0, 1, 2])
    torch.testing.assert_close(g(z, labels), g(z))
    torch.testing.assert_close(d(g(z), labels), d(g(z)))


@pytest.mark.parametrize("kind", ["cgan-projection", "cgan-concat"])
@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_conditional_discriminator_uses_the_label(kind, arch):
    torch.manual_seed(0)
    _, d = build_models(small(kind, arch=arch), image_size=32, channels=3)
    d.eval()
    x = torch.rand(1, 3, 32, 32).expand(5, 3, 32, 32) * 2 - 1
    logits = d(x, torch.arange(5))
    assert logits.unique().numel() == 5  # the same image scores differently under each label


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_projection_is_the_head_plus_an_inner_product(arch):
    torch.manual_seed(0)
    _, d = build_models(small("cgan-projection", arch=arch), image_size=28, channels=1)
    assert isinstance(d, ProjectionDiscriminator) and d.projection.embedding_dim == d.body.feature_dim
    d.eval()
    x, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 4])
    h = d.body.features(x)
    pooled = h.mean((2, 3)) if arch == "dcgan" else h
    expected = d.body(x) + (d.projection.weight[y] * pooled).sum(1)  # the body's own forward is ψ(φ(x))
    torch.testing.assert_close(d(x, y), expected)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_features_then_the_last_layer_is_forward(arch):
    _, d = build_models(small("gan", arch=arch, d_norm="layer"), image_size=32, channels=3)
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(d.main[-1](d.features(x)).reshape(-1), d(x))
    assert all(name.startswith("main.") for name in d.state_dict())  # checkpoints from before still load


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_concat_joins_an_image_sized_label_channel(arch):
    _, d = build_models(small("cgan-concat", arch=arch), image_size=28, channels=3)
    assert isinstance(d, ConcatDiscriminator) and d.embed.embedding_dim == 28 * 28
    first = next(m for m in d.body.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert (first.in_features == 4 * 28 * 28) if arch == "mlp" else (first.in_channels == 4)


@pytest.mark.parametrize("kind", ["cgan-projection", "cgan-concat"])
@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_gradients_reach_every_conditional_parameter(kind, arch):
    g, d = build_models(small(kind, arch=arch), image_size=28, channels=1)
    labels = torch.tensor([0, 1, 2, 3])
    d(g(torch.randn(4, 16), labels), labels).mean().backward()
    missing = [name for name, p in [*g.named_parameters(), *d.named_parameters()] if p.grad is None]
    assert missing == [] and all(torch.isfinite(p.grad).all() for p in [*g.parameters(), *d.parameters()])


@pytest.mark.parametrize("kind", ["cgan-projection", "cgan-concat"])
@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_channels_last_gives_the_same_conditional_logits(kind, arch):
    torch.manual_seed(0)
    _, d = build_models(small(kind, arch=arch, d_norm="layer"), image_size=28, channels=3)
    d.eval()
    x, y = torch.rand(4, 3, 28, 28), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        expected = d(x, y)
        d.to(memory_format=torch.channels_last)
        logits = d(x.contiguous(memory_format=torch.channels_last), y)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_vae_encoder_gives_mu_and_a_logvar_near_zero(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(family="vae", arch=arch, d_norm="none", z_dim=16)  # the default widths
    decoder, encoder = build_models(cfg, image_size=32, channels=3)
    assert encoder.out_features == 2 * 16
    mu, logvar = encoder(torch.rand(8, 3, 32, 32) * 2 - 1).chunk(2, dim=1)
    assert mu.shape == logvar.shape == (8, 16)
    assert logvar.abs().max() < 0.05  # σ ≈ 1 at the start
    last = encoder.main[-1]
    assert last.weight[16:].std() < last.weight[:16].std() / 10  # only the logvar half is muted
    assert torch.all(last.bias == 0)
    assert decoder(mu).shape == (8, 3, 32, 32)


@pytest.mark.parametrize("kind", ["autoencoder", "vae"])
def test_encoders_have_no_dropout_and_no_spectral_norm(kind):
    _, encoder = build_models(small(kind, d_dropout=0.3, spectral_norm=True), image_size=28, channels=1)
    assert not any(isinstance(m, nn.Dropout) for m in encoder.modules())
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in encoder.modules())


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
@pytest.mark.parametrize("sn", [False, True])
def test_describe_every_family_on_meta_and_cpu(kind, arch, sn):
    cfg = small(kind, arch=arch, spectral_norm=sn)
    inputs = model_inputs(cfg, image_size=32, channels=3)
    autoencoder = kind in ("autoencoder", "vae")
    assert [i.title for i in inputs.values()] == (["Decoder", "Encoder"] if autoencoder else ["Generator", "Discriminator"])
    assert inputs["g"].shape == (16,) and inputs["d"].shape == (3, 32, 32)
    with torch.device("meta"):  # the studio's preview builds here: nothing allocated
        meta = build_models(cfg, image_size=32, channels=3)
    cpu = build_models(cfg, image_size=32, channels=3)
    for key, m, c in zip(("g", "d"), meta, cpu):
        layers = describe(m, inputs[key].shape)
        assert layers == describe(c, inputs[key].shape)
        assert sum(info.params for info in layers) == sum(p.numel() for p in m.parameters())
        assert not any("parametrizations" in info.name for info in layers)
        assert any(info.type.startswith("Embedding") for info in layers) == kind.startswith("cgan")
    d_types = {info.type for info in describe(meta[1], inputs["d"].shape)}
    assert ("Linear (SN)" in d_types or "Conv2d (SN)" in d_types) == (sn and not autoencoder)
    assert ("Embedding (SN)" in d_types) == (sn and kind == "cgan-projection")  # concat's embedding is an input
