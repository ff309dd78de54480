"""The latent explorer's background half: ``LatentWorker`` (in the dock's thread, it reads the checkpoint
or takes the live weights a running training sent, finds the directions and renders) and the plain data it
exchanges with the dock (``View`` requests in, ``LoadedRun`` and uint8 images out).

Everything torch does for the explorer happens here, imported lazily, so opening the dock's module costs
no torch import.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

K = 5                 # directions, one slider each


@dataclass(frozen=True)
class View:
    """What to render: plain values, sent from the dock to the worker."""

    run_id: int
    source: str                       # "fixed", "real" or "seed"
    index: int                        # image index, or the seed
    label: int | None                 # the class, for a conditional G
    kind: str                         # "principal" or "random"
    coefficients: tuple[float, ...]   # in standard deviations along each direction


@dataclass(frozen=True)
class LoadedRun:
    """What the dock needs to know about a loaded run (plain data from the worker)."""

    run_id: int
    name: str
    step: int
    family: str
    ema: bool
    k: int
    sources: tuple[str, ...]
    sizes: dict[str, int] = field(default_factory=dict)
    classes: tuple[str, ...] = ()     # a conditional run's class names; empty otherwise
    live: bool = False                # the weights of a running training (a GeneratorSnapshot), not a checkpoint


class LatentWorker(QObject):
    """Lives in the dock's thread; holds the run's networks and the explorer."""

    loaded = Signal(object)    # LoadedRun
    rendered = Signal(int, object)  # run_id, uint8 (H, W, C), a fresh array each time
    failed = Signal(int, str)  # run_id, message
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()  # no parent: it moves to its thread
        self._lock = threading.Lock()
        self._pending: View | None = None
        self._waking = False
        self.run_id, self.run, self.explorer = -1, None, None
        self._base_key = self._dir_key = None
        self._directions: dict = {}
        self._wake.connect(self._render_latest)  # emitted from the GUI thread: queued to this one

    def request(self, view: View) -> None:
        """Thread-safe: render ``view`` next, replacing any request not yet started."""
        with self._lock:
            self._pending = view
            if self._waking:
                return
            self._waking = True
        self._wake.emit()

    @Slot()
    def ready(self) -> None:
        """The thread's start-up slot; work arrives as queued calls."""

    @Slot(int, str)
    def load(self, run_id: int, run_dir: str) -> None:
        """Explore the run's checkpoints/last.pt."""
        from ganstudio.latent import RunExplorer

        self._forget(run_id)
        try:
            self._adopt(run_id, Path(run_dir).name, RunExplorer.load(run_dir), live=False)
        except Exception as err:  # noqa: BLE001 - shown in the dock, never raised out of a slot
            self.failed.emit(run_id, _message(err))

    @Slot(int, str, object)
    def load_live(self, run_id: int, name: str, snapshot) -> None:
        """Explore a running training's G (an engine ``GeneratorSnapshot``: its weights on the CPU). An
        autoencoder's live decoder is explored from noise: the snapshot carries no encoder."""
        from ganstudio.latent import RunExplorer
        from ganstudio.models import build_models

        self._forget(run_id)
        try:
            config = snapshot.config
            g, _ = build_models(config.model, image_size=config.data.image_size, channels=config.data.channels)
            g.load_state_dict(snapshot.state)
            run = RunExplorer(config, g.eval(), step=snapshot.step, ema=snapshot.ema)
            self._adopt(run_id, name, run, live=True)
        except Exception as err:  # noqa: BLE001
            self.failed.emit(run_id, _message(err))

    def _forget(self, run_id: int) -> None:
        self.run_id, self.run, self.explorer = run_id, None, None
        self._base_key = self._dir_key = None
        self._directions = {}

    def _adopt(self, run_id: int, name: str, run, live: bool) -> None:
        from ganstudio.export_checks import class_names
        from ganstudio.families import family_of

        family = family_of(run.config)
        self.run = run
        self.loaded.emit(LoadedRun(
            run_id, name, run.step, family.title, run.ema, min(K, run.g.z_dim), run.sources,
            {s: run.source_size(s) for s in run.sources},
            tuple(class_names(run.config)) if family.conditional else (), live))

    @Slot()
    def _render_latest(self) -> None:
        with self._lock:
            view, self._pending, self._waking = self._pending, None, False
        if view is None or view.run_id != self.run_id or self.run is None:
            return
        try:
            self._configure(view)
            self.rendered.emit(view.run_id, self.explorer.render(view.coefficients))
        except Exception as err:  # noqa: BLE001
            self.failed.emit(view.run_id, _message(err))

    def _configure(self, view: View) -> None:
        from ganstudio.latent import LatentExplorer

        run, k = self.run, min(K, self.run.g.z_dim)
        base_key = (view.source, view.index, view.label)
        dir_key = (view.kind, view.label if run.encoder is None else None)
        if dir_key not in self._directions:  # principal directions cost a fraction of a second: once each
            self._directions[dir_key] = run.directions(view.kind, k, label=view.label)
        vectors, scales = self._directions[dir_key]
        if self.explorer is None:
            self.explorer = LatentExplorer(run.g, run.base(view.source, view.index), vectors, scales, view.label)
        elif base_key != self._base_key:
            self.explorer.set_base(run.base(view.source, view.index), view.label)
        if dir_key != self._dir_key:
            self.explorer.set_directions(vectors, scales)
        self._base_key, self._dir_key = base_key, dir_key


def _message(err: Exception) -> str:
    """One line for the dock: the engine's messages already say what to do."""
    from ganstudio.engine.checkpoint import CheckpointError

    text = str(err)
    if isinstance(err, CheckpointError) and "does not exist" in text:
        return f"No checkpoint yet: {text}. Train the run until it saves one, then press Reload."
    if isinstance(err, (CheckpointError, ValueError)):
        return text[:1].upper() + text[1:]
    return f"{type(err).__name__}: {text}"
