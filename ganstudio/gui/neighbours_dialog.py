"""The memorisation check: generated images beside their nearest training images in feature space.

Computed in a background thread from the run's last checkpoint (the training G is never touched), then
shown as one sheet: each row is a generated image, a gap, and its three nearest real images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QScrollArea, QVBoxLayout

from ganstudio.gui import threads

ROWS, NEIGHBOURS = 8, 3


class NeighboursJob(QObject):
    done = Signal(object)  # uint8 (H, W, C) sheet
    failed = Signal(str)
    finished = Signal()

    def __init__(self, run_dir: Path) -> None:
        super().__init__()  # no parent: it moves to its thread
        self.run_dir = run_dir

    @Slot()
    def run(self) -> None:
        try:
            from ganstudio.engine.inference import eval_images, load_generator
            from ganstudio.metrics.evaluate import Evaluator, neighbour_sheet

            config, g = load_generator(self.run_dir)
            evaluator = Evaluator(config.data, config.eval)
            fake = eval_images(g, config, ROWS)
            _, indices = evaluator.neighbours(fake, k=NEIGHBOURS)
            self.done.emit(neighbour_sheet(fake, evaluator.real_images(), indices))
        except Exception as err:  # noqa: BLE001 - shown in the dialog
            self.failed.emit(str(err))
        finally:
            self.finished.emit()


class NeighboursDialog(QDialog):
    ready = Signal()  # the sheet (or the error) is shown

    def __init__(self, run_dir: Path, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("neighbours_dialog")
        self.setWindowTitle("Nearest training images")
        layout = QVBoxLayout(self)
        self.caption = QLabel(f"Looking up the nearest training images of {ROWS} generated ones…")
        self.caption.setObjectName("neighbours_caption")
        self.caption.setAccessibleName("Nearest neighbours status")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self.image = QLabel()
        self.image.setObjectName("neighbours_sheet")
        self.image.setAccessibleName("Generated images beside their nearest training images")
        self.image.setAlignment(Qt.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.image)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll, 1)
        self.resize(520, 760)
        self.job = NeighboursJob(run_dir)
        self.job.done.connect(self._show)
        self.job.failed.connect(self._fail)
        self.job.finished.connect(self._stop)
        self.thread = threads.start_in_thread(self.job, self.job.run, "ganstudio-neighbours")

    @Slot(object)
    def _show(self, sheet: np.ndarray) -> None:
        self.sheet = sheet
        h, w, c = sheet.shape
        fmt = QImage.Format_Grayscale8 if c == 1 else QImage.Format_RGB888
        image = QImage(sheet.tobytes(), w, h, w * c, fmt).copy()
        scale = max(1, 480 // w)
        self.image.setPixmap(QPixmap.fromImage(image).scaled(w * scale, h * scale, Qt.KeepAspectRatio,
                                                              Qt.FastTransformation))
        self.caption.setText("Left: generated images. Right: their 3 nearest training images in feature space. "
                             "Near-copies would mean the generator memorised its data.")
        self.ready.emit()

    @Slot(str)
    def _fail(self, message: str) -> None:
        self.caption.setText(f"Could not look up neighbours: {message}")
        self.caption.setStyleSheet("color: #d03030")
        self.ready.emit()

    @Slot()
    def _stop(self) -> None:
        threads.stop_thread(self.thread)

    def done(self, result: int) -> None:
        threads.stop_thread(self.thread)  # wait for a running look-up before the dialog goes
        super().done(result)
