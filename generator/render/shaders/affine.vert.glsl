#version 330
// A unit mesh (sphere, box, cylinder) placed by an affine map per instance:
// p = centre + [ax0 ax1 ax2] * template. The columns are the half-extents along each local axis.
uniform mat4 u_view_proj;

in vec3 in_pos;
in vec3 in_normal;
in vec3 i_center;
in vec3 i_ax0;
in vec3 i_ax1;
in vec3 i_ax2;
in vec3 i_color;

out vec3 v_normal;
out vec3 v_albedo;

void main() {
    vec3 p = i_center + i_ax0 * in_pos.x + i_ax1 * in_pos.y + i_ax2 * in_pos.z;
    gl_Position = u_view_proj * vec4(p, 1.0);
    // Normals transform by the inverse transpose: for orthogonal columns that is sum(c_i n_i / |c_i|^2).
    v_normal = i_ax0 * (in_normal.x / dot(i_ax0, i_ax0)) + i_ax1 * (in_normal.y / dot(i_ax1, i_ax1))
             + i_ax2 * (in_normal.z / dot(i_ax2, i_ax2));
    v_albedo = pow(i_color, vec3(2.2));
}
