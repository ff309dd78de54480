"""Light and dark themes: a Fusion palette for the widgets, matching backgrounds for the plots."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

DARK = {
    QPalette.Window: "#2b2b2b", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1e1e1e",
    QPalette.AlternateBase: "#2b2b2b", QPalette.ToolTipBase: "#3a3a3a", QPalette.ToolTipText: "#e6e6e6",
    QPalette.Text: "#e6e6e6", QPalette.Button: "#353535", QPalette.ButtonText: "#e6e6e6",
    QPalette.Highlight: "#3d7edb", QPalette.HighlightedText: "#ffffff", QPalette.Link: "#6aa9ff",
    QPalette.PlaceholderText: "#8a8a8a",
}


def apply_theme(dark: bool, plots_root: QWidget | None = None) -> None:
    app = QApplication.instance()
    app.setStyle("Fusion")  # the one style whose palette is honoured the same on every platform
    palette = app.style().standardPalette()
    if dark:
        for role, colour in DARK.items():
            palette.setColor(role, QColor(colour))
        palette.setColor(QPalette.Disabled, QPalette.Text, QColor("#777777"))
        palette.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#777777"))
        palette.setColor(QPalette.Disabled, QPalette.WindowText, QColor("#777777"))
    app.setPalette(palette)
    if plots_root is not None:
        background, foreground = ("#1e1e1e", "#d0d0d0") if dark else ("#ffffff", "#303030")
        for view in plots_root.findChildren(pg.GraphicsView):
            view.setBackground(background)
            for item in view.items():
                if isinstance(item, pg.AxisItem):
                    item.setPen(foreground)
                    item.setTextPen(foreground)
