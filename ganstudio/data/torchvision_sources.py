"""torchvision datasets (train split) in ganstudio's cache folder: found, imported, or downloaded.

The cache is ``$GANSTUDIO_CACHE/datasets`` (else the platform's user cache folder), laid out exactly
as torchvision expects, so a dataset imported here is also what torchvision itself would find.
``data.import_from`` imports files a person already has, without the network; ``data.download``
lets torchvision download them (with its own progress bar). A download runs in a thread of its own, so
a stop answers at once: urllib's reads cannot be interrupted, so the download is left to finish (or
die with the process), and the next start of the same dataset waits on it instead of starting another.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from functools import partial
from pathlib import Path

import platformdirs
import torch

from ganstudio.config import DataConfig
from ganstudio.data.base import CancelCheck, DataError, check_cancelled
from ganstudio.data.idx import parse_idx, read_idx_bytes
from ganstudio.data.source_types import ArraySource, FileSource, Source, idx_source
from ganstudio.fileio import atomic_write

MNIST_FAMILY = ("MNIST", "FashionMNIST", "KMNIST")
_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # imported too when present: torchvision
# only accepts a raw/ folder holding all four
_SVHN_FILE = "train_32x32.mat"

# What to fetch by hand, and from where, for the error that says so
_WHERE = {
    "MNIST": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "FashionMNIST": "https://github.com/zalandoresearch/fashion-mnist (on Debian/Ubuntu: "
                    "apt-get install dataset-fashion-mnist, then use /usr/share/datasets/fashion-mnist)",
    "KMNIST": "https://github.com/rois-codh/kmnist",
    "CIFAR10": "https://www.cs.toronto.edu/~kriz/cifar.html",
    "SVHN": "http://ufldl.stanford.edu/housenumbers/",
    "CelebA": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
}
_FILES = {
    **{name: "train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz" for name in MNIST_FAMILY},
    "CIFAR10": "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder)",
    "SVHN": "train_32x32.mat",
    "CelebA": "img_align_celeba.zip (or its extracted img_align_celeba folder), list_attr_celeba.txt, "
              "identity_CelebA.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt and "
              "list_eval_partition.txt",
}


def cache_base() -> Path:
    """ganstudio's cache folder: ``$GANSTUDIO_CACHE``, else the platform's user cache folder."""
    return Path(os.environ.get("GANSTUDIO_CACHE") or platformdirs.user_cache_dir("ganstudio")).expanduser()


def cache_root() -> Path:
    """Where torchvision datasets are kept: ``$GANSTUDIO_CACHE/datasets`` or the user cache folder."""
    return cache_base() / "datasets"


def torchvision_source(cfg: DataConfig, cancelled: CancelCheck = None) -> Source:
    """The training split of ``cfg.source`` (``torchvision:NAME``), from the cache, imported or downloaded;
    Cancelled soon after ``cancelled()`` turns true during a download."""
    name = cfg.source.removeprefix("torchvision:")
    return READERS[name](cache_root(), cfg, cancelled)


def pending_download(cfg: DataConfig) -> Path | None:
    """The cache folder a start with ``cfg`` will download into: a torchvision dataset not in the cache
    yet, with ``data.download`` on and no ``data.import_from``. None when nothing is to be fetched. A
    download may take minutes, so the studio says so when it starts one."""
    name = cfg.source.removeprefix("torchvision:")
    if name not in READERS or not cfg.download or cfg.import_from is not None or _in_cache(name, cache_root()):
        return None
    return cache_root()


def _in_cache(name: str, root: Path) -> bool:
    """Whether the files each reader needs before it can skip importing or downloading are there."""
    if name in MNIST_FAMILY:
        return all((root / name / "raw" / f).is_file() for f in _IDX_TRAIN)
    return {"CIFAR10": (root / "cifar-10-batches-py").is_dir, "SVHN": (root / "SVHN" / _SVHN_FILE).is_file,
            "CelebA": (root / "celeba" / "img_align_celeba").is_dir}[name]()


def _missing(name: str, where: Path, cfg: DataConfig) -> DataError:
    return DataError(
        f"torchvision:{name} is not in the cache folder ({where}) and data.download is off. Either set "
        f"data.download = true, or download {_FILES[name]} from {_WHERE[name]} and set data.import_from "
        "to the folder holding them (nothing is downloaded then)")


def _not_found_in(name: str, folder: Path, detail: str = "") -> DataError:
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    listing = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return DataError(
        f"data.import_from = {folder}: {detail or f'no {name} files there'}. Expected {_FILES[name]} "
        f"(from {_WHERE[name]})" + (f"; the folder holds {listing}" if listing else "; the folder does not exist"))


def _torchvision_dataset(name: str, root: Path, cfg: DataConfig, cancelled: CancelCheck = None, **kwargs):
    """Build torchvision's class; its 'not found'/'corrupted'/network errors become DataError."""
    import torchvision.datasets as tvd
    download = cfg.download and cfg.import_from is None
    build = partial(getattr(tvd, name), str(root), download=download, **kwargs)
    try:
        return _in_background(f"{name} in {root}", build, cancelled) if download else build()
    except (RuntimeError, OSError, ImportError) as err:  # URLError is an OSError
        if isinstance(err, ImportError) and err.name == "scipy":
            raise DataError(f"torchvision:{name} needs scipy to read its .mat file: pip install scipy") from None
        how = (f"download {_FILES[name]} from {_WHERE[name]} and set data.import_from to their folder")
        if cfg.import_from is not None:
            raise DataError(f"torchvision:{name} imported from {cfg.import_from} does not check out: {err}. "
                            f"The files may be damaged or from another release; {how}") from None
        if not download:
            raise _missing(name, root, cfg) from None
        said = " ".join(str(err).split())  # torchvision's message runs over several lines
        raise DataError(f"could not download torchvision:{name} into {root}: {said}. Without a network, "
                        f"{how}") from None


_DOWNLOADS: dict[str, Future] = {}  # in flight, by dataset and folder: a cancelled start leaves its download
_DOWNLOADS_LOCK = threading.Lock()


def _in_background(key: str, build: Callable[[], object], cancelled: CancelCheck) -> object:
    """``build()`` (which may download for minutes) in a daemon thread, or the one already building
    ``key``; its result or its error, or Cancelled within 0.1 s of ``cancelled()`` turning true. A file
    left half-written by a process that exits is fetched again: torchvision checks each one's md5."""
    with _DOWNLOADS_LOCK:
        future = _DOWNLOADS.get(key)
        if future is None or future.done():
            future = _DOWNLOADS[key] = Future()
            threading.Thread(target=_fulfil, args=(key, future, build), name=f"download {key}", daemon=True).start()
    while not future.done():
        check_cancelled(cancelled, f"downloading {key}")
        wait([future], timeout=0.1)
    return future.result()


def _fulfil(key: str, future: Future, build: Callable[[], object]) -> None:
    try:
        future.set_result(build())
    except BaseException as err:  # noqa: BLE001 - handed to whoever waits on it
        future.set_exception(err)
    with _DOWNLOADS_LOCK:  # the waiters hold it; the table must not keep a dataset alive
        if _DOWNLOADS.get(key) is future:
            del _DOWNLOADS[key]


# --- MNIST, Fashion-MNIST, KMNIST --------------------------------------------------------------------
def _mnist_like(name: str, root: Path, cfg: DataConfig, cancelled: CancelCheck = None) -> ArraySource:
    raw = root / name / "raw"
    if not _in_cache(name, root):
        if cfg.import_from is not None:
            _import_idx(name, Path(cfg.import_from).expanduser(), raw)
        elif cfg.download:
            _torchvision_dataset(name, root, cfg, cancelled, train=True)
        else:
            raise _missing(name, raw, cfg)
    import torchvision.datasets as tvd
    # read the uint8 arrays straight from the files (as torchvision does); no per-image PIL decode
    return idx_source(f"torchvision:{name}", raw / _IDX_TRAIN[0], raw / _IDX_TRAIN[1],
                      list(getattr(tvd, name).classes), cfg)


def _import_idx(name: str, folder: Path, raw: Path) -> None:
    """Decompress the IDX files found in ``folder`` (.gz or not) into torchvision's ``raw/`` layout."""
    found = {stem: _find_idx(folder, stem) for stem in _IDX_TRAIN + _IDX_TEST}
    if not all(found[stem] for stem in _IDX_TRAIN):
        raise _not_found_in(name, folder, "the training files are not there")
    for stem, source in found.items():
        if source is None:
            continue
        data = read_idx_bytes(source)
        parse_idx(data, str(source))  # never cache a damaged file: it would look valid to torchvision
        atomic_write(raw / stem, lambda f, data=data: f.write(data))


def _find_idx(folder: Path, stem: str) -> Path | None:
    """``stem`` (e.g. train-images-idx3-ubyte) in ``folder``, also as .gz, with the dot some mirrors use
    (train-images.idx3-ubyte), or in a torchvision-style ``NAME/raw`` below it."""
    names = [stem, stem.replace("-idx", ".idx")]
    folders = [folder, *sorted(folder.glob("*/raw")), folder / "raw"]
    for parent in folders:
        for candidate in names:
            for suffix in ("", ".gz"):
                path = parent / (candidate + suffix)
                if path.is_file():
                    return path
    return None


# --- CIFAR-10 ------------------------------------------------------------------------------------------
def _cifar10(root: Path, cfg: DataConfig, cancelled: CancelCheck = None) -> ArraySource:
    import torchvision.datasets as tvd
    batches = root / tvd.CIFAR10.base_folder
    if not _in_cache("CIFAR10", root):
        if cfg.import_from is not None:
            _import_cifar10(Path(cfg.import_from).expanduser(), root)
        elif not cfg.download:
            raise _missing("CIFAR10", batches, cfg)
    dataset = _torchvision_dataset("CIFAR10", root, cfg, cancelled, train=True)  # checks every batch file's md5
    return ArraySource(
        name="torchvision:CIFAR10", size=cfg.image_size, channels=cfg.channels,
        array=torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(),  # NHWC -> NCHW
        labels=torch.tensor(dataset.targets, dtype=torch.long), class_names=list(dataset.classes))


def _import_cifar10(folder: Path, root: Path) -> None:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, extract_archive
    archive = folder / CIFAR10.filename
    if archive.is_file():
        if not check_integrity(str(archive), CIFAR10.tgz_md5):
            raise _not_found_in("CIFAR10", folder, f"{archive.name} does not match the published file "
                                "(md5 differs); download it again")
        extract_archive(str(archive), str(root))
        return
    for extracted in (folder / CIFAR10.base_folder, folder):
        if (extracted / "data_batch_1").is_file():
            shutil.copytree(extracted, root / CIFAR10.base_folder, dirs_exist_ok=True)
            return
    raise _not_found_in("CIFAR10", folder)


# --- SVHN ------------------------------------------------------------------------------------------------
def _svhn(root: Path, cfg: DataConfig, cancelled: CancelCheck = None) -> ArraySource:
    present = _in_cache("SVHN", root)
    root = root / "SVHN"  # torchvision keeps SVHN's .mat files directly in root; give them a folder
    if not present:
        if cfg.import_from is not None:
            source = Path(cfg.import_from).expanduser() / _SVHN_FILE
            if not source.is_file():
                raise _not_found_in("SVHN", Path(cfg.import_from))
            _link_or_copy(source, root / _SVHN_FILE)
        elif not cfg.download:
            raise _missing("SVHN", root, cfg)
    dataset = _torchvision_dataset("SVHN", root, cfg, cancelled, split="train")  # checks the md5, needs scipy
    return ArraySource(
        name="torchvision:SVHN", size=cfg.image_size, channels=cfg.channels,
        array=torch.from_numpy(dataset.data).contiguous(),  # already (N, 3, 32, 32)
        labels=torch.from_numpy(dataset.labels).long(), class_names=[str(d) for d in range(10)])


# --- CelebA ------------------------------------------------------------------------------------------------
def _celeba(root: Path, cfg: DataConfig, cancelled: CancelCheck = None) -> FileSource:
    from torchvision.datasets import CelebA
    base = root / CelebA.base_folder
    if not _in_cache("CelebA", root):
        if cfg.import_from is not None:
            _import_celeba(Path(cfg.import_from).expanduser(), base)
        elif not cfg.download:
            raise _missing("CelebA", base, cfg)
    # target_type=[]: CelebA's 40 attributes are not classes; the images are used unlabelled
    dataset = _torchvision_dataset("CelebA", root, cfg, cancelled, split="train", target_type=[])
    return FileSource(
        name="torchvision:CelebA", size=cfg.image_size, channels=cfg.channels, labels=None,
        class_names=None, paths=[base / "img_align_celeba" / f for f in dataset.filename],
        where=str(base / "img_align_celeba"), check_headers=False)  # a known set of JPEGs


def _import_celeba(folder: Path, base: Path) -> None:
    from torchvision.datasets import CelebA
    from torchvision.datasets.utils import check_integrity, extract_archive
    for _, md5, filename in CelebA.file_list:
        source = folder / filename
        if filename.endswith(".zip"):
            if (folder / "img_align_celeba").is_dir():  # already extracted: link the folder, no copy
                base.mkdir(parents=True, exist_ok=True)
                (base / "img_align_celeba").unlink(missing_ok=True)  # a link left dangling earlier
                (base / "img_align_celeba").symlink_to((folder / "img_align_celeba").resolve())
            elif source.is_file():
                if not check_integrity(str(source), md5):
                    raise _not_found_in("CelebA", folder, f"{filename} does not match the published "
                                        "file (md5 differs); download it again")
                extract_archive(str(source), str(base))  # ~1.4 GB, a minute or two
            else:
                raise _not_found_in("CelebA", folder, "neither img_align_celeba.zip nor img_align_celeba/")
        elif source.is_file():
            _link_or_copy(source, base / filename)  # torchvision checks these md5s when it loads
        else:
            raise _not_found_in("CelebA", folder, f"{filename} is missing")


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs no space; across file systems fall back to a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# catalog.TORCHVISION_DATASETS, each one's reader: (cache root, config, cancelled) -> Source
READERS: dict[str, Callable[[Path, DataConfig, CancelCheck], Source]] = {
    **{name: partial(_mnist_like, name) for name in MNIST_FAMILY},
    "CIFAR10": _cifar10, "SVHN": _svhn, "CelebA": _celeba,
}
