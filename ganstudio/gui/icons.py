"""Toolbar and menu icons, drawn with QPainter in the palette's text colour.

The style's standard icons are black pixmaps (unreadable on the dark theme) and give Start, Step D and
Step G the same triangle. These are drawn shapes, one per action, in the colour of the theme's text, so
they follow the theme: the window calls ``apply_icons`` again after every theme change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication

SIZES = (16, 24, 32, 48)  # drawn at each size, so no size is a blurred scaling of another


def _triangle(p: QPainter, x: float, y: float, w: float, h: float) -> None:
    p.drawPolygon(QPolygonF([QPointF(x, y), QPointF(x + w, y + h / 2), QPointF(x, y + h)]))


def _start(p: QPainter, s: float) -> None:
    _triangle(p, 0.28 * s, 0.18 * s, 0.56 * s, 0.64 * s)


def _pause(p: QPainter, s: float) -> None:
    p.drawRect(QRectF(0.24 * s, 0.2 * s, 0.18 * s, 0.6 * s))
    p.drawRect(QRectF(0.58 * s, 0.2 * s, 0.18 * s, 0.6 * s))


def _stop(p: QPainter, s: float) -> None:
    p.drawRect(QRectF(0.22 * s, 0.22 * s, 0.56 * s, 0.56 * s))


def _step(p: QPainter, s: float) -> None:
    _triangle(p, 0.2 * s, 0.22 * s, 0.44 * s, 0.56 * s)
    p.drawRect(QRectF(0.68 * s, 0.22 * s, 0.12 * s, 0.56 * s))


def _lettered_step(letter: str) -> Callable[[QPainter, float], None]:
    """A letter (which network steps) beside a small triangle: "D▸", "G▸"."""
    def draw(p: QPainter, s: float) -> None:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(8, round(0.62 * s)))
        p.setFont(font)
        p.drawText(QRectF(0.0, 0.0, 0.66 * s, s), Qt.AlignCenter, letter)
        _triangle(p, 0.64 * s, 0.32 * s, 0.3 * s, 0.36 * s)
    return draw


def _sample(p: QPainter, s: float) -> None:
    """A 2×2 grid of images."""
    for col in (0, 1):
        for row in (0, 1):
            p.drawRect(QRectF((0.16 + 0.38 * col) * s, (0.16 + 0.38 * row) * s, 0.3 * s, 0.3 * s))


def _evaluate(p: QPainter, s: float) -> None:
    """Three bars of a chart: a measurement."""
    for i, height in enumerate((0.3, 0.5, 0.68)):
        p.drawRect(QRectF((0.16 + 0.25 * i) * s, (0.84 - height) * s, 0.18 * s, height * s))


def _outlined(draw: Callable[[QPainter, float], None]) -> Callable[[QPainter, float], None]:
    """Line art: the pen in the text colour, no fill."""
    def outlined(p: QPainter, s: float) -> None:
        colour = p.brush().color()
        p.setBrush(Qt.NoBrush)
        p.setPen(QPen(colour, max(1.5, s / 12), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
        draw(p, s)
    return outlined


def _export(p: QPainter, s: float) -> None:
    """An arrow leaving a tray."""
    p.drawPolyline(QPolygonF([QPointF(0.18 * s, 0.55 * s), QPointF(0.18 * s, 0.82 * s),
                              QPointF(0.82 * s, 0.82 * s), QPointF(0.82 * s, 0.55 * s)]))
    p.drawLine(QPointF(0.5 * s, 0.66 * s), QPointF(0.5 * s, 0.16 * s))
    p.drawPolyline(QPolygonF([QPointF(0.32 * s, 0.34 * s), QPointF(0.5 * s, 0.16 * s), QPointF(0.68 * s, 0.34 * s)]))


def _open(p: QPainter, s: float) -> None:
    """A folder."""
    path = QPainterPath(QPointF(0.12 * s, 0.8 * s))
    for x, y in ((0.12, 0.24), (0.4, 0.24), (0.48, 0.34), (0.88, 0.34), (0.88, 0.8)):
        path.lineTo(x * s, y * s)
    path.closeSubpath()
    p.drawPath(path)


def _save(p: QPainter, s: float) -> None:
    """A floppy disk: the checkpoint."""
    path = QPainterPath(QPointF(0.16 * s, 0.16 * s))
    for x, y in ((0.7, 0.16), (0.84, 0.3), (0.84, 0.84), (0.16, 0.84)):
        path.lineTo(x * s, y * s)
    path.closeSubpath()
    p.drawPath(path)
    p.drawRect(QRectF(0.32 * s, 0.16 * s, 0.3 * s, 0.2 * s))
    p.drawRect(QRectF(0.3 * s, 0.56 * s, 0.4 * s, 0.28 * s))


SHAPES: dict[str, Callable[[QPainter, float], None]] = {
    "start": _start, "resume": _start, "pause": _pause, "stop": _stop, "step": _step,
    "step_d": _lettered_step("D"), "step_g": _lettered_step("G"), "sample_now": _sample,
    "evaluate": _evaluate, "export": _outlined(_export), "open_run": _outlined(_open),
    "save_checkpoint": _outlined(_save),
}


def _pixmap(name: str, size: int, colour: QColor) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(colour)  # the text of the lettered icons
    painter.setBrush(colour)
    SHAPES[name](painter, float(size))
    painter.end()
    return pixmap


def icon(name: str, palette: QPalette | None = None) -> QIcon:
    """``name``'s icon (a key of SHAPES) in the palette's button-text colour, greyed when disabled; by
    default the application's palette (which the theme sets)."""
    palette = palette if palette is not None else QApplication.palette()
    normal = palette.color(QPalette.Active, QPalette.ButtonText)
    disabled = palette.color(QPalette.Disabled, QPalette.ButtonText)
    if disabled == normal:  # some palettes do not grey disabled text: fade it instead
        disabled = QColor(normal)
        disabled.setAlphaF(0.4)
    return _drawn(name, normal.rgba(), disabled.rgba())


@lru_cache(maxsize=64)  # the pause icon is set on every action update: draw each (shape, colours) once
def _drawn(name: str, normal_rgba: int, disabled_rgba: int) -> QIcon:
    normal, disabled = QColor.fromRgba(normal_rgba), QColor.fromRgba(disabled_rgba)
    result = QIcon()
    for size in SIZES:
        result.addPixmap(_pixmap(name, size, normal), QIcon.Normal)
        result.addPixmap(_pixmap(name, size, disabled), QIcon.Disabled)
    return result


def apply_icons(actions: Mapping[str, QAction], palette: QPalette | None = None, paused: bool = False) -> None:
    """Give every action that has a shape its icon; the pause action shows ▶ while paused (it resumes)."""
    for name, action in actions.items():
        if name == "pause":
            action.setIcon(icon("resume" if paused else "pause", palette))
        elif name in SHAPES:
            action.setIcon(icon(name, palette))
