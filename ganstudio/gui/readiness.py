"""Why an action is off, said where a person looks: in its tooltip and in a notice on the status bar.

Two things hold actions back. An invalid form refuses Start, Resume and the single steps (the trainer
would keep the old value without a word), naming the field and the problem. And while PyTorch loads
in the background (``threads.preload_torch``), the actions whose dialogs import torch on the GUI thread
(Export, Nearest neighbours) wait: importing it there now would freeze the window until the background
import ends (Python's import lock). Start needs no such wait: its worker imports torch on its own thread.
``RunController.update_actions`` calls ``explain_actions`` last, after the usual enabling.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar

from ganstudio.gui import threads

LOADING_TORCH = "Loading PyTorch…"
TORCH_ACTIONS = ("export", "neighbours")  # their dialogs import torch (ganstudio.export, metrics) when opened
FORM_ACTIONS = ("start", "pause", "step", "step_d", "step_g")  # they run the trainer with the form's values
NOTICE = "status_notice"
WATCH_MS = 100  # how often the window looks whether torch is in: a flag read, nothing more


def first_problem(error_text: str) -> str:
    """The first problem of ``ConfigForm.error_text()`` ("optim.lr_d = '': Input should be…"), and how
    many more there are."""
    lines = [line.strip() for line in error_text.splitlines()[1:] if line.strip()] or [error_text.strip()]
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0].removesuffix(" (from form)") + more


def notice(status: QStatusBar) -> QLabel:
    """The status bar's notice (left side): what is refused or awaited; hidden while a message shows."""
    label = status.findChild(QLabel, NOTICE)
    if label is None:
        label = QLabel(objectName=NOTICE)
        label.setAccessibleName("Notice")
        status.addWidget(label, 1)
    return label


def explain_actions(controller) -> None:
    """Disable what must wait, and say why in each action's tooltip and in the status bar's notice."""
    window, state = controller.w, controller.state
    reasons: dict[str, str] = {}
    text = ""
    if not window.form.is_valid() and state != "running":  # pausing stays possible whatever the form says
        verb = "Resume" if state == "paused" else "Start"
        text = f"{verb} refused until the settings are valid: {first_problem(window.form.error_text())}"
        reasons = {name: text for name in FORM_ACTIONS if name != "pause" or state == "paused"}
    if threads.torch_pending():
        reasons.update({name: f"Waits until PyTorch has loaded ({LOADING_TORCH})" for name in TORCH_ACTIONS})
        text = text or LOADING_TORCH
        _watch_torch(controller)
    for name, action in window.actions.items():
        base = action.property("plain_tip")
        if base is None:
            base = action.toolTip()
            action.setProperty("plain_tip", base)
        if name in reasons:
            action.setEnabled(False)
        tip = f"{base}\n{reasons[name]}" if name in reasons else base
        if action.toolTip() != tip:
            action.setToolTip(tip)
    label = notice(window.status)
    if label.text() != text:
        label.setText(text)
        label.setToolTip(text)


def _watch_torch(controller) -> None:
    """Once torch is in, run ``update_actions`` again (which clears the notice and enables the actions)."""
    window = controller.w
    if window.findChild(QTimer, "torch_watch") is not None:
        return
    timer = QTimer(window, objectName="torch_watch", interval=WATCH_MS)

    def look() -> None:
        if not threads.torch_pending():
            timer.stop()
            timer.deleteLater()
            controller.update_actions()

    timer.timeout.connect(look)
    timer.start()
