"""What each model family is, as data: its losses, the settings that apply to it, its plots and metrics.

The config validator, the CLI and the studio's form and plots all read this table, so a family is
described once; the names of families and losses, and what each loss can do, come from ``catalog.py``.
``check_config`` holds the rules that join fields of different sections; the config's model validator
calls it. Nothing here imports torch or the config: the studio reads it before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ganstudio.catalog import GAN_LOSS_NAMES, LOSS_CHOICES, RECON_LOSS_NAMES

# Settings that only mean something when a discriminator is trained against a generator.
_ADVERSARIAL = frozenset({
    "model.d_norm", "model.d_dropout", "model.spectral_norm", "loss.gp_weight", "loss.clip_value",
    "loss.label_smoothing", "loss.r1_weight", "loss.instance_noise", "loss.instance_noise_steps",
    "optim.n_critic", "train.augment", "model.d_width",
})
_CONDITIONAL = frozenset({"model.num_classes", "model.conditioning"})
_VAE = frozenset({"loss.beta", "loss.kl_warmup"})
_ENCODER = frozenset({"model.d_width", "model.d_norm"})
MLP_MAX_SIZE = 64  # largest data.image_size an mlp body takes (check_config)


@dataclass(frozen=True)
class Plot:
    title: str
    keys: tuple[tuple[str, str], ...]  # (metrics key, legend label)
    log_y: bool = False


_GAN_PLOTS = (
    Plot("Losses", (("loss_d", "D loss"), ("loss_g", "G loss"))),
    Plot("D(x) and D(G(z))", (("d_real", "D(x)"), ("d_fake", "D(G(z))"))),
    Plot("Gradient norms", (("grad_norm_d", "|∇D|"), ("grad_norm_g", "|∇G|")), log_y=True),
)


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    description: str
    losses: tuple[str, ...]          # the loss.name values it trains with; the first is its default
    adversarial: bool                # a D trained against G: D/G steps, D(x) plots, GAN stabilisers
    conditional: bool = False        # G and D take class labels; sample grids have one row per class
    encoder: bool = False            # the "D" network is an encoder: images -> latent
    variational: bool = False
    primary_metric: str = "fid"      # what best.pt and early stopping follow (lower is better)
    plots: tuple[Plot, ...] = _GAN_PLOTS
    titles: dict[str, str] = field(default_factory=dict)  # field titles this family names differently
    hidden: frozenset[str] = frozenset()                  # fields that do nothing for this family

    def applies(self, key: str) -> bool:
        """Whether the dotted config field ``key`` changes anything for this family."""
        return key not in self.hidden

    def title_of(self, key: str, default: str) -> str:
        return self.titles.get(key, default)


_AE_TITLES = {
    "model.g_width": "Decoder width", "model.d_width": "Encoder width", "model.d_arch": "Encoder architecture",
    "model.d_norm": "Encoder normalisation", "model.z_dim": "Code size",
    "optim.lr_g": "Decoder learning rate", "optim.lr_d": "Encoder learning rate",
    "optim.weight_decay_g": "Decoder weight decay", "optim.weight_decay_d": "Encoder weight decay",
    "optim.clip_g": "Decoder grad clip", "optim.clip_d": "Encoder grad clip",
    "train.ema": "Decoder weight EMA",
}
_RECON_PLOTS = (
    Plot("Reconstruction", (("recon", "reconstruction"),)),
    Plot("Gradient norms", (("grad_norm_d", "|∇encoder|"), ("grad_norm_g", "|∇decoder|")), log_y=True),
)

FAMILIES: dict[str, Family] = {  # one per catalog.FAMILY_NAMES, in that order
    "gan": Family(
        "gan", "GAN", "Unconditional GAN: G maps noise to images, D tells them from real ones",
        GAN_LOSS_NAMES, adversarial=True, hidden=_CONDITIONAL | _VAE),
    "cgan": Family(
        "cgan", "Conditional GAN", "Class-conditional GAN (Mirza & Osindero 2014): G and D both see the "
        "label, so you pick the class of every sample", GAN_LOSS_NAMES, adversarial=True, conditional=True,
        hidden=_VAE),
    "autoencoder": Family(
        "autoencoder", "Autoencoder", "Encoder + decoder trained to reproduce their input through a small "
        "code; its codes are not a distribution, so decoding random noise gives no real image",
        RECON_LOSS_NAMES, adversarial=False, encoder=True, primary_metric="recon_mse", plots=_RECON_PLOTS,
        titles=_AE_TITLES, hidden=(_ADVERSARIAL - _ENCODER) | _CONDITIONAL | _VAE),
    "vae": Family(
        "vae", "VAE", "Variational autoencoder (Kingma & Welling 2014): the encoder gives a Gaussian per "
        "image, a KL term pulls it to N(0, I), so decoding noise from the prior gives new images",
        RECON_LOSS_NAMES, adversarial=False, encoder=True, variational=True,
        plots=(Plot("ELBO parts", (("recon", "reconstruction"), ("kl", "KL"), ("loss", "−ELBO (β-weighted)"))),
               *_RECON_PLOTS[1:]),
        titles=_AE_TITLES, hidden=(_ADVERSARIAL - _ENCODER) | _CONDITIONAL),
}


def family_of(config) -> Family:
    return FAMILIES[config.model.family]


def batches_per_step(config, kind: str = "both") -> int:
    """Real batches one ``kind`` of step takes ("both", "d" or "g"): n_critic D updates for a GAN's full
    step, one for a D step, none for a G step; an autoencoder's every step is one batch."""
    if not family_of(config).adversarial:
        return 1
    return config.optim.n_critic if kind == "both" else int(kind == "d")


def images_per_step(config, kind: str = "both") -> int:
    """Real images one ``kind`` of step reads: what images/s counts. The one place this is computed."""
    return config.train.batch_size * batches_per_step(config, kind)


@dataclass(frozen=True)
class Mismatch:
    """Settings that cannot train together: the fields involved (the one to change first) and why."""

    fields: tuple[str, ...]
    message: str


def attention_sides(image_size: int) -> list[int]:
    """Sides where a resnet G and D both pass a block boundary, so self-attention can sit there: the
    sizes strictly between the start (7 px for 28 px images, else 4) and the image size."""
    s0 = 7 if image_size % 7 == 0 else 4
    sides, side = [], 2 * s0
    while side < image_size:
        sides.append(side)
        side *= 2
    return sides


def _attention_problem(config, bodies: dict[str, str]) -> Mismatch | None:
    side = config.model.attention
    if not side:
        return None
    if "resnet" not in bodies.values():
        return Mismatch(("model.attention", "model.arch"),
                        f"model.attention = {side} needs a resnet body (model.arch or model.d_arch = 'resnet'); "
                        "set it to 0")
    allowed = attention_sides(config.data.image_size)
    if side not in allowed:
        return Mismatch(("model.attention", "data.image_size"),
                        f"model.attention = {side} is not a side the networks pass at data.image_size = "
                        f"{config.data.image_size}; use 0 or one of {', '.join(map(str, allowed)) or 'none'}")
    return None


def check_config(config) -> Mismatch | None:
    """The first reason ``config`` cannot train, phrased for its author; None when it can."""
    family = family_of(config)
    loss, model = config.loss.name, config.model
    if loss not in family.losses:
        kind = "a reconstruction loss" if LOSS_CHOICES[loss].reconstruction else "a GAN loss"
        return Mismatch(("loss.name", "model.family"),
                        f"loss.name = {loss!r} cannot train model.family = {family.name!r}: {loss!r} is {kind}; "
                        f"{family.name} takes {', '.join(map(repr, family.losses))}")
    if family.adversarial and LOSS_CHOICES[loss].gradient_penalty and model.d_norm == "batch":
        return Mismatch(("loss.name", "model.d_norm"),
                        f"loss.name = {loss!r} cannot be used with model.d_norm = 'batch' (batch norm mixes "
                        "samples, which breaks the per-sample gradient penalty); use 'layer' or 'none'")
    if config.loss.label_smoothing > 0 and not LOSS_CHOICES[loss].label_smoothing:
        smoothed = [name for name, choice in LOSS_CHOICES.items() if choice.label_smoothing]
        return Mismatch(("loss.label_smoothing", "loss.name"),
                        f"loss.label_smoothing = {config.loss.label_smoothing} needs a loss with a target for "
                        f"real images ({_or(smoothed)}); loss.name = {loss!r} has none")
    bodies = {"model.arch": model.arch, "model.d_arch": model.arch if model.d_arch == "same" else model.d_arch}
    mlp = next((key for key, arch in bodies.items() if arch == "mlp"), None)
    if mlp and config.data.image_size > MLP_MAX_SIZE:
        # its first (or last) layer alone is C·H·W x 4·width: at 128 px RGB and width 128 that is 25 M
        # weights, 400 M at 512 px, for blurrier images than a conv net a hundredth of the size
        return Mismatch((mlp, "data.image_size"),
                        f"{mlp} = 'mlp' is too large at data.image_size = {config.data.image_size}: an MLP "
                        f"takes images up to {MLP_MAX_SIZE} px; use 'dcgan' or 'resnet', or a smaller size")
    attention = _attention_problem(config, bodies)
    if attention:
        return attention
    o = config.optim
    if o.schedule in ("linear", "cosine") and o.schedule_steps is None and config.train.steps is None:
        return Mismatch(("optim.schedule", "optim.schedule_steps", "train.steps"),
                        f"optim.schedule = {o.schedule!r} decays over optim.schedule_steps or train.steps; "
                        "set one of them")
    if o.schedule == "step" and o.schedule_steps is None:
        return Mismatch(("optim.schedule", "optim.schedule_steps"),
                        "optim.schedule = 'step' halves the learning rates every optim.schedule_steps steps; "
                        "set it")
    return None


def _or(names: list[str]) -> str:
    """``["bce", "minimax", "lsgan"]`` -> ``"bce, minimax or lsgan"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
