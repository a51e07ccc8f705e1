"""The 3D view (pyqtgraph OpenGL): the hand's point cloud from the crop cube, the 3D skeleton coloured per finger,
the cube, and the camera's frustum. Orbit with the left mouse button, zoom with the wheel, pan with the middle
button (or Ctrl + left).

Scene units are metres. The camera frame (OpenCV: x right, y down, z forward) is turned into the view's z-up
world as (x, z, -y), so "up" on screen is up in the camera image and the camera looks along the view's +y.

pyqtgraph's GL view renders here into an offscreen framebuffer, and an ordinary raster widget shows the picture.
Its usual QOpenGLWidget makes Qt compose the whole main window through OpenGL on every repaint, which with a
software renderer (Mesa llvmpipe: Xvfb, remote desktops, machines without a GPU driver) cost about half a CPU core
and held the display below 30 FPS (measured: 0.92 cores at 24 FPS with the 3D view static, 0.46 cores at 30 FPS
without it). A native GL window in a container avoided that but crashed at exit (the container and Python's
garbage collector each freed the GL window); offscreen, only the 3D view's own pixels go through OpenGL and Qt
owns nothing twice.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from OpenGL import GL
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtOpenGL import QOpenGLFramebufferObject
from pyqtgraph.opengl.GLViewWidget import GLViewMixin

from handtrack.inference import skeleton
from handtrack.inference.camera import Intrinsics, deproject, project, ray_slopes
from handtrack.inference.draw import CUBE_EDGES, cube_corners
from handtrack.inference.errors import HandtrackError
from handtrack.inference.tracker import HandResult

POINT_STRIDE = 2          # every 2nd pixel in u and v: the cloud keeps its shape at a quarter of the points
FRUSTUM_DEPTH_MM = 1000.0  # how far the drawn frustum reaches
FOLLOW = 0.2              # how fast the orbit centre follows the hand (per displayed frame)


def to_view(xyz_mm: np.ndarray) -> np.ndarray:
    """Camera-frame mm (..., 3) -> view coordinates in metres (x, z, -y)."""
    xyz = np.asarray(xyz_mm, dtype=np.float64) * 1e-3
    return np.stack([xyz[..., 0], xyz[..., 2], -xyz[..., 1]], axis=-1)


def finger_rgba(alpha: float = 1.0) -> np.ndarray:
    """(21, 4) RGBA per joint: the finger's colour (the wrist white), as drawn in the 2D overlay."""
    colours = np.ones((skeleton.NUM_JOINTS, 4))
    for j in range(skeleton.NUM_JOINTS):
        finger = skeleton.joint_finger(j)
        if finger is not None:
            b, g, r = skeleton.FINGER_COLORS_BGR[finger]
            colours[j, :3] = (r / 255, g / 255, b / 255)
    colours[:, 3] = alpha
    return colours


def cube_points(depth_mm: np.ndarray, K: Intrinsics, centre_mm: np.ndarray, cube_mm: float,
                stride: int = POINT_STRIDE) -> np.ndarray:
    """(N, 3) camera mm of the depth pixels inside the crop cube, read only in the cube's image footprint."""
    corners = cube_corners(centre_mm, cube_mm)
    if np.any(corners[:, 2] <= 1.0):
        return np.zeros((0, 3))
    u, v = project(corners, K).T
    u0, u1 = int(max(0, np.floor(u.min()))), int(min(K.width, np.ceil(u.max()) + 1))
    v0, v1 = int(max(0, np.floor(v.min()))), int(min(K.height, np.ceil(v.max()) + 1))
    if u0 >= u1 or v0 >= v1:
        return np.zeros((0, 3))
    # Ray slopes per column and row, so x and y are one product each (a full deprojection costs twice as much).
    z = np.asarray(depth_mm[v0:v1:stride, u0:u1:stride], dtype=np.float32)
    xz, yz = ray_slopes(np.arange(u0, u1, stride, dtype=np.float32), np.arange(v0, v1, stride, dtype=np.float32), K)
    x = z * xz[None, :]
    y = z * yz[:, None]
    cx, cy, cz = np.asarray(centre_mm, dtype=np.float64)
    half = cube_mm / 2
    inside = (z > 0) & (np.abs(z - cz) < half) & (np.abs(x - cx) < half) & (np.abs(y - cy) < half)
    return np.stack([x[inside], y[inside], z[inside]], axis=-1).astype(np.float64)


def frustum_segments(K: Intrinsics, depth_mm: float = FRUSTUM_DEPTH_MM) -> np.ndarray:
    """(16, 3) camera mm: line segments (pairs of points) from the optical centre to the image corners at
    `depth_mm`, and the far rectangle."""
    uv = np.array([[0, 0], [K.width - 1, 0], [K.width - 1, K.height - 1], [0, K.height - 1]], dtype=np.float64)
    far = deproject(uv, np.full(4, depth_mm), K)
    origin = np.zeros(3)
    segments = [p for c in far for p in (origin, c)] + [p for i in range(4) for p in (far[i], far[(i + 1) % 4])]
    return np.array(segments)


class OffscreenGLView(GLViewMixin, QtCore.QObject):
    """pyqtgraph's GL view (items, camera, mouse control) drawing into a framebuffer object: render(size) -> QImage.
    It provides what the view mixin asks of a QOpenGLWidget: a context, its size, update()."""

    def __init__(self):
        super().__init__()
        fmt = QtGui.QSurfaceFormat.defaultFormat()
        self._surface = QtGui.QOffscreenSurface()
        self._surface.setFormat(fmt)
        self._surface.create()
        self._context = QtGui.QOpenGLContext()
        self._context.setFormat(fmt)
        share = QtGui.QOpenGLContext.globalShareContext()  # where pyqtgraph's compiled shaders live
        if share is not None:
            self._context.setShareContext(share)
        if not self._context.create() or not self._context.makeCurrent(self._surface):
            raise HandtrackError("no OpenGL context for the 3D view (is Mesa's libgl1-mesa-dri installed?)")
        self._size = QtCore.QSize(640, 480)
        self._fbo: QOpenGLFramebufferObject | None = None
        self._initialized = False
        self.dirty = True

    # --- what GLViewMixin calls on its widget -----------------------------------------------------------------
    def context(self) -> QtGui.QOpenGLContext:
        return self._context

    def isValid(self) -> bool:  # noqa: N802 - the QOpenGLWidget name the mixin calls
        return self._context.isValid()

    def makeCurrent(self) -> None:  # noqa: N802
        self._context.makeCurrent(self._surface)

    def width(self) -> int:
        return self._size.width()

    def height(self) -> int:
        return self._size.height()

    def devicePixelRatioF(self) -> float:  # noqa: N802
        return 1.0

    def update(self) -> None:
        self.dirty = True  # the widget showing this view renders it again on its next paint

    # --- rendering --------------------------------------------------------------------------------------------
    def render(self, size: QtCore.QSize) -> QtGui.QImage:
        """The scene drawn at `size` pixels."""
        self.makeCurrent()
        if not self._initialized:
            self.initializeGL()
            self._initialized = True
        if self._fbo is None or self._fbo.size() != size:
            self._size = QtCore.QSize(size)
            self._fbo = QOpenGLFramebufferObject(size, QOpenGLFramebufferObject.Attachment.CombinedDepthStencil)
        w, h = size.width(), size.height()
        self._fbo.bind()
        GL.glViewport(0, 0, w, h)
        self.paint(region=(0, 0, w, h), viewport=(0, 0, w, h))
        image = self._fbo.toImage()  # waits for the renderer: most of the ~3 ms a frame costs under llvmpipe
        self._fbo.release()
        self.dirty = False
        return image


class HandScene(OffscreenGLView):
    """The 3D scene; shown by a HandView3D."""

    def __init__(self):
        super().__init__()
        self.setBackgroundColor((20, 20, 24))
        grid = gl.GLGridItem()
        grid.setSize(2, 2)
        grid.setSpacing(0.1, 0.1)
        grid.translate(0, 1.0, -0.4)  # a floor below the camera, under the typical hand
        grid.setColor((70, 70, 80, 255))
        self.addItem(grid)
        self.frustum = gl.GLLinePlotItem(mode="lines", color=(0.6, 0.6, 0.7, 0.8), width=1, antialias=True)
        self.cube = gl.GLLinePlotItem(mode="lines", color=(1, 1, 1, 0.5), width=1, antialias=True)
        self.cloud = gl.GLScatterPlotItem(size=2, pxMode=True)
        self.bones = gl.GLLinePlotItem(mode="lines", width=4, antialias=True)
        self.joints = gl.GLScatterPlotItem(size=9, pxMode=True)
        for item in (self.frustum, self.cube, self.cloud, self.bones, self.joints):
            self.addItem(item)
        # The joints lie inside the fingers, behind the surface points: the skeleton is drawn last and without
        # the depth test, so the cloud never hides it.
        on_top = {GL.GL_DEPTH_TEST: False, GL.GL_BLEND: True,
                  "glBlendFunc": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)}
        for item in (self.bones, self.joints):
            item.setGLOptions(on_top)
            item.setDepthValue(10)
        self._bone_colours = np.repeat(finger_rgba()[[c for _, c in skeleton.BONES]], 2, axis=0)
        self._joint_colours = finger_rgba()
        self._intrinsics: Intrinsics | None = None
        self._centre: np.ndarray | None = None
        # Looking at the hand from behind and above the camera's right shoulder.
        self.setCameraPosition(distance=0.65, elevation=15, azimuth=-60)
        self.opts["center"] = QtGui.QVector3D(0.0, 0.6, 0.0)

    def show_frame(self, depth_mm: np.ndarray, K: Intrinsics, result: HandResult | None, cube_mm: float) -> None:
        if K != self._intrinsics:
            self._intrinsics = K
            self.frustum.setData(pos=to_view(frustum_segments(K)))
        present = result is not None and result.present and result.joints_mm is not None
        for item in (self.cloud, self.bones, self.joints, self.cube):
            item.setVisible(present)
        if not present:
            return
        centre = np.asarray(result.centre_mm, dtype=np.float64)
        pts = to_view(cube_points(depth_mm, K, centre, cube_mm))
        self.cloud.setData(pos=pts, color=_depth_colours(pts), size=2)
        self.cube.setData(pos=to_view(cube_corners(centre, cube_mm)[np.ravel(CUBE_EDGES)]))
        joints = to_view(result.joints_mm)
        self.bones.setData(pos=joints[np.array(skeleton.BONES).ravel()], color=self._bone_colours)
        self.joints.setData(pos=joints, color=self._joint_colours)
        self._follow(to_view(centre))

    def _follow(self, target: np.ndarray) -> None:
        """Move the orbit centre part of the way to the hand each frame: the view tracks the hand smoothly and
        the user's orbit angle and zoom stay as they set them."""
        self._centre = target if self._centre is None else self._centre + FOLLOW * (target - self._centre)
        self.opts["center"] = QtGui.QVector3D(*map(float, self._centre))
        self.update()


class HandView3D(QtWidgets.QWidget):
    """The 3D view as a widget: paints the HandScene's offscreen rendering and passes the mouse on to its camera."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scene = HandScene()
        self._image: QtGui.QImage | None = None
        self.setMinimumSize(240, 180)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)  # the picture covers it: no parent repaints
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)

    def show_frame(self, depth_mm: np.ndarray, K: Intrinsics, result: HandResult | None, cube_mm: float) -> None:
        self.scene.show_frame(depth_mm, K, result, cube_mm)
        self.update()

    def grab_image(self) -> QtGui.QImage:
        """The scene rendered now at the widget's size."""
        return self.scene.render(self.size())

    def rendered_image(self) -> np.ndarray:
        """The scene rendered now, (H, W, 4) RGBA uint8 (for tests)."""
        img = self.grab_image().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
        arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
        return arr.reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width()].copy()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._image is None or self.scene.dirty or self._image.size() != self.size():
            self._image = self.grab_image()
        painter = QtGui.QPainter(self)
        painter.drawImage(0, 0, self._image)
        painter.end()

    # The view mixin's own mouse handling (orbit, pan, zoom), with a repaint after each change.
    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.scene.mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self.scene.mouseMoveEvent(event)
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self.scene.mouseReleaseEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802
        self.scene.wheelEvent(event)
        self.update()


def _depth_colours(pts_view: np.ndarray) -> np.ndarray:
    """Grey-blue points, lighter the nearer to the camera (view y is the camera's depth)."""
    if len(pts_view) == 0:
        return np.zeros((0, 4))
    y = pts_view[:, 1]
    t = (y - y.min()) / max(float(np.ptp(y)), 1e-6)
    shade = 0.95 - 0.55 * t
    return np.stack([shade * 0.8, shade * 0.9, shade, np.full_like(shade, 0.9)], axis=-1)
