"""Mixed precision (``train.precision``) and compiled networks (``train.compile``) for the step strategies.

bf16 and fp16 autocast the forward passes of G and D: matmuls and convolutions run in half precision,
while the losses, the penalties and the optimizer state stay in fp32. fp16's narrow exponent makes small
gradients underflow to zero, so fp16 also gets a gradient scaler per network (the loss is multiplied by
a large factor before backward and the gradients divided by it before clipping and the update; a step
whose gradients overflowed is skipped and the factor lowered). bf16 has fp32's exponent: no scaler.

A step the scaler skipped changed no weights; it is not a divergence. Its non-finite figures (an inf
loss, the gradient norms) are reported as 0 and ``fp16_skipped_d`` / ``fp16_skipped_g`` (1 for a
skipped update) join the step's figures, so a logged mean shows the share of skipped updates, beside
``fp16_scale_d`` / ``fp16_scale_g``. The first steps of every fp16 run skip a few updates while the scale
comes down from 65536 to one that fits. The NaN guard fires only when every update of a network in a
reporting window was skipped *and* its scale fell below 1 (``all_skipped``): the loss is then scaled
down and its gradients still overflow, which no scale fixes: a real divergence. The scale is the
window's mean, so an inf loss (the scale halving from 65536 at every step) is caught in the first
window that starts after its 17th skipped step.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SKIPPED = "fp16_skipped"  # prefix of the figures that count scaler-skipped updates


class Precision:
    """The autocast context and, for fp16, one GradScaler per network ("g", "d")."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name, self.device_type, self.dtype = name, device.type, DTYPES[name]
        self.scalers = {net: torch.amp.GradScaler(device.type) for net in ("g", "d")} if name == "fp16" else {}

    def autocast(self) -> AbstractContextManager:
        """Where G and D run forward; a no-op in fp32."""
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def backward(self, loss: Tensor, net: str) -> None:
        scaler = self.scalers.get(net)
        (scaler.scale(loss) if scaler else loss).backward()

    def unscale(self, net: str, *opts: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale, before they are clipped or measured."""
        scaler = self.scalers.get(net)
        for opt in opts if scaler else ():
            scaler.unscale_(opt)

    def step(self, net: str, *opts: torch.optim.Optimizer) -> None:
        """Step the optimizers; under fp16 through the scaler (skipped when the gradients overflowed), then
        adjust the scale once."""
        scaler = self.scalers.get(net)
        for opt in opts:
            scaler.step(opt) if scaler else opt.step()
        if scaler:
            scaler.update()

    def mark_skip(self, net: str, norm: Tensor, figures: dict[str, Tensor], names: tuple[str, ...]) -> None:
        """Under fp16: report the non-finite ``names`` figures of an update the scaler skips as 0, and
        record the skip (finite ones, D(x) say, were measured all the same and stay).

        ``norm`` is the unscaled gradient norm: it is non-finite exactly when ``unscale_`` found an inf or
        NaN gradient, which is when the scaler skips the step (read on the device, no sync).
        """
        if net not in self.scalers:
            return
        skipped = ~torch.isfinite(norm)
        for name in names:
            if name in figures:
                figures[name] = torch.where(skipped & ~torch.isfinite(figures[name]), 0.0, figures[name])
        figures[f"{SKIPPED}_{net}"] = skipped.float()
        # GradScaler keeps its scale in a device tensor; get_scale() would read it back (a sync per step).
        # A copy: update() changes that tensor in place and the figures are summed later.
        figures[f"fp16_scale_{net}"] = self.scalers[net]._scale.detach().reshape(()).clone()

    def state_dict(self) -> dict[str, dict]:
        """Each scaler's scale and growth counter (plain numbers; reading the scale syncs the device)."""
        return {f"scaler_{net}": scaler.state_dict() for net, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        # a checkpoint from an fp32 or bf16 run has no scaler state: fp16 then starts from a fresh scale
        for net, scaler in self.scalers.items():
            if f"scaler_{net}" in state:
                scaler.load_state_dict(state[f"scaler_{net}"])


def all_skipped(means: dict[str, float]) -> bool:
    """True when a network's every update in the window was skipped by its fp16 scaler even at a scale
    below 1 (the window's mean scale): a divergence the NaN guard rolls back."""
    return any(key.startswith(SKIPPED) and value >= 1.0 and means.get(f"fp16_scale{key[len(SKIPPED):]}", 0.0) < 1.0
               for key, value in means.items())


# --- torch.compile ---------------------------------------------------------------------------------------
def compile_modules(*modules: nn.Module, cuda_graphs: bool = False) -> str | None:
    """Compile each module's forward in place (``nn.Module.compile``: the state_dict keeps its plain keys,
    with no ``_orig_mod.`` prefix, so checkpoints load into an uncompiled module). None on success, else
    why it failed (the modules are then left uncompiled).

    ``cuda_graphs``: torch.compile's "reduce-overhead" mode, which records each compiled forward and
    backward as a CUDA graph and replays it: one launch instead of one per kernel. Each training step then
    starts with ``mark_step``. A replay reuses its output memory, so whatever keeps an output past the
    next call of the same network must copy it; the sample grids and evaluations turn each batch into
    uint8 images at once, and the step's figures are reductions (new tensors), never the outputs."""
    try:
        for module in modules:
            module.compile(mode="reduce-overhead" if cuda_graphs else None)
    except Exception as err:  # noqa: BLE001 - any failure means: train eagerly, and say why
        uncompile(*modules)
        return f"{type(err).__name__}: {err}"
    return None


def mark_step() -> None:
    """Tell the CUDA-graph trees that a training step begins, so the graphs of the last one may reuse
    their memory (their outputs are dead by then)."""
    torch.compiler.cudagraph_mark_step_begin()


def uncompile(*modules: nn.Module) -> None:
    """Back to eager forwards (drops what ``compile_modules`` set)."""
    for module in modules:
        module._compiled_call_impl = None  # what nn.Module.compile sets; None = call forward directly


def fallback_message(why: str) -> str:
    first = why.strip().splitlines()[0] if why.strip() else "unknown error"
    return (f"train.compile = true but torch.compile failed ({first[:300]}); training without compiling "
            "(same results, slower steps). Install a C compiler (gcc, clang or MSVC) or set train.compile = false")
