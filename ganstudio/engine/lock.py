"""One writer per run folder: ``run.lock`` names the process that writes it (pid, host, start time).

The lock is an ``flock`` on that file, which the kernel drops when the holder dies, however it dies
(kill -9 included); the file's JSON only names the holder for the message a second writer gets. So a
lock file whose flock nobody holds is stale: its writer is gone, and it is cleared with a note. A file
naming another host is honoured even when our flock succeeds (flock may not reach across a network
file system): only a person can tell whether that process still runs, and the message says how to clear it.

Taking the lock twice in one thread (the CLI before building the Trainer, then the loop) nests; another
thread or process is refused. No torch here: the studio's worker takes it before torch has loaded.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

LOCK_FILE = "run.lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid in the file decides (see _held_elsewhere)
    fcntl = None


class RunLockedError(RuntimeError):
    """Another process (or thread) writes this run folder; the message names it and what to do."""


class RunLock:
    """``with RunLock(folder) as lock:`` — ``lock.notes`` says what was cleared on the way in."""

    _held: dict[tuple[str, int], list] = {}  # (folder, thread id) -> [fd, depth]: nested takes in one thread
    _guard = threading.Lock()

    def __init__(self, folder: str | Path, command: str = "") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = command or " ".join(Path(sys.argv[0]).name.split()[:1] + sys.argv[1:])[:200]
        self.notes: list[str] = []
        self._made_folder = False
        self._key = (os.path.abspath(self.folder), threading.get_ident())

    # --- taking and giving back ---------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        with self._guard:
            held = self._held.get(self._key)
            if held is not None:
                held[1] += 1
                return self
        self._made_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = self._lock_fd()
        holder = _read(self.path)
        if holder and holder.get("host") != socket.gethostname():
            _unlock(fd)
            raise RunLockedError(
                f"{self.folder} is locked by {_describe(holder)}; if that process is no longer running, "
                f"delete {self.path} and try again")
        if holder and holder.get("pid") != os.getpid():
            self.notes.append(f"cleared a stale lock on {self.folder}: {_describe(holder)} is no longer running")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": self.command}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as err:  # a full disk: the flock alone still keeps a second writer out
            self.notes.append(f"could not record this process in {self.path}: {err.strerror or err}; "
                              "the folder is locked all the same")
        with self._guard:
            self._held[self._key] = [fd, 1]
        return self

    def release(self) -> None:
        with self._guard:
            held = self._held.get(self._key)
            if held is None:
                return
            held[1] -= 1
            if held[1]:
                return
            del self._held[self._key]
        # unlink before unlocking: a process that opened the old file then finds it is not the path's
        # file any more (the inode check in _lock_fd) and tries again
        try:
            os.unlink(self.path)
            if self._made_folder:
                self.folder.rmdir()  # stopped before anything was written: leave no empty folder behind
        except OSError:
            pass  # not empty (the usual case), or already gone
        _unlock(held[0])

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # --- the flock ----------------------------------------------------------------------------------------
    def _lock_fd(self) -> int:
        for _ in range(20):  # a lost race with a writer that just unlinked the file: open again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if _held_elsewhere(fd, self.path, patience=0.25):
                    holder = _read(self.path)
                    who = _describe(holder) if holder else "another process (starting up)"
                    raise RunLockedError(f"{self.folder} is being written by {who}; wait for it to finish or "
                                         "stop it, then try again (one writer per run folder)")
                if os.fstat(fd).st_ino == _inode(self.path):
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise RunLockedError(f"could not lock {self.path}: it keeps being replaced by another process")


def writer_alive(folder: str | Path) -> bool:
    """Whether a process (this one included) holds ``folder``'s lock now: a reader's check, which takes
    nothing. Without a lock file nobody writes the run. This process's own take counts as alive (the
    flock is per open file, so a second open here would succeed and wrongly say nobody holds it)."""
    path = Path(folder) / LOCK_FILE
    with RunLock._guard:
        if any(key[0] == os.path.abspath(folder) for key in RunLock._held):
            return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _held_elsewhere(fd, path)
    finally:
        os.close(fd)  # drops the flock _held_elsewhere may just have taken


def _held_elsewhere(fd: int, path: Path, patience: float = 0.0) -> bool:
    """Takes the flock when nobody holds it. ``patience``: keep trying that long, because a reader's
    ``writer_alive`` holds it for a moment (microseconds) while it checks."""
    if fcntl is not None:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return True
                time.sleep(0.01)
    holder = _read(path)  # no flock: a live pid of this host holds it
    return bool(holder) and holder.get("host") == socket.gethostname() and _alive(holder.get("pid"))


def _unlock(fd: int) -> None:
    os.close(fd)  # closing the last descriptor drops the flock


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _read(path: Path) -> dict | None:
    """The holder named in the lock file; None when it is empty or unreadable (a writer mid-write)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def _describe(holder: dict) -> str:
    command = f" ({holder['command']})" if holder.get("command") else ""
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')}{command}")
