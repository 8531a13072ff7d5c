"""What a render evaluates: a minimal render engine that reads the render depsgraph.

The bpy module's `evaluated_depsgraph_get()` is a viewport depsgraph (Geometry Nodes' Is
Viewport is true there); renders evaluate their own depsgraph, which Python sees only inside a
render engine's `render()`. `render_sizes(scene, objects)` renders `scene` once with such an
engine and returns, per object name, (curves, points) of its evaluated Curves data.

bpy is imported inside the function: the 4.2 wheel keeps every class it registered, and with it
this module's globals, alive at exit (see bpy_exit).
"""


def render_sizes(scene, objects: list[str]) -> dict[str, tuple[int, int]]:
    import bpy

    found: dict[str, tuple[int, int]] = {}

    class ProbeEngine(bpy.types.RenderEngine):
        bl_idname = "NNVIZ_RENDER_PROBE"
        bl_label = "Render probe"

        def render(self, depsgraph):
            for name in objects:
                data = depsgraph.objects[name].data
                found[name] = (len(data.curves), len(data.points))
            self.end_result(self.begin_result(0, 0, 4, 4))

    engine, size = scene.render.engine, (scene.render.resolution_x, scene.render.resolution_y)
    camera = scene.camera
    bpy.utils.register_class(ProbeEngine)
    try:
        if camera is None:
            scene.camera = bpy.data.objects.new("probe camera", bpy.data.cameras.new("probe"))
            scene.collection.objects.link(scene.camera)
        scene.render.engine = ProbeEngine.bl_idname
        scene.render.resolution_x = scene.render.resolution_y = 4
        bpy.ops.render.render(scene=scene.name)
    finally:
        scene.render.engine = engine
        scene.render.resolution_x, scene.render.resolution_y = size
        if camera is None:
            cam = scene.camera
            scene.camera = None
            data = cam.data
            bpy.data.objects.remove(cam)
            bpy.data.cameras.remove(data)
        bpy.utils.unregister_class(ProbeEngine)
    return found
