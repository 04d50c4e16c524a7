"""Per-pixel lighting for the view's meshes, with Panda3D's fixed-function path as fallback.

Panda3D 1.10's automatic shader generator emits Cg, which Mesa's EGL drivers refuse, so the
view carries a small GLSL program: Blinn-Phong from the scene's directional lights plus the
ambient light, lit on both faces (cut bone seen from inside stays lit).
"""

from panda3d.core import GraphicsStateGuardian, NodePath, Shader

_VERTEX = """
#version 120
uniform mat4 p3d_ModelViewProjectionMatrix;
uniform mat4 p3d_ModelViewMatrix;
uniform mat3 p3d_NormalMatrix;
attribute vec4 p3d_Vertex;
attribute vec3 p3d_Normal;
attribute vec4 p3d_Color;
varying vec3 v_normal;
varying vec3 v_position;
varying vec4 v_color;

void main() {
    gl_Position = p3d_ModelViewProjectionMatrix * p3d_Vertex;
    v_position = (p3d_ModelViewMatrix * p3d_Vertex).xyz;
    v_normal = p3d_NormalMatrix * p3d_Normal;
    v_color = p3d_Color;
}
"""

_FRAGMENT = """
#version 120
uniform struct p3d_LightSourceParameters {
    vec4 color;
    vec4 position;
} p3d_LightSource[3];
uniform struct p3d_LightModelParameters {
    vec4 ambient;
} p3d_LightModel;
uniform vec4 p3d_ColorScale;
varying vec3 v_normal;
varying vec3 v_position;
varying vec4 v_color;

void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) {
        n = -n;
    }
    vec3 to_eye = normalize(-v_position);
    vec4 base = v_color * p3d_ColorScale;
    vec3 lit = p3d_LightModel.ambient.rgb * base.rgb;
    for (int i = 0; i < 3; ++i) {
        vec4 p = p3d_LightSource[i].position;
        vec3 to_light = normalize(p.xyz - v_position * p.w);
        float diffuse = max(dot(n, to_light), 0.0);
        vec3 half_way = normalize(to_light + to_eye);
        float specular = diffuse > 0.0 ? pow(max(dot(n, half_way), 0.0), 32.0) * 0.18 : 0.0;
        lit += p3d_LightSource[i].color.rgb * (diffuse * base.rgb + specular);
    }
    gl_FragColor = vec4(lit, base.a);
}
"""


def apply_lighting(root: NodePath, gsg: GraphicsStateGuardian | None) -> bool:
    """Light everything under ``root`` per pixel when the GPU runs GLSL; say whether it does."""
    if gsg is None or not gsg.get_supports_basic_shaders():
        return False
    root.set_shader(Shader.make(Shader.SL_GLSL, _VERTEX, _FRAGMENT))
    return True
