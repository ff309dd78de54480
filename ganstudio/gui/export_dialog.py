"""The export dialog: what to write from a run's checkpoint, and where; the work runs in a thread.

The dialog only builds an ``ExportPlan`` (ganstudio/export.py, no Qt) and hands it to ``ExportWorker``,
which calls ``run_plan`` in a QThread and reports progress, the written paths or one error line. Images,
GIFs (enlarged by an integer factor) and the generator itself (TorchScript, ONNX) come from the run's
last or best checkpoint; after an export, Open folder shows the files. For a class-conditional run (read
from its config.toml) it shows a class picker: grids get one row per chosen class, named by default,
singles and interpolations are drawn for each chosen class.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout,
    QGroupBox, QHBoxLayout, QLabel, QLayout, QLineEdit, QListWidget, QListWidgetItem, QProgressBar, QSpinBox,
    QToolButton, QVBoxLayout, QWidget,
)

from ganstudio.export import (
    DEFAULT_IMAGES, DEFAULT_PER_CLASS, MAX_IMAGES, MAX_ROWS, MAX_SCALE, MAX_STEPS, ExportError, ExportPlan,
    checkpoint_step, sample_files,
)
from ganstudio.gui.export_worker import ExportWorker, onnx_missing, run_classes, sentence, short_name
from ganstudio.gui.threads import start_in_thread, stop_thread

_MAX_SEED = 2**31 - 1  # QSpinBox holds a C int


class ExportDialog(QDialog):
    """Export grids, single images, a progress GIF, a latent interpolation or the generator (TorchScript, ONNX)
    from ``run_dir``'s last or best checkpoint."""

    finished_export = Signal(list)  # the written paths (str), once the thread has stopped
    failed_export = Signal(str)

    def __init__(self, run_dir: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("export_dialog")
        self.run_dir = Path(run_dir)
        self.default_folder = self.run_dir / "exports"
        self.has_checkpoint = False
        self.classes = run_classes(self.run_dir)  # a conditional run's class names; empty otherwise
        self._thread = None
        self._worker: ExportWorker | None = None
        self._outcome: list | str | None = None
        self.written_folder: Path | None = None
        self._plan_folder: Path | None = None  # where the last successful export wrote (Open folder)
        self.setWindowTitle(f"Export — {self.run_dir.name}")
        self.setMinimumWidth(520)
        self._create_widgets()
        self._create_layout()
        self._connect()
        self.refresh_checkpoint()

    # --- building ------------------------------------------------------------------------------------
    def _create_widgets(self) -> None:
        self.source = self._named(QLabel(), "export_source", "Checkpoint")
        self.source.setWordWrap(True)
        self.source.setToolTip(str(self.run_dir))
        self.checkpoint = self._named(QComboBox(), "export_checkpoint", "Checkpoint to export from")
        self.checkpoint.addItem("Last (checkpoints/last.pt)", "last")
        self.checkpoint.addItem("Best (checkpoints/best.pt)", "best")
        self.checkpoint.setToolTip("last.pt: the newest weights. best.pt: the weights at the best evaluation so "
                                   "far (lowest FID), written only when evaluation ran")
        self.grid_box = self._named(QCheckBox("Grid PNG"), "export_grid", "Export a grid PNG")
        self.grid_box.setChecked(True)
        self.singles_box = self._named(QCheckBox("Single PNGs"), "export_singles", "Export single PNGs")
        self.gif_box = self._named(QCheckBox("Progress GIF"), "export_gif", "Export a progress GIF")
        self.interp_box = self._named(QCheckBox("Latent interpolation"), "export_interpolation",
                                      "Export a latent interpolation")
        self.torchscript_box = self._named(QCheckBox("Generator as TorchScript (.pt)"), "export_torchscript",
                                           "Export the generator as TorchScript")
        self.torchscript_box.setToolTip("G in eval mode (EMA weights when kept): (z[, labels]) -> images in "
                                        "[-1, 1]; load it with torch.jit.load, no ganstudio needed")
        self.onnx_box = self._named(QCheckBox("Generator as ONNX (.onnx)"), "export_onnx",
                                    "Export the generator as ONNX")
        missing = onnx_missing()
        self.onnx_box.setToolTip(sentence(missing) if missing else "G as an ONNX model (dynamic batch), "
                                 "checked in onnxruntime before it is written")
        self.onnx_box.setEnabled(missing is None)
        per_class = bool(self.classes)
        self.count = self._spin("export_count", "Images per class" if per_class else "Number of images", 1,
                                MAX_IMAGES, DEFAULT_PER_CLASS if per_class else DEFAULT_IMAGES)
        self.class_list = self._named(QListWidget(), "export_classes", "Classes to draw")
        self.class_list.setToolTip("A conditional run draws every chosen class: one grid row each")
        for k, name in enumerate(self.classes):
            item = QListWidgetItem(f"{k} · {name}" if name != f"class {k}" else name, self.class_list)
            item.setData(Qt.UserRole, k)
            item.setCheckState(Qt.Checked)
        self.class_list.setMaximumHeight(110)
        self.row_names = self._named(QCheckBox("Name each grid row's class"), "export_row_names",
                                     "Name the class of each grid row")
        self.row_names.setToolTip("A column left of the grid with the class of each row (the dataset's names)")
        self.row_names.setChecked(True)
        self.seed = self._spin("export_seed", "Seed", 0, _MAX_SEED, 0)
        self.fps = self._named(QDoubleSpinBox(), "export_fps", "GIF frames per second")
        self.fps.setRange(0.5, 50)
        self.fps.setDecimals(1)
        self.fps.setValue(8)
        self.scale = self._spin("export_scale", "GIF scale", 1, MAX_SCALE, 1)
        self.scale.setPrefix("×")
        self.scale.setToolTip("Enlarge the GIFs this many times; each pixel becomes a square block (nearest "
                              "neighbour), so small images stay sharp")
        self.seed_a = self._spin("export_seed_a", "Interpolation start seed", 0, _MAX_SEED, 0)
        self.seed_b = self._spin("export_seed_b", "Interpolation end seed", 0, _MAX_SEED, 1)
        self.steps = self._spin("export_steps", "Interpolation steps", 2, MAX_STEPS, 10)
        self.rows = self._spin("export_rows", "Interpolation rows", 1, MAX_ROWS, 1)
        self.mode = self._named(QComboBox(), "export_mode", "Interpolation path")
        self.mode.addItem("Linear", "linear")
        self.mode.addItem("Spherical (slerp)", "slerp")
        self.interp_format = self._named(QComboBox(), "export_interp_format", "Interpolation file type")
        self.interp_format.addItem("PNG strip", "png")
        self.interp_format.addItem("GIF animation (a → b → a)", "gif")
        self.folder = self._named(QLineEdit(str(self.default_folder)), "export_folder", "Output folder")
        self.browse = self._named(QToolButton(), "export_browse", "Choose output folder")
        self.browse.setText("…")
        self.progress = self._named(QProgressBar(), "export_progress", "Export progress")
        self.progress.setValue(0)
        self.error = self._named(QLabel(), "export_error", "Export error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d64541;")
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.hide()
        self.status = self._named(QLabel(), "export_status", "Export result")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.AcceptRole)
        self._named(self.export_button, "export_button", "Export")
        self.export_button.setDefault(True)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ActionRole)
        self._named(self.open_button, "export_open_folder", "Open the output folder")
        self.open_button.setToolTip("Show the exported files in the system's file manager")
        self.open_button.hide()  # until an export has written something
        self.close_button = self.buttons.addButton(QDialogButtonBox.Close)
        self._named(self.close_button, "export_close", "Close")

    def _create_layout(self) -> None:
        kinds = QGroupBox("What to write")
        grid = QGridLayout(kinds)
        for i, box in enumerate((self.grid_box, self.singles_box, self.gif_box, self.interp_box,
                                 self.torchscript_box, self.onnx_box)):
            grid.addWidget(box, i // 2, i % 2)
        source = QHBoxLayout()
        source.addWidget(QLabel("From:"))
        source.addWidget(self.checkpoint)
        source.addStretch(1)
        images = QGroupBox("Images")
        form = QFormLayout(images)
        form.addRow("Per class:" if self.classes else "How many:", self.count)
        form.addRow("Seed:", self.seed)
        form.addRow("GIF frames/s:", self.fps)
        form.addRow("GIF scale:", self.scale)
        self.interp_group = QGroupBox("Interpolation")
        form = QFormLayout(self.interp_group)
        form.addRow("From seed:", self.seed_a)
        form.addRow("To seed:", self.seed_b)
        form.addRow("Steps:", self.steps)
        form.addRow("Rows:", self.rows)
        form.addRow("Path:", self.mode)
        form.addRow("Write:", self.interp_format)
        side = QHBoxLayout()
        side.addWidget(images, 1)
        side.addWidget(self.interp_group, 1)
        self.class_group = QGroupBox("Classes (grid rows)")
        classes = QVBoxLayout(self.class_group)
        classes.addWidget(self.class_list)
        classes.addWidget(self.row_names)
        self.class_group.setVisible(bool(self.classes))
        out = QGroupBox("Output folder")
        row = QHBoxLayout(out)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SetMinimumSize)  # grow when the error or result wraps to more lines
        for item in (source, self.source, kinds, side, self.class_group, out, self.progress, self.error,
                     self.status, self.buttons):
            (layout.addLayout if isinstance(item, QHBoxLayout) else layout.addWidget)(item)

    def _connect(self) -> None:
        for box in (self.grid_box, self.singles_box, self.gif_box, self.interp_box, self.torchscript_box,
                    self.onnx_box):
            box.toggled.connect(self._update_enabled)
        self.checkpoint.currentIndexChanged.connect(self.refresh_checkpoint)
        self.open_button.clicked.connect(self.open_folder)
        self.interp_format.currentIndexChanged.connect(self._update_enabled)
        self.class_list.itemChanged.connect(self._update_enabled)
        self.browse.clicked.connect(self.choose_folder)
        self.export_button.clicked.connect(self.start_export)
        self.close_button.clicked.connect(self.reject)

    def _named(self, widget, name: str, accessible: str):
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        return widget

    def _spin(self, name: str, accessible: str, low: int, high: int, value: int) -> QSpinBox:
        spin = self._named(QSpinBox(), name, accessible)
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    # --- state ---------------------------------------------------------------------------------------
    @Slot()
    def refresh_checkpoint(self) -> None:
        """Re-read which checkpoint exports come from (the main window calls this after saving one)."""
        best = self.checkpoint.model().item(1)
        has_best = (self.run_dir / "checkpoints" / "best.pt").is_file()
        best.setEnabled(has_best)
        best.setToolTip("" if has_best else "No best.pt yet: it is written when an evaluation beats every one before")
        if not has_best and self.checkpoint.currentData() == "best":
            self.checkpoint.setCurrentIndex(0)  # re-enters this slot for last.pt
            return
        which = self.checkpoint.currentData()
        try:
            step = checkpoint_step(self.run_dir, which)
            self.has_checkpoint = True
            self.source.setText(f"From <b>checkpoints/{which}.pt</b> of the run "
                                f"<b>{html.escape(self.run_dir.name)}</b>, saved at step <b>{step:,}</b>")
        except ExportError as err:
            self.has_checkpoint = False
            self.source.setText(f"<b>Nothing to export yet.</b> {html.escape(sentence(str(err)))}")
        samples = len(sample_files(self.run_dir))
        self.gif_box.setText(f"Progress GIF ({samples} sample grid{'s' * (samples != 1)})")
        self.gif_box.setEnabled(samples > 0)
        if not samples:
            self.gif_box.setChecked(False)
        self._update_enabled()

    @Slot()
    def _update_enabled(self) -> None:
        running = self._thread is not None
        images = self.grid_box.isChecked() or self.singles_box.isChecked()
        interp = self.interp_box.isChecked()
        animated = self.gif_box.isChecked() or (interp and self.interp_format.currentData() == "gif")
        models = self.torchscript_box.isChecked() or self.onnx_box.isChecked()
        self.count.setEnabled(images)
        self.seed.setEnabled(images)
        self.fps.setEnabled(animated)
        self.scale.setEnabled(animated)
        self.interp_group.setEnabled(interp)
        self.class_group.setEnabled(images or interp)
        self.row_names.setEnabled(self.grid_box.isChecked())
        chosen = images or interp or self.gif_box.isChecked() or models
        self.export_button.setEnabled(self.has_checkpoint and chosen and not running)
        self.export_button.setText("Exporting…" if running else "Export")

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def plan(self) -> ExportPlan:
        """The plan the current inputs describe (raises ExportError for a missing output folder)."""
        text = self.folder.text().strip()
        if not text:
            raise ExportError("choose an output folder")
        folder = Path(text).expanduser()
        if folder == self.default_folder and self.run_dir.is_dir() and not folder.exists():
            try:  # the dialog's own default, inside the run; any other folder must already exist
                folder.mkdir()
            except OSError as err:
                raise ExportError(f"cannot create {folder}: {err.strerror or err}") from err
        return ExportPlan.in_folder(
            self.run_dir, folder, grid=self.grid_box.isChecked(), singles=self.singles_box.isChecked(),
            gif=self.gif_box.isChecked(),
            interpolation=self.interp_format.currentData() if self.interp_box.isChecked() else None,
            n=self.count.value(), seed=self.seed.value(), fps=self.fps.value(),
            seeds=(self.seed_a.value(), self.seed_b.value()), steps=self.steps.value(), rows=self.rows.value(),
            mode=self.mode.currentData(), classes=self.chosen_classes(), checkpoint=self.checkpoint.currentData(),
            torchscript=self.torchscript_box.isChecked(), onnx=self.onnx_box.isChecked(), scale=self.scale.value(),
            row_names=bool(self.classes) and self.row_names.isChecked())

    def chosen_classes(self) -> tuple[int, ...] | None:
        """The checked classes; None when the run is unconditional or every class is checked (the default)."""
        items = [self.class_list.item(i) for i in range(self.class_list.count())]
        chosen = tuple(item.data(Qt.UserRole) for item in items if item.checkState() == Qt.Checked)
        if not items or len(chosen) == len(items):
            return None
        if not chosen and (self.grid_box.isChecked() or self.singles_box.isChecked() or self.interp_box.isChecked()):
            raise ExportError("choose at least one class")
        return chosen or None

    @Slot()
    def open_folder(self) -> bool:
        """Show the last export's folder in the system's file manager; False when there is none (yet)."""
        if self.written_folder is None or not self.written_folder.is_dir():
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.written_folder)))

    # --- running -------------------------------------------------------------------------------------
    @Slot()
    def start_export(self) -> bool:
        """Check the inputs and start the export in a thread; False (with the reason shown) if it cannot."""
        if self._thread is not None or not self.has_checkpoint:
            return False
        self._show_error("")
        self.status.clear()
        try:
            plan = self.plan()
            plan.check()  # folder and count problems show at once, before the thread starts
        except ExportError as err:
            self._show_error(str(err))
            return False
        self._outcome = None
        self._plan_folder = plan.outputs()[0].parent
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._worker = worker = ExportWorker(plan)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self._thread = start_in_thread(worker, worker.run, "export")
        self._update_enabled()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None

    def cancel_export(self) -> None:
        """Stop a running export at its next image and wait for the thread."""
        if self._worker is not None:
            self._worker.cancel()
        if self._thread is not None:
            stop_thread(self._thread)
            self._thread = None

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    @Slot(list)
    def _on_done(self, paths: list) -> None:
        self._outcome = paths

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._outcome = message

    @Slot()
    def _on_worker_finished(self) -> None:
        stop_thread(self._thread)  # run() has returned: this quits the event loop and joins at once
        self._thread, self._worker = None, None
        self._update_enabled()
        outcome, self._outcome = self._outcome, None
        if isinstance(outcome, list):
            self.progress.setValue(self.progress.maximum())
            # names only (the folder is in the box above): a long path cannot wrap and would be clipped
            names = ", ".join(short_name(Path(p)) for p in outcome)
            self.status.setText(f"Wrote {len(outcome)} export{'s' * (len(outcome) != 1)} to the output folder: "
                                f"{names}")
            self.status.setToolTip("\n".join(outcome))
            self.written_folder = self._plan_folder
            self.open_button.show()
            self.finished_export.emit(outcome)
        else:
            self._show_error(outcome or "export stopped")
            self.failed_export.emit(outcome or "export stopped")

    def _show_error(self, message: str) -> None:
        self.error.setText(sentence(message))
        self.error.setVisible(bool(message))

    # --- closing: never leave the thread running ------------------------------------------------------
    def done(self, result: int) -> None:  # accept(), reject(), Esc and the Close button all end here
        self.cancel_export()
        super().done(result)

    def closeEvent(self, event) -> None:  # close() on a hidden dialog does not go through done()
        self.cancel_export()
        super().closeEvent(event)
