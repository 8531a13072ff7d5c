"""Read-only probes that scripts/gui/driver.py runs inside the GUI Blender (through in-blender.sh).

Each probe returns a JSON-able dict; `call(name, **kw)` prints it as one JSON line. They READ state
(screen layout, panel values, object data, which button is under the mouse) and measure redraws;
they never press the add-on's buttons: the driver does that with real clicks.

Run inside Blender as:  import runpy; runpy.run_path(THIS)["call"]("screen")
"""

from __future__ import annotations

import json
import sys
import time

import bpy

KEEP = "nnviz_gui_check"  # bpy.app.driver_namespace key: state that outlives one probe call


def _keep() -> dict:
    return bpy.app.driver_namespace.setdefault(KEEP, {})


def _ext():
    """The installed add-on's package (bl_ext.<repo>.nnviz_blender), or None."""
    for key, mod in sys.modules.items():
        if key.startswith("bl_ext.") and key.endswith(".nnviz_blender"):
            return mod
    return None


def _sub(name: str):
    ext = _ext()
    return sys.modules.get(f"{ext.__name__}.{name}") if ext else None


def _view3d():
    """(window, area, WINDOW region, UI region) of the largest 3D viewport."""
    win = bpy.context.window_manager.windows[0]
    areas = [a for a in win.screen.areas if a.type == "VIEW_3D"]
    if not areas:
        return win, None, None, None
    area = max(areas, key=lambda a: a.width * a.height)
    regions = {r.type: r for r in area.regions}
    return win, area, regions.get("WINDOW"), regions.get("UI")


def _rect(win, r) -> dict:
    """A region's rectangle in screen pixels, y down (X11), plus Blender's own numbers."""
    return dict(x=r.x, y=win.height - (r.y + r.height), w=r.width, h=r.height, bx=r.x, by=r.y)


# --- screen ------------------------------------------------------------------------------------


def screen() -> dict:
    win, area, main, ui = _view3d()
    out = dict(window=dict(w=win.width, h=win.height), workspace=win.workspace.name)
    out["areas"] = [dict(type=a.type, **_rect(win, a)) for a in win.screen.areas]
    if area is not None:
        space = area.spaces.active
        out["view3d"] = _rect(win, area)
        out["main"] = _rect(win, main)
        out["sidebar_open"] = bool(space.show_region_ui)
        if ui is not None and ui.width > 1:
            out["ui"] = _rect(win, ui)
            out["category"] = getattr(ui, "active_panel_category", None)
        out["shading"] = space.shading.type
        out["view_perspective"] = space.region_3d.view_perspective
    obj = bpy.context.view_layer.objects.active
    out["active"] = obj.name if obj else None
    out["mode"] = obj.mode if obj else None
    out["ui_scale"] = bpy.context.preferences.system.ui_scale
    out["pixel_size"] = bpy.context.preferences.system.pixel_size
    return out


def theme() -> dict:
    t = bpy.context.preferences.themes[0]
    pc = t.view_3d.space.panelcolors
    return dict(
        header=list(pc.header),
        back=list(pc.back),
        region=list(t.view_3d.space.gradients.high_gradient),
    )


def windows() -> dict:
    """Every window (a file browser opens one of its own): position, size, and the rectangles
    of its areas and their regions, screen pixels, y down."""
    out = []
    for win in bpy.context.window_manager.windows:
        areas = []
        for a in win.screen.areas:
            regions = [dict(type=r.type, **_rect(win, r)) for r in a.regions if r.width > 1]
            areas.append(dict(type=a.type, **_rect(win, a), regions=regions))
        out.append(dict(x=win.x, y=win.y, w=win.width, h=win.height, areas=areas))
    return dict(windows=out)


# --- which button is under the mouse (hover) -------------------------------------------------


def _hovered(win, area, region) -> str | None:
    wm = bpy.context.window_manager
    with bpy.context.temp_override(window=win, area=area, region=region):
        for op, kw, kind in (
            (bpy.ops.ui.copy_python_command_button, {}, "op"),
            (bpy.ops.ui.copy_data_path_button, {"full_path": True}, "prop"),
        ):
            wm.clipboard = ""
            if op.poll():
                try:
                    op(**kw)
                except RuntimeError:
                    continue
                if wm.clipboard:
                    return f"{kind}:{wm.clipboard}"
    return None


def hover() -> dict:
    """The button under the mouse in the sidebar (an operator call or a property path)."""
    win, area, _main, ui = _view3d()
    return dict(button=_hovered(win, area, ui) if ui else None)


def scan_start(xs: list, y0: int, y1: int, step: int = 5, dwell: float = 0.06) -> dict:
    """Map the sidebar: warp the pointer over a grid (screen pixels, y down) and record which
    button is under it at every point. Runs as a timer; read the result with scan_result()."""
    win, area, _main, ui = _view3d()
    points = [(x, y) for x in xs for y in range(int(y0), int(y1), int(step))]
    state = dict(points=points, i=0, phase="move", hits=[], done=False, t0=time.time())
    _keep()["scan"] = state

    def tick():
        win, area, _main, ui = _view3d()
        if state["i"] >= len(state["points"]) or ui is None:
            state["done"] = True
            return None
        x, y = state["points"][state["i"]]
        if state["phase"] == "move":
            win.cursor_warp(int(x), int(win.height - y))
            state["phase"] = "read"
            return dwell
        button = _hovered(win, area, ui)
        if button:
            state["hits"].append((x, y, button))
        state["i"] += 1
        state["phase"] = "move"
        return 0.0

    bpy.app.timers.register(tick, first_interval=0.05)
    return dict(points=len(points))


def scan_stop() -> dict:
    state = _keep().get("scan") or {}
    state["points"] = []
    return dict(stopped=True)


def view_filter(curves: bool | None = None) -> dict:
    """Hide (or show) Curves objects in the 3D viewport (its "Object Types Visibility" filter,
    a view setting): the sidebar scan runs with the edges hidden, because every scan point
    costs a redraw and the edges make a redraw take seconds. Returns the values found before
    the change, so the caller can put them back."""
    _win, area, _main, _ui = _view3d()
    space = area.spaces.active
    names = [n for n in dir(space) if n.startswith("show_object_viewport_") and "curve" in n]
    before = {n: getattr(space, n) for n in names}
    if curves is not None:
        for n in names:
            setattr(space, n, curves)
    return before


def scan_result() -> dict:
    state = _keep().get("scan") or {}
    return dict(
        done=bool(state.get("done")),
        progress=state.get("i", 0),
        hits=state.get("hits", []),
        seconds=round(time.time() - state.get("t0", time.time()), 1),
    )


# --- the add-on's state ------------------------------------------------------------------------


def nnviz() -> dict:
    ext = _ext()
    out: dict = dict(installed=ext is not None)
    scene = bpy.context.scene
    s = getattr(scene, "nnviz", None)
    if ext is None or s is None:
        return out
    out["settings"] = dict(
        model=s.model,
        model_path=getattr(s, "model_path", None),
        edges=s.edges,
        layout=s.layout,
        network=s.network,
        inspect_stage=s.inspect_stage,
        inspect_index=s.inspect_index,
    )
    anim = getattr(scene, "nnviz_anim", None)
    if anim is not None:
        out["anim"] = dict(source=anim.source)
    live = _sub("live")
    util = _sub("scene.util")
    network = _sub("scene.network")
    names = list(network.list_networks()) if network else []
    out["networks"] = names
    nets = {}
    for name in names:
        n: dict = {}
        n["live"] = bool(live.is_live(name)) if live else None
        session = getattr(live, "_sessions", {}).get(name)
        n["updates"] = session.updates if session is not None else None
        n["prediction"] = live.prediction(name) if live else None
        for role in ("nodes", "edges", "canvas", "highlight", "camera"):
            obj = util.find("objects", name, role)
            n[role] = obj.name if obj else None
        edges = util.find("objects", name, "edges")
        if edges is not None:
            n["edge_curves"] = len(edges.data.curves)
            n["edge_points"] = len(edges.data.points)
        nodes = util.find("objects", name, "nodes")
        if nodes is not None:
            n["node_count"] = len(nodes.data.vertices)
            n["parent"] = nodes.parent.name if nodes.parent else None
            n["bake_modifier"] = [m.name for m in nodes.modifiers]
        coll = util.find("collections", name, "collection")
        n["collection_parents"] = [
            c.name for c in bpy.data.collections if coll is not None and coll.name in c.children
        ]
        state = _sub("ui.state")
        info = state.info(name) if state else None
        if info is not None:
            n["inspect"] = dict(
                stage=info.stage,
                index=int(info.index),
                position=str(info.position),
                weighted_input=float(info.weighted_input),
                activation=float(info.activation),
                formula=info.formula[:300],
            )
        record = _sub("animation.record")
        if record is not None:
            n["recording"] = bool(record.is_recording(name))
            rec = record.recording(name)
            n["recorded"] = (
                dict(count=rec.count, duration=round(rec.duration, 2)) if rec is not None else None
            )
        bake = _sub("animation.bake")
        if bake is not None:
            n["bake"] = bake.info(name)
        nets[name] = n
    out["nets"] = nets
    paint = scene.tool_settings.image_paint
    brush = getattr(paint, "brush", None)
    out["brush"] = brush.name if brush is not None else None
    out["frame"] = [scene.frame_start, scene.frame_current, scene.frame_end]
    return out


def enum_items(prop: str) -> dict:
    """The identifiers of one of scene.nnviz's enum properties, in menu order."""
    rna = bpy.context.scene.nnviz.bl_rna.properties[prop]
    return dict(items=[item.identifier for item in rna.enum_items])


def canvas_colour(name: str) -> dict:
    """What the colour-canvas check reads: the canvas image's size and how coloured it is (the
    largest difference between two channels of one pixel), the brush colour, colour canvas or
    not."""
    import numpy as np

    live, util = _sub("live"), _sub("scene.util")
    image = util.find("images", name, "canvas_image")
    out: dict = dict(colour_canvas=bool(live.is_colour_canvas(name)) if live else None)
    if image is not None:
        px = np.empty(len(image.pixels), np.float32)
        image.pixels.foreach_get(px)
        rgb = px.reshape(-1, 4)[:, :3]
        out.update(
            size=list(image.size),
            mean=[round(float(v), 3) for v in rgb.mean(axis=0)],
            max_channel_spread=round(float((rgb.max(axis=1) - rgb.min(axis=1)).max()), 3),
        )
    paint = bpy.context.scene.tool_settings.image_paint
    brush = getattr(paint, "brush", None)
    if brush is not None:
        unified = bpy.context.scene.tool_settings.unified_paint_settings
        colour = unified.color if unified.use_unified_color else brush.color
        out["brush_colour"] = [round(float(v), 3) for v in colour]
    return out


def dump_values(name: str, path: str) -> dict:
    """Save what the check compares: the canvas pixels and the node values on the nodes mesh."""
    import numpy as np

    util = _sub("scene.util")
    image = util.find("images", name, "canvas_image")
    nodes = util.find("objects", name, "nodes")
    w, h = image.size
    pixels = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(pixels)
    act = np.empty(len(nodes.data.vertices), np.float32)
    nodes.data.attributes["act"].data.foreach_get("value", act)
    coll = util.find("collections", name, "collection")
    model = bpy.path.abspath(coll.get("nnviz_model", ""))
    np.savez(path, pixels=pixels.reshape(h, w, 4), act=act, model=model)
    return dict(path=path, size=[w, h], model=model, ink=float(pixels.reshape(-1, 4)[:, 0].sum()))


# --- canvas on screen -------------------------------------------------------------------------


def canvas_points(name: str, uvs: list) -> dict:
    """Screen pixels (y down) of canvas points given as (u, v) in [0, 1] (v up), and whether the
    canvas faces the view enough to paint on."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d
    from mathutils import Vector

    util = _sub("scene.util")
    win, area, main, _ui = _view3d()
    obj = util.find("objects", name, "canvas")
    if obj is None:
        return dict(error="no canvas")
    co = [obj.matrix_world @ v.co for v in obj.data.vertices]  # (0,0) (1,0) (1,1) (0,1)
    rv3d = area.spaces.active.region_3d
    pts = []
    for u, v in uvs:
        p = (1 - u) * (1 - v) * co[0] + u * (1 - v) * co[1] + u * v * co[2] + (1 - u) * v * co[3]
        s = location_3d_to_region_2d(main, rv3d, p)
        pts.append(None if s is None else [main.x + s.x, win.height - (main.y + s.y)])
    normal = (co[1] - co[0]).cross(co[3] - co[0]).normalized()
    view = rv3d.view_rotation @ Vector((0.0, 0.0, -1.0))
    return dict(points=pts, facing=abs(normal.dot(view)))


# --- viewport drawing cost ---------------------------------------------------------------------


def framing(name: str) -> dict:
    """How the largest 3D viewport shows network `name`: its bounding box's 8 corners projected
    into the region, the part of the region no header, toolbar or sidebar covers
    (viewport.visible_rect), whether every corner is inside it and how much of the part the
    corners span on the axis they fill most (1 = edge to edge)."""
    from bpy_extras import view3d_utils
    from mathutils import Vector

    win, area, region, _ = _view3d()
    box = _sub("scene.network").bounds(name)
    if region is None or box is None:
        return dict(error="no 3D viewport or no network")
    x0, y0, x1, y1 = _sub("scene.viewport").visible_rect(area)
    r3d = area.spaces.active.region_3d
    pts = []
    for i in range(8):
        corner = Vector([float((box[0], box[1])[i >> k & 1][k]) for k in range(3)])
        p = view3d_utils.location_3d_to_region_2d(region, r3d, corner)
        pts.append(None if p is None else (round(p.x), round(p.y)))
    inside = all(p is not None and x0 <= p[0] <= x1 and y0 <= p[1] <= y1 for p in pts)
    seen = [p for p in pts if p is not None]
    xs, ys = [p[0] for p in seen], [p[1] for p in seen]
    fill = max((max(xs) - min(xs)) / (x1 - x0), (max(ys) - min(ys)) / (y1 - y0)) if seen else 0
    return dict(
        region=(region.width, region.height),
        visible=(x0, y0, x1, y1),
        corners=pts,
        inside=inside,
        fill=round(fill, 3),
    )


def set_shading(kind: str) -> dict:
    """Measurement set-up (not a feature button): the viewport's shading mode."""
    _win, area, _main, _ui = _view3d()
    area.spaces.active.shading.type = kind
    return dict(shading=area.spaces.active.shading.type)


def set_model_file(path: str) -> dict:
    """Set-up (not a feature button): the panel's model is the ONNX file `path`, as if picked
    in the file browser (the browser itself: a colour model picked through it in an earlier
    check, README "Your own model")."""
    settings = bpy.context.scene.nnviz
    settings.model_path = path
    settings.model = "FILE"
    return dict(model=settings.model, path=settings.model_path)


def view_all() -> dict:
    """Measurement set-up: a perspective view framing everything (View > Frame All)."""
    win, area, main, _ui = _view3d()
    rv3d = area.spaces.active.region_3d
    with bpy.context.temp_override(window=win, area=area, region=main):
        if rv3d.view_perspective == "ORTHO":
            bpy.ops.view3d.view_persportho()
        bpy.ops.view3d.view_axis(type="FRONT")
        bpy.ops.view3d.view_orbit(angle=0.6, type="ORBITUP")
        bpy.ops.view3d.view_orbit(angle=0.6, type="ORBITLEFT")
        bpy.ops.view3d.view_all(center=False)
    return dict(perspective=rv3d.view_perspective, distance=rv3d.view_distance)


def redraw(iterations: int = 3, kind: str = "DRAW_WIN_SWAP") -> dict:
    """Time `wm.redraw_timer`: the whole window (DRAW_WIN_SWAP) or the viewport region only
    (DRAW_SWAP), drawn and swapped `iterations` times; ms per redraw."""
    win, area, main, _ui = _view3d()
    with bpy.context.temp_override(window=win, area=area, region=main):
        bpy.ops.wm.redraw_timer(type=kind, iterations=1)  # warm: caches, shader compiles
        t = time.perf_counter()
        bpy.ops.wm.redraw_timer(type=kind, iterations=iterations)
        ms = (time.perf_counter() - t) * 1000 / iterations
    return dict(kind=kind, shading=area.spaces.active.shading.type, ms=round(ms, 1))


def frames_start() -> dict:
    """Record the time of every viewport frame drawn (a POST_PIXEL draw handler) and the live
    updates count, to measure frames and updates per second while painting."""
    keep = _keep()
    frames_stop()
    stamps: list = []

    def on_draw():
        stamps.append(time.perf_counter())

    keep["frames"] = stamps
    keep["frames_handle"] = bpy.types.SpaceView3D.draw_handler_add(
        on_draw, (), "WINDOW", "POST_PIXEL"
    )
    keep["frames_t0"] = time.perf_counter()
    return dict(started=True)


def frames_stop() -> dict:
    keep = _keep()
    handle = keep.pop("frames_handle", None)
    if handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(handle, "WINDOW")
    stamps = keep.get("frames", [])
    t0 = keep.get("frames_t0", time.perf_counter())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return dict(
        frames=len(stamps),
        seconds=round(time.perf_counter() - t0, 2),
        gap_ms_median=round(1000 * sorted(gaps)[len(gaps) // 2], 1) if gaps else None,
        gap_ms_max=round(1000 * max(gaps), 1) if gaps else None,
    )


def update_ms(name: str, repeats: int = 5) -> dict:
    """One live update (read pixels, preprocess, forward, write node values) timed directly, plus
    the depsgraph evaluation it triggers; the canvas is re-read as is (no drawing change)."""
    import numpy as np

    live, attributes = _sub("live"), _sub("scene.attributes")
    model = live.network_model(name)
    image = live.canvas_image(name)
    buf = np.empty(image.size[0] * image.size[1] * image.channels, np.float32)
    best, best_dg = 1e9, 1e9
    for _ in range(repeats):
        t = time.perf_counter()
        attributes.read_pixels(image, buf)
        live.show_canvas(name, model, buf, tuple(image.size))
        t1 = time.perf_counter()
        bpy.context.evaluated_depsgraph_get().update()
        t2 = time.perf_counter()
        best, best_dg = min(best, t1 - t), min(best_dg, t2 - t1)
    return dict(update_ms=round(best * 1000, 2), depsgraph_ms=round(best_dg * 1000, 2))


def call(probe: str, /, **kw) -> None:
    try:
        result = globals()[probe](**kw)
    except Exception as exc:  # the driver decides; the message says what went wrong
        import traceback

        result = dict(error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc()[-800:])
    print("JSON " + json.dumps(result, default=str))
