"""A PySide6 desktop viewer: the image with its 2D skeleton beside the 3D pose, sample by sample.

Bones and joints take their side's colour (generator.skeleton.SIDE_COLOURS_RGB), drawn thin so the
body under them stays visible. Visible joints are filled, occluded ones hollow; joints outside the
image are not drawn. The right view (the paper's stereo camera), when the source has it, is drawn
dashed. The person mask, when the source has one, is shown as a faint tint with an outline
(the "mask" box toggles it).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from generator.masks import mask_outline
from generator.skeleton import BONES, JOINT_NAMES, NUM_JOINTS, ROOT, joint_colour_rgb

from .sources import ViewerSample


def joint_colour(j: int) -> QtGui.QColor:
    return QtGui.QColor(*joint_colour_rgb(j))


class _SampleView(QtWidgets.QWidget):
    """A view of one sample, repainted on a `background` whenever the sample changes."""

    background = QtGui.QColor(30, 30, 30)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample: ViewerSample | None = None
        self.setMinimumSize(320, 320)

    def set_sample(self, sample: ViewerSample) -> None:
        self.sample = sample
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.fillRect(self.rect(), self.background)
        if self.sample is not None:
            self.paint_sample(painter, self.sample)

    def paint_sample(self, painter: QtGui.QPainter, s: ViewerSample) -> None:
        raise NotImplementedError


class ImageView(_SampleView):
    """The image (or a grey canvas of its size) with the 2D skeleton drawn on it."""

    BONE_WIDTH = 1.25
    joint_radius = 3.0  # px: the disc (visible) or ring (occluded) on each joint
    canvas = QtGui.QColor(90, 90, 90)  # under the skeleton when the sample has no image
    MASK_TINT_RGBA = (255, 225, 0, 45)  # faint yellow over the person's pixels ...
    MASK_OUTLINE_RGBA = (255, 225, 0, 255)  # ... and a solid outline just outside them

    def __init__(self, parent=None):
        super().__init__(parent)
        self.show_right = True
        self.show_mask = True

    def mask_overlay(self, mask: np.ndarray) -> np.ndarray:
        """(H, W, 4) RGBA uint8 drawn over the image: the tint on person pixels, the outline around them."""
        overlay = np.zeros((*mask.shape, 4), dtype=np.uint8)
        overlay[mask > 0] = self.MASK_TINT_RGBA
        overlay[mask_outline(mask)] = self.MASK_OUTLINE_RGBA
        return overlay

    def image_rect(self) -> QtCore.QRectF:
        """Where the image lies in widget coordinates (aspect kept, centred)."""
        w, h = self.sample.image_size
        scale = min(self.width() / w, self.height() / h)
        return QtCore.QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def to_widget(self, pixels: np.ndarray) -> np.ndarray:
        """Image pixel coordinates (..., 2) -> widget coordinates, where the overlay draws them.

        Pixel coordinates have their origin at the image's top-left corner (docs/conventions.md).
        """
        rect = self.image_rect()
        scale = rect.width() / self.sample.image_size[0]
        return np.asarray(pixels, dtype=np.float64) * scale + np.array([rect.left(), rect.top()])

    def paint_sample(self, painter: QtGui.QPainter, s: ViewerSample) -> None:
        rect = self.image_rect()
        if s.image is not None:
            img = np.ascontiguousarray(s.image)
            qimg = QtGui.QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QtGui.QImage.Format_RGB888)
            painter.drawImage(rect, qimg)
        else:
            painter.fillRect(rect, self.canvas)
        if self.show_mask and s.mask is not None:
            overlay = self.mask_overlay(s.mask)  # kept alive while Qt reads it
            qmask = QtGui.QImage(overlay.data, overlay.shape[1], overlay.shape[0], overlay.strides[0], QtGui.QImage.Format_RGBA8888)
            painter.drawImage(rect, qmask)
        points = lambda pixels: [QtCore.QPointF(x, y) for x, y in self.to_widget(pixels)]  # noqa: E731
        visible = np.ones(NUM_JOINTS, dtype=bool) if s.visibility is None else s.visibility > 0
        if self.show_right and s.joints_2d_right is not None:
            self._draw_skeleton(painter, points(s.joints_2d_right), visible, None, dashed=True)
        self._draw_skeleton(painter, points(s.joints_2d), visible, s.visibility, dashed=False)

    def _draw_skeleton(self, painter, points, drawn, visibility, dashed: bool) -> None:
        for child, parent in BONES:
            if not (drawn[child] and drawn[parent]):
                continue
            pen = QtGui.QPen(joint_colour(child), self.BONE_WIDTH)
            if dashed:
                pen.setStyle(QtCore.Qt.DashLine)
            painter.setPen(pen)
            painter.drawLine(points[parent], points[child])
        if dashed:
            return
        for j, p in enumerate(points):
            if not drawn[j]:
                continue
            colour = joint_colour(j)
            painter.setPen(QtGui.QPen(colour, 1.0))
            painter.setBrush(colour if visibility is None or visibility[j] == 2 else QtCore.Qt.NoBrush)
            painter.drawEllipse(p, self.joint_radius, self.joint_radius)


class SkeletonView3D(_SampleView):
    """The root-relative 3D pose in an orthographic view; drag to turn it."""

    background = QtGui.QColor(245, 245, 245)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.yaw = math.radians(-30.0)
        self.pitch = math.radians(15.0)
        self._drag: QtCore.QPointF | None = None

    def view_points(self) -> np.ndarray:
        """Joints (17, 2) in widget pixels: camera frame turned by yaw/pitch, y up on screen."""
        p = self.sample.joints_3d - self.sample.joints_3d[ROOT]
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # about the camera's y (vertical) axis
        pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        q = p @ (pitch @ yaw).T
        scale = 0.4 * min(self.width(), self.height()) / 1000.0  # 1 m = 40 % of the view
        return np.stack([self.width() / 2 + q[:, 0] * scale, self.height() / 2 + q[:, 1] * scale], axis=1)

    def paint_sample(self, painter: QtGui.QPainter, s: ViewerSample) -> None:
        pts = [QtCore.QPointF(*p) for p in self.view_points()]
        for child, parent in BONES:
            painter.setPen(QtGui.QPen(joint_colour(child), 3))
            painter.drawLine(pts[parent], pts[child])
        painter.setPen(QtGui.QColor(80, 80, 80))
        root = s.joints_3d[ROOT]
        painter.drawText(8, 18, f"root ({root[0]:.0f}, {root[1]:.0f}, {root[2]:.0f}) mm, camera frame")

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._drag = event.position()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._drag is None:
            return
        delta = event.position() - self._drag
        self._drag = event.position()
        self.yaw += delta.x() * 0.01
        self.pitch = max(-1.5, min(1.5, self.pitch + delta.y() * 0.01))
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._drag = None


class ViewerWindow(QtWidgets.QMainWindow):
    """Browse a source: a slider and spin box pick the sample, a panel shows its metadata."""

    def __init__(self, source, title: str | None = None):
        super().__init__()
        self.source = source
        self.setWindowTitle(title or f"posebridge viewer — {getattr(source, 'name', '')}")
        self.image_view = ImageView()
        self.view_3d = SkeletonView3D()
        self.info = QtWidgets.QPlainTextEdit(readOnly=True)
        self.info.setMaximumHeight(140)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.setRange(0, max(len(source) - 1, 0))
        self.spin = QtWidgets.QSpinBox()
        self.spin.setRange(0, max(len(source) - 1, 0))
        self.right_box = QtWidgets.QCheckBox("right view")
        self.right_box.setChecked(True)
        self.mask_box = QtWidgets.QCheckBox("mask")
        self.mask_box.setChecked(True)
        self.mask_box.setToolTip("Show the person mask (a tint and an outline) when the source has one")
        self.slider.valueChanged.connect(self.spin.setValue)
        self.spin.valueChanged.connect(self.slider.setValue)
        self.slider.valueChanged.connect(self.show_sample)
        self.right_box.toggled.connect(self._toggle_right)
        self.mask_box.toggled.connect(self._toggle_mask)

        views = QtWidgets.QSplitter()
        views.addWidget(self.image_view)
        views.addWidget(self.view_3d)
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.spin)
        controls.addWidget(self.right_box)
        controls.addWidget(self.mask_box)
        layout = QtWidgets.QVBoxLayout()
        layout.addWidget(views, 1)
        layout.addLayout(controls)
        layout.addWidget(self.info)
        central = QtWidgets.QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.resize(980, 620)
        if len(source):
            self.show_sample(0)

    def _toggle_right(self, on: bool) -> None:
        self.image_view.show_right = on
        self.image_view.update()

    def _toggle_mask(self, on: bool) -> None:
        self.image_view.show_mask = on
        self.image_view.update()

    def show_sample(self, i: int) -> None:
        sample = self.source.sample(int(i))
        self.image_view.set_sample(sample)
        self.view_3d.set_sample(sample)
        lines = [f"sample {i} of {len(self.source)}   image {sample.image_size[0]}x{sample.image_size[1]}"]
        lines += [f"{k}: {v}" for k, v in sample.meta.items()]
        if sample.visibility is not None:
            counts = np.bincount(sample.visibility, minlength=3)
            lines.append(f"visibility: {counts[2]} visible, {counts[1]} occluded, {counts[0]} outside")
            hidden = [JOINT_NAMES[j] for j in range(NUM_JOINTS) if sample.visibility[j] < 2]
            if hidden:
                lines.append("not visible: " + ", ".join(hidden))
        if sample.mask is not None:
            lines.append(f"person mask: {np.count_nonzero(sample.mask)} px ({np.count_nonzero(sample.mask) / sample.mask.size:.1%} of the image)")
        self.info.setPlainText("\n".join(lines))


def run_viewer(path, index: int = 0, screenshot: str | None = None) -> int:
    """Open the viewer on `path`; with `screenshot`, save a PNG of the window and exit."""
    from .sources import open_source

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = ViewerWindow(open_source(path))
    window.spin.setValue(index)
    window.show()
    if screenshot:
        app.processEvents()
        window.grab().save(str(screenshot))
        window.close()
        return 0
    return app.exec()
