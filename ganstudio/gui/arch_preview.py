"""What the config builds: its two networks' layers with output shapes and parameter counts, and a speed
estimate (``gui/estimate.py``). The networks are named for the family: Generator and Discriminator (a
cgan's take labels too), or Decoder and Encoder for the autoencoders; G's and D's bodies may differ
(``model.d_arch``).

The tables come from ``ganstudio.models.describe`` on models built under ``torch.device("meta")``:
nothing is allocated or computed, so even a 64 px DCGAN 4096 wide shows at once, and the global RNG
(which a running trainer's dropout draws from) is not touched. They are built on a background thread:
the first build imports torch and, for batch norm's meta kernel, torch._dynamo (2-4 s of imports that
must not hold the GUI thread).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QPushButton, QTabWidget, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from ganstudio.config import RunConfig
from ganstudio.families import family_of
from ganstudio.gui.estimate import (TIMED_STEPS, WARMUP_STEPS, BatchFitWorker, EstimateWorker, describe_batch_fit,
                                    describe_estimate, short_batch_fit)
from ganstudio.gui.threads import start_in_thread, stop_thread

DEBOUNCE_MS = 200
ERROR_COLOR = "#c62828"
COLUMNS = ("Layer", "Type", "Output shape", "Parameters")
ROLES = ("generator", "discriminator")  # the two networks build_models returns, in order


# --- plain functions (no Qt): what the widget shows ----------------------------------------------------
def network_titles(config: RunConfig) -> dict[str, str]:
    """``{"generator": "Generator" or "Decoder", "discriminator": "Discriminator" or "Encoder"}``."""
    encoder = family_of(config).encoder
    return {"generator": "Decoder" if encoder else "Generator",
            "discriminator": "Encoder" if encoder else "Discriminator"}


def _input_shapes(config: RunConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """One sample's input shape for each network: z for G (or the decoder), an image for D (or the encoder).

    A conditional network's labels are not part of the shape: ``describe`` passes class 0 itself.
    """
    from ganstudio import models

    data, model = config.data, config.model
    inputs = getattr(models, "model_inputs", None)
    if inputs is not None:
        both = inputs(model, image_size=data.image_size, channels=data.channels)
        return both["g"].shape, both["d"].shape
    return (model.z_dim,), (data.channels, data.image_size, data.image_size)


def describe_config(config: RunConfig):
    """``(G layers, D layers)`` as ``LayerInfo`` lists (decoder and encoder for the autoencoder families);
    ValueError when the config cannot be built."""
    import torch

    from ganstudio.models import build_models, describe

    data = config.data
    # shapes and counts only: no memory, no compute, no RNG draws; the device mode is thread-local
    with torch.device("meta"):
        g, d = build_models(config.model, image_size=data.image_size, channels=data.channels)
    g_shape, d_shape = _input_shapes(config)
    return describe(g, g_shape), describe(d, d_shape)


def describe_model(config: RunConfig) -> str:
    """One line on what the two networks are: ``"VAE: dcgan decoder + mlp encoder, 28×28×1, code size 16"``."""
    family, model, data = family_of(config), config.model, config.data
    titles = network_titles(config)
    d_arch = model.arch if model.d_arch == "same" else model.d_arch
    bodies = model.arch if d_arch == model.arch else \
        f"{model.arch} {titles['generator'].lower()} + {d_arch} {titles['discriminator'].lower()}"
    parts = [f"{family.title}: {bodies}", f"{data.image_size}×{data.image_size}×{data.channels}"]
    if family.conditional:
        parts.append(f"{model.num_classes} classes ({model.conditioning} conditioning)")
    if family.encoder:
        parts.append(f"code size {model.z_dim}" + (" (the encoder gives its mean and log-variance)"
                                                   if family.variational else ""))
    return ", ".join(parts)


# --- the background jobs ---------------------------------------------------------------------------------
class _DescribeWorker(QObject):
    """Builds one config's layer tables (``describe_config``) on its own thread."""

    done = Signal(object, object)  # the config, and (G layers, D layers) or why it cannot be built (str)

    def __init__(self, config: RunConfig) -> None:
        super().__init__()  # no parent: it moves to its thread
        self._config = config

    @Slot()
    def run(self) -> None:
        try:
            result = describe_config(self._config)
        except (ValueError, RuntimeError, NotImplementedError) as err:  # the config cannot be built
            result = str(err)
        except Exception as err:  # noqa: BLE001 - shown in the widget; an exception must not escape into Qt
            result = f"{type(err).__name__}: {err}"
        self.done.emit(self._config, result)


class _Job:
    """A running job, if any; a plain object, so the widget's ``destroyed`` can still stop it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.worker: QObject | None = None
        self.thread = None

    def start(self, worker: QObject) -> None:
        self.worker = worker
        self.thread = start_in_thread(worker, worker.run, self.name)

    def stop(self, *_args) -> None:
        if self.worker is not None and hasattr(self.worker, "cancel"):  # a table build just finishes (ms)
            self.worker.cancel()
        stop_thread(self.thread)
        self.worker = self.thread = None

    @property
    def running(self) -> bool:
        return self.thread is not None


# --- the widget ------------------------------------------------------------------------------------------
class ArchitecturePreview(QWidget):
    """G's and D's layers for the form's config (debounced), an "Estimate" of training speed and peak
    memory, and the "Largest batch" that fits."""

    estimated = Signal(object)  # {"images_per_s", "seconds_per_step", "device", "peak_bytes" (or None)}
    batch_found = Signal(object)  # engine.memory.BatchFit
    updated = Signal()          # the tables (or the message) now show the latest config

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("arch_preview")
        self._config: RunConfig | None = None
        self._totals: dict[str, int] = {}
        self._running = False
        self._job = _Job("estimate")
        self._describe = _Job("describe")
        self._describe_again = False  # the config changed while a build ran
        for job in (self._job, self._describe):  # a QThread destroyed while running aborts the process
            self.destroyed.connect(job.stop)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self._summary = QLabel("No config yet", objectName="arch_summary", wordWrap=True)
        self._summary.setAccessibleName("Model summary")
        self._message = QLabel(objectName="arch_message", wordWrap=True, visible=False)
        self._message.setStyleSheet(f"color: {ERROR_COLOR};")
        self._message.setAccessibleName("Model error")
        # one network at a time, as tabs: in a dock a few hundred pixels tall, two tables stacked showed two
        # and a half rows each; a tab shows twice the rows, and its title still gives both totals at a glance
        self._tabs = QTabWidget(objectName="arch_tables", documentMode=True)
        self._trees: dict[str, QTreeWidget] = {}
        for name, title in (("generator", "Generator"), ("discriminator", "Discriminator")):  # until a config
            tree = QTreeWidget(objectName=f"{name}_layers")
            tree.setAccessibleName(f"{title} layers")
            tree.setHeaderLabels(COLUMNS)
            tree.headerItem().setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tree.setRootIsDecorated(False)
            tree.setUniformRowHeights(True)
            tree.setAlternatingRowColors(True)
            tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
            header = tree.header()
            header.setStretchLastSection(False)
            # shapes and counts always show whole; a narrow dock shortens the layer type ("ConvTr…2d")
            for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch,
                                           QHeaderView.ResizeMode.ResizeToContents,
                                           QHeaderView.ResizeMode.ResizeToContents)):
                header.setSectionResizeMode(column, mode)
            self._tabs.addTab(tree, title)
            self._trees[name] = tree
        self._button = QPushButton("Estimate", objectName="estimate")
        self._button.setAccessibleName("Estimate training speed")
        self._button.setToolTip(f"Time {TIMED_STEPS} training steps of this config on its device "
                                f"(after {WARMUP_STEPS} warm-up steps)")
        self._button.clicked.connect(self.estimate)
        self._fit_button = QPushButton("Largest batch", objectName="largest_batch")
        self._fit_button.setAccessibleName("Find the largest batch that fits")
        self._fit_button.setToolTip("GPU: try batch sizes until one runs out of memory (a few steps each). "
                                    "CPU: measure two small batches and extrapolate to the free RAM")
        self._fit_button.clicked.connect(self.find_largest_batch)
        # on a line of its own: beside the buttons a long result squeezed the tables to a sliver
        self._result = QLabel(objectName="estimate_result", wordWrap=True)
        self._result.setAccessibleName("Speed estimate")
        row = QHBoxLayout()
        row.addWidget(self._button)
        row.addWidget(self._fit_button)
        row.addStretch(1)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addWidget(self._summary)
        layout.addWidget(self._message)
        layout.addWidget(self._tabs, 1)
        layout.addLayout(row)
        layout.addWidget(self._result)

    # --- public API -----------------------------------------------------------------------------------
    @Slot(object)
    def set_config(self, config: RunConfig | None) -> None:
        """Show ``config``'s models after a short pause (edits in a burst rebuild once); None is ignored."""
        if config is None:
            return
        self._config = config
        self._timer.start()

    def set_running(self, running: bool) -> None:
        """No estimate while training: it would share the device and reseed the global RNG."""
        self._running = running
        self._enable_buttons(not running and not self._job.running)

    def totals(self) -> dict[str, int]:
        """Parameter counts shown: ``{"generator": n, "discriminator": n}`` (empty before the first update);
        for the autoencoder families these are the decoder's and the encoder's."""
        return dict(self._totals)

    def titles(self) -> dict[str, str]:
        """What the two tables are called now: ``{"generator": "Decoder", "discriminator": "Encoder"}`` etc."""
        return {name: tree.property("network") or name.capitalize() for name, tree in self._trees.items()}

    def tab_titles(self) -> list[str]:
        """The tabs' texts, as shown: ``["Generator (1,234)", "Discriminator (567)"]`` (parameter counts)."""
        return [self._tabs.tabText(i) for i in range(self._tabs.count())]

    def summary(self) -> str:
        return self._summary.text()

    def message(self) -> str:
        """Why the config's models cannot be built ("" when they can)."""
        return self._message.text() if self._message.isVisibleTo(self) else ""

    def is_estimating(self) -> bool:
        return self._job.running

    @Slot()
    def refresh(self) -> None:
        """Rebuild the tables for the current config on a background thread (the debounce timer calls
        this); ``updated`` is emitted once they show it."""
        self._timer.stop()
        if self._config is None:
            return
        if self._describe.running:
            self._describe_again = True  # one build at a time; the next starts when this one ends
            return
        worker = _DescribeWorker(self._config)
        worker.done.connect(self._described)  # queued: emitted from the job's thread
        self._describe.start(worker)

    @Slot()
    def estimate(self) -> None:
        """Time a few training steps of the current config on a background thread."""
        if self._job.running or self._config is None:
            return
        self._enable_buttons(False)  # one job at a time: two would share the device and the global RNG
        self._result.setToolTip("")
        self._result.setText(f"Estimating… ({WARMUP_STEPS} warm-up and {TIMED_STEPS} timed steps)")
        worker = EstimateWorker(self._config)
        worker.done.connect(self._estimate_done)  # queued: emitted from the worker's thread
        self._job.start(worker)

    @Slot()
    def find_largest_batch(self) -> None:
        """Find the largest ``train.batch_size`` that fits the device, on a background thread."""
        if self._job.running or self._config is None:
            return
        self._enable_buttons(False)
        self._result.setToolTip("")
        self._result.setText("Finding the largest batch that fits…")
        worker = BatchFitWorker(self._config)
        worker.done.connect(self._fit_done)  # queued: emitted from the worker's thread
        self._job.start(worker)

    def shutdown(self) -> None:
        """Stop a running estimate and wait for a running table build (the window calls this on close)."""
        self._timer.stop()
        self._describe.stop()
        self._job.stop()
        self._enable_buttons(not self._running)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # --- showing --------------------------------------------------------------------------------------
    @Slot(object, object)
    def _described(self, config: RunConfig, result) -> None:
        if self._describe.worker is None or self.sender() is not self._describe.worker:
            return  # shut down meanwhile
        self._describe.stop()  # returns at once: the worker's run() has finished
        again, self._describe_again = self._describe_again, False
        if config is not self._config:  # stale: show only the latest config
            if again or not self._timer.isActive():
                self.refresh()
            return
        if isinstance(result, str):
            self._show_problem(result)
        else:
            self._show_layers(*result)
        self.updated.emit()

    @Slot(object)
    def _estimate_done(self, result) -> None:
        if self._job.worker is None or self.sender() is not self._job.worker:
            return  # a job shut down meanwhile (its thread is stopped already)
        self._job.stop()  # returns at once: the worker's run() has finished
        self._enable_buttons(not self._running)
        if isinstance(result, dict):
            self._result.setText(describe_estimate(result, self._config.train))
            self.estimated.emit(result)
        else:
            self._result.setText(result or "Estimate cancelled")

    @Slot(object)
    def _fit_done(self, result) -> None:
        if self._job.worker is None or self.sender() is not self._job.worker:
            return  # a job shut down meanwhile
        self._job.stop()
        self._enable_buttons(not self._running)
        if isinstance(result, str) or result is None:
            self._result.setText(result or "Search cancelled")
        else:
            self._result.setText(short_batch_fit(result))
            self._result.setToolTip(describe_batch_fit(result))  # how it was found: tried, or extrapolated
            self.batch_found.emit(result)

    def _enable_buttons(self, enabled: bool) -> None:
        self._button.setEnabled(enabled)
        self._fit_button.setEnabled(enabled)

    def _show_problem(self, text: str) -> None:
        self._totals = {}
        self._message.setText(f"This model cannot be built: {text}")
        self._message.setVisible(True)
        self._tabs.setVisible(False)
        self._summary.setText("—")

    def _show_layers(self, g_layers, d_layers) -> None:
        self._message.setVisible(False)
        self._tabs.setVisible(True)
        titles = network_titles(self._config)
        for index, (name, layers) in enumerate(zip(ROLES, (g_layers, d_layers))):
            tree = self._trees[name]
            self._totals[name] = _fill(tree, layers)
            title = titles[name]
            tree.setProperty("network", title)
            self._tabs.setTabText(index, f"{title} ({self._totals[name]:,})")  # short: both tabs fit a dock
            self._tabs.setTabToolTip(index, f"{title}: {self._totals[name]:,} parameters")
            tree.setAccessibleName(f"{title} layers")
        self._summary.setText(f"{describe_model(self._config)}: {sum(self._totals.values()):,} parameters in all")


def _fill(tree: QTreeWidget, layers) -> int:
    tree.clear()
    right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    total = 0
    for layer in layers:
        shape = " × ".join(map(str, layer.output_shape)) or "—"
        item = QTreeWidgetItem([layer.name, layer.type, shape, f"{layer.params:,}"])
        item.setTextAlignment(3, right)
        tree.addTopLevelItem(item)
        total += layer.params
    item = QTreeWidgetItem(["Total", "", "", f"{total:,}"])
    item.setTextAlignment(3, right)
    bold = QFont(tree.font())
    bold.setBold(True)
    for column in range(len(COLUMNS)):
        item.setFont(column, bold)
    tree.addTopLevelItem(item)
    return total
