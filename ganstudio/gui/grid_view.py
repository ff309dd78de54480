"""The widgets that show one sample grid: ``GridView`` (the grid scaled to fit, reporting the image
clicked, a conditional grid's rows named on its left) and ``EnlargedImage`` (one image of it, large and
pixel-exact), and ``to_qimage``.

They know a grid only as pixels and a ``GridGeometry``; the history of grids is ``gallery.py``'s.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from ganstudio.grids import GridGeometry


def to_qimage(array: np.ndarray) -> QImage:
    """uint8 (H, W, C) -> a QImage that owns its pixels (the array may go away)."""
    if array.shape[2] == 1:
        data = np.ascontiguousarray(array[..., 0])
        fmt = QImage.Format.Format_Grayscale8
    else:
        data = np.ascontiguousarray(array[..., :3])
        fmt = QImage.Format.Format_RGB888
    h, w = data.shape[:2]
    return QImage(data.data, w, h, data.strides[0], fmt).copy()


LABEL_GAP = 6          # px between a row's name and the grid
LABEL_SHARE = 0.35     # the names take at most this share of the width; longer ones are elided


class GridView(QWidget):
    """Paints one grid scaled to fit, aspect kept, nearest neighbour; reports the image clicked. With
    ``row_labels`` (a cgan grid's class names, one per row) the names stand right-aligned left of their rows."""

    cell_clicked = Signal(int)

    def __init__(self, parent=None, name: str = "sample_grid", accessible: str = "Sample grid"):
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(accessible)
        self.setMinimumSize(120, 80)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image: QImage | None = None
        self.geometry_: GridGeometry | None = None
        self.message = "no samples yet"
        self.pairs = False  # (real, reconstruction) pairs: a gap in the window's colour between pairs
        self.row_labels: list[str] = []

    def set_grid(self, image: QImage | None, geometry: GridGeometry | None, message: str = "",
                 row_labels: list[str] | None = None) -> None:
        self.image, self.geometry_, self.message = image, geometry, message
        self.row_labels = list(row_labels or [])
        self.update()

    def label_width(self) -> int:
        """Pixels on the left kept for the rows' names (0 without names)."""
        if not self.row_labels or self.image is None:
            return 0
        metrics = self.fontMetrics()
        widest = max(metrics.horizontalAdvance(text) for text in self.row_labels) + LABEL_GAP + 2  # rounding
        return min(widest, int(self.width() * LABEL_SHARE))

    def target_rect(self) -> QRectF:
        """Where the grid is drawn: as large as fits beside the rows' names, centred."""
        if self.image is None:
            return QRectF()
        left = self.label_width()
        scale = min((self.width() - left) / self.image.width(), self.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        return QRectF(left + (self.width() - left - w) / 2, (self.height() - h) / 2, w, h)

    def widget_pos(self, grid_x: float, grid_y: float) -> QPoint:
        """The widget position of grid pixel (x, y) (for tests and tooltips)."""
        rect = self.target_rect()
        scale = rect.width() / self.image.width()
        return QPoint(round(rect.x() + (grid_x + 0.5) * scale), round(rect.y() + (grid_y + 0.5) * scale))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        if self.image is None:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
            rect = self.target_rect()
            painter.drawImage(rect, self.image)
            geo = self.geometry_
            if self.pairs and geo is not None and geo.pad:
                # the padding between two pairs in the window's colour, so the pairs read as pairs;
                # only padding is painted: no image pixel is covered
                scale = rect.width() / self.image.width()
                gap = self.palette().color(self.backgroundRole())
                for col in range(2, geo.ncol, 2):
                    x = rect.x() + col * (geo.cell_w + geo.pad) * scale
                    painter.fillRect(QRectF(x, rect.y(), geo.pad * scale, rect.height()), gap)
            if self.row_labels and geo is not None:
                self._paint_labels(painter, rect, geo)
        painter.end()

    def _paint_labels(self, painter: QPainter, rect: QRectF, geo: GridGeometry) -> None:
        """Each row's name, right-aligned against the grid at the row's middle; elided when too long."""
        scale = rect.width() / self.image.width()
        metrics = self.fontMetrics()
        width = rect.x() - LABEL_GAP
        painter.setPen(self.palette().color(self.foregroundRole()))
        for row, text in enumerate(self.row_labels[:geo.nrow]):
            middle = rect.y() + (geo.pad + row * (geo.cell_h + geo.pad) + geo.cell_h / 2) * scale
            box = QRectF(0, middle - metrics.height(), width, 2 * metrics.height())
            shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(width))
            painter.drawText(box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)

    def mouseReleaseEvent(self, event) -> None:
        rect = self.target_rect()
        if event.button() != Qt.MouseButton.LeftButton or self.geometry_ is None or rect.isEmpty():
            return
        scale = rect.width() / self.image.width()
        pos = event.position()
        index = self.geometry_.cell_at((pos.x() - rect.x()) / scale, (pos.y() - rect.y()) / scale)
        if index is not None:
            self.cell_clicked.emit(index)


class EnlargedImage(QDialog):
    """One image of the grid, large and pixel-exact, with its step and index."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("enlarged")
        self.setAccessibleName("Enlarged sample")
        self.picture = named(QLabel(), "enlarged_picture", "Enlarged sample image")
        self.caption = named(QLabel(), "enlarged_caption", "Enlarged sample step and index")
        for label in (self.picture, self.caption):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)
        self.step: int | None = None
        self.index: int | None = None

    def show_image(self, image: np.ndarray, step: int, index: int, n: int, what: str = "") -> None:
        """``what`` names the image in the caption; by default "image i of n" (a sample)."""
        self.step, self.index = step, index
        h, w = image.shape[:2]
        zoom = max(1, 384 // max(h, w))  # an integer factor keeps every pixel the same size
        pixmap = QPixmap.fromImage(to_qimage(image))
        self.picture.setPixmap(pixmap.scaled(w * zoom, h * zoom, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation))
        self.caption.setText(f"step {step:,} · {what or f'image {index + 1} of {n}'}")
        self.setWindowTitle(f"{(what or f'sample {index + 1}').capitalize()} at step {step:,}")


def named(widget, object_name: str, accessible_name: str):
    widget.setObjectName(object_name)
    widget.setAccessibleName(accessible_name)
    return widget
