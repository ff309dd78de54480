"""The prepared dataset cache: built once and reused, rebuilt when the folder changes, never left
half-written, bad files skipped and counted, bounded memory when a folder streams from it, and a clear
line when the cache folder cannot be written."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganstudio.data.batches as batches_module
import ganstudio.data.cache as cache
import ganstudio.data.decode as decode
from ganstudio.config import DataConfig
from ganstudio.data import Cancelled, DataError, MapBatches, TensorBatches, build_batches
from ganstudio.data.sources import open_source

REPO = Path(__file__).resolve().parents[2]


def folder(path: Path, n: int, side: int = 10) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, (side, side + 2, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"{i:04}.png")
    return path


def config(path: Path, **kwargs) -> DataConfig:
    return DataConfig(**{"source": "folder", "path": path, "cache": "on", "channels": 3, "image_size": 32,
                         **kwargs})


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> None:
    """A cache folder per test (the suite's is shared by all), so the files listed are this test's."""
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every file decoded from now on (the cache build and the uncached paths call decode_file)."""
    seen, real = [], decode.decode_file

    def counting(path, size, channels):
        seen.append(path)
        return real(path, size, channels)

    monkeypatch.setattr(decode, "decode_file", counting)
    return seen


def take(batches, k: int) -> list[torch.Tensor]:
    return [batches.next()[0] for _ in range(k)]


def prepared_files() -> list[str]:
    where = cache.cache_folder()
    return sorted(p.name for p in where.iterdir()) if where.is_dir() else []


def test_built_once_then_reused_without_decoding(tmp_path, decodes):
    cfg = config(folder(tmp_path / "imgs", 12))
    first = build_batches(cfg, batch_size=4, device="cpu", seed=3)
    assert len(decodes) == 12 and isinstance(first, TensorBatches)
    second = build_batches(cfg, batch_size=4, device="cpu", seed=3)
    assert len(decodes) == 12, "the second build decoded files"
    assert [n.rsplit(".", 1)[1] for n in prepared_files()] == ["json", "u8"]
    plain = build_batches(cfg.model_copy(update={"cache": "off"}), batch_size=4, device="cpu", seed=3)
    for a, b, c in zip(take(first, 5), take(second, 5), take(plain, 5)):  # the same pixels as no cache
        assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("change", ["added", "removed", "changed"])
def test_rebuilt_when_a_file_is_added_removed_or_changed(tmp_path, decodes, change):
    imgs = folder(tmp_path / "imgs", 8)
    cfg = config(imgs)
    build_batches(cfg, batch_size=4, device="cpu", seed=0)
    decodes.clear()
    if change == "added":
        Image.new("RGB", (10, 10), (1, 2, 3)).save(imgs / "new.png")
    elif change == "removed":
        (imgs / "0003.png").unlink()
    else:  # same name and size, other pixels; the mtime is moved on in case the clock is coarse
        target = imgs / "0003.png"
        stat = target.stat()
        Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).save(target)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    batches = build_batches(cfg, batch_size=4, device="cpu", seed=0)
    assert decodes, "the stale cache was reused"
    assert batches.num_images == {"added": 9, "removed": 7, "changed": 8}[change]
    assert len(prepared_files()) == 2  # rebuilt in place: the old cache is not left beside it
    if change == "changed":
        rows = cache.prepare(open_source(cfg)).images
        assert (rows[3] == 200).all()


def test_bad_files_are_skipped_counted_and_reported_again_on_reuse(tmp_path, decodes, files):
    imgs = folder(tmp_path / "imgs", 6)
    (imgs / "x.txt").write_text("not an image")
    files.truncated(imgs / "3b.png", files.noise(64, 64))  # header fine, pixels cut
    cfg = config(imgs, memory_limit_mb=0)
    built = build_batches(cfg, batch_size=2, device="cpu", seed=0)
    reused = build_batches(cfg, batch_size=2, device="cpu", seed=0)
    assert isinstance(built, MapBatches) and built.num_images == reused.num_images == 6
    assert built.warnings == reused.warnings and len(built.warnings) == 1
    assert "skipped 2 of 8 files" in built.warnings[0] and "1 not images, 1 corrupt" in built.warnings[0]
    assert len(decodes) == 8


def test_map_batches_match_in_memory_and_resume_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(batches_module, "_RELEASE_BYTES", 1)  # drop the mapped pages after every batch
    cfg = config(folder(tmp_path / "imgs", 20))
    in_memory = build_batches(cfg, batch_size=6, device="cpu", seed=5)
    mapped = build_batches(cfg.model_copy(update={"memory_limit_mb": 0}), batch_size=6, device="cpu", seed=5)
    assert isinstance(mapped, MapBatches) and not mapped.in_memory
    for a, b in zip(take(in_memory, 7), take(mapped, 7)):  # 3 per epoch: crosses two epoch boundaries
        assert torch.equal(a, b)
    state = mapped.state_dict()
    expected = take(mapped, 5)
    resumed = build_batches(cfg.model_copy(update={"memory_limit_mb": 0}), batch_size=6, device="cpu", seed=0)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(take(resumed, 5), expected))
    in_memory.load_state_dict(state)  # the two stand in for each other across a resume
    assert all(torch.equal(a, b) for a, b in zip(take(in_memory, 5), expected))


def test_streaming_from_the_map_keeps_memory_bounded(tmp_path, monkeypatch):
    """A folder of 1,200 images at 64 px RGB (14 MiB) with data.memory_limit_mb = 1 streams from the map:
    the build decodes one small chunk at a time, and a whole epoch of batches never allocates more
    than a few batches' worth."""
    imgs = folder(tmp_path / "imgs", 1200, side=6)  # tiny files, upscaled: cheap to make and decode
    chunks, real = [], decode.decode_files

    def recording(paths, *args, **kwargs):
        chunks.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(cache, "_CHUNK_BYTES", 2 ** 20)  # 85 images of 12 KiB
    monkeypatch.setattr(decode, "decode_files", recording)
    cfg = config(imgs, image_size=64, memory_limit_mb=1)
    batches = build_batches(cfg, batch_size=64, device="cpu", seed=0)
    assert isinstance(batches, MapBatches) and max(chunks) == 85 and sum(chunks) == 1200
    data_bytes = 1200 * 3 * 64 * 64
    rss_before = _rss_anon()
    tracemalloc.start()
    try:
        for _ in range(batches.batches_per_epoch):
            batches.next()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < data_bytes / 8, f"reading an epoch allocated {peak:,} bytes at once"
    if rss_before is not None:
        assert _rss_anon() - rss_before < data_bytes / 2


def _rss_anon() -> int | None:
    """Anonymous resident memory (Linux): the map's file pages are not in it, a copy of them would be."""
    try:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("RssAnon"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024


CHILD = textwrap.dedent("""
    import sys, time
    import ganstudio.data.decode as decode
    from ganstudio.config import DataConfig
    from ganstudio.data import build_batches
    real = decode.decode_file
    def slow(path, size, channels):
        time.sleep(0.05)
        return real(path, size, channels)
    decode.decode_file = slow
    build_batches(DataConfig(source="folder", path=sys.argv[1], cache="on"), batch_size=2, device="cpu",
                  seed=0)
    print("finished")
""")


def test_a_kill_during_the_build_leaves_no_valid_cache_and_no_temp_file(tmp_path, decodes):
    imgs = folder(tmp_path / "imgs", 200)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(imgs)], cwd=REPO, env=os.environ.copy(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(n.endswith(".tmp") for n in prepared_files()):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never started its build"
            time.sleep(0.02)
        time.sleep(0.2)  # well into the decoding (200 files x 50 ms on 8 threads: over a second)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate()
    assert not [n for n in prepared_files() if n.endswith(".json")], "a half-built cache has an index"
    batches = build_batches(DataConfig(source="folder", path=imgs, cache="on"), batch_size=2, device="cpu", seed=0)
    assert batches.num_images == 200 and len(decodes) == 200  # rebuilt from scratch
    assert not [n for n in prepared_files() if n.endswith(".tmp")]


def test_a_cancel_during_the_build_leaves_nothing(tmp_path, monkeypatch):
    imgs = folder(tmp_path / "imgs", 40)
    monkeypatch.setattr(cache, "_CHUNK_BYTES", 10 * 3 * 32 * 32)  # 10 images per chunk
    monkeypatch.setattr(cache, "_PROGRESS_EVERY", 0)  # every file's progress
    done = []
    with pytest.raises(Cancelled, match="decoding"):
        build_batches(config(imgs), batch_size=2, device="cpu", seed=0,
                      cancelled=lambda: len(done) >= 12, progress=lambda n, total: done.append((n, total)))
    assert done == [(k, 40) for k in range(1, 13)]  # into the second chunk
    assert prepared_files() == []


def test_the_build_says_its_progress_within_a_chunk_and_always_its_end(tmp_path, monkeypatch):
    """A chunk of small images is thousands of files (seconds): progress comes as files are done, in
    order, at most every _PROGRESS_EVERY seconds, and the last file's always."""
    imgs = folder(tmp_path / "imgs", 30)
    monkeypatch.setattr(cache, "_PROGRESS_EVERY", 0)
    done = []
    build_batches(config(imgs), batch_size=2, device="cpu", seed=0, progress=lambda n, total: done.append((n, total)))
    assert done == [(k, 30) for k in range(1, 31)]  # one chunk, every file

    monkeypatch.setattr(cache, "_PROGRESS_EVERY", 3600)
    done.clear()
    build_batches(config(folder(tmp_path / "more", 30)), batch_size=2, device="cpu", seed=0,
                  progress=lambda n, total: done.append((n, total)))
    assert done == [(30, 30)]  # none in between, the end all the same


def test_an_unwritable_cache_folder_is_one_clear_line_or_a_fallback(tmp_path, monkeypatch):
    imgs = folder(tmp_path / "imgs", 6)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("GANSTUDIO_CACHE", str(tmp_path / "a-file" / "cache"))  # under a file: never writable
    with pytest.raises(cache.CacheUnavailable) as err:
        build_batches(config(imgs), batch_size=2, device="cpu", seed=0)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "a-file" / "cache" / "prepared") in message
    assert "GANSTUDIO_CACHE" in message and "data.cache = 'off'" in message
    assert isinstance(err.value, DataError)
    monkeypatch.setattr(batches_module, "CACHE_FROM", 1)  # auto: decoded without the cache, with a warning
    batches = build_batches(config(imgs, cache="auto"), batch_size=2, device="cpu", seed=0)
    assert batches.num_images == 6 and "decoding the folder without it" in batches.warnings[-1]


def test_a_full_disk_fails_before_decoding_and_leaves_nothing(tmp_path, monkeypatch, decodes):
    imgs = folder(tmp_path / "imgs", 6)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(cache.CacheUnavailable, match="No space left on device.*needs about"):
        build_batches(config(imgs), batch_size=2, device="cpu", seed=0)
    assert decodes == [] and prepared_files() == []


def test_auto_leaves_small_folders_uncached_and_off_never_caches(tmp_path):
    imgs = folder(tmp_path / "imgs", 6)
    build_batches(config(imgs, cache="auto"), batch_size=2, device="cpu", seed=0)
    build_batches(config(imgs, cache="off", memory_limit_mb=0, workers=0), batch_size=2, device="cpu", seed=0)
    assert prepared_files() == []


def test_a_trainer_trains_from_the_map(tmp_path, tiny_config):
    """The smoke run of the path: a folder streamed from its cache trains two finite steps."""
    from ganstudio.engine import Trainer

    imgs = folder(tmp_path / "imgs", 32)
    config = tiny_config.model_copy(update={"data": config_for(imgs)})
    trainer = Trainer(config)
    assert isinstance(trainer.batches, MapBatches)
    stats = [trainer.step() for _ in range(2)]
    assert all(np.isfinite([s.loss_d, s.loss_g]).all() for s in stats)
    trainer.close()


def config_for(imgs: Path) -> DataConfig:
    return DataConfig(source="folder", path=imgs, cache="on", channels=1, image_size=28, memory_limit_mb=0,
                      workers=0)
