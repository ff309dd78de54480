"""The log dock: what happened, with the time and the step; warnings and errors stand out."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QPlainTextEdit

COLOURS = {"info": None, "warning": "#d08000", "error": "#d03030"}


class LogView(QPlainTextEdit):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("log")
        self.setAccessibleName("Log")
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)  # a long run's log stays cheap
        self.counts = {"info": 0, "warning": 0, "error": 0}

    def sizeHint(self) -> QSize:
        return QSize(600, 120)  # a few lines: the log is a footnote to the plots and samples

    def add(self, message: str, level: str = "info", step: int | None = None) -> None:
        self.counts[level] += 1
        prefix = time.strftime("%H:%M:%S") + (f"  step {step:,}" if step is not None else "")
        text = html.escape(message).replace("\n", "<br>")
        colour = COLOURS[level]
        body = f'<span style="color:{colour}">{level}: {text}</span>' if colour else text
        self.appendHtml(f'<span style="color:gray">{prefix}</span>&nbsp;&nbsp;{body}')


FIGURE_NAMES = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))",
                "grad_norm_d": "|∇D|", "grad_norm_g": "|∇G|"}


def describe_event(event) -> str:
    """A log line for an engine ``RunEvent``: "paused", or a single step with its own figures."""
    shown = [(name, event.figures[key]) for key, name in FIGURE_NAMES.items() if key in event.figures]
    if not shown:
        return event.text
    return f"{event.text}: " + ", ".join(f"{name} {value:.4g}" for name, value in shown)
