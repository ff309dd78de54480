"""Crash-safe file writes: a reader sees the old file or the new one, never half of either.

Every file ganstudio writes goes through here: ``atomic_write`` for whole files (a temp file in the same
folder, then a rename) and ``append_line`` for the append-only logs (metrics.jsonl, samples/index.jsonl).
A failed write (a full disk) raises :class:`WriteError`, an OSError that names the file, and leaves
nothing behind: no half file, no torn line, no temp file.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

# The temp files atomic_write makes: ".NAME.XXXXXXXX.tmp" (mkstemp's eight random characters). Only a
# kill between mkstemp and the rename leaves one, as big as the file it was becoming.
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class WriteError(OSError):
    """A file could not be written (a full disk, a file-size limit, no permission); names the file."""

    def __str__(self) -> str:
        return f"could not write {self.filename}: {self.strerror}"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` via a temp file in the same folder: write, flush, fsync, rename, fsync the folder.

    On any error the temp file is removed and the previous ``path`` is untouched. A disk error raises
    WriteError even where the writer hides it: ``torch.save`` turns ENOSPC into a RuntimeError
    ("unexpected pos …"), so the file object records the OSError it saw and that one is raised.
    """
    path = Path(path)
    tmp = None
    recorder = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            recorder = _Recording(f)
            write(recorder)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = err if isinstance(err, OSError) else recorder.error if recorder is not None else None
        if isinstance(cause, OSError) and not isinstance(cause, WriteError):
            raise WriteError(cause.errno, cause.strerror or str(cause), str(path)) from err
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def append_line(path: Path, line: str) -> None:
    """Append one line (a ``"\\n"`` is added) to a log that readers follow while it grows.

    One ``os.write`` on an O_APPEND file, so a reader in another process sees the whole line or, mid-write,
    a torn last line it skips. If the write fails or is cut short (a full disk), the file is cut back to
    where it was: no torn line is left for the next line to merge into. A torn last line left by an
    earlier crash is closed with a newline first, so this line stays whole.
    """
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as err:
        raise WriteError(err.errno, err.strerror or str(err), str(path)) from err
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            _write_all(fd, data)
        except OSError as err:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass  # nothing more can be done; readers skip a torn line
            raise WriteError(err.errno, err.strerror or str(err), str(path)) from err
    finally:
        os.close(fd)


def remove_stale_temps(folders: Iterable[Path]) -> list[Path]:
    """Delete atomic_write's leftover temp files (``.last.pt.k3j2h1g0.tmp``) directly in ``folders``.

    Call it only while holding the folder (the run's writer at start): a live writer's temp file looks
    the same. Other files, and sub-folders, are never touched. Returns what was removed.
    """
    removed = []
    for folder in folders:
        try:
            entries = list(Path(folder).iterdir())
        except OSError:
            continue
        for entry in entries:
            if TEMP_FILE.match(entry.name) and entry.is_file() and not entry.is_symlink():
                try:
                    entry.unlink()
                    removed.append(entry)
                except OSError:
                    pass
    return removed


class _Recording:
    """A file object that remembers the first OSError its ``write`` raised (see ``atomic_write``)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
