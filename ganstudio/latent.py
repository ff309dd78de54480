"""Directions in a generator's latent space, and an explorer that moves one sample along them. No Qt.

Three kinds of direction, each a (k, z_dim) tensor of unit rows:

- ``random_directions``: k orthonormal random directions, the baseline.
- ``principal_directions``: GANSpace (Härkönen et al. 2020) — PCA of G's first-layer activations over
  n random latents, each principal axis carried back to z by least squares. These are the directions
  that G's first layer stretches most, so they tend to change the image most (pose, width, brightness).
- ``encoder_directions``: for an autoencoder or VAE, PCA of the codes the encoder gives real images:
  the directions along which real images actually differ.

``LatentExplorer`` holds its own copy of G in eval mode, a base latent (and a class for a cgan) and k
directions, and ``render(coefficients)`` draws the one image at ``z + Σ cᵢ·σᵢ·dᵢ``, σᵢ being one standard
deviation of the data along dᵢ (1 for noise from N(0, I)). ``RunExplorer`` wraps what a run offers.

Costs: ``principal_directions`` runs only G's first layer on n latents (n = 512 by default; G stops
there) and a PCA of the (n x D) activations by subspace iteration, O(n·D·min(n, D)): 0.1 to 0.3 s for
the default 64-wide DCGAN at 28 px (D = 6272) on 2 CPU cores. One ``render`` is one forward pass
of one image, a few ms for these models.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganstudio.engine.inference import class_labels, fixed_noise, generate, num_classes, seeded_noise

DIRECTION_KINDS = ("principal", "random")


# --- directions ----------------------------------------------------------------------------------
def random_directions(z_dim: int, k: int, seed: int = 0) -> Tensor:
    """k orthonormal directions (k, z_dim), uniformly random (QR of a Gaussian matrix), from ``seed``."""
    _check_k(k, z_dim)
    gaussian = torch.randn(z_dim, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))  # the sign fix that makes QR's Q uniformly distributed
    return q.T.float().contiguous()


@torch.no_grad()
def principal_directions(g: nn.Module, k: int, n: int = 512, seed: int = 0,
                         labels: Tensor | int | None = None) -> Tensor:
    """GANSpace directions (k, z_dim), unit rows, ordered by the variance they explain.

    PCA of the first layer's output y over ``n`` latents z; x = the PCA coordinates of each y; the
    direction for component i is column i of U = argmin Σ‖U x_j − z_j‖² (``torch.linalg.lstsq``), unit-normed.
    A conditional G gets ``labels`` (one class for all, or one per latent; default every class in turn)
    and the activations are centred per class, so a class's own offset is not taken for a direction.
    """
    _check_k(k, g.z_dim)
    if n <= k:
        raise ValueError(f"principal directions need more latents than directions: n = {n}, k = {k}")
    z = seeded_noise(n, g.z_dim, seed)
    labels = _labels_for(g, n, labels)
    y = _first_layer_outputs(g, z, labels)
    y = y - _group_means(y, labels)
    coords = _principal_coordinates(y, k)                             # (n, k)
    transfer = torch.linalg.lstsq(coords, z - z.mean(0)).solution  # (k, z_dim)
    return _unit_rows(transfer)


@torch.no_grad()
def encode(encoder: nn.Module, images: Tensor, variational: bool, batch_size: int = 256) -> Tensor:
    """Codes (N, z_dim) of uint8 images (N, C, H, W): a VAE's means, an autoencoder's codes."""
    device = next(encoder.parameters()).device
    parts = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device).float().div(127.5).sub(1)  # as training batches
        code = encoder(x).float()
        parts.append((code.chunk(2, dim=1)[0] if variational else code).cpu())
    return torch.cat(parts)


@torch.no_grad()
def encoder_directions(encoder: nn.Module, images: Tensor, k: int, variational: bool) -> Tensor:
    """The top-k principal axes (k, z_dim), orthonormal, of the codes of real uint8 ``images``."""
    return code_directions(encode(encoder, images, variational), k)[0]


def code_directions(codes: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(the top-k principal axes of ``codes`` (k, z_dim), the codes' standard deviation along each (k,))."""
    _check_k(k, codes.shape[1])
    if len(codes) < 2:
        raise ValueError("principal directions of codes need at least 2 images")
    x = (codes - codes.mean(0)).double()
    variance, vectors = torch.linalg.eigh(x.T @ x / (len(x) - 1))  # ascending; z_dim x z_dim is small
    top = vectors[:, -k:].flip(1).T
    return _fix_signs(top).float(), variance[-k:].flip(0).clamp(min=0).sqrt().float()


# --- one image at a time -------------------------------------------------------------------------
class LatentExplorer:
    """One sample moved along k directions; ``render`` is cheap enough to call on every slider move."""

    def __init__(self, g: nn.Module, z: Tensor, directions: Tensor, scales: Tensor | None = None,
                 label: int | None = None) -> None:
        self.g = copy.deepcopy(g).eval().requires_grad_(False)  # training (or anyone) can keep their G
        self.set_base(z, label)
        self.set_directions(directions, scales)

    def set_base(self, z: Tensor, label: int | None = None) -> None:
        """The latent at coefficients 0 (and its class, which a conditional G needs)."""
        if num_classes(self.g) and (label is None or not 0 <= label < num_classes(self.g)):
            raise ValueError(f"this generator needs a class between 0 and {num_classes(self.g) - 1}, got {label}")
        self.z, self.label = z.detach().reshape(-1).float().cpu().clone(), label

    def set_directions(self, directions: Tensor, scales: Tensor | None = None) -> None:
        if directions.ndim != 2 or directions.shape[1] != self.z.numel():
            raise ValueError(f"directions must be (k, {self.z.numel()}), got {tuple(directions.shape)}")
        self.directions = directions.float().cpu()
        self.scales = torch.ones(len(directions)) if scales is None else scales.float().cpu()

    @property
    def k(self) -> int:
        return len(self.directions)

    def latent(self, coefficients: Sequence[float]) -> Tensor:
        """z + Σ cᵢ·σᵢ·dᵢ; missing coefficients count as 0."""
        c = torch.zeros(self.k)
        values = list(coefficients)[:self.k]
        c[:len(values)] = torch.tensor(values, dtype=torch.float32)
        return self.z + (c * self.scales) @ self.directions

    def render(self, coefficients: Sequence[float] = ()) -> np.ndarray:
        """uint8 (H, W, C): the image at ``coefficients``."""
        labels = torch.tensor([self.label]) if num_classes(self.g) else None
        return generate(self.g, self.latent(coefficients)[None], labels)[0]


@dataclass
class RunExplorer:
    """What one run offers the explorer: its G, and for autoencoders its encoder and some real images."""

    config: object                 # the run's RunConfig
    g: nn.Module
    encoder: nn.Module | None = None
    real: Tensor | None = None     # uint8 (N, C, H, W) real images (autoencoder families)
    step: int = 0
    ema: bool = False              # G holds the run's weight average (train.ema), not its last weights

    @classmethod
    def load(cls, run_dir: str | Path, which: str = "last", real_images: int = 256) -> RunExplorer:
        """Read a checkpoint (and, for an autoencoder, up to ``real_images`` images of its data): seconds,
        so call it in a background thread. Raises CheckpointError, DataError."""
        from ganstudio.engine import checkpoint
        from ganstudio.engine.inference import checkpoint_path, networks_from_payload

        path = checkpoint_path(run_dir, which)
        payload = checkpoint.load(path)
        config, g, encoder = networks_from_payload(payload, path)
        real = None
        if encoder is not None:
            from ganstudio.data import held_out, load_images

            source = held_out(config.data, limit=real_images)  # held-out images when the run kept some
            real = source.decode_all().images if source is not None else load_images(config.data, real_images).images
        return cls(config, g, encoder, real, int(payload["step"]), "g_ema" in payload["state"])

    @property
    def variational(self) -> bool:
        return self.config.model.family == "vae"

    @property
    def sources(self) -> tuple[str, ...]:
        """Where a base latent can come from: "fixed" (the run's sample grid), "real" (an encoded image), "seed"."""
        return ("real", "seed") if self.encoder is not None else ("fixed", "seed")

    def source_size(self, source: str) -> int:
        """How many base latents ``source`` holds (seeds: as many as a spin box takes)."""
        return {"fixed": self.config.train.num_samples, "real": 0 if self.real is None else len(self.real)}.get(
            source, 2**31 - 1)

    def base(self, source: str, index: int) -> Tensor:
        """The latent (z_dim,) of image ``index`` of ``source``."""
        if source == "seed":
            return seeded_noise(1, self.g.z_dim, index)[0]
        if not 0 <= index < self.source_size(source):
            raise ValueError(f"{source} sample {index} is out of range: there are {self.source_size(source)}")
        if source == "fixed":
            return fixed_noise(self.config)[index]
        return encode(self.encoder, self.real[index:index + 1], self.variational)[0]

    def directions(self, kind: str, k: int, label: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
        """(directions (k, z_dim), one standard deviation along each (k,)) of ``kind``: principal or random."""
        if kind == "random":
            return random_directions(self.g.z_dim, k, seed), torch.ones(k)
        if kind != "principal":
            raise ValueError(f"direction kind must be one of {', '.join(DIRECTION_KINDS)}, got {kind!r}")
        if self.encoder is not None:
            return code_directions(encode(self.encoder, self.real, self.variational), k)
        return principal_directions(self.g, k, seed=seed, labels=label), torch.ones(k)


# --- helpers -------------------------------------------------------------------------------------
def _check_k(k: int, z_dim: int) -> None:
    if not 1 <= k <= z_dim:
        raise ValueError(f"the number of directions must be between 1 and the latent size {z_dim}, got {k}")


def _labels_for(g: nn.Module, n: int, labels: Tensor | int | None) -> Tensor | None:
    if not num_classes(g):
        return None
    if labels is None:
        return class_labels(n, num_classes(g))
    if isinstance(labels, int):
        return torch.full((n,), labels, dtype=torch.long)
    return labels.long()


class _Captured(Exception):
    """Raised from the hook once the first layer has run: the rest of G is not needed."""


def _first_layer_outputs(g: nn.Module, z: Tensor, labels: Tensor | None, batch_size: int = 256) -> Tensor:
    """(n, D) outputs of the first layer G runs that has weights and is not a label embedding."""
    candidates = [m for m in g.modules() if next(m.children(), None) is None
                  and next(m.parameters(recurse=False), None) is not None and not isinstance(m, nn.Embedding)]
    if not candidates:
        raise ValueError("the generator has no layer with weights to take principal directions from")
    seen: list[Tensor] = []

    def record(module: nn.Module, _inputs, output) -> None:
        seen.append(output.detach().flatten(1).float().cpu().clone())
        raise _Captured

    handles = [m.register_forward_hook(record) for m in candidates]
    device, was_training = next(g.parameters()).device, g.training
    g.eval()
    try:
        for start in range(0, len(z), batch_size):
            chunk = z[start:start + batch_size].to(device)
            try:
                g(chunk, labels[start:start + batch_size].to(device)) if labels is not None else g(chunk)
            except _Captured:
                pass
    finally:
        for handle in handles:
            handle.remove()
        g.train(was_training)
    return torch.cat(seen)


def _group_means(y: Tensor, labels: Tensor | None) -> Tensor:
    if labels is None:
        return y.mean(0, keepdim=True)
    means = torch.zeros_like(y)
    for k in labels.unique():
        rows = labels == k
        means[rows] = y[rows].mean(0)
    return means


def _principal_coordinates(y: Tensor, k: int, iterations: int = 20, oversample: int = 8) -> Tensor:
    """The first k PCA coordinates (n, k) of centred rows ``y`` (n, D): y's top left singular vectors
    times their singular values. Subspace iteration (Halko et al. 2011, alg. 4.4; fixed seed) on the
    smaller Gram matrix: forming it costs O(n·D·min(n, D)), each iteration O(min(n, D)²·k). On these
    machines a full SVD of a 1000 x 6272 matrix took 35 s and a full eigh of a 512 x 512 one up to 1 s."""
    wide = y.shape[1] > y.shape[0]
    gram = y @ y.T if wide else y.T @ y                           # (n x n) or (D x D)
    q = torch.randn(len(gram), min(k + oversample, len(gram)), generator=torch.Generator().manual_seed(0),
                    dtype=y.dtype)
    for _ in range(iterations):
        q, _ = torch.linalg.qr(gram @ q)
    values, vectors = torch.linalg.eigh(q.T @ gram @ q)          # small, ascending
    top = q @ vectors[:, -k:].flip(1)                             # (n, k) left or (D, k) right vectors
    return top * values[-k:].flip(0).clamp(min=0).sqrt() if wide else y @ top


def _unit_rows(x: Tensor) -> Tensor:
    return _fix_signs(x / x.norm(dim=1, keepdim=True).clamp(min=1e-12))


def _fix_signs(x: Tensor) -> Tensor:
    """PCA's axes have no sign; make each row's largest entry positive so results are reproducible."""
    largest = x.gather(1, x.abs().argmax(dim=1, keepdim=True))
    return x * torch.where(largest < 0, -1.0, 1.0).to(x.dtype)
