"""Small Qt building blocks: a widget that shows a numpy image scaled to fit, with a caption."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


def to_qimage(bgr: np.ndarray) -> QtGui.QImage:
    """A QImage that shares the (contiguous) BGR array's memory; keep the array alive while it is shown."""
    bgr = np.ascontiguousarray(bgr)
    h, w = bgr.shape[:2]
    return QtGui.QImage(bgr.data, w, h, bgr.strides[0], QtGui.QImage.Format.Format_BGR888)


class ImageWidget(QtWidgets.QWidget):
    """Paints the last image it was given, as large as fits with its aspect ratio kept, under a caption.

    Painting scales on the fly (no per-frame resized copy), so a large live frame costs one draw call."""

    def __init__(self, caption: str = "", min_size=(160, 120), parent=None):
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._image: QtGui.QImage | None = None
        self.caption = caption
        self.setMinimumSize(*min_size)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_image(self, bgr: np.ndarray, caption: str | None = None) -> None:
        self._array = np.ascontiguousarray(bgr)
        self._image = to_qimage(self._array)
        if caption is not None:
            self.caption = caption
        self.update()

    def image(self) -> np.ndarray | None:
        return self._array

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(24, 24, 24))
        metrics = painter.fontMetrics()
        top = metrics.height() + 4 if self.caption else 0
        if self.caption:
            painter.setPen(QtGui.QColor(220, 220, 220))
            painter.drawText(QtCore.QRect(4, 2, self.width() - 8, metrics.height()),
                             QtCore.Qt.AlignmentFlag.AlignLeft, self.caption)
        if self._image is not None:
            area = QtCore.QRect(0, top, self.width(), self.height() - top)
            size = self._image.size().scaled(area.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio)
            target = QtCore.QRect(QtCore.QPoint(0, 0), size)
            target.moveCenter(area.center())
            painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(target, self._image)
        painter.end()
