"""The human body, drawn with linear blend skinning in the vertex shader.

Each identity's rest mesh (positions and normals, mm) is uploaded once, with the attributes all
identities share (segment ids and weights, body part, limb coordinate) and the triangles of the
render mesh (`BodyModel.render_faces`: face, hands and feet simplified, the rest as Anny made it). A frame
then costs the CPU a 16 x 3 x 4 uniform of segment motions plus the clothing uniforms.

The frame is drawn into the PrimitiveRenderer's target: occluders, the body, then the background,
which only shades the pixels left uncovered. The body writes 1 + its fragment's main segment into the mask
attachment; the person mask is where that is non-zero, and a joint is visible when the surface
seen at its pixel belongs to the joint's own segments (pool.JOINT_SEGMENTS) and lies no more than
the joint's depth below the surface (pool.BodyPool.joint_depth) in front of it, or when the pixel
shows the bare background (a joint on the silhouette's edge: nothing covers it). So self-occlusion
comes from the real mesh: an arm across the chest hides the thorax, the far knee hides behind the
near leg.
"""

from __future__ import annotations

from pathlib import Path

import moderngl
import numpy as np

from ..body.pool import JOINT_SURFACE, BodyPool
from ..camera import in_image, project_points, world_to_camera
from ..scene import Scene
from .mannequin import occluder_primitives
from .renderer import PrimitiveRenderer, RenderedFrame, _shader, view_projection
from .visibility import OCCLUDED, OUTSIDE, VISIBLE


class HumanRenderer:
    """Renders `Scene`s with a human body (a `SceneRenderer`)."""

    def __init__(self, width: int, height: int, bodies: BodyPool, photo_dir: Path | str | None = None, photo_cache_mb: float = 512.0,
                 depth: bool = False):
        self.gl = PrimitiveRenderer(width, height, photo_dir=photo_dir, photo_cache_mb=photo_cache_mb)
        self.width, self.height = self.gl.width, self.gl.height
        self.bodies = bodies
        self.depth = bool(depth)
        model = bodies.model
        with self.gl.ctx:
            ctx = self.gl.ctx
            self._prog = ctx.program(vertex_shader=_shader("body.vert.glsl"), fragment_shader=_shader("body.frag.glsl"))
            shared = np.concatenate(
                [model.influence_segments.astype(np.float32), model.influence_weights, model.vertex_part[:, None].astype(np.float32),
                 model.vertex_along[:, None]], axis=1,
            )
            self._shared = ctx.buffer(np.ascontiguousarray(shared, dtype=np.float32).tobytes())
            self._index = ctx.buffer(np.ascontiguousarray(model.render_faces, dtype=np.int32).tobytes())
        self._vaos: dict[int, moderngl.VertexArray] = {}
        # Necklines stay within 45 % of each body's shoulder half-width of its midline (rest x).
        self._neck_halfwidth = 0.45 * np.abs(bodies.identities.bone_heads[:, model.bone("upperarm01.L"), 0])

    def _vao(self, identity: int) -> moderngl.VertexArray:
        vao = self._vaos.get(identity)
        if vao is None:
            ids = self.bodies.identities
            data = np.concatenate([ids.vertices[identity], ids.normals[identity]], axis=1).astype(np.float32)
            ctx = self.gl.ctx
            vao = ctx.vertex_array(
                self._prog,
                [(ctx.buffer(data.tobytes()), "3f 3f", "in_pos", "in_normal"),
                 (self._shared, "4f 4f 4f 4f 1f 1f", "in_seg0", "in_seg1", "in_weight0", "in_weight1", "in_part", "in_along")],
                index_buffer=self._index,
                index_element_size=4,
            )
            self._vaos[identity] = vao
        return vao

    def _set_uniforms(self, scene: Scene) -> None:
        prog, human = self._prog, scene.human
        prog["u_view_proj"].write(view_projection(scene.K, scene.R, scene.t, self.width, self.height).T.astype(np.float32).tobytes())
        prog["u_seg"].write(human.pose.rows().tobytes())
        lighting = scene.lighting
        for name, value in (("u_light_dir", lighting.direction), ("u_light_color", lighting.color), ("u_sky", lighting.sky), ("u_ground", lighting.ground)):
            prog[name].write(np.asarray(value, np.float32).tobytes())
        c = human.clothing
        for name in ("skin", "hair", "eye", "top", "top2", "bottom", "bottom2", "shoes"):
            prog[f"u_{name}"].write(np.asarray(getattr(c, name), np.float32).tobytes())
        prog["u_sleeve_end"].value = c.sleeve_end
        prog["u_leg_end"].value = c.leg_end
        prog["u_waist"].value = c.waist
        prog["u_neckline"].value = c.neckline
        prog["u_neck_halfwidth"].value = float(self._neck_halfwidth[human.identity])
        prog["u_top_pattern"].value = c.top_pattern
        prog["u_bottom_pattern"].value = c.bottom_pattern
        prog["u_top_scale"].value = c.top_period_mm
        prog["u_bottom_scale"].value = c.bottom_period_mm

    def _draw_body(self, scene: Scene) -> None:
        """Draw the skinned body into the bound target (the context is current)."""
        self._set_uniforms(scene)
        self._vao(scene.human.identity).render(moderngl.TRIANGLES)

    def render(self, scene: Scene) -> RenderedFrame:
        if scene.human is None:
            raise ValueError("the scene has no human body (it was sampled for the mannequin)")
        if tuple(scene.image_size) != (self.width, self.height):
            raise ValueError(f"scene image size {list(scene.image_size)} differs from the renderer's [{self.width}, {self.height}]")
        gl = self.gl
        gl.draw(scene.K, scene.R, scene.t, occluder_primitives(scene.occluders), scene.lighting, scene.background, lambda: self._draw_body(scene))
        with gl.ctx:
            rgb = gl.target.read_rgb()
            surface = gl.target.read_mask()
        joints_cam = world_to_camera(scene.joints_world, scene.R, scene.t)
        uv = project_points(joints_cam, scene.K)
        pixel = np.floor(np.clip(np.nan_to_num(uv), 0, [self.width - 1, self.height - 1])).astype(np.int64)
        seen = surface[pixel[:, 1], pixel[:, 0]]
        z_surface = gl.read_depth(pixel)
        own = JOINT_SURFACE[np.arange(17), seen]
        deep_enough = z_surface >= joints_cam[:, 2] - self.bodies.joint_depth[scene.human.identity]
        # The bare background at the pixel (a joint on the silhouette, sub-pixel outside it): nothing covers it.
        uncovered = np.isinf(z_surface)
        visibility = np.where((own & deep_enough) | uncovered, VISIBLE, OCCLUDED).astype(np.uint8)
        visibility[~in_image(uv, scene.image_size, joints_cam[:, 2])] = OUTSIDE
        mask = np.minimum(surface, 1)
        depth = gl.read_depth_image() if self.depth else None
        return RenderedFrame(rgb=rgb, visibility=visibility, mask=mask, depth=depth)

    def close(self) -> None:
        self.gl.close()

    def __enter__(self) -> "HumanRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
