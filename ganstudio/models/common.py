"""Pieces every model family shares: DCGAN weight init, D's normalisation choice, spectral norm and ``describe``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

# Matched by type, not by class-name strings, so a subclass (or a renamed layer) is still initialised.
_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                  nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)
_SN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # D's layers; D has no transposed convs


@torch.no_grad()
def init_weights_(model: nn.Module) -> nn.Module:
    """DCGAN init (Radford et al. 2015, §4): weights N(0, 0.02), norm scales N(1, 0.02), biases 0.

    Label embeddings keep torch's N(0, 1): they are inputs, on the scale of z and of the pixels.
    """
    for module in model.modules():
        if isinstance(module, _WEIGHT_LAYERS):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _NORM_LAYERS) and module.weight is not None:  # affine=False has none
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return model


def spectral_norm_(model: nn.Module) -> nn.Module:
    """Divide every Linear/Conv weight, and a projection D's class embedding (``model.projection``), by
    its largest singular value (Miyato et al. 2018), so D is about 1-Lipschitz. Call it after the init.

    Costs one power iteration per weight per forward in train mode; u and v are buffers, so they are
    saved with the state dict. A concat D's label embedding is left alone: it is an input, not a map of x.
    """
    projection = getattr(model, "projection", None)
    for module in list(model.modules()):
        if isinstance(module, _SN_LAYERS) or (module is projection and projection is not None):
            spectral_norm(module)
    return model


def d_norm(kind: str, features: int, *, conv: bool) -> list[nn.Module]:
    """The normalisation layer ``ModelConfig.d_norm`` names, as a list (empty for 'none').

    'layer' on feature maps is GroupNorm(1, C): it normalises each sample over C, H and W together,
    which keeps samples independent, as the WGAN-GP penalty needs.
    """
    if kind == "batch":
        return [nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)]
    if kind == "layer":
        return [nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)]
    if kind == "none":
        return []
    raise ValueError(f"model.d_norm = {kind!r}: expected one of 'batch', 'layer', 'none'")


def g_norm(kind: str, features: int, *, conv: bool) -> list[nn.Module]:
    """The normalisation layer ``ModelConfig.g_norm`` names, as a list (empty for 'none')."""
    if kind == "batch":
        return [nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)]
    if kind == "none":
        return []
    raise ValueError(f"model.g_norm = {kind!r}: expected one of 'batch', 'none'")


def d_dropout(p: float) -> list[nn.Module]:
    """Dropout after a D block when ``p`` > 0. Element-wise on feature maps too: with 4x4 maps and
    few channels, dropping whole channels (Dropout2d) makes D's score jump too much per step."""
    return [nn.Dropout(p)] if p > 0 else []


@dataclass(frozen=True)
class LayerInfo:
    """One leaf layer as the architecture preview shows it; shapes leave out the batch dimension."""

    name: str                       # dotted path in the model, e.g. "main.3"
    type: str                       # class name, e.g. "ConvTranspose2d"; "Conv2d (SN)" under spectral norm
    output_shape: tuple[int, ...]
    params: int


def _layers(model: nn.Module) -> list[nn.Module]:
    """Leaf layers; a spectral-normed layer counts as one leaf (its parametrization modules are hidden)."""
    hidden = {id(m) for layer in model.modules() if parametrize.is_parametrized(layer)
              for m in layer.parametrizations.modules()}
    return [m for m in model.modules() if id(m) not in hidden
            and all(name == "parametrizations" for name, _ in m.named_children())]


@torch.no_grad()
def describe(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Leaf layers in call order with their output shapes and parameter counts.

    ``input_shape`` is one sample's shape without the batch: ``(z_dim,)`` for a generator or decoder,
    ``(C, H, W)`` for a discriminator or encoder (``model_inputs`` gives both). A conditional model
    (``num_classes`` > 0) is called with class 0 for every row. Runs a batch of 2 zeros in eval mode
    (batch norm needs no statistics then), on the model's own device: a model built under
    ``torch.device("meta")`` is described without allocating or computing anything.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    names = {module: name for name, module in model.named_modules()}
    layers: list[LayerInfo] = []

    def record(module: nn.Module, _inputs, output) -> None:
        shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
        kind = parametrize.type_before_parametrizations(module).__name__
        if parametrize.is_parametrized(module):
            kind += " (SN)"  # the only parametrization ganstudio applies
        count = sum(p.numel() for p in module.parameters())  # a leaf's own, plus a spectral-normed weight
        layers.append(LayerInfo(names[module], kind, shape, count))

    handles = [m.register_forward_hook(record) for m in _layers(model)]
    modes = {m: m.training for m in model.modules()}
    labels = (torch.zeros(2, dtype=torch.long, device=device),) if getattr(model, "num_classes", 0) else ()
    try:
        model.eval()
        model(torch.zeros((2, *input_shape), device=device, dtype=dtype), *labels)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.train(training)
    return layers
