"""The PySide6 viewer in a real (offscreen) Qt window."""

from __future__ import annotations

import numpy as np
import pytest

from generator import camera, pairs_io
from generator.skeleton import BONES, NUM_JOINTS, joint_colour_rgb

try:
    from PySide6 import QtCore, QtWidgets
except ImportError as e:  # a missing extra fails the suite loudly instead of skipping the viewer
    raise ImportError(
        "the viewer tests need PySide6: `pip install -c constraints.txt -e '.[viewer]'` (or `make venv`, which installs the dev and viewer extras)"
    ) from e

STANDING = np.array(
    [[0, 0, 900], [-100, 0, 900], [-100, 0, 480], [-100, 0, 50], [100, 0, 900], [100, 0, 480], [100, 0, 50],
     [0, 0, 1130], [0, 0, 1380], [0, -30, 1500], [0, 0, 1620], [150, 0, 1380], [180, 0, 1100], [200, 0, 850],
     [-150, 0, 1380], [-180, 0, 1100], [-200, 0, 850]], dtype=float)  # fmt: skip


@pytest.fixture
def pairs_file(tmp_path):
    """Three samples: the standing pose facing the camera from 3, 4 and 5 m."""
    K = camera.intrinsics_from_fov(50, 640, 480)
    j3, j2 = [], []
    for d in (3000.0, 4000.0, 5000.0):
        R, t = camera.look_at(np.array([0, -d, 900.0]), np.array([0, 0, 900.0]))
        cam = camera.world_to_camera(STANDING, R, t)
        j3.append(cam)
        j2.append(camera.project_points(cam, K))
    path = tmp_path / "p.npz"
    pairs_io.save_pairs(
        path,
        dict(
            joints_2d=np.array(j2, "f4"),
            joints_3d=np.array(j3, "f4"),
            K=K.astype("f4"),
            image_size=np.array([640, 480], "i4"),
            visibility=np.array([[2] * 16 + [1]] * 3, "u1"),
            subject=np.array(["s1", "s2", "s3"]),
        ),
    )
    return path


@pytest.fixture
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _rgb(image, point) -> tuple[int, int, int]:
    """The screenshot's colour at a widget point (the pixel the point falls in)."""
    c = image.pixelColor(int(np.floor(point[0])), int(np.floor(point[1])))
    return c.red(), c.green(), c.blue()


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * ab)))


def _distance_to_skeleton(p: np.ndarray, points: np.ndarray) -> float:
    """How far widget point p is from every joint and bone of a skeleton drawn at `points` (17, 2)."""
    return min([float(np.linalg.norm(points - p, axis=1).min())] + [_segment_distance(p, points[c], points[q]) for c, q in BONES])


def _clearest_pixel_in_ring(centre: np.ndarray, bone_end: np.ndarray, radius: float) -> np.ndarray:
    """The offset from `centre` of the pixel inside a joint's ring farthest from both the ring
    (pen 1 px) and the bone line (1.25 px) from `bone_end` to the centre."""
    best, score = None, -np.inf
    for dx in range(-4, 5):
        for dy in range(-4, 5):
            pixel = np.floor(centre) + [dx, dy]
            middle = pixel + 0.5
            clear = min(radius - 0.5 - np.linalg.norm(middle - centre), _segment_distance(middle, bone_end, centre) - 0.625)
            if clear > score:
                best, score = middle - centre, clear
    assert score > 0.4
    return best


def _screenshot(app, window, index: int):
    """Show sample `index` and grab the image view: (the sample, its joints in widget coordinates, the image)."""
    window.slider.setValue(index)
    app.processEvents()
    view = window.image_view
    image = view.grab().toImage()
    assert (image.width(), image.height()) == (view.width(), view.height())  # one image pixel per widget pixel
    return view.sample, view.to_widget(view.sample.joints_2d), image


def test_window_draws_the_skeleton_where_the_pixels_say(app, pairs_file, tmp_path):
    from pyside.sources import open_source
    from pyside.viewer import ViewerWindow

    window = ViewerWindow(open_source(pairs_file))
    window.right_box.setChecked(False)
    window.show()
    app.processEvents()
    view = window.image_view
    radius = view.joint_radius
    canvas = view.canvas.getRgb()[:3]
    shots = {i: _screenshot(app, window, i) for i in (0, 2)}
    for i, (sample, points, image) in shots.items():
        assert sample.index == i
        np.testing.assert_allclose(points[0], [view.image_rect().left(), view.image_rect().top()] + sample.joints_2d[0] * view.image_rect().width() / 640)
        # Each visible joint is a disc of its palette colour, centred on its keypoint (joints are
        # drawn in order, so a joint whose disc a later one overlaps is left out).
        checked = 0
        for j in range(NUM_JOINTS):
            covered = any(np.linalg.norm(points[k] - points[j]) < radius + 3 for k in range(j + 1, NUM_JOINTS))
            if sample.visibility[j] == 2 and not covered:
                assert _rgb(image, points[j]) == joint_colour_rgb(j), f"sample {i}, joint {j}"
                checked += 1
        assert checked >= 14
        # The occluded right wrist is drawn hollow: inside its ring, off the forearm line that ends
        # at its centre, the canvas shows, where the filled right elbow shows its colour.
        assert sample.visibility[16] == 1
        inside = _clearest_pixel_in_ring(points[16], points[15], radius)
        red = np.array(joint_colour_rgb(16))
        hollow = np.array(_rgb(image, points[16] + inside))
        assert np.abs(hollow - canvas).max() < np.abs(hollow - red).max(), hollow
        assert _rgb(image, points[15] + inside) == joint_colour_rgb(15)
        assert _rgb(image, points[16] + [radius, 0]) != canvas  # the ring itself
        # Away from the skeleton, inside the image, is the bare canvas.
        corner = points.min(axis=0) - 20
        assert view.image_rect().contains(QtCore.QPointF(*corner)) and _distance_to_skeleton(corner, points) > 10
        assert _rgb(image, corner) == canvas

    # The overlay follows the sample: where sample 0 has a joint and sample 2 draws nothing near,
    # sample 2's screenshot shows the canvas.
    (_, first, image_0), (_, second, image_2) = shots[0], shots[2]
    moved = [j for j in range(NUM_JOINTS) if shots[0][0].visibility[j] == 2 and _distance_to_skeleton(first[j], second) > radius + 4]
    assert len(moved) >= 8, moved
    for j in moved:
        assert _rgb(image_0, first[j]) == joint_colour_rgb(j) and _rgb(image_2, first[j]) == canvas, j
    assert image_0 != image_2

    out = tmp_path / "shot.png"
    assert window.grab().save(str(out)) and out.stat().st_size > 1000
    window.close()


def test_navigation_updates_both_views_and_the_panel(app, pairs_file):
    from pyside.sources import open_source
    from pyside.viewer import ViewerWindow

    window = ViewerWindow(open_source(pairs_file))
    first = window.view_3d.view_points().copy()
    assert "subject: s1" in window.info.toPlainText()
    window.slider.setValue(2)
    assert window.spin.value() == 2
    assert window.image_view.sample.index == 2
    assert "subject: s3" in window.info.toPlainText()
    assert "1 occluded" in window.info.toPlainText()
    # Root-relative 3D is the same pose at every distance, so the 3D view does not move...
    np.testing.assert_allclose(window.view_3d.view_points(), first, atol=1e-3)
    # ...while the 2D skeleton shrinks with distance.
    span = lambda s: np.ptp(s.joints_2d[:, 1])  # noqa: E731
    assert span(window.source.sample(2)) < span(window.source.sample(0))
    window.close()


def test_cli_screenshot(pairs_file, tmp_path):
    from click.testing import CliRunner

    from posebridge import main

    out = tmp_path / "view.png"
    result = CliRunner().invoke(main, ["view", str(pairs_file), "--index", "1", "--screenshot", str(out)])
    assert result.exit_code == 0, result.output
    from PIL import Image

    assert Image.open(out).size[0] >= 640


def test_open_source_rejects_other_files(tmp_path):
    from pyside.sources import open_source

    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(ValueError, match="not a pairs"):
        open_source(bad)


def test_dataset_folder_shows_the_stored_image_under_the_skeleton(app, tmp_path):
    """A dataset folder opens with its rendered images: a frame stored as a solid colour shows it."""
    import io

    from PIL import Image

    from bridge_support import frame_fields, frame_message, open_collector
    from pyside.sources import open_source
    from pyside.viewer import ViewerWindow

    folder = tmp_path / "ds"
    collector = open_collector(folder, frames=3, shard_size=2)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for i, colour in enumerate(colours):
        fields = frame_fields(np.random.default_rng(i))
        w, h = fields["image_size"]
        buf = io.BytesIO()
        Image.new("RGB", (w, h), colour).save(buf, format="PNG")
        assert collector.handle(frame_message(fields, buf.getvalue(), frame_id=i, seq=i, encoding="png"))
    collector.store.close()

    window = ViewerWindow(open_source(folder))
    window.show()
    for i, colour in enumerate(colours):
        window.slider.setValue(i)
        app.processEvents()
        sample = window.image_view.sample
        assert sample.meta["frame_id"] == i and sample.image.shape[:2] == (sample.image_size[1], sample.image_size[0])
        image = window.image_view.grab().toImage()
        corner = window.image_view.image_rect().topLeft() + QtCore.QPointF(2, 2)
        c = image.pixelColor(int(corner.x()), int(corner.y()))
        assert (c.red(), c.green(), c.blue()) == colour
    window.close()


def test_the_mask_overlay_tints_the_person_and_toggles_off(app, tmp_path):
    """A stored mask shows as a faint tint over the person's pixels with an outline around them;
    the "mask" box turns it off, leaving the stored image; pixels far from the person never change."""
    import io

    from PIL import Image

    from bridge_support import frame_fields, frame_message, open_collector
    from generator.masks import encode_mask_png
    from pyside.sources import open_source
    from pyside.viewer import ViewerWindow

    folder = tmp_path / "ds"
    collector = open_collector(folder, frames=1, shard_size=1)
    fields = frame_fields(np.random.default_rng(0))
    w, h = fields["image_size"]
    grey = (100, 100, 100)
    buf = io.BytesIO()
    Image.new("RGB", (w, h), grey).save(buf, format="PNG")
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[:, : w // 2] = 1  # the left half is "the person"
    # The person far left of the image (visibility 0), so no skeleton is drawn over the pixels read below.
    j3 = fields["joints_3d"] + [-10000.0 - fields["joints_3d"][:, 0].max(), 0.0, 0.0]
    fields.update(
        joints_3d=j3,
        joints_3d_world=camera.camera_to_world(j3, fields["R"], fields["t"]),
        joints_2d=camera.project_points(j3, fields["K"]),
        joints_2d_right=camera.project_points(camera.right_view_points(j3, fields["baseline_mm"]), fields["K"]),
        visibility=np.zeros(17, dtype=np.uint8),
    )
    assert collector.handle(frame_message(fields, buf.getvalue(), frame_id=0, seq=0, encoding="png", mask=encode_mask_png(mask)))
    collector.store.close()

    window = ViewerWindow(open_source(folder))
    window.show()
    app.processEvents()
    view = window.image_view
    assert view.sample.mask is not None and "person mask: " in window.info.toPlainText()
    rect = view.image_rect()

    def colour(fx: float, fy: float):
        c = view.grab().toImage().pixelColor(int(rect.left() + fx * rect.width()), int(rect.top() + fy * rect.height()))
        return c.red(), c.green(), c.blue()

    inside, outside = colour(0.2, 0.5), colour(0.8, 0.5)
    assert outside == grey
    assert inside != grey and inside[0] > grey[0] and inside[2] < grey[2] and inside[2] > 60  # yellow, but faint
    outline = colour(w // 2 / w + 0.5 / w, 0.5)  # the column just right of the person
    assert outline[0] > 200 and outline[2] < 60
    window.mask_box.setChecked(False)
    app.processEvents()
    assert colour(0.2, 0.5) == grey and colour(0.8, 0.5) == grey
    window.close()
