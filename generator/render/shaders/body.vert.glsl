#version 330
// Linear blend skinning of the human body: each vertex blends up to eight segments' rigid motions
// (generator/body/rig.py; `skin_points` is the same math on the CPU). The motions are blended
// first, then applied once, which is the same sum.
uniform mat4 u_view_proj;   // world (mm) -> clip
uniform vec4 u_seg[48];     // 16 segments x 3 rows of [Q | t]

in vec3 in_pos;             // rest position, mm
in vec3 in_normal;          // rest normal
in vec4 in_seg0;            // segment ids (as floats), largest weight first
in vec4 in_seg1;
in vec4 in_weight0;         // their weights, summing to 1; zero after the last
in vec4 in_weight1;
in float in_part;           // appearance.PARTS index
in float in_along;          // position along the limb (appearance.py)

out vec3 v_normal;
out vec3 v_rest;
out float v_along;
flat out int v_part;
flat out int v_segment;

void main() {
    vec4 r0 = vec4(0.0), r1 = vec4(0.0), r2 = vec4(0.0);
    for (int k = 0; k < 8; ++k) {
        float w = k < 4 ? in_weight0[k] : in_weight1[k - 4];
        if (w <= 0.0) break;  // most vertices follow one segment
        int s = int((k < 4 ? in_seg0[k] : in_seg1[k - 4]) + 0.5) * 3;
        r0 += w * u_seg[s];
        r1 += w * u_seg[s + 1];
        r2 += w * u_seg[s + 2];
    }
    vec4 p = vec4(in_pos, 1.0);
    gl_Position = u_view_proj * vec4(dot(r0, p), dot(r1, p), dot(r2, p), 1.0);
    v_normal = vec3(dot(r0.xyz, in_normal), dot(r1.xyz, in_normal), dot(r2.xyz, in_normal));
    v_rest = in_pos;
    v_along = in_along;
    v_part = int(in_part + 0.5);
    v_segment = int(in_seg0[0] + 0.5);
}
