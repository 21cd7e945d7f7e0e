#version 330
// One triangle covering the viewport, at the far plane: it only fills pixels nothing else drew.
// Clockwise in NDC: the renderer culls counter-clockwise faces (see renderer.py).
const vec2 CORNERS[3] = vec2[3](vec2(-1.0, -1.0), vec2(-1.0, 3.0), vec2(3.0, -1.0));

void main() {
    gl_Position = vec4(CORNERS[gl_VertexID], 1.0, 1.0);
}
