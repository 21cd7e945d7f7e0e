#version 330
// Linear blend skinning of the human body: each vertex blends up to eight segments' rigid motions
// (generator/body/rig.py, `skin_points` is the same math on the CPU).
uniform mat4 u_view_proj;   // world (mm) -> clip
uniform vec4 u_seg[48];     // 16 segments x 3 rows of [Q | t]

in vec3 in_pos;             // rest position, mm
in vec3 in_normal;          // rest normal
in vec4 in_seg0;            // segment ids (as floats), largest weight first
in vec4 in_seg1;
in vec4 in_weight0;         // their weights, summing to 1
in vec4 in_weight1;
in float in_part;           // appearance.PARTS index
in float in_along;          // position along the limb (appearance.py)

out vec3 v_normal;
out vec3 v_rest;
out float v_along;
flat out int v_part;
flat out int v_segment;

void main() {
    vec4 p = vec4(in_pos, 1.0);
    vec3 pos = vec3(0.0);
    vec3 nrm = vec3(0.0);
    for (int k = 0; k < 8; ++k) {
        int s = int((k < 4 ? in_seg0[k] : in_seg1[k - 4]) + 0.5) * 3;
        float w = k < 4 ? in_weight0[k] : in_weight1[k - 4];
        pos += w * vec3(dot(u_seg[s], p), dot(u_seg[s + 1], p), dot(u_seg[s + 2], p));
        nrm += w * vec3(dot(u_seg[s].xyz, in_normal), dot(u_seg[s + 1].xyz, in_normal), dot(u_seg[s + 2].xyz, in_normal));
    }
    gl_Position = u_view_proj * vec4(pos, 1.0);
    v_normal = nrm;
    v_rest = in_pos;
    v_along = in_along;
    v_part = int(in_part + 0.5);
    v_segment = int(in_seg0[0] + 0.5);
}
