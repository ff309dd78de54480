"""Model registry: shapes at every size, the classic layer recipes, DCGAN init and describe()."""

from __future__ import annotations

import math
import typing

import pytest
import torch
from torch import nn

from ganstudio.config import ModelConfig
from ganstudio.losses import gradient_penalty
from ganstudio.models import MODELS, build_models, describe, init_weights_

SIZES = (28, 32, 64)
SMALL = {"z_dim": 16, "g_width": 8, "d_width": 8}  # narrow nets keep the shape tests fast


def small(arch: str, **fields) -> ModelConfig:
    return ModelConfig(arch=arch, **{**SMALL, **fields})


def types_of(model: nn.Module) -> list[type]:
    return [type(m) for m in model.main]


def test_registry_keys_are_the_config_choices():
    assert set(MODELS) == set(typing.get_args(ModelConfig.model_fields["arch"].annotation))
    assert all(spec.description for spec in MODELS.values())


def test_every_catalog_architecture_has_its_code_and_every_registered_one_its_row():
    from ganstudio.catalog import ARCH_CHOICES, CONDITIONING_CHOICES, D_ARCH_CHOICES
    from ganstudio.models import CONDITIONINGS

    assert list(MODELS) == list(ARCH_CHOICES) and all(name == spec.name for name, spec in MODELS.items())
    assert set(D_ARCH_CHOICES) == {"same", *MODELS}
    assert set(typing.get_args(ModelConfig.model_fields["d_arch"].annotation)) == set(D_ARCH_CHOICES)
    assert set(CONDITIONINGS) == set(CONDITIONING_CHOICES)
    assert set(typing.get_args(ModelConfig.model_fields["conditioning"].annotation)) == set(CONDITIONINGS)


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", (1, 3))
def test_shapes_and_ranges(arch, size, channels):
    torch.manual_seed(0)
    g, d = build_models(small(arch), image_size=size, channels=channels)
    assert g.z_dim == 16
    images = g(torch.randn(5, 16))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    logits = d(images)
    assert logits.shape == (5,)
    assert logits.requires_grad


def test_mlp_is_the_tutorial_generator():
    g, d = build_models(ModelConfig(arch="mlp", z_dim=100, g_width=128), image_size=28, channels=1)
    linears = [(m.in_features, m.out_features) for m in g.main if isinstance(m, nn.Linear)]
    assert linears == [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert types_of(g)[-1] is nn.Tanh
    assert [type(m) for m in g.main[:2]] == [nn.Linear, nn.LeakyReLU]  # no norm straight after z
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.main) == 3
    assert g.main[1].negative_slope == 0.2
    d_linears = [(m.in_features, m.out_features) for m in d.main if isinstance(m, nn.Linear)]
    assert d_linears == [(784, 256), (256, 128), (128, 64), (64, 1)]


def test_dcgan_is_the_classic_recipe_at_32px():
    g, d = build_models(ModelConfig(arch="dcgan", z_dim=100, g_width=64, d_width=64), image_size=32, channels=3)
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
             for m in g.main if isinstance(m, nn.ConvTranspose2d)]
    assert convs == [(100, 256, 4, 1, 0), (256, 128, 4, 2, 1), (128, 64, 4, 2, 1), (64, 3, 4, 2, 1)]
    assert types_of(g)[:3] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU]
    assert types_of(g)[-1] is nn.Tanh
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
             for m in d.main if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 64, 4, 2, 1), (64, 128, 4, 2, 1), (128, 256, 4, 2, 1), (256, 1, 4, 1, 0)]
    assert types_of(d)[:3] == [nn.Conv2d, nn.LeakyReLU, nn.Conv2d]  # no norm on the first layer


@pytest.mark.parametrize("size,start,steps", [(28, 7, 2), (32, 4, 3), (64, 4, 4)])
def test_dcgan_grows_from_the_start_size(size, start, steps):
    g, d = build_models(small("dcgan"), image_size=size, channels=1)
    g_shapes = [info.output_shape for info in describe(g, (16,)) if info.type == "ConvTranspose2d"]
    assert g_shapes[0] == (8 * 2 ** (steps - 1), start, start)
    assert [s[1] for s in g_shapes] == [start * 2 ** i for i in range(steps + 1)]
    d_shapes = [info.output_shape for info in describe(d, (1, size, size)) if info.type == "Conv2d"]
    assert d_shapes[-2][1:] == (start, start) and d_shapes[-1] == (1, 1, 1)


def test_dcgan_rejects_a_size_it_cannot_reach():
    with pytest.raises(ValueError, match="image_size = 48"):
        build_models(small("dcgan"), image_size=48, channels=1)


@pytest.mark.parametrize("arch,norms", [("mlp", {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}),
                                        ("dcgan", {"batch": nn.BatchNorm2d, "layer": nn.GroupNorm})])
@pytest.mark.parametrize("kind", ["batch", "layer", "none"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_discriminator_norm_and_dropout(arch, norms, kind, dropout):
    _, d = build_models(small(arch, d_norm=kind, d_dropout=dropout), image_size=32, channels=1)
    found = [m for m in d.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm))]
    assert len(found) == (0 if kind == "none" else 2)  # every hidden layer but the first
    assert all(type(m) is norms[kind] for m in found)
    assert all(m.num_groups == 1 for m in found if isinstance(m, nn.GroupNorm))
    drops = [m for m in d.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == (0 if dropout == 0 else (3 if arch == "mlp" else 2))
    assert all(m.p == dropout for m in drops)
    assert d(torch.randn(3, 1, 32, 32)).shape == (3,)


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_dcgan_init_statistics(arch):
    torch.manual_seed(0)
    g, d = build_models(ModelConfig(arch=arch), image_size=32, channels=3)
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        if name.endswith("bias"):
            assert torch.all(p == 0), name
        elif p.numel() >= 20_000:  # conv and linear weights, large enough for a tight estimate
            assert abs(p.mean().item()) < 0.002 and p.std().item() == pytest.approx(0.02, rel=0.05), name
    scales = torch.cat([m.weight for m in g.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]).detach()
    assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
    assert scales.std().item() == pytest.approx(0.02, rel=0.15)


def test_init_matches_layers_by_type_not_name():
    class Dense(nn.Linear):  # a subclass with another name is still a linear layer
        pass

    torch.manual_seed(0)
    layer = init_weights_(nn.Sequential(Dense(400, 400), nn.LayerNorm(400)))
    assert layer[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(layer[0].bias == 0) and torch.all(layer[1].bias == 0)
    assert layer[1].weight.std().item() == pytest.approx(0.02, rel=0.2)


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("d_norm", ["batch", "layer"])
def test_channels_last_gives_the_same_logits(arch, d_norm):
    torch.manual_seed(0)
    g, d = build_models(small(arch, d_norm=d_norm), image_size=28, channels=3)
    g.eval(), d.eval()
    with torch.no_grad():
        images = g(torch.randn(4, 16))
        expected = d(images)
        g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        assert g(torch.randn(4, 16)).shape == (4, 3, 28, 28)
        logits = d(images.contiguous(memory_format=torch.channels_last))
    assert logits.shape == (4,)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_describe_lists_leaf_layers_with_shapes_and_params(arch):
    g, d = build_models(small(arch), image_size=32, channels=3)
    g.train(), d.eval()
    for model, shape, out in [(g, (16,), (3, 32, 32)), (d, (3, 32, 32), None)]:
        layers = describe(model, shape)
        leaves = [m for m in model.modules() if next(m.children(), None) is None]
        assert len(layers) == len(leaves)
        assert sum(info.params for info in layers) == sum(p.numel() for p in model.parameters())
        assert all(info.params == 0 for info in layers if info.type in ("ReLU", "LeakyReLU", "Tanh"))
        if out:
            assert layers[-1].type == "Tanh" and math.prod(layers[-1].output_shape) == math.prod(out)
    assert g.training and not d.training  # modes are put back


def test_describe_first_layer_and_meta_models():
    with torch.device("meta"):  # a preview of a big model allocates nothing
        g, d = build_models(ModelConfig(arch="dcgan"), image_size=64, channels=3)
    first = describe(g, (100,))[0]
    assert (first.name, first.type, first.output_shape) == ("main.0", "ConvTranspose2d", (512, 4, 4))
    assert first.params == 100 * 512 * 4 * 4
    layers = describe(d, (3, 64, 64))
    assert layers[0].output_shape == (64, 32, 32) and layers[-1].output_shape == (1, 1, 1)
    mlp_layers = describe(build_models(small("mlp"), image_size=28, channels=1)[0], (16,))
    assert [info.output_shape for info in mlp_layers[-2:]] == [(784,), (784,)]


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_gradients_reach_every_parameter(arch):
    g, d = build_models(small(arch), image_size=28, channels=1)
    d(g(torch.randn(4, 16))).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in [*g.parameters(), *d.parameters()])


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_gradient_penalty_backpropagates_through_each_discriminator(arch):
    # the penalty's double backward runs through the in-place LeakyReLUs, the norms and dropout
    g, d = build_models(small(arch, d_norm="layer", d_dropout=0.2), image_size=28, channels=1)
    gp = gradient_penalty(d, torch.rand(4, 1, 28, 28) * 2 - 1, g(torch.randn(4, 16)))
    gp.backward()
    grads = [p.grad for p in d.parameters()]
    assert math.isfinite(gp.item()) and sum(grad is not None for grad in grads) == len(grads) - 1  # not D's last bias
