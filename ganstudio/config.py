"""The one run configuration: validation, TOML, CLI overrides and (later) the GUI form all come from here.

Every field carries a title, a one-line description, its bounds or choices, and whether it may change
while a run is going (``live``). A bad value raises :class:`ConfigError`, whose message names the field,
the value, what is allowed and where the value came from (a TOML file, ``--set``, or code).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ganstudio.fileio import atomic_write_bytes
from ganstudio.resources import resource

TORCHVISION_SOURCES = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "SVHN", "CelebA")
DATA_SOURCES = ("bundled", "folder", *(f"torchvision:{name}" for name in TORCHVISION_SOURCES))


def _field(default: Any, title: str, description: str, *, live: bool = False, **bounds: Any) -> Any:
    """A config field; ``live`` marks values a running Trainer accepts between two steps."""
    return Field(default, title=title, description=description, json_schema_extra={"live": live}, **bounds)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    source: Literal[DATA_SOURCES] = _field(  # type: ignore[valid-type]
        "bundled", "Dataset",
        "bundled = 10k Fashion-MNIST images shipped with ganstudio; torchvision:NAME = a torchvision "
        "dataset; folder = your own images")
    path: Path | None = _field(
        None, "Image folder", "Folder searched recursively for images (source = folder)")
    import_from: Path | None = _field(
        None, "Import from", "Folder with dataset files you already have (torchvision sources); "
        "nothing is downloaded when it is set")
    download: bool = _field(
        True, "Download", "Download a torchvision dataset into the cache folder when it is not there yet")
    image_size: Literal[28, 32, 64] = _field(
        28, "Image size", "Side in pixels the images are resized and centre-cropped to; the models' size")
    channels: Literal[1, 3] = _field(
        1, "Channels", "1 = grayscale, 3 = RGB; images are converted to this")
    max_images: int | None = _field(
        None, "Image limit", "Use only the first N images (None = all)", ge=1)
    memory_limit_mb: int = _field(
        2048, "In-memory limit (MB)",
        "Datasets up to this size are decoded once and kept on the training device; larger ones stream",
        ge=0, le=1_000_000)
    workers: int = _field(
        2, "Loader workers", "Worker processes decoding images when a dataset streams", ge=0, le=64)
    holdout: int = _field(
        0, "Held-out images",
        "The last N images are kept out of training; autoencoder/VAE evaluations reconstruct them", ge=0)

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "folder" and self.path is None:
            raise ValueError("data.source = 'folder' needs data.path, the folder of images")
        return self


FAMILIES = ("gan", "cgan", "autoencoder", "vae")


class ModelConfig(Section):
    family: Literal[FAMILIES] = _field(  # type: ignore[valid-type]
        "gan", "Family",
        "gan = unconditional GAN; cgan = class-conditional GAN (needs labels); autoencoder = encoder + "
        "decoder trained to reconstruct; vae = variational autoencoder (Kingma & Welling 2014)")
    arch: Literal["mlp", "dcgan"] = _field(
        "dcgan", "Architecture", "mlp = fully connected G and D; dcgan = convolutional (Radford et al. 2015)")
    d_arch: Literal["same", "mlp", "dcgan"] = _field(
        "same", "D architecture", "same = as the generator's; mlp or dcgan mixes bodies (e.g. an MLP G with "
        "a conv D); for autoencoders the encoder's body")
    z_dim: int = _field(100, "Latent size", "Length of the noise vector z fed to the generator", ge=1, le=4096)
    g_width: int = _field(
        64, "G width", "Generator width: base channels (dcgan) or first hidden layer size (mlp)",
        ge=4, le=4096)
    d_width: int = _field(
        64, "D width", "Discriminator width: base channels (dcgan) or last hidden layer size (mlp)",
        ge=4, le=4096)
    d_norm: Literal["batch", "layer", "none"] = _field(
        "batch", "D normalisation",
        "Normalisation inside D; WGAN-GP needs 'layer' or 'none' (its penalty is per sample)")
    d_dropout: float = _field(
        0.0, "D dropout", "Dropout probability in D's hidden layers: noisier D decisions, which slows a D "
        "that wins too fast", ge=0.0, lt=1.0)
    spectral_norm: bool = _field(
        False, "Spectral norm (D)", "Divide each D weight by its largest singular value (Miyato et al. 2018): "
        "keeps D about 1-Lipschitz, which steadies its gradients")
    num_classes: int = _field(
        10, "Classes", "Number of classes a cgan is conditioned on; the data's labels must be below it",
        ge=2, le=1000)
    conditioning: Literal["projection", "concat"] = _field(
        "projection", "D conditioning",
        "How a cgan's D sees the label: projection = inner product of a class embedding with D's features "
        "(Miyato & Koyama 2018); concat = the embedding joined to D's input")


GAN_LOSSES = ("minimax", "bce", "lsgan", "wgan", "wgan-gp", "hinge")
RECON_LOSSES = ("mse", "bernoulli")


class LossConfig(Section):
    name: Literal[GAN_LOSSES + RECON_LOSSES] = _field(  # type: ignore[valid-type]
        "bce", "Loss",
        "GANs: minimax = original log(1-D(G(z))); bce = non-saturating; lsgan = least squares; "
        "wgan = weight clipping; wgan-gp = gradient penalty; hinge = SAGAN hinge. Autoencoder/VAE "
        "reconstruction: mse = squared error; bernoulli = per-pixel binary cross-entropy")
    gp_weight: float = _field(
        10.0, "GP weight", "Weight of the WGAN-GP gradient penalty", live=True, ge=0.0, le=1000.0)
    clip_value: float = _field(
        0.01, "Weight clip", "WGAN: D's weights are clipped to [-c, c] after each D step",
        live=True, gt=0.0, le=10.0)
    label_smoothing: float = _field(
        0.0, "Label smoothing", "One-sided label smoothing (Salimans et al. 2016): D's target for real images "
        "is 1 - s instead of 1, so D is never rewarded for total confidence (bce, minimax, lsgan)",
        live=True, ge=0.0, lt=0.5)
    r1_weight: float = _field(
        0.0, "R1 penalty", "γ of the R1 penalty γ/2·E‖∇D(x)‖² on real images (Mescheder et al. 2018): "
        "stops D's gradients growing near the data; 0 = off", live=True, ge=0.0, le=1000.0)
    instance_noise: float = _field(
        0.0, "Instance noise", "Std of Gaussian noise added to D's real and fake inputs (Sønderby et al. 2017): "
        "makes the two distributions overlap early on; 0 = off", ge=0.0, le=2.0)
    instance_noise_steps: int = _field(
        5000, "Noise decay steps", "Instance noise falls linearly to 0 over this many steps", ge=1)
    beta: float = _field(
        1.0, "KL weight β", "VAE: weight of the KL term (β-VAE, Higgins et al. 2017); 1 = the plain ELBO",
        live=True, ge=0.0, le=1000.0)
    kl_warmup: int = _field(
        0, "KL warm-up steps", "VAE: β rises linearly from 0 over this many steps (0 = from the start); "
        "avoids the posterior collapsing before the decoder learns", ge=0)


SCHEDULES = ("constant", "linear", "cosine", "step")


class OptimConfig(Section):
    name: Literal["adam", "rmsprop", "sgd"] = _field("adam", "Optimizer", "Optimizer used for both G and D")
    lr_g: float = _field(2e-4, "G learning rate", "Generator learning rate", live=True, gt=0.0, le=1.0)
    lr_d: float = _field(2e-4, "D learning rate", "Discriminator learning rate", live=True, gt=0.0, le=1.0)
    beta1: float = _field(0.5, "Adam β1", "Adam's first-moment decay (0.5 for GANs)", live=True, ge=0.0, lt=1.0)
    beta2: float = _field(0.999, "Adam β2", "Adam's second-moment decay", live=True, ge=0.0, lt=1.0)
    momentum: float = _field(0.0, "Momentum", "SGD and RMSprop momentum", live=True, ge=0.0, lt=1.0)
    weight_decay_g: float = _field(
        0.0, "G weight decay", "L2 weight decay of G (or the decoder)", live=True, ge=0.0, le=1.0)
    weight_decay_d: float = _field(
        0.0, "D weight decay", "L2 weight decay of D (or the encoder)", live=True, ge=0.0, le=1.0)
    clip_g: float = _field(
        0.0, "G grad clip", "Clip G's gradient norm to this before each step (0 = off)", live=True, ge=0.0)
    clip_d: float = _field(
        0.0, "D grad clip", "Clip D's gradient norm to this before each step (0 = off)", live=True, ge=0.0)
    schedule: Literal[SCHEDULES] = _field(  # type: ignore[valid-type]
        "constant", "LR schedule",
        "constant; linear or cosine decay to 0 over the schedule steps; step = halve every schedule steps")
    schedule_steps: int | None = _field(
        None, "Schedule steps", "Length of the linear/cosine decay, or the step schedule's period "
        "(None = the step budget)", ge=1)
    n_critic: int = _field(1, "D steps per G step", "Discriminator updates per generator update",
                           live=True, ge=1, le=100)


class TrainConfig(Section):
    batch_size: int = _field(64, "Batch size", "Real images per D step (and fakes per step)", ge=1, le=65536)
    steps: int | None = _field(
        None, "Step budget", "Stop after this many generator steps (None = until stopped)", ge=1)
    max_time: float | None = _field(
        None, "Time budget (s)", "Stop after this many seconds of training (None = no limit)", gt=0)
    seed: int = _field(0, "Seed", "Seeds the data order, the noise and the weights", ge=0, le=2**63 - 1)
    device: Literal["auto", "cpu", "cuda"] = _field(
        "auto", "Device", "auto = the GPU when there is one, else the CPU")
    threads: int = _field(
        0, "CPU threads", "Threads torch uses on the CPU (0 = torch's default, one per core)", ge=0, le=1024)
    channels_last: bool = _field(
        True, "Channels-last", "Store conv activations channels-last (faster convolutions on most devices)")
    ema: float = _field(
        0.0, "G weight EMA",
        "Decay of an exponential moving average of G's weights used for samples, evaluation and export "
        "(0 = off; 0.999 is typical): it smooths out the oscillation of GAN training", ge=0.0, lt=1.0)
    log_every: int = _field(
        50, "Log every", "Steps between metric lines; the only points where the CPU waits for the device",
        live=True, ge=1, le=1_000_000)
    sample_every: int = _field(
        500, "Sample every", "Steps between sample grids written from the fixed noise",
        live=True, ge=1, le=10_000_000)
    checkpoint_every: int = _field(
        1000, "Checkpoint every", "Steps between writes of checkpoints/last.pt", live=True, ge=1, le=10_000_000)
    num_samples: int = _field(64, "Grid size", "Images in each sample grid (fixed noise)", ge=1, le=1024)
    nan_lr_factor: float = _field(
        0.5, "NaN learning-rate factor", "After a NaN/Inf, roll back and multiply both learning rates by this",
        gt=0.0, le=1.0)
    nan_max_rollbacks: int = _field(
        3, "NaN rollbacks", "Give up after this many NaN rollbacks in a row", ge=0, le=100)
    eval_every: int = _field(
        0, "Evaluate every", "Steps between quality evaluations (FID, …; see the eval section); 0 = off",
        live=True, ge=0, le=10_000_000)
    augment: list[Literal["translation", "cutout", "color"]] = _field(
        [], "DiffAugment", "Differentiable augmentation of D's real and fake inputs (Zhao et al. 2020): "
        "translation, cutout and colour; helps small datasets, where D memorises the real images")
    tensorboard: bool = _field(
        False, "TensorBoard", "Also write scalars and sample grids as TensorBoard events (needs tensorboard)")


METRICS = ("fid", "kid", "is", "pr", "dc")


class EvalConfig(Section):
    metrics: list[Literal[METRICS]] = _field(  # type: ignore[valid-type]
        ["fid", "kid", "is", "pr"], "Metrics",
        "fid = Fréchet distance; kid = kernel inception distance; is = inception score; "
        "pr = precision and recall; dc = density and coverage", min_length=1)
    num_samples: int = _field(
        2000, "Samples", "Generated (and real) images per evaluation; FID needs thousands to mean much",
        live=True, ge=10, le=100_000)
    extractor: Literal["auto", "classifier", "inception", "random"] = _field(
        "auto", "Feature extractor",
        "auto = the bundled Fashion-MNIST classifier for 1-channel 28/32 px data, Inception-v3 for RGB, "
        "else fixed random projections; classifier/inception/random force one")
    inception_weights: Path | None = _field(
        None, "Inception weights", "File with the pytorch-fid Inception-v3 weights (pt_inception-2015-12-05); "
        "None = look in the torch hub cache, downloading when online")
    early_stop: int | None = _field(
        None, "Early stop after", "Stop when FID has not improved for this many evaluations (None = never)",
        live=True, ge=1, le=1000)


class RunConfig(BaseModel):
    """Everything a run needs; a run folder's config.toml is exactly this."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = _field("run", "Run name", "Used to name the run folder", min_length=1, max_length=100)
    data: DataConfig = Field(default_factory=DataConfig, title="Data")
    model: ModelConfig = Field(default_factory=ModelConfig, title="Model")
    loss: LossConfig = Field(default_factory=LossConfig, title="Loss")
    optim: OptimConfig = Field(default_factory=OptimConfig, title="Optimizer")
    train: TrainConfig = Field(default_factory=TrainConfig, title="Training")
    eval: EvalConfig = Field(default_factory=EvalConfig, title="Evaluation")

    @model_validator(mode="after")
    def _loss_fits_model(self) -> RunConfig:
        from ganstudio.families import check_config

        problem = check_config(self)
        if problem:
            raise ValueError(problem)
        return self

    # --- I/O ---------------------------------------------------------------------------------------
    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(Path(path), self.to_toml().encode())

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] = ()) -> RunConfig:
        """Read a TOML file, then apply ``--set KEY=VALUE`` overrides."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from None
        return from_dict(apply_overrides(data, overrides), source=str(path), overrides=overrides)

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        data = self.model_dump(mode="json", exclude_none=True)
        return from_dict(apply_overrides(data, overrides), source="config", overrides=overrides)

    def updated(self, key: str, value: Any, source: str = "code") -> RunConfig:
        """A copy with one dotted field changed, validated like any other input."""
        data = self.model_dump(mode="json", exclude_none=True)
        _set_dotted(data, key, value)
        return from_dict(data, source=source)


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config."""


def preset_names() -> list[str]:
    return sorted(p.stem for p in resource("presets").glob("*.toml"))


def preset_path(name: str) -> Path:
    path = resource("presets", f"{name}.toml")
    if not path.is_file():
        raise ConfigError(f"no preset named {name!r}; presets: {', '.join(preset_names())}")
    return path


def preset_description(name: str) -> str:
    """The first comment line of a preset file, which says what it is."""
    for line in preset_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_preset(name: str, overrides: list[str] = ()) -> RunConfig:
    return RunConfig.load(preset_path(name), overrides)


def is_live(key: str) -> bool:
    """Whether the dotted field ``key`` may change while training runs."""
    info = _field_info(key)
    return bool(info and (info.json_schema_extra or {}).get("live"))


# --- overrides and error messages -------------------------------------------------------------------
def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr_g=1e-4"`` -> ``("optim.lr_g", 0.0001)``; values are read as TOML, else as text."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr_g=1e-4")
    text = text.strip()
    if text.lower() in ("none", "null", ""):
        return key, None
    try:
        return key, tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return key, text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides:
        key, value = parse_override(item)
        if _field_info(key) is None:
            raise ConfigError(f"--set {item!r}: unknown field {key!r}; fields: {', '.join(field_keys())}")
        _set_dotted(data, key, value)
    return data


def from_dict(data: dict, *, source: str = "code", overrides: list[str] = ()) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        set_keys = {parse_override(o)[0] for o in overrides}
        lines = [_describe_error(e, source, set_keys) for e in err.errors()]
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None


def field_keys() -> list[str]:
    return [f"{name}.{sub}" if sub else name for name, sub in _walk_fields()]


def _walk_fields():
    for name, info in RunConfig.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, Section):
            for sub in section.model_fields:
                yield name, sub
        else:
            yield name, None


def _field_info(key: str):
    model: type[BaseModel] = RunConfig
    info = None
    for part in key.split("."):
        info = model.model_fields.get(part) if model else None
        if info is None:
            return None
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return info


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    if value is None:
        data.pop(last, None)
    else:
        data[last] = value


def allowed(key: str) -> str:
    """What a field accepts, in words: its choices or its bounds."""
    info = _field_info(key)
    if info is None:
        return ""
    choices = getattr(info.annotation, "__args__", None)
    if choices and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in choices) and \
            getattr(info.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(repr(c) for c in choices)
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                parts.append(f"{sign} {getattr(meta, attr)}")
    return "allowed " + " and ".join(parts) if parts else ""


def _describe_error(error: dict, source: str, set_keys: set[str]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":  # a cross-field rule from a model validator names its fields
        origin = "--set" if any(k in msg for k in set_keys) else source
        return f"{msg} (from {origin})"
    origin = "--set" if key in set_keys else source
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown field (from {origin})"
    value = error.get("input")
    rule = allowed(key)
    return f"{key} = {value!r}: {msg}" + (f"; {rule}" if rule and rule not in msg else "") + f" (from {origin})"
