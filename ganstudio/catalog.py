"""Every name a config can choose, with what it means: losses, families, architectures, feature extractors,
metrics, schedules and data sources.

The config's choices, its cross-field checks, the form's combo boxes and tooltips, and the registries
that hold the code (``losses.LOSSES``, ``models.MODELS``, ``metrics.features.EXTRACTORS``, ...) all read
this table, so a name is written here once. It imports nothing (no torch, no pydantic): the studio reads
it before torch loads, and every other module may import it.

Adding a GAN loss ``foo`` is a ``LossChoice("foo", ...)`` row below plus ``foo_d``/``foo_g`` in
``losses.py``; adding a reconstruction loss is a row plus ``foo_recon``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """One value a config field may take, and what it means (the form's tooltip for it)."""

    name: str
    description: str


@dataclass(frozen=True)
class LossChoice(Choice):
    """A loss and what the training step must do around it."""

    reconstruction: bool = False    # an autoencoder/VAE's decoder loss, not a GAN's D and G pair
    probability: bool = False       # sigmoid(D's logit) is a probability: D(x) is reported as mean sigmoid
    label_smoothing: bool = False   # D has a target for real images that one-sided smoothing softens
    gradient_penalty: bool = False  # WGAN-GP: gp_weight * gradient_penalty is added to D's loss
    clip_weights: bool = False      # WGAN: D's weights are clipped to ±clip_value after each D step


def _table(*rows):
    return {row.name: row for row in rows}


LOSS_CHOICES: dict[str, LossChoice] = _table(
    LossChoice("minimax", "Original GAN: G minimises log(1 − D(G(z))); saturates when D wins",
               probability=True, label_smoothing=True),
    LossChoice("bce", "Non-saturating GAN: G maximises log D(G(z)); the usual default",
               probability=True, label_smoothing=True),
    LossChoice("lsgan", "Least squares GAN (Mao et al. 2017): squared error to targets 0 and 1",
               label_smoothing=True),
    LossChoice("wgan", "Wasserstein GAN (Arjovsky et al. 2017) with weight clipping; use n_critic 5",
               clip_weights=True),
    LossChoice("wgan-gp", "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017); D without batch norm",
               gradient_penalty=True),
    LossChoice("hinge", "Hinge loss (Geometric GAN, SAGAN): margins at ±1 for D"),
    LossChoice("mse", "Squared error summed over pixels (on the [0, 1] scale): a Gaussian decoder",
               reconstruction=True),
    LossChoice("bernoulli", "Per-pixel binary cross-entropy summed over pixels: a Bernoulli decoder, sharper "
               "on near-binary images such as MNIST", reconstruction=True),
)
GAN_LOSS_NAMES = tuple(name for name, loss in LOSS_CHOICES.items() if not loss.reconstruction)
RECON_LOSS_NAMES = tuple(name for name, loss in LOSS_CHOICES.items() if loss.reconstruction)

# What each family is (its fields, plots and titles) is families.FAMILIES; these are the names.
FAMILY_NAMES = ("gan", "cgan", "autoencoder", "vae")

ARCH_CHOICES: dict[str, Choice] = _table(
    Choice("mlp", "Fully connected G and D (Goodfellow et al. 2014): fast to train, blurrier images"),
    Choice("dcgan", "Convolutional G and D (Radford et al. 2015): the standard image GAN"),
    Choice("resnet", "Residual G and D of SNGAN/BigGAN (Miyato et al. 2018): for 64-256 px images; "
           "pair with the hinge loss and spectral norm"),
)
D_ARCH_CHOICES: dict[str, Choice] = {
    "same": Choice("same", "D (or the encoder) has the generator's architecture"), **ARCH_CHOICES}

CONDITIONING_CHOICES: dict[str, Choice] = _table(
    Choice("projection", "Inner product of a class embedding with D's features (Miyato & Koyama 2018)"),
    Choice("concat", "The class embedding joined to D's input"),
)

EXTRACTOR_CHOICES: dict[str, Choice] = _table(
    Choice("auto", "The bundled classifier for 1-channel 28/32 px data, Inception-v3 for RGB, else random"),
    Choice("classifier", "The bundled Fashion-MNIST CNN: fast on a CPU, meaningful for clothes-like images"),
    Choice("inception", "pytorch-fid's Inception-v3: FID comparable with published numbers (RGB data)"),
    Choice("random", "A fixed random projection: compares runs on the same data, nothing else"),
)

METRIC_CHOICES: dict[str, Choice] = _table(
    Choice("fid", "Fréchet inception distance (lower is better)"),
    Choice("kid", "Kernel inception distance, unbiased for small samples (lower is better)"),
    Choice("is", "Inception score: confident and varied class predictions (higher is better)"),
    Choice("pr", "Precision (fakes that look real) and recall (reals the fakes cover)"),
    Choice("dc", "Density and coverage: precision and recall that resist outliers"),
)

SCHEDULE_CHOICES: dict[str, Choice] = _table(
    Choice("constant", "The learning rates stay as set"),
    Choice("linear", "Linear decay to 0 over optim.schedule_steps (or the step budget)"),
    Choice("cosine", "Cosine decay to 0 over optim.schedule_steps (or the step budget)"),
    Choice("step", "Halve the learning rates every optim.schedule_steps steps"),
)

OPTIMIZER_NAMES = ("adam", "rmsprop", "sgd")

TORCHVISION_DATASETS = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "SVHN", "CelebA")
DATA_SOURCE_NAMES = ("bundled", "folder", *(f"torchvision:{name}" for name in TORCHVISION_DATASETS))

# The choices tables by the config field that takes them: the form's per-item tooltips.
FIELD_CHOICES: dict[str, dict[str, Choice]] = {
    "loss.name": LOSS_CHOICES, "model.arch": ARCH_CHOICES, "model.d_arch": D_ARCH_CHOICES,
    "model.conditioning": CONDITIONING_CHOICES, "eval.extractor": EXTRACTOR_CHOICES,
    "eval.metrics": METRIC_CHOICES, "optim.schedule": SCHEDULE_CHOICES,
}
