"""Starting the studio: the window shows first, torch loads after (in the background)."""

from __future__ import annotations

import sys
import threading


def run_studio(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from ganstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("ganstudio")
    app.setApplicationName("ganstudio")
    window = MainWindow()
    window.show()
    # torch takes a second or two to import; start now, off the GUI thread, so Start and the
    # architecture preview find it loaded
    threading.Thread(target=_preload_torch, name="preload-torch", daemon=True).start()
    return app.exec()


def _preload_torch() -> None:
    import torch  # noqa: F401
