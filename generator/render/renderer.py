"""Headless OpenGL rendering of the mannequin with moderngl on EGL (Mesa llvmpipe: no display, no GPU).

`PrimitiveRenderer` owns one standalone context and everything on it, created once and reused for
every frame: programs, unit meshes, instance buffers (rewritten per frame), a `FrameTarget`
(RGB8 colour + R8 person mask + depth), and background photo textures (cached, least recently
used first out). It draws instanced capsules, ellipsoids, boxes and cylinders, then a
full-screen background that only fills the pixels nothing else covered (it sits at the far
plane, so early depth testing skips the rest).

The person mask is written in the same pass as the colour image, by the same fragments: every
fragment shader has a second output (`layout(location = 1) out float f_mask`) that the body's
draws set to MASK_PERSON and occluders and the background to 0, so the mask is exactly the
pixels where the person won the depth test (one rasterization; no second draw).

The projection is built from K in the project's pixel convention (origin at the top-left corner
of the top-left pixel, y down): GL's window coordinates are made equal to (u, v), so a point
lands exactly on `project_points`, and framebuffer row 0 is the image's top row (no flip on
readback). Because that mirrors y, triangles that wind counter-clockwise seen from outside appear
clockwise to GL: the front face is "cw".

`MannequinRenderer` turns a `Scene` into primitives, draws it, reads the image, the mask and the
depth at the 17 joint pixels, and derives visibility (visibility.py). Any renderer of scenes
(`SceneRenderer`, e.g. a skinned human body) gives the player the same `RenderedFrame`.

Contexts are made current only inside `with self.ctx:` blocks and released explicitly by
`close()` (moderngl's gc_mode stays None: no GL calls from the garbage collector, which is what
breaks pyrender's renderers when one of several is collected).
"""

from __future__ import annotations

import collections
import dataclasses
from importlib import resources
from pathlib import Path
from typing import Callable, Protocol

import moderngl
import numpy as np

from ..camera import camera_center, project_points, world_to_camera
from ..scene import Background, Lighting, Scene
from .backgrounds import PhotoLibrary, photo_crop_rect
from .mannequin import Primitives, mannequin_primitives
from .meshes import box_mesh, capsule_mesh, cylinder_mesh, sphere_mesh
from .visibility import joint_exit_distance, visibility_from_depth

NEAR_MM = 100.0
FAR_MM = 100_000.0
# What a person fragment writes to the R8 mask attachment: unorm conversion stores round(255 * x),
# so the byte read back is exactly 1 (0 elsewhere). No per-pixel work is needed after readback.
MASK_PERSON = 1.0 / 255.0
BACKGROUND_KIND_CODES = {"solid": 0, "gradient": 1, "noise": 2, "photo": 3}
EGL_HINT = (
    "the built-in renderer needs headless EGL with Mesa (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 "
    "libgl1-mesa-dri libgbm1, or `make sysdeps`)"
)


def create_context() -> moderngl.Context:
    """A standalone headless OpenGL 3.3+ context on EGL."""
    try:
        return moderngl.create_standalone_context(backend="egl", libgl="libGL.so.1", libegl="libEGL.so.1")
    except Exception as e:  # moderngl raises plain Exception for a missing library or display
        raise RuntimeError(f"cannot create an OpenGL context on EGL ({e}); {EGL_HINT}") from e


def projection_from_intrinsics(K: np.ndarray, width: int, height: int, near: float = NEAR_MM, far: float = FAR_MM) -> np.ndarray:
    """The 4x4 matrix from OpenCV camera coordinates (mm) to GL clip space for intrinsics K.

    x_ndc = 2u/W - 1 and y_ndc = 2v/H - 1 with (u, v) = project_points, so GL's window
    coordinates equal the project's pixel coordinates; depth maps [near, far] to [-1, 1].
    """
    fx, s, cx = K[0, 0], K[0, 1], K[0, 2]
    fy, cy = K[1, 1], K[1, 2]
    P = np.zeros((4, 4))
    P[0] = [2.0 * fx / width, 2.0 * s / width, 2.0 * cx / width - 1.0, 0.0]
    P[1] = [0.0, 2.0 * fy / height, 2.0 * cy / height - 1.0, 0.0]
    P[2] = [0.0, 0.0, (far + near) / (far - near), -2.0 * far * near / (far - near)]
    P[3] = [0.0, 0.0, 1.0, 0.0]
    return P


def view_projection(K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int, height: int) -> np.ndarray:
    """World (mm) -> clip: the projection of K times the extrinsics [R t]."""
    Rt = np.eye(4)
    Rt[:3, :3] = R
    Rt[:3, 3] = t
    return projection_from_intrinsics(K, width, height) @ Rt


def depth_to_z(depth: np.ndarray, near: float = NEAR_MM, far: float = FAR_MM) -> np.ndarray:
    """Camera-frame z (mm) from depth-buffer values in [0, 1]; the cleared value 1 gives inf."""
    d = np.asarray(depth, dtype=np.float64)
    z_ndc = 2.0 * d - 1.0
    with np.errstate(divide="ignore"):
        z = 2.0 * far * near / ((far + near) - z_ndc * (far - near))
    return np.where(d >= 1.0, np.inf, z)


def _shader(name: str) -> str:
    return resources.files(__package__).joinpath("shaders", name).read_text()


@dataclasses.dataclass
class RenderedFrame:
    """What a renderer gives the player for one scene (docs/conventions.md, "Person mask")."""

    rgb: np.ndarray  # (H, W, 3) uint8, row 0 at the top
    visibility: np.ndarray  # (17,) uint8: 0 outside the image, 1 occluded, 2 visible
    mask: np.ndarray  # (H, W) uint8: 1 where the person is the visible surface, 0 elsewhere (occluded parts, background)
    depth: np.ndarray | None = None  # (H, W) float32 camera-frame z in mm, inf on the background; only when asked for


class SceneRenderer(Protocol):
    """What the player needs from a renderer of scenes (the mannequin today, a skinned body next).

    `render` draws the scene at its image size and returns the image, the joints' visibility and
    the person mask from one rasterization (the mask must agree with the image pixel for pixel);
    `close` releases the GL context (idempotent).
    """

    width: int
    height: int

    def render(self, scene: Scene) -> RenderedFrame: ...

    def close(self) -> None: ...


class FrameTarget:
    """The offscreen framebuffer a scene is drawn into: RGB8 colour (attachment 0), R8 person mask
    (attachment 1) and a depth buffer, with their readbacks.

    Every program that draws into it declares `layout(location = 0) out vec4 f_color;` and
    `layout(location = 1) out float f_mask;`, and writes MASK_PERSON to f_mask for the person's
    fragments and 0.0 for everything else. Methods other than `__init__` must run with the
    context current (`with ctx:`).
    """

    def __init__(self, ctx: moderngl.Context, width: int, height: int):
        self.width, self.height = int(width), int(height)
        size = (self.width, self.height)
        self.fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer(size, components=3), ctx.renderbuffer(size, components=1)],
            depth_attachment=ctx.depth_renderbuffer(size),
        )

    def use_and_clear(self) -> None:
        """Bind for drawing; colour and mask to 0, depth to the far plane."""
        self.fbo.use()
        self.fbo.clear(depth=1.0)

    def read_rgb(self) -> np.ndarray:
        """The colour image (H, W, 3) uint8, row 0 at the top."""
        out = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self.fbo.read_into(out, components=3, alignment=1)
        return out

    def read_mask(self) -> np.ndarray:
        """The person mask (H, W) uint8 with values 0 and 1, row 0 at the top."""
        out = np.empty((self.height, self.width), dtype=np.uint8)
        self.fbo.read_into(out, components=1, attachment=1, alignment=1)
        return out

    def read_depth(self, pixels: np.ndarray) -> np.ndarray:
        """Camera-frame z (mm) of the first surface at integer pixels (N, 2) = (column, row);
        inf where only the background was drawn. Reads the bounding box of the pixels only."""
        pixels = np.asarray(pixels, dtype=np.int64)
        x0, y0 = pixels.min(axis=0)
        x1, y1 = pixels.max(axis=0) + 1
        box = np.empty((y1 - y0, x1 - x0), dtype=np.float32)
        self.fbo.read_into(box, viewport=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)), attachment=-1, dtype="f4", alignment=1)
        return depth_to_z(box[pixels[:, 1] - y0, pixels[:, 0] - x0])

    def read_depth_image(self) -> np.ndarray:
        """Camera-frame z (mm) of every pixel (H, W) float32, inf on the background."""
        box = np.empty((self.height, self.width), dtype=np.float32)
        self.fbo.read_into(box, attachment=-1, dtype="f4", alignment=1)
        return depth_to_z(box).astype(np.float32)


class PrimitiveRenderer:
    """Draws instanced primitives over a background into a `FrameTarget` (colour, person mask, depth).

    Capsules and ellipsoids are the person (mask 1); boxes and cylinders are occluders (mask 0).
    """

    def __init__(
        self,
        width: int,
        height: int,
        photo_dir: Path | str | None = None,
        max_instances: int = 64,
        photo_cache_mb: float = 512.0,
    ):
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got [{width}, {height}]")
        self.width, self.height = int(width), int(height)
        self.max_instances = int(max_instances)
        self.photos = PhotoLibrary(photo_dir, max_side=min(2048, 4 * max(self.width, self.height))) if photo_dir else None
        self._photo_cache: collections.OrderedDict[int, moderngl.Texture] = collections.OrderedDict()
        self._photo_cache_bytes = int(photo_cache_mb * 2**20)
        self._photo_cache_used = 0
        self.ctx = create_context()
        try:
            with self.ctx:
                self._build()
        except Exception:
            self.ctx.release()
            raise

    def _build(self) -> None:
        ctx = self.ctx
        shade = _shader("shade.frag.glsl")
        self._capsule_prog = ctx.program(vertex_shader=_shader("capsule.vert.glsl"), fragment_shader=shade)
        self._affine_prog = ctx.program(vertex_shader=_shader("affine.vert.glsl"), fragment_shader=shade)
        self._bg_prog = ctx.program(vertex_shader=_shader("background.vert.glsl"), fragment_shader=_shader("background.frag.glsl"))
        self._bg_prog["u_photo"].value = 0
        self._bg_prog["u_size"].value = (float(self.width), float(self.height))

        def instance_buffer(floats: int) -> moderngl.Buffer:
            return ctx.buffer(reserve=self.max_instances * floats * 4, dynamic=True)

        self._capsule_inst = instance_buffer(11)
        verts, idx = capsule_mesh()
        self._capsule_vao = ctx.vertex_array(
            self._capsule_prog,
            [(ctx.buffer(verts.tobytes()), "2f 1f 1f", "in_around", "in_t", "in_end"), (self._capsule_inst, "4f 4f 3f/i", "i_a", "i_b", "i_color")],
            index_buffer=ctx.buffer(idx.tobytes()),
            index_element_size=4,
        )
        # Ellipsoids, boxes and cylinders: one program, one instance layout, three meshes; the mask
        # value each writes (ellipsoids are the body, boxes and cylinders occluders).
        self._affine = {}
        for name, mesh, mask in (("ellipsoids", sphere_mesh(), MASK_PERSON), ("boxes", box_mesh(), 0.0), ("cylinders", cylinder_mesh(), 0.0)):
            inst = instance_buffer(15)
            vao = ctx.vertex_array(
                self._affine_prog,
                [
                    (ctx.buffer(mesh[0].tobytes()), "3f 3f", "in_pos", "in_normal"),
                    (inst, "3f 3f 3f 3f 3f/i", "i_center", "i_ax0", "i_ax1", "i_ax2", "i_color"),
                ],
                index_buffer=ctx.buffer(mesh[1].tobytes()),
                index_element_size=4,
            )
            self._affine[name] = (inst, vao, mask)
        self._bg_vao = ctx.vertex_array(self._bg_prog, [])
        self.target = FrameTarget(ctx, self.width, self.height)
        # A 1x1 placeholder keeps texture unit 0 valid when no photo is bound.
        self._blank = ctx.texture((1, 1), 3, data=bytes(3))

    # -------------------------------------------------------------------------------------------
    def draw(self, K: np.ndarray, R: np.ndarray, t: np.ndarray, prims: Primitives, lighting: Lighting, background: Background,
             before_background: Callable[[], None] | None = None) -> None:
        """Render one frame into the framebuffer (read it with `read_rgb` / `read_mask` / `read_depth`).

        `before_background` draws more (a skinned body) with the context current, after the
        primitives and before the background, so the background's shading skips what it covers."""
        if self.ctx is None:
            raise RuntimeError("this renderer is closed")
        with self.ctx:
            ctx = self.ctx
            ctx.enable_only(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
            ctx.front_face = "cw"
            ctx.depth_func = "<="
            self.target.use_and_clear()
            vp = view_projection(K, R, t, self.width, self.height).T.astype(np.float32).tobytes()  # column-major
            light = (
                lighting.direction.astype(np.float32).tobytes(),
                lighting.color.astype(np.float32).tobytes(),
                lighting.sky.astype(np.float32).tobytes(),
                lighting.ground.astype(np.float32).tobytes(),
            )
            for prog in (self._capsule_prog, self._affine_prog):
                prog["u_view_proj"].write(vp)
                for name, value in zip(("u_light_dir", "u_light_color", "u_sky", "u_ground"), light):
                    prog[name].write(value)
            self._capsule_prog["u_mask"].value = MASK_PERSON
            self._draw_instances(self._capsule_inst, self._capsule_vao, prims.capsules)
            for name, (inst, vao, mask) in self._affine.items():
                self._affine_prog["u_mask"].value = mask
                self._draw_instances(inst, vao, getattr(prims, name))
            if before_background is not None:
                before_background()
            self._set_background(background)
            self._bg_vao.render(moderngl.TRIANGLES, vertices=3)

    def _draw_instances(self, buffer: moderngl.Buffer, vao: moderngl.VertexArray, instances: np.ndarray) -> None:
        n = len(instances)
        if n == 0:
            return
        if n > self.max_instances:
            raise ValueError(f"{n} instances exceed the renderer's max_instances={self.max_instances}")
        buffer.write(np.ascontiguousarray(instances, dtype=np.float32).tobytes())
        vao.render(moderngl.TRIANGLES, instances=n)

    def _set_background(self, bg: Background) -> None:
        prog = self._bg_prog
        kind = bg.kind
        if kind == "photo" and self.photos is None:
            raise ValueError("the scene asks for a photo background but the renderer has no photo_dir")
        prog["u_kind"].value = BACKGROUND_KIND_CODES[kind]
        prog["u_color0"].write(bg.colors[0].astype(np.float32).tobytes())
        prog["u_color1"].write(bg.colors[1].astype(np.float32).tobytes())
        if kind == "gradient":
            prog["u_direction"].write(bg.direction.astype(np.float32).tobytes())
        elif kind == "noise":
            prog["u_scale"].value = float(bg.cell_px)
            prog["u_offset"].write(bg.offset.astype(np.float32).tobytes())
            prog["u_roughness"].value = float(bg.roughness)
        elif kind == "photo":
            texture = self._photo_texture(self.photos.index(bg.photo))
            rect = photo_crop_rect(texture.size, (self.width, self.height), bg.crop_scale, bg.crop_position)
            prog["u_photo_rect"].value = rect
            prog["u_photo_flip"].value = bool(bg.flip)
            texture.use(0)
            return
        self._blank.use(0)

    def _photo_texture(self, index: int) -> moderngl.Texture:
        """The photo's texture, decoded and uploaded once, then kept while the cache has room.

        An undecodable file is replaced by the library's next readable photo, cached under the
        index that was asked for.
        """
        texture = self._photo_cache.get(index)
        if texture is not None:
            self._photo_cache.move_to_end(index)
            return texture
        _, pixels = self.photos.load(index)
        h, w = pixels.shape[:2]
        texture = self.ctx.texture((w, h), 3, data=np.ascontiguousarray(pixels).tobytes())
        texture.build_mipmaps()
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        texture.repeat_x = texture.repeat_y = False
        self._photo_cache[index] = texture
        self._photo_cache_used += w * h * 4  # RGB padded to 4 bytes, plus a third for mipmaps
        while len(self._photo_cache) > 1 and self._photo_cache_used > self._photo_cache_bytes:
            _, old = self._photo_cache.popitem(last=False)
            self._photo_cache_used -= old.width * old.height * 4
            old.release()
        return texture

    # -------------------------------------------------------------------------------------------
    def read_rgb(self) -> np.ndarray:
        """The colour image (H, W, 3) uint8, row 0 at the top."""
        with self.ctx:
            return self.target.read_rgb()

    def read_mask(self) -> np.ndarray:
        """The person mask (H, W) uint8: 1 where the person is the visible surface, else 0."""
        with self.ctx:
            return self.target.read_mask()

    def read_depth(self, pixels: np.ndarray) -> np.ndarray:
        """Camera-frame z (mm) at integer pixels (N, 2) = (column, row); inf on the background."""
        with self.ctx:
            return self.target.read_depth(pixels)

    def read_depth_image(self) -> np.ndarray:
        """Camera-frame z (mm) of every pixel (H, W) float32, inf on the background."""
        with self.ctx:
            return self.target.read_depth_image()

    def describe(self) -> str:
        """The OpenGL renderer and version string, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits), OpenGL 4.5'."""
        with self.ctx:
            info = self.ctx.info
        return f"{info['GL_RENDERER']}, OpenGL {self.ctx.version_code // 100}.{self.ctx.version_code % 100 // 10}"

    def close(self) -> None:
        """Release the GL context and everything on it (idempotent)."""
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None
            self._photo_cache.clear()

    def __enter__(self) -> "PrimitiveRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MannequinRenderer:
    """Renders `Scene`s (a `SceneRenderer`): the image, the person mask, and each joint's
    visibility from the depth buffer; with `depth=True` also the depth image (off by default:
    a float readback of the whole frame costs time and nothing downstream stores it yet)."""

    def __init__(self, width: int, height: int, photo_dir: Path | str | None = None, photo_cache_mb: float = 512.0, depth: bool = False):
        self.gl = PrimitiveRenderer(width, height, photo_dir=photo_dir, photo_cache_mb=photo_cache_mb)
        self.width, self.height = self.gl.width, self.gl.height
        self.depth = bool(depth)

    def render(self, scene: Scene) -> RenderedFrame:
        if tuple(scene.image_size) != (self.width, self.height):
            raise ValueError(f"scene image size {list(scene.image_size)} differs from the renderer's [{self.width}, {self.height}]")
        prims, surfaces = mannequin_primitives(scene)
        self.gl.draw(scene.K, scene.R, scene.t, prims, scene.lighting, scene.background)
        rgb = self.gl.read_rgb()
        mask = self.gl.read_mask()
        joints_cam = world_to_camera(scene.joints_world, scene.R, scene.t)
        uv = project_points(joints_cam, scene.K)
        # Joints outside the image read some pixel inside it; their visibility is 0 regardless.
        pixel = np.floor(np.clip(np.nan_to_num(uv), 0, [self.width - 1, self.height - 1])).astype(np.int64)
        exit_dist = joint_exit_distance(scene.joints_world, camera_center(scene.R, scene.t), prims, surfaces)
        visibility = visibility_from_depth(joints_cam, uv, scene.image_size, self.gl.read_depth(pixel), exit_dist, scene.K[0, 0])
        depth = self.gl.read_depth_image() if self.depth else None
        return RenderedFrame(rgb=rgb, visibility=visibility, mask=mask, depth=depth)

    def close(self) -> None:
        self.gl.close()

    def __enter__(self) -> "MannequinRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
