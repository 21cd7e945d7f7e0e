#version 330
// Skin, hair and clothing of the human body from its parts (generator/body/appearance.py), Lambert
// shading in linear light like shade.frag.glsl. The second output is the person mask; it stores
// 1 + the fragment's main segment (as a byte), so visibility can tell which body part is seen.
uniform vec3 u_light_dir;
uniform vec3 u_light_color;
uniform vec3 u_sky;
uniform vec3 u_ground;

uniform vec3 u_skin;
uniform vec3 u_hair;
uniform vec3 u_eye;
uniform vec3 u_top;
uniform vec3 u_top2;
uniform vec3 u_bottom;
uniform vec3 u_bottom2;
uniform vec3 u_shoes;
uniform float u_sleeve_end;   // along-coordinate where sleeves end (0 = sleeveless, 2 = to the wrist)
uniform float u_leg_end;      // along-coordinate where trouser legs end
uniform float u_waist;        // trunk coordinate (0 hips, 1 shoulders) where the bottom gives way to the top
uniform float u_neckline;     // trunk coordinate where the top ends at the neck ...
uniform float u_neck_halfwidth;  // ... within this distance (mm, rest pose) of the body's midline
uniform int u_top_pattern;    // 0 solid, 1 horizontal stripes, 2 vertical stripes, 3 checks
uniform int u_bottom_pattern;
uniform float u_top_scale;    // pattern period, mm
uniform float u_bottom_scale;

in vec3 v_normal;
in vec3 v_rest;
in float v_along;
flat in int v_part;
flat in int v_segment;

layout(location = 0) out vec4 f_color;
layout(location = 1) out float f_mask;

// PARTS: head hair eye neck torso pelvis upperarm forearm hand thigh shin foot
const int HAIR = 1, EYE = 2, NECK = 3, TORSO = 4, PELVIS = 5, UPPERARM = 6, FOREARM = 7, THIGH = 9, SHIN = 10, FOOT = 11;

vec3 pattern(vec3 a, vec3 b, int kind, float scale) {
    vec2 q = vec2(v_rest.x + v_rest.y, v_rest.z) / scale;
    bool second = false;
    if (kind == 1) second = fract(q.y) < 0.5;
    else if (kind == 2) second = fract(q.x) < 0.5;
    else if (kind == 3) second = (int(floor(q.x)) + int(floor(q.y))) % 2 == 0;
    return second ? b : a;
}

void main() {
    vec3 c = u_skin;
    vec3 top = pattern(u_top, u_top2, u_top_pattern, u_top_scale);
    vec3 bottom = pattern(u_bottom, u_bottom2, u_bottom_pattern, u_bottom_scale);
    if (v_part == HAIR) c = u_hair;
    else if (v_part == EYE) c = u_eye;
    else if (v_part == NECK || v_part == TORSO || v_part == PELVIS)  // smooth waist and neckline on the trunk coordinate
        c = v_along < u_waist ? bottom : (v_along < u_neckline || abs(v_rest.x) > u_neck_halfwidth ? top : u_skin);
    else if ((v_part == UPPERARM || v_part == FOREARM) && v_along < u_sleeve_end) c = top;
    else if ((v_part == THIGH || v_part == SHIN) && v_along < u_leg_end) c = bottom;
    else if (v_part == FOOT) c = u_shoes;
    vec3 n = normalize(v_normal);
    vec3 light = max(dot(n, u_light_dir), 0.0) * u_light_color + mix(u_ground, u_sky, 0.5 + 0.5 * n.z);
    f_color = vec4(pow(pow(c, vec3(2.2)) * light, vec3(1.0 / 2.2)), 1.0);
    f_mask = float(1 + v_segment) / 255.0;
}
