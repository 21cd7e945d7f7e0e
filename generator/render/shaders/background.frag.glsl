#version 330
// Backgrounds: 0 solid, 1 linear gradient, 2 fractal value noise, 3 a photo crop.
// gl_FragCoord is in image pixels with y down (the renderer's projection flips y).
uniform int u_kind;
uniform vec2 u_size;        // [width, height] in pixels
uniform vec3 u_color0;      // sRGB
uniform vec3 u_color1;
uniform vec2 u_direction;   // gradient: unit direction in the image
uniform float u_scale;      // noise: cell size in pixels
uniform vec2 u_offset;      // noise: lattice offset in cells
uniform float u_roughness;  // noise: amplitude ratio between octaves
uniform sampler2D u_photo;
uniform vec4 u_photo_rect;  // photo: crop as (u0, v0, du, dv) in texture coordinates
uniform bool u_photo_flip;  // photo: mirror the crop horizontally

layout(location = 0) out vec4 f_color;
layout(location = 1) out float f_mask;  // background: never the person

float hash(uvec2 q) {
    q = q * uvec2(1597334673u, 3812015801u);
    uint n = (q.x ^ q.y) * 1597334673u;
    return float(n) * (1.0 / 4294967296.0);
}

float value_noise(vec2 p) {
    vec2 i = floor(p);
    vec2 f = p - i;
    vec2 w = f * f * (3.0 - 2.0 * f);
    uvec2 c = uvec2(ivec2(i) + 65536);
    float a = hash(c);
    float b = hash(c + uvec2(1u, 0u));
    float d = hash(c + uvec2(0u, 1u));
    float e = hash(c + uvec2(1u, 1u));
    return mix(mix(a, b, w.x), mix(d, e, w.x), w.y);
}

void main() {
    vec2 uv = gl_FragCoord.xy / u_size;
    vec3 color;
    if (u_kind == 0) {
        color = u_color0;
    } else if (u_kind == 1) {
        float s = clamp(dot(uv - 0.5, u_direction) + 0.5, 0.0, 1.0);
        color = mix(u_color0, u_color1, s);
    } else if (u_kind == 2) {
        vec2 p = gl_FragCoord.xy / u_scale + u_offset;
        float sum = 0.0;
        float amp = 1.0;
        float norm = 0.0;
        for (int k = 0; k < 4; ++k) {
            sum += amp * value_noise(p);
            norm += amp;
            amp *= u_roughness;
            p = p * 2.03 + vec2(17.0, 31.0);
        }
        color = mix(u_color0, u_color1, sum / norm);
    } else {
        vec2 t = vec2(u_photo_flip ? 1.0 - uv.x : uv.x, uv.y);
        color = texture(u_photo, u_photo_rect.xy + t * u_photo_rect.zw).rgb;
    }
    f_color = vec4(color, 1.0);
    f_mask = 0.0;
}
