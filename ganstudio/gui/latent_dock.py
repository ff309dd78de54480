"""The latent explorer dock: one sample of the run's generator (decoder), moved along k directions.

Everything torch does happens in one background thread owned by the dock (``LatentWorker``): reading
the checkpoint, finding the directions, rendering. The dock sends it the current choice (a ``View``:
sample, class, directions, slider values) and shows the uint8 image that comes back. Slider moves are
throttled to one request per ``THROTTLE_MS`` and the worker renders only the latest request, so a fast
drag never queues up stale images. Nothing loads while the dock is hidden.

While training runs (``set_live(True)``) the explorer needs no checkpoint: it asks the running training for
its generator (``live_requested``; the studio passes it to the engine as ``Control.request("snapshot")``)
and explores the weights that come back (``show_snapshot``, an engine ``GeneratorSnapshot``), the EMA copy
when the run keeps one. Refresh takes them again; once training ends, Reload reads the checkpoint.

The worker and the plain data it exchanges with the dock are in ``latent_worker.py``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from ganstudio.gui import threads
from ganstudio.gui.grid_view import to_qimage
from ganstudio.gui.latent_worker import K, LatentWorker, LoadedRun, View

__all__ = ["K", "LatentDock", "LatentWorker", "LoadedRun", "View"]

SLIDER_STEPS = 30     # a slider runs from -3σ to +3σ in steps of 0.1σ
THROTTLE_MS = 15      # at most ~60 render requests a second while a slider is dragged
IMAGE_SIDE = 224      # the image is scaled up (nearest neighbour) to about this many pixels
SOURCE_TITLES = {"fixed": "Grid image", "real": "Real image", "seed": "Seed"}
_NO_RUN = "Open or start a run: the explorer shows its last checkpoint, or the live weights while it trains."
_RELOAD_TIP = "Read the run's checkpoints/last.pt again (training saves a newer one)"
_LIVE_TIP = "Take the generator's current weights from the running training (the EMA copy when kept)"
_MAX_SEED = 2**31 - 1


class LatentDock(QWidget):
    """Pick a sample, move it along k latent directions with sliders, see the image change."""

    image_shown = Signal()  # a rendered image (or a message) is on screen; tests wait on it
    live_requested = Signal()  # wants the running training's generator: answered through show_snapshot
    _load_requested = Signal(int, str)
    _live_load_requested = Signal(int, str, object)

    def __init__(self, current_run: Callable[[], Path | None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("latent_dock")
        self.current_run = current_run  # asked on show and on Reload, so the dock follows the studio's run
        self.run_dir: Path | None = None
        self.image: np.ndarray | None = None   # the image shown, uint8 (H, W, C)
        self.info: LoadedRun | None = None
        self._run_id = 0
        self._loaded_dir: Path | None = None
        self.live = False  # a training is running: explore its weights, not the checkpoint
        self._awaiting: int | None = None  # the load (run id) waiting for the training's weights
        self._thread = self._worker = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._send)
        self._create_widgets()
        self._create_layout()
        self._connect()
        self._set_enabled(False)
        self._show_message(_NO_RUN)

    # --- building ------------------------------------------------------------------------------------
    def _create_widgets(self) -> None:
        self.header = _named(QLabel(), "latent_header", "Explored run")
        self.header.setWordWrap(True)
        self.reload_button = _named(QPushButton("Reload"), "latent_reload", "Reload the last checkpoint")
        self.reload_button.setToolTip(_RELOAD_TIP)
        self.source = _named(QComboBox(), "latent_source", "Sample source")
        self.index = _named(QSpinBox(), "latent_index", "Sample number or seed")
        self.class_box = _named(QComboBox(), "latent_class", "Class")
        self.kind = _named(QComboBox(), "latent_directions", "Directions")
        self.kind.addItem("Principal", "principal")
        self.kind.addItem("Random", "random")
        self.sliders: list[QSlider] = []
        self.slider_names: list[QLabel] = []
        self.slider_values: list[QLabel] = []
        for i in range(K):
            slider = _named(QSlider(Qt.Horizontal), f"latent_slider_{i}", f"Direction {i + 1}")
            slider.setRange(-SLIDER_STEPS, SLIDER_STEPS)
            slider.setPageStep(5)
            self.sliders.append(slider)
            self.slider_names.append(QLabel(f"{i + 1}"))
            value = QLabel("+0.0σ")
            value.setMinimumWidth(44)
            value.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.slider_values.append(value)
        self.reset_button = _named(QPushButton("Reset"), "latent_reset", "Reset the sliders")
        self.picture = _named(QLabel(), "latent_image", "Explored image")
        self.picture.setAlignment(Qt.AlignCenter)
        self.picture.setMinimumSize(IMAGE_SIDE, IMAGE_SIDE)
        self.message = _named(QLabel(), "latent_message", "Explorer message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)

    def _create_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.reload_button)
        form = QFormLayout()
        sample = QHBoxLayout()
        sample.addWidget(self.source, 1)
        sample.addWidget(self.index, 1)
        form.addRow("Sample:", sample)
        self.class_label = QLabel("Class:")
        form.addRow(self.class_label, self.class_box)
        form.addRow("Directions:", self.kind)
        sliders = QGridLayout()
        for i in range(K):
            sliders.addWidget(self.slider_names[i], i, 0)
            sliders.addWidget(self.sliders[i], i, 1)
            sliders.addWidget(self.slider_values[i], i, 2)
        sliders.addWidget(self.reset_button, K, 1, Qt.AlignRight)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addLayout(sliders)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.message)
        self._show_classes(False)

    def _connect(self) -> None:
        self.reload_button.clicked.connect(self.reload)
        self.reset_button.clicked.connect(self.reset_sliders)
        self.source.currentIndexChanged.connect(self._on_source)
        for widget in (self.index, self.class_box, self.kind):
            signal = widget.valueChanged if isinstance(widget, QSpinBox) else widget.currentIndexChanged
            signal.connect(self._on_choice)
        for slider in self.sliders:
            slider.valueChanged.connect(self._on_slider)

    # --- the main window's API -------------------------------------------------------------------------
    def set_run(self, run_dir: Path | None) -> None:
        """Explore ``run_dir``'s last checkpoint (None: nothing); loads now if shown, else when shown."""
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.isVisible() and self.run_dir != self._loaded_dir:
            self.reload()

    @Slot()
    def reload(self) -> None:
        """Read the run's last checkpoint again (in the background), or while training runs ask for its
        current weights, and show the same choice from them."""
        if self.current_run is not None:
            current = self.current_run()
            self.run_dir = Path(current) if current is not None else None
        self._loaded_dir = self.run_dir
        self._run_id += 1
        self.info = None
        self._set_enabled(False)
        self._awaiting = None
        if self.live:
            self.header.setText(f"<b>{html.escape(self.run_dir.name if self.run_dir else 'training')}</b>")
            self._show_message("Taking the generator's weights from the running training…")
            self._awaiting = self._run_id
            self.live_requested.emit()  # answered between two steps, paused or not
            return
        if self.run_dir is None:
            self.header.setText("No run")
            self._show_message(_NO_RUN)
            return
        self.header.setText(f"<b>{html.escape(self.run_dir.name)}</b>")
        self._show_message("Loading checkpoints/last.pt…")
        self._ensure_thread()
        self._load_requested.emit(self._run_id, str(self.run_dir))

    def set_live(self, live: bool) -> None:
        """Whether a training is running: while it is, (re)loading takes its weights instead of a checkpoint."""
        if live == self.live:
            return
        self.live = live
        self.reload_button.setText("Refresh" if live else "Reload")
        self.reload_button.setToolTip(_LIVE_TIP if live else _RELOAD_TIP)
        if self.isVisible() and (live or self._awaiting is not None):
            self.reload()  # training began: explore it; or it ended before answering: the checkpoint

    @Slot(object)
    def show_snapshot(self, snapshot) -> None:
        """The running training's generator (an engine ``GeneratorSnapshot``), asked for by ``reload``."""
        if self._awaiting != self._run_id:
            return  # not asked for, or a newer reload is under way
        self._awaiting = None
        self._ensure_thread()
        name = self.run_dir.name if self.run_dir is not None else "training"
        self._live_load_requested.emit(self._run_id, name, snapshot)

    def shutdown(self) -> None:
        """Stop the background thread (waits for a load in progress); the main window calls it on close."""
        self._timer.stop()
        if self._thread is not None:
            threads.stop_thread(self._thread)
            self._thread = self._worker = None

    @property
    def coefficients(self) -> tuple[float, ...]:
        return tuple(s.value() / 10 for s in self.sliders[:self.info.k if self.info else K])

    def view(self) -> View:
        label = self.class_box.currentIndex() if self.info and self.info.classes else None
        return View(self._run_id, self.source.currentData() or "seed", self.index.value(), label,
                    self.kind.currentData(), self.coefficients)

    @Slot()
    def reset_sliders(self) -> None:
        for slider in self.sliders:
            slider.blockSignals(True)
            slider.setValue(0)
            slider.blockSignals(False)
        self._update_values()
        self._schedule()

    # --- events --------------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        current = self.current_run() if self.current_run is not None else self.run_dir
        if self.live and self._awaiting is None:
            self.reload()  # the weights have moved on since the dock was last shown
        elif current is not None and (Path(current) != self._loaded_dir or self.info is None and self._thread is None):
            self.run_dir = Path(current)
            self.reload()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # --- from the worker -------------------------------------------------------------------------------
    @Slot(object)
    def _on_loaded(self, info: LoadedRun) -> None:
        if info.run_id != self._run_id:
            return  # an older load finished after a newer one was asked for
        self.info = info
        ema = " · EMA weights" if info.ema else ""
        live = " · live" if info.live else ""
        self.header.setText(f"<b>{html.escape(info.name)}</b> · step {info.step:,}{live} · {info.family}{ema}")
        self._fill_choices(info)
        self._set_enabled(True)
        self._show_message("")
        self._schedule()

    @Slot(int, object)
    def _on_rendered(self, run_id: int, image: np.ndarray) -> None:
        if run_id != self._run_id:
            return
        self.image = image
        h, w = image.shape[:2]
        scale = max(1, IMAGE_SIDE // max(h, w))
        self.picture.setPixmap(QPixmap.fromImage(to_qimage(image)).scaled(
            w * scale, h * scale, Qt.KeepAspectRatio, Qt.FastTransformation))
        self.image_shown.emit()

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        if run_id != self._run_id:
            return
        self._show_message(message, error=True)
        self.image_shown.emit()

    # --- internals -----------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        self._worker = worker = LatentWorker()
        self._load_requested.connect(worker.load)
        self._live_load_requested.connect(worker.load_live)
        worker.loaded.connect(self._on_loaded)
        worker.rendered.connect(self._on_rendered)
        worker.failed.connect(self._on_failed)
        self._thread = threads.start_in_thread(worker, worker.ready, "ganstudio-latent")

    def _fill_choices(self, info: LoadedRun) -> None:
        widgets = (self.source, self.class_box, self.kind, self.index)
        for widget in widgets:
            widget.blockSignals(True)
        previous = self.source.currentData()
        self.source.clear()
        for source in info.sources:
            self.source.addItem(SOURCE_TITLES[source], source)
        self.source.setCurrentIndex(max(0, self.source.findData(previous)))
        self._set_index_range()
        previous_class = self.class_box.currentIndex()
        self.class_box.clear()
        for k, name in enumerate(info.classes):
            self.class_box.addItem(f"{k} · {name}" if name != f"class {k}" else name)
        if info.classes:
            self.class_box.setCurrentIndex(min(max(previous_class, 0), len(info.classes) - 1))
        self._show_classes(bool(info.classes))
        self.kind.setItemText(0, "Principal (PCA of codes)" if "real" in info.sources else "Principal (GANSpace)")
        for i, slider in enumerate(self.sliders):
            slider.setVisible(i < info.k)
            self.slider_names[i].setVisible(i < info.k)
            self.slider_values[i].setVisible(i < info.k)
        for widget in widgets:
            widget.blockSignals(False)
        self._update_values()

    def _set_index_range(self) -> None:
        source = self.source.currentData()
        if source == "seed" or self.info is None:
            self.index.setRange(0, _MAX_SEED)
            self.index.setToolTip("The seed of the noise")
            return
        size = self.info.sizes.get(source, 1)
        self.index.setRange(0, max(0, size - 1))
        self.index.setToolTip(f"Image 0 to {size - 1}")

    def _show_classes(self, shown: bool) -> None:
        self.class_label.setVisible(shown)
        self.class_box.setVisible(shown)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.source, self.index, self.class_box, self.kind, self.reset_button, *self.sliders):
            widget.setEnabled(enabled)

    @Slot()
    def _on_source(self) -> None:
        self._set_index_range()
        self._schedule()

    @Slot()
    def _on_choice(self) -> None:
        self._schedule()

    @Slot()
    def _on_slider(self) -> None:
        self._update_values()
        self._schedule()

    def _update_values(self) -> None:
        prefix = "PC" if self.kind.currentData() == "principal" else "R"
        for i, slider in enumerate(self.sliders):
            self.slider_values[i].setText(f"{slider.value() / 10:+.1f}σ")
            self.slider_names[i].setText(f"{prefix}{i + 1}")

    def _schedule(self) -> None:
        if self.info is not None and not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _send(self) -> None:
        if self._worker is not None and self.info is not None:
            self._update_values()
            self._worker.request(self.view())

    def _show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #d64541;" if error else "")
        self.message.setVisible(bool(text))


def _named(widget, name: str, accessible: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget
