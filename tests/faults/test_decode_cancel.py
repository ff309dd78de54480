"""Interruptible data loading: a dataset being listed, checked or decoded stops soon after its caller's
``cancelled()`` turns true, raising Cancelled and keeping nothing; a stream stops its workers promptly."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import torch
from PIL import Image

import ganstudio.data.decode as decode
import ganstudio.data.source_types as source_types
from ganstudio.config import DataConfig
from ganstudio.data import Cancelled, DataError, StreamBatches, build_batches, load_images
from ganstudio.data.source_types import ArraySource

SLOW_S = 0.02  # one simulated decode; 400 of them on the pool take ~1-4 s, a cancel must not wait for that


def folder(path, n: int):
    """``n`` tiny PNGs in ``path`` (the slow part, decoding, is simulated)."""
    for i in range(n):
        Image.new("L", (8, 8), i % 256).save(path / f"{i:04}.png")
    return DataConfig(source="folder", path=path)


class CancelAfter:
    """A ``cancelled`` callable that another thread turns true once ``after`` files were decoded."""

    def __init__(self, after: int) -> None:
        self.after, self.done, self.lock = after, 0, threading.Lock()
        self.reached, self.flag = threading.Event(), threading.Event()
        self.set_at: float | None = None

    def decoded(self) -> None:
        with self.lock:
            self.done += 1
            if self.done == self.after:
                self.reached.set()

    def cancel_from_another_thread(self) -> threading.Thread:
        def cancel() -> None:
            self.reached.wait(timeout=60)
            self.set_at = time.perf_counter()
            self.flag.set()
        thread = threading.Thread(target=cancel, daemon=True)
        thread.start()
        return thread

    def __call__(self) -> bool:
        return self.flag.is_set()


def test_decoding_a_folder_stops_soon_after_cancel(tmp_path, monkeypatch):
    """build_batches on a folder whose decode is slow, cancelled from another thread after 20 of 400
    files, raises Cancelled within a second and decodes few of the rest."""
    cfg = folder(tmp_path, 400)
    cancel = CancelAfter(20)
    real = decode.decode_file

    def slow_decode(path, size, channels):
        cancel.decoded()
        time.sleep(SLOW_S)
        return real(path, size, channels)

    monkeypatch.setattr(decode, "decode_file", slow_decode)
    thread = cancel.cancel_from_another_thread()
    with pytest.raises(Cancelled, match=f"decoding {tmp_path}"):
        build_batches(cfg, batch_size=4, device="cpu", seed=0, cancelled=cancel)
    waited = time.perf_counter() - cancel.set_at
    thread.join()
    assert waited < 1.0, f"took {waited:.2f} s to stop after the cancel"
    assert cancel.done < 200, f"decoded {cancel.done} of 400 files after a cancel at 20"


def test_listing_a_large_tree_is_interruptible(tmp_path, monkeypatch):
    """The folder scan asks once per folder: cancelled at its 5th question, it stops before listing the
    other 45 folders, and no file is decoded."""
    for d in range(50):
        (tmp_path / f"d{d:02}").mkdir()
        (tmp_path / f"d{d:02}" / "x.png").write_bytes(b"")
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) >= 5

    monkeypatch.setattr(decode, "decode_file", lambda *a: pytest.fail("decoded after a cancel"))
    with pytest.raises(Cancelled, match=f"listing the files in {tmp_path}"):
        load_images(DataConfig(source="folder", path=tmp_path), cancelled=cancelled)
    assert len(asked) == 5


def test_checking_the_headers_of_a_streamed_folder_is_interruptible(tmp_path, monkeypatch):
    """The streaming path reads one header per file before training: it asks every 32 files, so a
    cancel after 40 of 300 slow header reads stops within the next 32."""
    cfg = folder(tmp_path, 300).model_copy(update={"memory_limit_mb": 0, "workers": 0})
    cancel = CancelAfter(40)
    real = source_types.check_header

    def slow_check(path):
        cancel.decoded()
        if cancel.done == 40:
            cancel.flag.set()  # the same thread here: the count it stops within is the promise
        return real(path)

    monkeypatch.setattr(source_types, "check_header", slow_check)
    with pytest.raises(Cancelled, match="checking the files"):
        build_batches(cfg, batch_size=4, device="cpu", seed=0, cancelled=cancel)
    assert 40 <= cancel.done <= 64


def test_preparing_an_array_dataset_is_interruptible():
    """An in-memory array source (the bundled set, CIFAR...) resized in chunks asks between chunks:
    cancelled after its first question (opening the source), it stops at the first chunk."""
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) >= 2

    with pytest.raises(Cancelled, match="preparing the bundled"):
        build_batches(DataConfig(image_size=64), batch_size=4, device="cpu", seed=0, cancelled=cancelled)


def test_not_cancelled_changes_nothing(tmp_path):
    """A ``cancelled`` that stays false gives the same images as no ``cancelled`` at all."""
    cfg = folder(tmp_path, 40)
    assert torch.equal(load_images(cfg, cancelled=lambda: False).images, load_images(cfg).images)


def test_cancelled_is_not_a_data_error():
    """Code that says "check your data" for a DataError must not say it to someone who closed the window."""
    assert not issubclass(Cancelled, DataError)


# --- streaming: the loader's worker processes ----------------------------------------------------------
class SlowSource(ArraySource):
    """Each item takes ITEM_S, and says when the first one started (workers inherit the event: fork)."""

    ITEM_S = 0.2
    started = None

    def item(self, index: int) -> torch.Tensor:
        type(self).started.set()
        time.sleep(self.ITEM_S)
        return super().item(index)


@pytest.mark.slow
@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the slow item is patched in by fork")
def test_closing_a_stream_stops_busy_workers_between_images():
    """close() while two workers are each mid-batch (16 images of 0.2 s: 3.2 s) returns within about one
    image: each worker stops before its next image instead of finishing its batch."""
    SlowSource.started = multiprocessing.get_context("fork").Event()
    source = SlowSource(name="slow", size=4, channels=1, labels=None, class_names=None,
                        array=torch.zeros((64, 1, 4, 4), dtype=torch.uint8))
    batches = StreamBatches(source, batch_size=16, device="cpu", seed=0, workers=2)
    batches._iterator = iter(batches._loader())  # start the workers as next() does, without waiting on them
    assert SlowSource.started.wait(timeout=60), "no worker started"
    start = time.perf_counter()
    batches.close()
    took = time.perf_counter() - start
    assert took < 1.5, f"close() took {took:.2f} s"
