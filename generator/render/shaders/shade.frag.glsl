#version 330
// Lambert shading in linear light: one directional light plus a sky/ground hemisphere ambient.
uniform vec3 u_light_dir;    // world, unit, towards the light
uniform vec3 u_light_color;  // linear, intensity included
uniform vec3 u_sky;          // linear ambient from above (+z) ...
uniform vec3 u_ground;       // ... and from below
uniform float u_mask;        // person-mask value: MASK_PERSON for the body, 0 for occluders

in vec3 v_normal;
in vec3 v_albedo;
layout(location = 0) out vec4 f_color;
layout(location = 1) out float f_mask;  // the R8 person-mask attachment (renderer.py, FrameTarget)

void main() {
    vec3 n = normalize(v_normal);
    vec3 light = max(dot(n, u_light_dir), 0.0) * u_light_color + mix(u_ground, u_sky, 0.5 + 0.5 * n.z);
    f_color = vec4(pow(v_albedo * light, vec3(1.0 / 2.2)), 1.0);
    f_mask = u_mask;
}
