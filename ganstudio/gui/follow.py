"""Following a run that another process writes (a headless ``ganstudio train``, a queued job, a run on a
shared folder): the window shows it live without locking it, and steers it through its command file.

``RunFollow`` polls an ``engine.follow.RunFollower`` from a QTimer on the GUI thread (a few ``stat`` calls
when nothing changed, no torch) and emits signals shaped like ``TrainWorker``'s, so the RunController
shows rows, grids, markers and warnings the way it shows its own training. ``CommandControl`` looks like
the engine's ``Control`` to the controller, so Pause, Step, Stop, Sample, Evaluate and live changes work
unchanged: each becomes a line in the run's ``commands.jsonl``.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

POLL_MS = 200  # 5 looks a second: a new row or grid is drawn within ~0.2 s of being written
DRAIN_MS = 20  # while a grid decodes off the GUI thread: how often to look whether it is done
TAIL_LINES = 8  # log lines shown when the writer crashed


class CommandControl:
    """The ``Control`` interface for a run another process writes. ``paused`` is what this window last
    asked for or saw in status.json; the writer's status corrects it. ``problem(text)`` hears a failed send."""

    def __init__(self, folder: Path, problem=lambda text: None) -> None:
        self.folder, self.problem = Path(folder), problem
        self._paused = self._stopped = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def pause(self) -> None:
        self._paused = self._send("pause") or self._paused

    def resume(self) -> None:
        self._paused = not self._send("resume") and self._paused

    def step_once(self, kind: str = "both") -> None:
        self._send({"both": "step", "d": "step_d", "g": "step_g"}[kind])

    def stop(self) -> None:
        self._stopped = self._send("stop") or self._stopped

    def request(self, name: str) -> None:
        from ganstudio.engine.commands import REQUESTS

        if name in REQUESTS:  # "snapshot" (live weights) cannot cross processes: the explorer uses checkpoints
            self._send(name)

    def set_hparam(self, key: str, value) -> None:
        self._send("set", key=key, value=value)

    def saw(self, state: str) -> None:
        self._paused = state == "paused"

    def _send(self, command: str, **fields) -> bool:
        from ganstudio.engine.commands import send_command

        try:
            send_command(self.folder, command, **fields)
        except OSError as err:  # a full or read-only share: say so, the run goes on as it was
            self.problem(f"could not send {command} to {self.folder}: {err}")
            return False
        return True


class RunFollow(QObject):
    """Polls a run folder and emits what is new. ``loaded``: the first look (and a rewritten history), a
    ``FollowUpdate`` holding everything so far; after it, ``progressed``/``marked``/``sampled``/``warned``."""

    loaded = Signal(object)        # engine.follow.FollowUpdate: the whole history (grids as SampleRecords)
    progressed = Signal(object)    # list[dict]: new metrics.jsonl rows (training and evaluation), oldest first
    marked = Signal(object)        # engine RunEvent
    sampled = Signal(object)       # engine Samples, read back from the grid PNG
    warned = Signal(object)        # engine TrainWarning, from log.jsonl
    noted = Signal(str)            # something in the folder could not be read
    state_changed = Signal(str, object)  # effective state, the RunStatus (None before the writer wrote one)

    def __init__(self, folder: Path, interval_ms: int = POLL_MS, parent=None) -> None:
        super().__init__(parent)
        from ganstudio.engine.follow import RunFollower

        self.folder = Path(folder)
        self.follower = RunFollower(folder)
        self.status = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)
        self.log_tail: list[str] = []  # the last log lines, for a crash report
        # grid PNGs decode on a thread of their own (~10 ms each would stall the GUI thread); the results go
        # out in order from the GUI thread, drained by a short timer while any is pending
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="follow-grids")
        self._decoding: deque = deque()  # (grid record, future), oldest first
        self._drain = QTimer(self)
        self._drain.setInterval(DRAIN_MS)
        self._drain.timeout.connect(self._emit_decoded)

    def start(self) -> None:
        self.poll()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._drain.stop()
        self._decoder.shutdown(wait=False, cancel_futures=True)

    @property
    def active(self) -> bool:
        return self.timer.isActive()

    @Slot()
    def poll(self) -> None:
        from ganstudio.engine.follow import load_samples, pair_up

        first = self.follower.first
        update = self.follower.poll()
        if not update:
            return
        for row in update.log:
            self.log_tail = (self.log_tail + [str(row["message"])])[-TAIL_LINES:]
        if first or update.reset:
            self.loaded.emit(update)
        else:
            if update.rows:
                self.progressed.emit(update.rows)
            for event in update.events:
                self.marked.emit(event)
            for grid, pairs in pair_up(update.grids):
                self._decoding.append((grid, self._decoder.submit(load_samples, grid, pairs)))
            if self._decoding:
                self._drain.start()
            for row in update.log:
                if row.get("kind") != "error":  # the failure itself comes with the state
                    self.warned.emit(_warning(row))
        for note in update.notes:
            self.noted.emit(note)
        if update.status is not None:
            self.status = update.status
        if update.state is not None:
            self.state_changed.emit(update.state, self.status)


    @Slot()
    def _emit_decoded(self) -> None:
        while self._decoding and self._decoding[0][1].done():
            grid, future = self._decoding.popleft()
            try:
                self.sampled.emit(future.result())
            except (OSError, ValueError) as err:  # deleted or damaged since its index row
                self.noted.emit(f"could not read {grid.path}: {err}")
        if not self._decoding:
            self._drain.stop()


def writer_elsewhere(folder: Path) -> bool:
    """Whether another process writes ``folder`` now: it holds the run's lock, or (a run on another host,
    whose lock cannot be checked from here) its status says it is live."""
    from ganstudio.engine.lock import writer_alive
    from ganstudio.engine.status import LIVE, effective_state, read_status

    return writer_alive(folder) or effective_state(folder, read_status(folder)[0]) in LIVE


class Following(QObject):
    """The RunController's side of following one run: routes a RunFollow's signals to the controller's own
    slots (the same ones its worker feeds) and ends when the writer does."""

    def __init__(self, controller, folder: Path) -> None:
        super().__init__(controller)
        self.c, self.w, self.folder = controller, controller.w, Path(folder)
        self.control = CommandControl(folder, problem=lambda text: self.w.log.add(text, "error"))
        self.source = RunFollow(folder, parent=self)
        s = self.source
        s.loaded.connect(self._on_loaded)
        s.progressed.connect(self._on_rows)
        s.marked.connect(controller._on_marked)
        s.sampled.connect(controller._on_sampled)
        s.warned.connect(controller._on_warning)
        s.noted.connect(lambda note: self.w.log.add(note, "warning"))
        s.state_changed.connect(self._on_state)

    def start(self) -> None:
        self.source.start()

    def leave(self) -> None:
        """Stop watching; the run goes on in its own process."""
        self.source.stop()
        if self.c.following is self:
            self.c.following = self.c.control = None

    @Slot(object)
    def _on_loaded(self, update) -> None:
        w, rows = self.w, update.rows
        w.plots.load_rows(rows)
        w.plots.load_events(update.events)
        w.metrics.load_rows(rows)
        w.gallery.load_run(update.grids)
        self._show_last(rows)
        for row in update.log:
            if row.get("kind") != "error":
                w.warnings.add(_warning(row))
                w.status.add_warning(row["message"])
        w.log.add(f"{len(rows)} logged steps, {w.gallery.snapshot_count()} sample grids so far"
                  + (" (the run's history was rewritten: shown anew)" if update.reset else ""))

    @Slot(object)
    def _on_rows(self, rows: list[dict]) -> None:
        self.w.metrics.append(rows)  # it keeps the evaluation rows
        training = [row for row in rows if "eval_samples" not in row]
        if training:
            self.c._on_progress(training)

    def _show_last(self, rows: list[dict]) -> None:
        training = [row for row in rows if "eval_samples" not in row]
        if training:
            self.c.last_row = training[-1]
            self.w.status.show_row(self.c.last_row, None)

    @Slot(str, object)
    def _on_state(self, state: str, status) -> None:
        if state in ("starting", "running", "paused"):
            self.control.saw(state)
            self.c._set_state("paused" if state == "paused" else "running")
            return
        self.leave()
        last = max(status.step if status else 0, (self.c.last_row or {}).get("step", 0))  # status: ~1/s
        step = f" at step {last:,}" if last else ""
        if state == "crashed":
            pid = f" (pid {status.pid} on {status.host})" if status else ""
            tail = "\n".join(self.source.log_tail)
            self.w.log.add(f"the process writing {self.folder}{pid} ended without finishing: crashed{step}"
                           + (f"; its last log lines:\n{tail}" if tail else ""), "error")
            self.w.status.showMessage(f"crashed{step}")
        elif state == "failed":
            self.w.log.add(f"training failed{step}: {status.message if status else ''}", "error")
        else:
            self.w.log.add(f"the followed run ended ({state}{step}): {status.message if status else ''}")
        self.c._set_state("error" if state in ("crashed", "failed") else "stopped")
        self.c.update_actions()


def unreadable_config(folder: Path, err: Exception) -> tuple[str, str]:
    """The dialog's title and text for a run folder whose config.toml cannot be read: missing (not a run
    folder, or one whose writer has not written it yet), or written by a newer ganstudio (an unknown field)."""
    if not (folder / "config.toml").exists():
        return "Not a run folder", f"{folder} has no config.toml (yet):\n{err}"
    newer = ("\nA newer ganstudio may have written it: open the run with that version, or upgrade this one."
             if "unknown field" in str(err) else "")
    return "Cannot read the run's settings", f"{folder / 'config.toml'} cannot be read here:\n{err}{newer}"


def follow_run(controller, folder: Path) -> bool:
    """Show a run another process writes, live; False (after a dialog) when its config cannot be read."""
    from ganstudio.config import ConfigError, RunConfig
    from ganstudio.engine.status import read_status

    try:
        config = RunConfig.load(Path(folder) / "config.toml")
    except ConfigError as err:
        controller.w.show_error(*unreadable_config(Path(folder), err))
        return False
    w = controller.w
    controller.run_dir, controller.run_config, controller.last_row, controller.eta = Path(folder), config, None, None
    w.form.set_config(config)
    for view in (w.plots, w.metrics, w.gallery, w.warnings):
        view.clear()
    w.status.clear_run()
    w.status.clear_warnings()
    w.gallery.set_class_names(_class_names(config))
    following = Following(controller, folder)
    controller.following, controller.control = following, following.control
    status, _ = read_status(folder)
    who = f"pid {status.pid} on {status.host}" if status else "another process"
    if status is not None and status.device:
        w.status.set_device(status.device)
    w.log.add(f"following {folder}, written by {who}: it stays live here; Pause, Step, Stop, Sample, Evaluate and "
              "live changes reach it through its command file")
    controller._set_state("running")
    following.start()
    controller.run_changed.emit(controller.run_dir)
    return True


def _class_names(config) -> list[str]:
    from ganstudio.families import family_of

    if not family_of(config).conditional:
        return []
    from ganstudio.export_checks import class_names

    return class_names(config)


def _warning(row: dict):
    from ganstudio.engine.events import TrainWarning

    return TrainWarning(int(row.get("step") or 0), str(row.get("kind")), str(row["message"]))
