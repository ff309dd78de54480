"""The one run configuration, section by section: validation, TOML, CLI overrides and the GUI form all
come from these fields.

Every field carries a title, a one-line description, its bounds or choices (the names in
``catalog.py``), and whether it may change while a run is going (``live``). A bad value raises
:class:`ConfigError`, whose entries name the field, the value, what is allowed and where the value came
from (a TOML file, ``--set``, the form, or code); ``config_io.py`` builds them, and reads overrides and
presets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ganstudio import catalog, config_io
from ganstudio.config_io import (ConfigError, ConfigProblem, RuleError, parse_override, parse_overrides,
                                 preset_description, preset_names, preset_path)
from ganstudio.families import check_config
from ganstudio.fileio import atomic_write_bytes

__all__ = ["RESUME_OVERRIDABLE", "ConfigError", "ConfigProblem", "DataConfig", "EvalConfig", "LossConfig",
           "ModelConfig", "OptimConfig", "RunConfig", "TrainConfig", "allowed", "field_keys", "from_dict",
           "identity_differences", "is_live", "load_preset", "may_differ_within_run", "parse_override",
           "parse_overrides", "preset_description", "preset_names", "preset_path"]


def _field(default: Any, title: str, description: str, *, live: bool = False, **bounds: Any) -> Any:
    """A config field; ``live`` marks values a running Trainer accepts between two steps."""
    return Field(default, title=title, description=description, json_schema_extra={"live": live}, **bounds)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bools_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic takes ``true`` for 1 in an int or float field (``batch_size = true`` would train at
        batch size 1); only the true/false fields take true/false."""
        if isinstance(value, bool) and not _takes_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected {_kind_of(cls.model_fields[info.field_name].annotation)}, "
                             f"not {str(value).lower()}")
        return value


class DataConfig(Section):
    source: Literal[catalog.DATA_SOURCE_NAMES] = _field(  # type: ignore[valid-type]
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
    image_size: Literal[16, 28, 32, 64, 128, 256, 512] = _field(
        28, "Image size", "Side in pixels the images are resized and centre-cropped to; the models' size: "
        "28 (Fashion-MNIST's own) or a power of two from 16 to 512")
    channels: Literal[1, 3] = _field(
        1, "Channels", "1 = grayscale, 3 = RGB; images are converted to this")
    hflip: bool = _field(
        False, "Horizontal flip", "Mirror each real image left-right with probability 1/2, on the device as "
        "batches are drawn: for faces and objects, not for text or digits")
    max_images: int | None = _field(
        None, "Image limit", "Use only the first N images (None = all)", ge=1)
    memory_limit_mb: int = _field(
        2048, "In-memory limit (MB)",
        "Datasets up to this size are decoded once and kept on the training device; larger ones stream",
        ge=0, le=1_000_000)
    workers: int = _field(
        2, "Loader workers", "Worker processes decoding images when a dataset streams", ge=0, le=64)
    cache: Literal["auto", "on", "off"] = _field(
        "auto", "Prepared cache",
        "Image folders (and CelebA) decoded, resized and cropped once into a file in the user cache folder "
        "(GANSTUDIO_CACHE overrides it), reused while no file changes. auto = folders of 1,000 files or "
        "more (below that, decoding takes about as long as the cache saves); on = every folder; off = "
        "decode on every run")
    holdout: int = _field(
        0, "Held-out images",
        "The last N images are kept out of training; autoencoder/VAE evaluations reconstruct them", ge=0)

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "folder" and self.path is None:
            raise RuleError("data.source = 'folder' needs data.path, the folder of images",
                            ("data.path", "data.source"))
        return self


class ModelConfig(Section):
    family: Literal[catalog.FAMILY_NAMES] = _field(  # type: ignore[valid-type]
        "gan", "Family",
        "gan = unconditional GAN; cgan = class-conditional GAN (needs labels); autoencoder = encoder + "
        "decoder trained to reconstruct; vae = variational autoencoder (Kingma & Welling 2014)")
    arch: Literal[tuple(catalog.ARCH_CHOICES)] = _field(  # type: ignore[valid-type]
        "dcgan", "Architecture", "mlp = fully connected G and D; dcgan = convolutional (Radford et al. 2015); "
        "resnet = residual SNGAN/BigGAN blocks (Miyato et al. 2018), for 64-512 px colour images")
    d_arch: Literal[tuple(catalog.D_ARCH_CHOICES)] = _field(  # type: ignore[valid-type]
        "same", "D architecture", "same = as the generator's; mlp, dcgan or resnet mixes bodies (e.g. an MLP G "
        "with a conv D); for autoencoders the encoder's body")
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
    g_norm: Literal["batch", "none"] = _field(
        "batch", "G normalisation",
        "Normalisation inside G; 'none' makes each sample independent of the rest of its batch (a run on "
        "several processes then matches a single-process run step for step)")
    d_dropout: float = _field(
        0.0, "D dropout", "Dropout probability in D's hidden layers: noisier D decisions, which slows a D "
        "that wins too fast", ge=0.0, lt=1.0)
    spectral_norm: bool = _field(
        False, "Spectral norm (D)", "Divide each D weight by its largest singular value (Miyato et al. 2018): "
        "keeps D about 1-Lipschitz, which steadies its gradients")
    num_classes: int = _field(
        10, "Classes", "Number of classes a cgan is conditioned on; the data's labels must be below it",
        ge=2, le=1000)
    conditioning: Literal[tuple(catalog.CONDITIONING_CHOICES)] = _field(  # type: ignore[valid-type]
        "projection", "D conditioning",
        "How a cgan's D sees the label: projection = inner product of a class embedding with D's features "
        "(Miyato & Koyama 2018); concat = the embedding joined to D's input")
    attention: int = _field(
        0, "Self-attention at", "resnet: side in pixels where G and D get a self-attention layer (SAGAN, "
        "Zhang et al. 2019), e.g. 32 at 64 px; 0 = none. It costs (side²)² memory per image", ge=0, le=512)


class LossConfig(Section):
    name: Literal[tuple(catalog.LOSS_CHOICES)] = _field(  # type: ignore[valid-type]
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


class OptimConfig(Section):
    name: Literal[catalog.OPTIMIZER_NAMES] = _field(  # type: ignore[valid-type]
        "adam", "Optimizer", "Optimizer used for both G and D")
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
    schedule: Literal[tuple(catalog.SCHEDULE_CHOICES)] = _field(  # type: ignore[valid-type]
        "constant", "LR schedule",
        "constant; linear or cosine decay to 0 over the schedule steps; step = halve every schedule steps")
    schedule_steps: int | None = _field(
        None, "Schedule steps", "Length of the linear/cosine decay, or the step schedule's period "
        "(None = the step budget)", ge=1)
    n_critic: int = _field(1, "D steps per G step", "Discriminator updates per generator update",
                           live=True, ge=1, le=100)


DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?|mps")  # what train.device accepts


class TrainConfig(Section):
    batch_size: int = _field(64, "Batch size", "Real images per D step (and fakes per step)", ge=1, le=65536)
    steps: int | None = _field(
        None, "Step budget", "Stop after this many generator steps (None = until stopped)", ge=1)
    max_time: float | None = _field(
        None, "Time budget (s)", "Stop after this many seconds of training (None = no limit)", gt=0)
    seed: int = _field(0, "Seed", "Seeds the data order, the noise and the weights", ge=0, le=2**63 - 1)
    device: str = _field(
        "auto", "Device", "auto = a CUDA GPU when there is one, else an Apple-silicon GPU (mps), else the CPU; "
        "or cpu, cuda, cuda:N (the Nth CUDA GPU), mps")
    precision: Literal["fp32", "bf16", "fp16"] = _field(
        "fp32", "Precision",
        "fp32 = full precision; bf16 = autocast G and D to bfloat16 (CPUs with bf16 instructions, Ampere+ GPUs); "
        "fp16 = autocast to float16 with a gradient scaler per network (GPUs)")
    compile: bool = _field(
        False, "Compile", "Compile G and D with torch.compile (minutes of compiling at the start, faster steps "
        "after); falls back to plain PyTorch with a warning when the compiler is missing")
    cuda_graphs: bool = _field(
        False, "CUDA graphs",
        "With Compile on a CUDA GPU: replay each step's kernels as CUDA graphs (torch.compile's reduce-overhead "
        "mode). Saves the per-kernel launch cost that dominates small models (28–64 px, small batches) on a fast "
        "GPU; costs device memory for the graphs' static buffers. Ignored, with a warning, on other devices")
    threads: int = _field(
        0, "CPU threads", "Threads torch uses on the CPU (0 = torch's default, one per core)", ge=0, le=1024)
    processes: int = _field(
        1, "Processes", "DDP processes on this machine: its GPUs, or CPU processes; 1 = train in the studio's own "
        "thread", ge=1, le=1024)
    sync_batch_norm: bool = _field(
        False, "Sync batch norm",
        "With several processes on CUDA GPUs: batch norm pools its batch statistics over all processes "
        "(SyncBatchNorm), as one large batch would; helps when each GPU's part of the batch is small. Costs a "
        "collective per batch-norm layer and forward. Refused on CPU processes; ignored by a single process")
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

    @model_validator(mode="after")
    def _graphs_need_compile(self) -> TrainConfig:
        if self.cuda_graphs and not self.compile:
            raise RuleError("train.cuda_graphs = true needs train.compile = true (torch.compile captures the "
                            "graphs); turn Compile on, or CUDA graphs off", ("train.cuda_graphs", "train.compile"))
        return self

    @field_validator("device")
    @classmethod
    def _is_a_device_name(cls, device: str) -> str:
        # a name only: whether this machine has it is checked when a Trainer is built (a config written
        # on a GPU machine stays valid on a laptop, for reading and for the form)
        if not DEVICE_NAME.fullmatch(device):
            raise ValueError("expected auto, cpu, cuda, cuda:N (N = 0, 1, …) or mps")
        return device


class EvalConfig(Section):
    metrics: list[Literal[tuple(catalog.METRIC_CHOICES)]] = _field(  # type: ignore[valid-type]
        ["fid", "kid", "is", "pr"], "Metrics",
        "fid = Fréchet distance; kid = kernel inception distance; is = inception score; "
        "pr = precision and recall; dc = density and coverage", min_length=1)
    num_samples: int = _field(
        2000, "Samples", "Generated (and real) images per evaluation; FID needs thousands to mean much",
        live=True, ge=10, le=100_000)
    extractor: Literal[tuple(catalog.EXTRACTOR_CHOICES)] = _field(  # type: ignore[valid-type]
        "auto", "Feature extractor",
        "auto = the bundled Fashion-MNIST classifier for 1-channel 28/32 px data, Inception-v3 for RGB, "
        "else fixed random projections; classifier/inception/random force one")
    inception_weights: Path | None = _field(
        None, "Inception weights", "File with the pytorch-fid Inception-v3 weights (pt_inception-2015-12-05); "
        "None = look in the torch hub cache, downloading when online")
    early_stop: int | None = _field(
        None, "Early stop after", "Stop when FID has not improved for this many evaluations (None = never)",
        live=True, ge=1, le=1000)


RUN_NAME = re.compile(r"[\w\-][\w\-. ]*")  # a folder name on every system: no separators, no leading dot


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

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str) -> str:
        # the run folder is RUNS/NAME-TIMESTAMP: a '/' or '..' would put it outside the runs folder
        if not RUN_NAME.fullmatch(name) or ".." in name:
            raise ValueError("a run name names a folder: use letters, digits, spaces, '-', '_' and '.' "
                             "(no '/', '\\', '..' or a leading '.')")
        return name

    @model_validator(mode="after")
    def _fits_family(self) -> RunConfig:
        problem = check_config(self)
        if problem:
            raise RuleError(problem.message, problem.fields)
        return self

    # --- I/O ---------------------------------------------------------------------------------------
    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(Path(path), self.to_toml().encode())

    @classmethod
    def load(cls, path: str | Path, overrides: Sequence[str] | Mapping[str, Any] = ()) -> RunConfig:
        """Read a TOML file, then apply overrides: ``--set`` strings (``"train.steps=500"``) or a mapping
        of dotted keys (``{"train.steps": 500}``); errors in those say they came from ``--set``."""
        path = Path(path)
        changes = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
        data = config_io.apply_changes(cls, config_io.read_toml(path), changes, "--set", data_source=str(path))
        return from_dict(data, source=str(path), changed=changes)

    def with_changes(self, changes: Mapping[str, Any], source: str = "--set") -> RunConfig:
        """A copy with the dotted fields in ``changes`` set (``{"train.steps": 500}``), validated; an
        error about a changed field says it came from ``source``. A value of None clears the field."""
        data = config_io.apply_changes(RunConfig, self.model_dump(mode="json", exclude_none=True), changes, source)
        return from_dict(data, source="config", changed=changes, changed_source=source)

    def with_overrides(self, overrides: Sequence[str]) -> RunConfig:
        """A copy with ``--set`` strings applied (``["optim.lr_g=1e-4"]``)."""
        return self.with_changes(parse_overrides(overrides))

    def updated(self, key: str, value: Any, source: str = "code") -> RunConfig:
        """A copy with one dotted field changed, validated like any other input."""
        return self.with_changes({key: value}, source)


def from_dict(data: dict, *, source: str = "code", changed: Sequence[str] | Mapping[str, Any] = (),
              changed_source: str = "--set") -> RunConfig:
    """Validate a config dict; errors say a value came from ``changed_source`` for the dotted keys in
    ``changed``, from ``source`` for the rest."""
    return config_io.validate(RunConfig, data, source=source, changed=set(changed), changed_source=changed_source)


def load_preset(name: str, overrides: Sequence[str] | Mapping[str, Any] = ()) -> RunConfig:
    return RunConfig.load(preset_path(name), overrides)


def field_keys() -> list[str]:
    """Every dotted field of a RunConfig, in schema order."""
    return config_io.field_keys(RunConfig)


def allowed(key: str) -> str:
    """What the dotted field ``key`` accepts, in words: its choices or its bounds."""
    return config_io.allowed(RunConfig, key)


def is_live(key: str) -> bool:
    """Whether the dotted field ``key`` may change while training runs."""
    info = config_io.field_info(RunConfig, key)
    return bool(info and (info.json_schema_extra or {}).get("live"))


# --- which fields make a run what it is ----------------------------------------------------------------
# Beside the live fields, these may differ between a checkpoint and its run folder's config.toml, or change
# when a run is continued: the budgets, and where and how fast it runs (not what it computes).
RESUME_OVERRIDABLE = ("train.steps", "train.max_time")
_PLACEMENT = ("train.device", "train.compile", "train.cuda_graphs", "train.threads", "train.processes",
              "train.tensorboard", "data.workers", "data.memory_limit_mb")


def may_differ_within_run(key: str) -> bool:
    """Whether two configs of one run may differ in the dotted field ``key`` (live, a budget, placement)."""
    return key == "name" or is_live(key) or key in RESUME_OVERRIDABLE or key in _PLACEMENT


def identity_differences(a: RunConfig, b: RunConfig) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for each field that makes ``a`` and ``b`` different runs
    (an mlp checkpoint in a dcgan run folder); empty when they may be the same run."""
    dump_a, dump_b = a.model_dump(mode="json"), b.model_dump(mode="json")
    found = []
    for key in config_io.field_keys(RunConfig):
        section, _, name = key.partition(".")
        va = dump_a[section][name] if name else dump_a[section]
        vb = dump_b[section][name] if name else dump_b[section]
        if va != vb and not may_differ_within_run(key):
            found.append((key, va, vb))
    return found


def _takes_bool(annotation: Any) -> bool:
    return annotation is bool or bool in get_args(annotation)


def _kind_of(annotation: Any) -> str:
    if get_origin(annotation) is list:
        return "a list"
    args = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    if int in args:
        return "a whole number"
    if float in args:
        return "a number"
    if args and not any(isinstance(a, type) for a in args):  # a Literal's choices
        return "one of " + ", ".join(repr(a) for a in args)
    return "a value of the field's type"
