"""The status bar: run state, step, epoch, images/s, ETA and device; and ``Eta``, which computes the ETA.

The step count and speed arrive several times a second (the engine's ``Progress`` events) and with every
logged row. Speeds are counted steps per second, so the ETA is right whatever a step reads (a GAN's
step reads ``n_critic`` batches: ``families.images_per_step``).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QTimer, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from ganstudio.families import images_per_step

STATES = ("idle", "running", "paused", "stopped", "error")
STALL_S = 1.0  # running with no new step for this long: the busy indicator shows (a slow step, a grid)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(step: int, steps_per_s: float | None, steps: int | None, time_left: float | None) -> float | None:
    """Seconds left: to the step budget ``steps`` at ``steps_per_s`` counted steps a second, or to the end
    of the time budget (``time_left`` seconds), whichever comes first; None without a budget or a speed."""
    candidates = []
    if steps is not None and steps_per_s:
        candidates.append((steps - step) / steps_per_s)
    if time_left is not None:
        candidates.append(time_left)
    return max(0.0, min(candidates)) if candidates else None


class Eta:
    """The ETA of one training session, fed by Progress events and logged rows (no Qt).

    The speeds are smoothed (an exponential average over about the last second of Progress events, each
    of which covers ~0.1 s), so the ETA does not flicker. The time budget counts training time: the clock
    stops while the run is paused.
    """

    SMOOTHING = 0.25  # weight of the newest speed

    def __init__(self, config, elapsed0: float = 0.0, clock=time.monotonic) -> None:
        self.steps, self.max_time = config.train.steps, config.train.max_time
        self.images_per_step = images_per_step(config)  # what one counted step reads, for logged rows
        self.elapsed0, self.clock = elapsed0, clock  # elapsed0: training seconds before this session
        self.steps_per_s: float | None = None
        self.images_per_s: float | None = None
        self._left: float | None = None  # seconds of the time budget left at ``self._since``
        self._since: float | None = None  # clock reading then; None while paused (the budget does not run)
        self._paused = False

    def progress(self, step: int, steps_per_s: float, images_per_s: float) -> float | None:
        """A Progress event: the ETA now. A single step taken while paused is no measure of speed."""
        if not self._paused:
            self._smooth(steps_per_s, images_per_s)
        return self.eta(step)

    def row(self, row: dict) -> float | None:
        """A logged row (metrics.jsonl): its speed (images/s over the logging interval) and its training
        time (``wall_time``, which anchors the time budget). The ETA now."""
        images = row.get("images_per_s") or 0.0
        if images > 0:
            self._smooth(images / self.images_per_step, images)
        if self.max_time is not None and row.get("wall_time") is not None:
            self._left = self.max_time - (row["wall_time"] - self.elapsed0)
            self._since = None if self._paused else self.clock()
        return self.eta(row["step"])

    def pause(self) -> None:
        self._left, self._since, self._paused = self.time_left(), None, True

    def resume(self) -> None:
        self._since, self._paused = self.clock(), False

    def time_left(self) -> float | None:
        if self._left is None:
            return None
        return self._left - (self.clock() - self._since) if self._since is not None else self._left

    def eta(self, step: int) -> float | None:
        return eta_seconds(step, self.steps_per_s, self.steps, self.time_left())

    def _smooth(self, steps_per_s: float, images_per_s: float) -> None:
        if steps_per_s <= 0:
            return  # a D-only step counts no step: keep the last speed
        if self.steps_per_s is None:
            self.steps_per_s, self.images_per_s = steps_per_s, images_per_s
            return
        w = self.SMOOTHING
        self.steps_per_s += w * (steps_per_s - self.steps_per_s)
        self.images_per_s += w * (images_per_s - self.images_per_s)


class StatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("status_bar")
        self.labels: dict[str, QLabel] = {}
        for name in ("state", "step", "epoch", "speed", "eta", "device", "warnings"):
            label = QLabel()
            label.setObjectName(f"status_{name}")
            label.setAccessibleName(name.capitalize())
            self.labels[name] = label
            self.addPermanentWidget(label)
        # an indeterminate bar while the first steps run (before the first logged row) or a step is slow,
        # so a slow configuration never looks hung
        self.busy = QProgressBar()
        self.busy.setObjectName("status_busy")
        self.busy.setAccessibleName("Busy")
        self.busy.setRange(0, 0)
        self.busy.setMaximumSize(90, 14)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.insertPermanentWidget(0, self.busy)
        self._busy_timer = QTimer(self)
        self._busy_timer.setObjectName("status_busy_timer")
        self._busy_timer.setInterval(250)
        self._busy_timer.timeout.connect(self._update_busy)
        self._rows = 0  # logged rows seen since training started
        self._moved = time.monotonic()  # when the step count last changed
        self._step: int | None = None
        self.state = "idle"
        self.warning_count = 0
        self.set_state("idle")
        self.set_device("—")

    def set_state(self, state: str) -> None:
        assert state in STATES, state
        if state == "running" and self.state not in ("running", "paused"):
            self._rows = 0  # a new session: busy until its first logged row
        if state == "running" and self.state != "running":
            self._moved = time.monotonic()
        self.state = state
        if state == "running":
            self._busy_timer.start()
        else:
            self._busy_timer.stop()
        self._update_busy()
        colours = {"running": "#2a9d2a", "paused": "#d08000", "error": "#d03030"}
        colour = colours.get(state)
        self.labels["state"].setText(state)
        if state not in ("running", "paused"):
            self.labels["eta"].setText("")  # nothing left to wait for
        # an explicit colour either way: a label with a style sheet keeps the palette it was polished with,
        # so an uncoloured state would stay dark text after a switch to the dark theme
        colour = colour or self.palette().windowText().color().name()
        self.labels["state"].setStyleSheet(f"font-weight: bold; color: {colour};")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle_state()

    def _restyle_state(self) -> None:
        if getattr(self, "state", None) not in (None, "running", "paused", "error"):
            self.labels["state"].setStyleSheet(
                f"font-weight: bold; color: {self.palette().windowText().color().name()};")

    def add_warning(self, message: str) -> None:
        """The warnings badge: how many, and the latest as its tooltip (all of them are in the log)."""
        self.warning_count += 1
        badge = self.labels["warnings"]
        badge.setText(f"⚠ {self.warning_count}")
        badge.setToolTip(message)
        badge.setStyleSheet("color: white; background: #d08000; border-radius: 6px; padding: 0 6px;")

    def clear_warnings(self) -> None:
        self.warning_count = 0
        self.labels["warnings"].setText("")
        self.labels["warnings"].setStyleSheet("")

    def set_device(self, device: str) -> None:
        self.labels["device"].setText(f"device: {device}")

    def show_row(self, row: dict, eta: float | None) -> None:
        """A logged row's step, epoch and speed (an opened run's last row, say)."""
        self.show_progress(row["step"], row.get("epoch", 0), row.get("images_per_s"), eta)

    def note_row(self) -> None:
        """A logged row arrived: training is under way, the busy indicator may go."""
        self._rows += 1
        self._update_busy()

    @Slot()
    def _update_busy(self) -> None:
        stalled = time.monotonic() - self._moved > STALL_S
        busy = self.state == "running" and (self._rows == 0 or stalled)
        if busy == self.busy.isHidden():  # isHidden: its own flag, whether or not the window shows
            self.busy.setVisible(busy)

    def show_progress(self, step: int, epoch: int, images_per_s: float | None, eta: float | None) -> None:
        """Several times a second while training; a label is set only when its text changes (a repaint).
        No speed while paused: the time of a single step is no rate."""
        if step != self._step:
            self._step, self._moved = step, time.monotonic()
            self._update_busy()
        running = self.state != "paused"
        texts = {"step": f"step {step:,}", "epoch": f"epoch {epoch}",
                 "speed": f"{images_per_s:,.0f} img/s" if images_per_s and running else "",
                 "eta": f"ETA {format_duration(eta)}" if eta is not None else ""}
        for name, text in texts.items():
            if self.labels[name].text() != text:
                self.labels[name].setText(text)

    def clear_run(self) -> None:
        for name in ("step", "epoch", "speed", "eta"):
            self.labels[name].setText("")
