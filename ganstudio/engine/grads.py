"""Gradient norms as the plots show them, measured on the device without a sync."""

from __future__ import annotations

import torch
from torch import Tensor, nn

Stats = dict[str, Tensor]  # a step's figures: detached 0-d tensors, still on the device


def grad_norm(module: nn.Module) -> Tensor:
    """Global L2 norm of the gradients, on the device (no sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def clip_and_measure(module: nn.Module, max_norm: float, name: str, stats: Stats) -> None:
    """Log the gradient norm the optimizer will apply; with clipping on, also the norm before it.

    Clipping scales the gradients to max_norm when they are longer, so the applied norm is
    min(norm, max_norm): derived, not measured again.
    """
    if max_norm > 0:
        params = [p for p in module.parameters() if p.grad is not None]
        unclipped = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        stats[f"{name}_unclipped"], stats[name] = unclipped, unclipped.clamp(max=max_norm)
    else:
        stats[name] = grad_norm(module)
