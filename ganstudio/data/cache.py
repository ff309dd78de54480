"""The prepared dataset cache: an image folder decoded, resized and cropped once into a uint8 file.

In ``<cache folder>/prepared/`` (``$GANSTUDIO_CACHE`` or the user cache folder), per folder and settings:

- ``KEY.u8``: the images, uint8 (M, C, H, W), row after row and nothing else, so ``np.memmap`` reads
  it as it is and a batch is one gather of whole rows in the layout training wants (no transpose);
- ``KEY.json``: the index: the format version, the settings that shaped the pixels, every listed file's
  (path, size, mtime_ns, row; row -1 = skipped) and the skip warning.

``KEY`` hashes the folder's resolved path and those settings; ``max_images`` and ``holdout`` are left
out, so changing them rebuilds the one cache of that folder instead of leaving another behind.

A cache is valid only with its index, and the index is written last: the old index is deleted before a
rebuild starts, the pixels go to ``.KEY.u8.PID.XXXXXXXX.tmp`` and are renamed into place when complete,
then the index is written atomically. A kill at any point leaves either no index (rebuilt next time) or
a complete cache; the next build removes temp files whose process is gone. A run reading the map while
another process rebuilds keeps reading the old file: the rename gives the new one a new inode.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import ganstudio.data.decode as decode  # by module: tests count calls of decode.decode_file
from ganstudio.data.base import CancelCheck, DataError, ImageSet, check_cancelled
from ganstudio.data.source_types import FileSource
from ganstudio.data.torchvision_sources import cache_base
from ganstudio.fileio import atomic_write_bytes

FORMAT = 1  # bump when the pixels or the layout change: every older cache is then rebuilt
# What else shapes the pixels; part of the key and the index, so a change to it is a new format too
POLICY = "exif-upright, alpha-on-white, shorter-side antialiased bilinear, centre-crop"
_CHUNK_BYTES = 64 * 2 ** 20  # decoded images held in memory at once while building (64 MiB)
_PROGRESS_EVERY = 0.1  # seconds between two progress(done, total) calls while building
Progress = Callable[[int, int], None] | None  # progress(files_done, files_total), e.g. for a status bar


class CacheUnavailable(DataError):
    """The cache folder cannot be written (no permission, not a folder, a full disk)."""


@dataclass
class Prepared:
    """A complete cache, opened: ``images`` is a read-only map of the file; nothing is read yet."""

    path: Path
    images: np.memmap  # uint8 (M, C, H, W)
    kept: list[int]  # the source's file index of each row
    warnings: list[str]  # the skip warning, if files were skipped (the folder's own notes not included)
    built: bool  # False when an existing cache was reused

    def labels(self, source: FileSource) -> torch.Tensor | None:
        return None if source.labels is None else source.labels[torch.tensor(self.kept, dtype=torch.long)]

    def image_set(self, source: FileSource) -> ImageSet:
        """Everything read into memory (one sequential read of the file) for the in-memory path."""
        images = torch.from_numpy(np.array(self.images))  # a writable copy, off the map
        return ImageSet(images, self.labels(source), source.class_names, list(source.warnings) + self.warnings)


def cache_folder() -> Path:
    return cache_base() / "prepared"


def settings(source: FileSource) -> dict:
    """What shapes the cached pixels: the key hashes it and the index keeps it."""
    return {"format": FORMAT, "root": str(Path(source.where).resolve()), "size": source.size,
            "channels": source.channels, "policy": POLICY}


def cache_key(source: FileSource) -> str:
    text = json.dumps(settings(source), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def scan(paths: list[Path]) -> list[list]:
    """[path, size, mtime_ns] per file: one stat each, no reading (~0.5 s for 100k files from a warm
    disk cache). A file that vanished gets size -1, so it differs from any cache that had it."""
    listing = []
    for path in paths:
        try:
            st = os.stat(path)
            listing.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            listing.append([str(path), -1, 0])
    return listing


def prepare(source: FileSource, *, cancelled: CancelCheck = None, progress: Progress = None) -> Prepared:
    """The cache of ``source``: reused when its index matches a fresh scan of the files, else built.

    Building decodes every file once (skipping bad ones, counted as the in-memory path does), with a
    progress bar on stderr and ``progress(done, total)`` after each chunk. Raises :class:`Cancelled`
    soon after ``cancelled()`` turns true (nothing valid is left), :class:`CacheUnavailable` when the
    cache folder cannot be written, and DataError when no file is readable.
    """
    folder, key = cache_folder(), cache_key(source)
    check_cancelled(cancelled, f"checking the prepared cache of {source.where}")
    listing = scan(source.paths)
    found = _open(folder, key, listing, source)
    return found if found is not None else _build(source, folder, key, listing, cancelled, progress)


def _row_shape(source: FileSource) -> tuple[int, int, int]:
    return source.channels, source.size, source.size


def _open(folder: Path, key: str, listing: list[list], source: FileSource) -> Prepared | None:
    """The cache when its index is complete, of these settings and of exactly these files; else None."""
    try:
        index = json.loads((folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None  # none yet, unreadable or torn: rebuilt
    files = index.get("files", [])
    if index.get("settings") != settings(source) or [f[:3] for f in files] != listing:
        return None  # a file added, removed or changed (size or mtime), or other settings
    data = folder / f"{key}.u8"
    rows = index.get("rows", -1)
    row_bytes = int(np.prod(_row_shape(source)))
    try:
        if rows < 1 or data.stat().st_size != rows * row_bytes:
            return None
    except OSError:
        return None
    images = np.memmap(data, dtype=np.uint8, mode="r", shape=(rows, *_row_shape(source)))
    kept = [i for i, f in enumerate(files) if f[3] >= 0]
    return Prepared(data, images, kept, list(index.get("warnings", [])), built=False)


def _build(source: FileSource, folder: Path, key: str, listing: list[list], cancelled: CancelCheck,
           progress: Progress) -> Prepared:
    row_bytes = int(np.prod(_row_shape(source)))
    need = len(source.paths) * row_bytes
    # the pid tells a later build whether the writer is gone; the random part keeps two builds in one
    # process (two runs in one studio) from writing into one file
    tmp = folder / f".{key}.u8.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.json").unlink(missing_ok=True)  # first: from here on, a kill leaves no valid cache
        _remove_stale_data(folder, key)
        f = open(tmp, "wb")
    except OSError as err:
        raise _unavailable(folder, err, need) from None
    try:
        with f:
            _reserve(f, need)
            kept, skipped = _decode_into(f, source, cancelled, progress)
            f.truncate(f.tell())  # the rows of skipped files were reserved but never written
            f.flush()
            os.fsync(f.fileno())
        warnings: list[str] = []
        decode.report_skipped(skipped, len(source.paths), source.where, warnings)
        if not kept:
            raise DataError(f"no readable image in {source.where}: {warnings[-1]}; "
                            "add PNG, JPEG, BMP, GIF, WebP or TIFF images to it")
        os.replace(tmp, folder / f"{key}.u8")
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _unavailable(folder, err, need) from None
        raise
    row_of = {i: row for row, i in enumerate(kept)}
    index = {"format": FORMAT, "settings": settings(source), "rows": len(kept), "warnings": warnings,
             "files": [entry + [row_of.get(i, -1)] for i, entry in enumerate(listing)]}
    try:
        atomic_write_bytes(folder / f"{key}.json", json.dumps(index).encode())
    except OSError as err:
        (folder / f"{key}.u8").unlink(missing_ok=True)  # useless without its index, and as big as the data
        raise _unavailable(folder, err, need) from None
    images = np.memmap(folder / f"{key}.u8", dtype=np.uint8, mode="r", shape=(len(kept), *_row_shape(source)))
    return Prepared(folder / f"{key}.u8", images, kept, warnings, built=True)


def _decode_into(f, source: FileSource, cancelled: CancelCheck, progress: Progress
                 ) -> tuple[list[int], list[decode.SkippedImage]]:
    """Decode the files in chunks of about 64 MiB and append the readable ones' pixels to ``f``; the
    memory held is one chunk's, whatever the folder's size. ``progress`` hears of each file as it is
    done, at most every ``_PROGRESS_EVERY`` seconds, and of the last one always (a chunk of small images
    is thousands of files: seconds of decoding)."""
    from tqdm import tqdm

    paths, n = source.paths, len(source.paths)
    per_chunk = max(1, _CHUNK_BYTES // int(np.prod(_row_shape(source))))
    kept: list[int] = []
    skipped: list[decode.SkippedImage] = []
    said, start = time.monotonic(), 0

    def done(k: int) -> None:  # the first k files of the chunk from ``start`` are done
        nonlocal said
        bar.update(1)
        if progress is not None and (start + k == n or time.monotonic() - said >= _PROGRESS_EVERY):
            said = time.monotonic()
            progress(start + k, n)

    with tqdm(total=n, desc=f"preparing {source.where}", unit="img") as bar:  # tqdm writes to stderr
        for start in range(0, n, per_chunk):
            check_cancelled(cancelled, f"decoding {source.where} ({start} of {n} files done)")
            images, kept_here, skipped_here = decode.decode_files(
                paths[start:start + per_chunk], source.size, source.channels, cancelled=cancelled,
                where=source.where, done=done)
            f.write(memoryview(images.contiguous().numpy()).cast("B"))  # ENOSPC raises OSError here
            kept += [start + i for i in kept_here]
            skipped += skipped_here
    return kept, skipped


def _reserve(f, nbytes: int) -> None:
    """Claim the disk space up front, so a full disk fails now, in one clear line, not after minutes
    of decoding (and a write into a map on a full disk would kill the process with SIGBUS: the pixels
    are therefore written with write(), never through a map)."""
    if not hasattr(os, "posix_fallocate") or nbytes == 0:
        return
    try:
        os.posix_fallocate(f.fileno(), 0, nbytes)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # a filesystem without it: the writes still raise ENOSPC, only later
        raise


def _remove_stale_data(folder: Path, key: str) -> None:
    """Delete the old pixels (their index is gone already), so a rebuild needs the room of one copy,
    not two, and ``.KEY.u8.PID.XXXXXXXX.tmp`` files whose process is gone (a kill mid-build). A live
    builder's temp file stays; a pid reused since keeps its file until a later build: harmless. A run
    still reading the old pixels keeps them until it closes them (POSIX unlink semantics)."""
    try:
        (folder / f"{key}.u8").unlink(missing_ok=True)
    except OSError:
        pass  # Windows refuses to delete a mapped file; the rename replaces it later instead
    pattern = re.compile(rf"^\.{key}\.u8\.(\d+)\.[0-9a-f]{{8}}\.tmp$")
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _unavailable(folder: Path, err: OSError, need: int) -> CacheUnavailable:
    return CacheUnavailable(
        f"cannot write the prepared-data cache in {folder} ({err.strerror or err}); it needs about "
        f"{need / 2 ** 20:.0f} MiB there. Free space there, point GANSTUDIO_CACHE at a writable folder "
        "with room, or set data.cache = 'off'")
