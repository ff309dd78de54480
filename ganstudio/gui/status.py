"""The status bar: run state, step, epoch, images/s, ETA and device."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

STATES = ("idle", "running", "paused", "stopped", "error")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(row: dict, steps: int | None, max_time: float | None, session_start: float | None,
                batch_size: int) -> float | None:
    """Seconds left to the step budget (at the current speed) or the time budget, whichever is first."""
    candidates = []
    rate = row.get("images_per_s") or 0.0
    if steps is not None and rate > 0:
        candidates.append((steps - row["step"]) * batch_size / rate)
    if max_time is not None and session_start is not None:
        candidates.append(max_time - (row.get("wall_time", 0.0) - session_start))
    return max(0.0, min(candidates)) if candidates else None


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
        self.state = "idle"
        self.warning_count = 0
        self.set_state("idle")
        self.set_device("—")

    def set_state(self, state: str) -> None:
        assert state in STATES, state
        self.state = state
        colours = {"running": "#2a9d2a", "paused": "#d08000", "error": "#d03030"}
        colour = colours.get(state)
        self.labels["state"].setText(state)
        self.labels["state"].setStyleSheet(f"font-weight: bold; color: {colour};" if colour else "font-weight: bold;")

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
        self.labels["step"].setText(f"step {row['step']:,}")
        self.labels["epoch"].setText(f"epoch {row.get('epoch', 0)}")
        speed = row.get("images_per_s")
        self.labels["speed"].setText(f"{speed:,.0f} img/s" if speed else "")
        self.labels["eta"].setText(f"ETA {format_duration(eta)}" if eta is not None else "")

    def clear_run(self) -> None:
        for name in ("step", "epoch", "speed", "eta"):
            self.labels[name].setText("")
