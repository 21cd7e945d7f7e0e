#version 330
// A tapered capsule per instance: spheres of radius ra at a and rb at b joined by their common
// tangent cone. The template vertex gives the direction around the axis, t (0 at a pole, 1 at
// its hemisphere's equator) and which end it belongs to.
uniform mat4 u_view_proj;  // world (mm) -> clip

in vec2 in_around;
in float in_t;
in float in_end;
in vec4 i_a;  // xyz = first end (world mm), w = its radius
in vec4 i_b;
in vec3 i_color;  // sRGB albedo

out vec3 v_normal;
out vec3 v_albedo;

const float HALF_PI = 1.5707963267948966;

void main() {
    vec3 axis = i_b.xyz - i_a.xyz;
    float len = length(axis);
    vec3 d = len > 1e-3 ? axis / len : vec3(0.0, 0.0, 1.0);
    vec3 helper = abs(d.z) < 0.9 ? vec3(0.0, 0.0, 1.0) : vec3(1.0, 0.0, 0.0);
    vec3 e1 = normalize(cross(helper, d));
    vec3 e2 = cross(d, e1);
    // The tangent cone's normals make the angle alpha with the plane across the axis.
    float alpha = asin(clamp((i_a.w - i_b.w) / max(len, 1e-3), -0.95, 0.95));
    bool first = in_end < 0.5;
    float lat = first ? -HALF_PI + in_t * (HALF_PI + alpha) : HALF_PI - in_t * (HALF_PI - alpha);
    vec3 n = cos(lat) * (in_around.x * e1 + in_around.y * e2) + sin(lat) * d;
    vec3 p = first ? i_a.xyz + i_a.w * n : i_b.xyz + i_b.w * n;
    gl_Position = u_view_proj * vec4(p, 1.0);
    v_normal = n;
    v_albedo = pow(i_color, vec3(2.2));
}
