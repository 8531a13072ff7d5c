"""What the 3D viewports show while the user paints: the network as the renders show it.

Material Preview and Rendered normally light the scene with Blender's grey studio HDRI and the
Filmic / AgX view transform; the renders use the network's theme world (studio.world), no lights
and the Standard view transform, and fade weak edges. `show_like_render` gives the viewports the
same: the scene's world and lights, the render's colour management and edge fade, and Material
Preview instead of Solid (where attribute colours and glow do not show).
"""

from __future__ import annotations

from ..core.values import DEFAULT_FADE
from . import materials, network, studio, util
from .handle import Network


def show_like_render(name: str, scene, screen=None) -> None:
    """Theme world, colour management and edge fade of a render; 3D viewports of `screen` use
    the scene's world and lights (Solid ones switch to Material Preview)."""
    net = Network(name)
    if scene.world is None or scene.world.get(util.TAG) != name:
        scene.world = studio.world(name, materials.get_theme(net.theme))
    studio.colour_management(scene)
    mat = util.find("materials", name, "edges_material")
    if mat is not None and materials.edge_look(mat)[1] == 0.0:
        network.set_edge_fade(name, DEFAULT_FADE)
    for area in screen.areas if screen is not None else ():
        if area.type == "VIEW_3D":
            use_scene_look(area.spaces.active.shading)


def use_scene_look(shading) -> None:
    """Material Preview and Rendered with the scene's world and lights, not the studio HDRI."""
    if shading.type == "SOLID":
        shading.type = "MATERIAL"
    shading.background_type = "WORLD"  # Solid: the theme's background colour (world.color)
    shading.use_scene_world = True
    shading.use_scene_lights = True
    shading.use_scene_world_render = True
    shading.use_scene_lights_render = True
