"""The PySide6 viewer in a real (offscreen) Qt window."""

from __future__ import annotations

import numpy as np
import pytest

from generator import camera, pairs_io
from generator.skeleton import LEFT_JOINTS, RIGHT_JOINTS

QtWidgets = pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is an optional extra (pip install posebridge[viewer])")
from PySide6 import QtCore  # noqa: E402

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


def test_window_draws_the_skeleton_where_the_pixels_say(app, pairs_file, tmp_path):
    from pyside.sources import open_source
    from generator.skeleton import SIDE_COLOURS_RGB
    from pyside.viewer import ViewerWindow

    window = ViewerWindow(open_source(pairs_file))
    window.right_box.setChecked(False)
    window.show()
    app.processEvents()
    sample = window.source.sample(0)
    view = window.image_view
    image = view.grab().toImage()
    rect = view.image_rect()
    scale = rect.width() / 640

    def colour_at(p, dx=0):
        c = image.pixelColor(int(rect.left() + p[0] * scale) + dx, int(rect.top() + p[1] * scale))
        return c.red(), c.green(), c.blue()

    # A filled disc of the joint's side colour sits on each visible limb joint.
    for j in (5, 6, 12):  # left knee, left foot, left elbow
        assert colour_at(sample.joints_2d[j]) == SIDE_COLOURS_RGB["left"]
    for j in (2, 3, 15):
        assert colour_at(sample.joints_2d[j]) == SIDE_COLOURS_RGB["right"]
    # The occluded right wrist is drawn hollow: beside the (vertical) forearm line, inside the ring,
    # it shows the canvas, where the filled right elbow shows its colour.
    red = SIDE_COLOURS_RGB["right"]
    assert colour_at(sample.joints_2d[15], dx=2) == red
    assert colour_at(sample.joints_2d[16], dx=2) != red
    assert set(LEFT_JOINTS).isdisjoint(RIGHT_JOINTS)

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
    # Every joint far left of the image (visibility 0), so no skeleton is drawn over the pixels read below.
    j3 = np.c_[np.full(17, -10000.0), np.zeros(17), np.full(17, 2000.0)]
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
