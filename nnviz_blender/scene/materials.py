"""Materials: attributes -> colour ramp -> emission, for nodes, edges and labels; themes.

Everything is emission (plus a little fake shading computed from the normal for the nodes), so a
render needs no lights and no bounces and shows the colours exactly as the colormap says
(the stage sets the Standard view transform).

Colormaps are lists of (position, sRGB colour) stops; ramps get them in scene-linear.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import compat, trees, util

RGB = tuple[float, float, float]

# The dark colormap of the original visualization (A. W. Harley's 2015 web version, the paper
# the README cites), read from its source code.
ORIGINAL: list[tuple[float, RGB]] = [
    (0.00, (0.0, 0.0, 0.0)),
    (0.25, (0.17, 0.14, 0.25)),
    (0.50, (0.12, 0.20, 0.51)),
    (0.75, (0.04, 0.55, 0.76)),
    (0.90, (0.01, 0.91, 0.89)),
    (1.00, (0.0, 1.0, 0.8)),
]
VIRIDIS: list[tuple[float, RGB]] = [
    (0.000, (0.267, 0.005, 0.329)),
    (0.125, (0.283, 0.141, 0.458)),
    (0.250, (0.230, 0.322, 0.546)),
    (0.375, (0.173, 0.449, 0.558)),
    (0.500, (0.128, 0.567, 0.551)),
    (0.625, (0.135, 0.659, 0.518)),
    (0.750, (0.369, 0.789, 0.383)),
    (0.875, (0.627, 0.855, 0.223)),
    (1.000, (0.993, 0.906, 0.144)),
]
MAGMA: list[tuple[float, RGB]] = [
    (0.000, (0.001, 0.000, 0.014)),
    (0.125, (0.113, 0.065, 0.277)),
    (0.250, (0.317, 0.072, 0.485)),
    (0.375, (0.508, 0.128, 0.507)),
    (0.500, (0.716, 0.215, 0.475)),
    (0.625, (0.904, 0.311, 0.388)),
    (0.750, (0.987, 0.536, 0.382)),
    (0.875, (0.996, 0.769, 0.534)),
    (1.000, (0.987, 0.991, 0.750)),
]
# Diverging, for signed values on a light background (blue = positive, red = negative).
DIVERGING: list[tuple[float, RGB]] = [
    (0.00, (0.70, 0.09, 0.17)),
    (0.25, (0.94, 0.54, 0.38)),
    (0.50, (0.97, 0.97, 0.97)),
    (0.75, (0.40, 0.66, 0.81)),
    (1.00, (0.13, 0.40, 0.67)),
]
# Diverging for light emitted on a dark background: black at zero, so weak means invisible.
DIVERGING_DARK: list[tuple[float, RGB]] = [
    (0.00, (1.00, 0.45, 0.12)),
    (0.50, (0.0, 0.0, 0.0)),
    (1.00, (0.12, 0.80, 1.00)),
]

EDGE_ALPHA_AOV = "edge_alpha"

COLORMAPS = {
    "original": ORIGINAL,
    "viridis": VIRIDIS,
    "magma": MAGMA,
    "diverging": DIVERGING,
    "diverging_dark": DIVERGING_DARK,
}


@dataclass(frozen=True)
class Theme:
    name: str
    background: tuple[RGB, RGB]  # sRGB centre and edge of the radial gradient
    node_colormap: str
    node_value: str  # node attribute the colour ramp reads: "level" (0..1) or "signed" (-1..1)
    normalise: str  # how `level` is normalised: "map", "stage", "global"
    node_shape: str
    shading: float  # 0 = flat emission, 1 = fully shaded by a fixed key direction
    edge_blend: str  # "add" (light on dark) or "over" (ink on light)
    edge_colors: tuple[RGB, RGB]  # sRGB colour of negative and positive contributions
    edge_strength: float
    text: RGB  # label colour
    highlight: RGB  # predicted class label colour
    # Edge strength when blended in the shader (viewport, EEVEE; see edge_material), tuned by eye
    # in the real window at Start's framed view: light adds up more slowly than ink covers.
    blend_strength: float = 0.08


THEMES: dict[str, Theme] = {
    "dark": Theme(
        name="dark",
        background=((60 / 255, 100 / 255, 140 / 255), (20 / 255, 20 / 255, 20 / 255)),
        node_colormap="original",
        node_value="level",
        normalise="map",
        node_shape="cube",
        shading=0.35,
        edge_blend="add",
        edge_colors=((1.0, 0.42, 0.58), (0.32, 0.80, 1.0)),
        edge_strength=0.5,
        text=(0.55, 0.62, 0.70),
        highlight=(0.3, 1.0, 0.85),
    ),
    "light": Theme(
        name="light",
        background=((1.0, 1.0, 1.0), (0.93, 0.94, 0.95)),
        node_colormap="viridis",
        node_value="level",
        normalise="map",
        node_shape="cube",
        shading=0.25,
        edge_blend="over",
        edge_colors=((0.85, 0.22, 0.18), (0.12, 0.32, 0.75)),
        edge_strength=1.2,
        text=(0.35, 0.35, 0.38),
        highlight=(0.85, 0.20, 0.10),
        blend_strength=0.015,
    ),
}


def srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def linear(rgb: RGB, alpha: float = 1.0) -> tuple[float, float, float, float]:
    r, g, b = rgb
    return srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b), alpha


def mix_rgb(c0: RGB, c1: RGB, f: float) -> RGB:
    """c0 + (c1 - c0) f, channel by channel."""
    return (
        c0[0] + (c1[0] - c0[0]) * f,
        c0[1] + (c1[1] - c0[1]) * f,
        c0[2] + (c1[2] - c0[2]) * f,
    )


def node_colormap(theme: Theme, colormap: str | None) -> tuple[str, bool]:
    """(the colormap nodes are coloured with, whether it shows `signed` rather than `level`)."""
    cmap = colormap or theme.node_colormap
    return cmap, theme.node_value == "signed" or cmap.startswith("diverging")


def get_theme(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r} (choose from {', '.join(THEMES)})") from None


def fill_ramp(ramp_node, stops: list[tuple[float, RGB]]) -> None:
    """Replace a Color Ramp node's elements with `stops` (sRGB in, linear stored)."""
    elements = ramp_node.color_ramp.elements
    while len(elements) > 1:
        elements.remove(elements[-1])
    elements[0].position = stops[0][0]
    elements[0].color = linear(stops[0][1])
    for pos, rgb in stops[1:]:
        elements.new(pos).color = linear(rgb)


# --- node material ----------------------------------------------------------------------------


def node_material(
    network: str,
    theme: Theme,
    colormap: str | None,
    output_stage: int,
    rgb_input: tuple[list[float], list[float]] | None = None,
):
    """Emission coloured by the node's value; the predicted output node glows brighter.

    Reads the instance attributes `level` / `signed` and `stage` (INSTANCER): the nodes are
    instances made by Geometry Nodes, so per-node values live on the instancer. With `rgb_input`
    (a colour image model's per-channel (mean, std)) the input stage shows its pixels in colour
    instead (`_rgb_input`).
    """
    cmap, signed = node_colormap(theme, colormap)
    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colormap {cmap!r} (choose from {', '.join(COLORMAPS)})")
    mat = util.new_material(f"{network} nodes", network, "nodes_material")
    nt = mat.node_tree
    n, link = trees.node, trees.link

    value = n(nt, "ShaderNodeAttribute", -900, 200, attribute_type="INSTANCER")
    value.attribute_name = "signed" if signed else "level"
    factor = compat.factor(value.outputs)
    if signed:  # -1..1 -> 0..1
        remap = n(nt, "ShaderNodeMapRange", -700, 200)
        remap.inputs["From Min"].default_value = -1.0
        link(nt, factor, remap.inputs["Value"])
        factor = remap.outputs["Result"]
    ramp = n(nt, "ShaderNodeValToRGB", -500, 200)
    ramp.name = ramp.label = "Node Colormap"
    fill_ramp(ramp, COLORMAPS[cmap])
    link(nt, factor, compat.factor(ramp.inputs))

    # Flat shading without lights: brightness from the face normal against a fixed key
    # direction (up, towards the camera, a little from the left), like the original's cubes.
    normal = n(nt, "ShaderNodeNewGeometry", -900, -150)
    key = n(nt, "ShaderNodeVectorMath", -700, -150, operation="DOT_PRODUCT")
    link(nt, normal.outputs["Normal"], key.inputs[0])
    key.inputs[1].default_value = (-0.35, -0.55, 0.76)
    lit = n(nt, "ShaderNodeMapRange", -500, -150)
    lit.name = lit.label = "Shading"
    link(nt, key.outputs["Value"], lit.inputs["Value"])
    lit.inputs["From Min"].default_value = -1.0
    lit.inputs["To Min"].default_value = 1.0 - theme.shading
    lit.inputs["To Max"].default_value = 1.0
    shade = n(nt, "ShaderNodeMix", -250, 100, data_type="RGBA", blend_type="MULTIPLY")
    compat.factor(shade.inputs).default_value = 1.0
    color = ramp.outputs["Color"]
    if rgb_input is not None:
        color = _rgb_input(nt, color, *rgb_input)
    link(nt, color, shade.inputs[6])
    link(nt, lit.outputs["Result"], shade.inputs[7])

    # Predicted class: output nodes emit extra light in proportion to their level.
    stage = n(nt, "ShaderNodeAttribute", -900, -400, attribute_type="INSTANCER")
    stage.attribute_name = "stage"
    is_out = n(nt, "ShaderNodeMath", -700, -400, operation="COMPARE")
    link(nt, compat.factor(stage.outputs), is_out.inputs[0])
    is_out.inputs[1].default_value = float(output_stage)
    is_out.inputs[2].default_value = 0.5
    level = n(nt, "ShaderNodeAttribute", -900, -600, attribute_type="INSTANCER")
    level.attribute_name = "level"
    boost = n(nt, "ShaderNodeMath", -500, -450, operation="MULTIPLY")
    link(nt, is_out.outputs[0], boost.inputs[0])
    link(nt, compat.factor(level.outputs), boost.inputs[1])
    gain = n(nt, "ShaderNodeMath", -300, -450, operation="MULTIPLY_ADD")
    gain.name = gain.label = "Winner Boost"
    link(nt, boost.outputs[0], gain.inputs[0])
    gain.inputs[1].default_value = 1.5
    gain.inputs[2].default_value = 1.0

    emit = n(nt, "ShaderNodeEmission", 0, 0)
    link(nt, shade.outputs[2], emit.inputs["Color"])
    link(nt, gain.outputs[0], emit.inputs["Strength"])
    out = n(nt, "ShaderNodeOutputMaterial", 200, 0)
    link(nt, emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def _rgb_input(nt, ramp_color, mean: list[float], std: list[float]):
    """The input stage of a colour model in colour: a node of channel c (the `map` attribute:
    0 red, 1 green, 2 blue) glows in that primary with its pixel value, its raw `act` with the
    model's normalisation undone (act x std[c] + mean[c], clamped to [0, 1]; sRGB-encoded, so
    gamma 2.2 to scene-linear); every other node keeps the colormap's colour."""
    n, link = trees.node, trees.link
    stage = n(nt, "ShaderNodeAttribute", -1300, 500, attribute_type="INSTANCER")
    stage.attribute_name = "stage"
    is_input = n(nt, "ShaderNodeMath", -1100, 500, operation="COMPARE")
    link(nt, compat.factor(stage.outputs), is_input.inputs[0])
    is_input.inputs[1].default_value = 0.0
    is_input.inputs[2].default_value = 0.5
    channel = n(nt, "ShaderNodeAttribute", -1300, 750, attribute_type="INSTANCER")
    channel.attribute_name = "map"
    act = n(nt, "ShaderNodeAttribute", -1300, 1000, attribute_type="INSTANCER")
    act.attribute_name = "act"
    combine = n(nt, "ShaderNodeCombineColor", -500, 750)
    for c, socket in enumerate(("Red", "Green", "Blue")):
        y = 1000 - 150 * c
        pixel = n(nt, "ShaderNodeMath", -1100, y, operation="MULTIPLY_ADD", use_clamp=True)
        link(nt, compat.factor(act.outputs), pixel.inputs[0])
        pixel.inputs[1].default_value = float(std[c])
        pixel.inputs[2].default_value = float(mean[c])
        pick = n(nt, "ShaderNodeMath", -900, y - 60, operation="COMPARE")
        link(nt, compat.factor(channel.outputs), pick.inputs[0])
        pick.inputs[1].default_value = float(c)
        pick.inputs[2].default_value = 0.5
        value = n(nt, "ShaderNodeMath", -700, y, operation="MULTIPLY")
        link(nt, pick.outputs[0], value.inputs[0])
        link(nt, pixel.outputs[0], value.inputs[1])
        link(nt, value.outputs[0], combine.inputs[socket])
    gamma = n(nt, "ShaderNodeGamma", -300, 750)
    gamma.name = gamma.label = "Input Colour"
    link(nt, combine.outputs[0], gamma.inputs["Color"])
    gamma.inputs["Gamma"].default_value = 2.2
    mix = n(nt, "ShaderNodeMix", -300, 400, data_type="RGBA")
    link(nt, is_input.outputs[0], compat.factor(mix.inputs))
    link(nt, ramp_color, mix.inputs[6])
    link(nt, gamma.outputs[0], mix.inputs[7])
    return mix.outputs[2]


# --- edge material ----------------------------------------------------------------------------


def edge_material(network: str, theme: Theme, strength: float | None = None):
    """Edges show glow = weight x source activation (x stage gain), read from the curves.

    a = clamp((|glow| x Edge Strength - Edge Fade) / (1 - Edge Fade)) is how much an edge shows;
    edges at or below the fade level vanish smoothly (the edges modifier can delete them
    before rendering with the same threshold). Two variants in one material, picked by the
    "Layered" value (0 viewport, 1 final render):

    - 0: the edge blends with what is behind it: light added (transparent + emission, "add"
      themes) or ink laid over with opacity a ("over" themes). Right in any viewport, but every
      strand a ray crosses costs a transparent bounce.
    - 1: opaque emission colour x a, plus an AOV `edge_alpha` = a ("over" themes) or 0 ("add"),
      for an edges-only view layer that the compositor blends as base x (1 - alpha) + edges.
      One hit per ray instead of dozens (see studio.layered_render).
    """
    mat = util.new_material(f"{network} edges", network, "edges_material")
    nt = mat.node_tree
    n, link = trees.node, trees.link
    glow = n(nt, "ShaderNodeAttribute", -1100, 0, attribute_type="GEOMETRY")
    glow.attribute_name = "glow"
    scale = n(nt, "ShaderNodeMath", -900, 0, operation="MULTIPLY")
    scale.name = scale.label = "Edge Strength"
    link(nt, compat.factor(glow.outputs), scale.inputs[0])
    scale.inputs[1].default_value = theme.edge_strength if strength is None else strength
    magnitude = n(nt, "ShaderNodeMath", -700, -150, operation="ABSOLUTE")
    link(nt, scale.outputs[0], magnitude.inputs[0])
    fade = n(nt, "ShaderNodeMapRange", -500, -150, clamp=True)
    fade.name = fade.label = "Edge Fade"
    link(nt, magnitude.outputs[0], fade.inputs["Value"])
    fade.inputs["From Min"].default_value = 0.0
    amount = fade.outputs["Result"]
    side = n(nt, "ShaderNodeMath", -700, 150, operation="GREATER_THAN")
    link(nt, compat.factor(glow.outputs), side.inputs[0])
    color = n(nt, "ShaderNodeMix", -500, 150, data_type="RGBA")
    link(nt, side.outputs[0], compat.factor(color.inputs))
    color.inputs[6].default_value = linear(theme.edge_colors[0])
    color.inputs[7].default_value = linear(theme.edge_colors[1])

    # variant 0: blend in the shader. Rasterised strands (EEVEE, the viewport) are a full pixel
    # wide and every one that overlaps a pixel adds up, where a layered render sees the nearest
    # strand per ray at its sub-pixel width: Blend Strength brings the sum back to the render's
    # level (measured by eye in the GUI check's screenshots).
    blend_amount = n(nt, "ShaderNodeMath", -350, 50, operation="MULTIPLY")
    blend_amount.name = blend_amount.label = "Blend Strength"
    link(nt, amount, blend_amount.inputs[0])
    blend_amount.inputs[1].default_value = theme.blend_strength
    emit = n(nt, "ShaderNodeEmission", -200, 250)
    link(nt, color.outputs[2], emit.inputs["Color"])
    clear = n(nt, "ShaderNodeBsdfTransparent", -200, 50)
    if theme.edge_blend == "add":
        link(nt, blend_amount.outputs[0], emit.inputs["Strength"])
        blend = n(nt, "ShaderNodeAddShader", 0, 150)
        link(nt, clear.outputs[0], blend.inputs[0])
        link(nt, emit.outputs[0], blend.inputs[1])
    else:
        blend = n(nt, "ShaderNodeMixShader", 0, 150)
        link(nt, blend_amount.outputs[0], compat.factor(blend.inputs))
        link(nt, clear.outputs[0], blend.inputs[1])
        link(nt, emit.outputs[0], blend.inputs[2])

    # variant 1: opaque, blended by the compositor
    premul = n(nt, "ShaderNodeMix", -200, -150, data_type="RGBA", blend_type="MULTIPLY")
    compat.factor(premul.inputs).default_value = 1.0
    link(nt, color.outputs[2], premul.inputs[6])
    link(nt, amount, premul.inputs[7])
    flat = n(nt, "ShaderNodeEmission", 0, -150)
    link(nt, premul.outputs[2], flat.inputs["Color"])
    aov = n(nt, "ShaderNodeOutputAOV", 0, -350)
    aov.aov_name = EDGE_ALPHA_AOV
    occlude = n(nt, "ShaderNodeMath", -200, -350, operation="MULTIPLY")
    link(nt, amount, occlude.inputs[0])
    occlude.inputs[1].default_value = 0.0 if theme.edge_blend == "add" else 1.0
    link(nt, occlude.outputs[0], aov.inputs["Value"])

    layered = n(nt, "ShaderNodeValue", 0, 400)
    layered.name = layered.label = "Layered"
    layered.outputs[0].default_value = 0.0
    pick = n(nt, "ShaderNodeMixShader", 200, 0)
    link(nt, layered.outputs[0], compat.factor(pick.inputs))
    link(nt, blend.outputs[0], pick.inputs[1])
    link(nt, flat.outputs[0], pick.inputs[2])
    out = n(nt, "ShaderNodeOutputMaterial", 400, 0)
    link(nt, pick.outputs[0], out.inputs["Surface"])
    _blended(mat)
    # Solid viewports: a faint strand of the positive colour (Workbench blends by this alpha)
    mat.diffuse_color = linear(theme.edge_colors[1], 0.06)
    return mat


def set_edge_look(mat, strength: float | None = None, fade: float | None = None, layered=None):
    """Tune an edges material made by edge_material (None leaves a setting as it is)."""
    nodes = mat.node_tree.nodes
    if strength is not None:
        nodes["Edge Strength"].inputs[1].default_value = float(strength)
    if fade is not None:
        nodes["Edge Fade"].inputs["From Min"].default_value = float(fade)
    if layered is not None:
        nodes["Layered"].outputs[0].default_value = 1.0 if layered else 0.0


def edge_look(mat) -> tuple[float, float]:
    """(strength, fade) of an edges material made by edge_material."""
    nodes = mat.node_tree.nodes
    strength = nodes["Edge Strength"].inputs[1].default_value
    return float(strength), float(nodes["Edge Fade"].inputs["From Min"].default_value)


def _blended(mat) -> None:
    """EEVEE: sort and blend the transparent strands instead of dithering them."""
    if hasattr(mat, "surface_render_method"):  # 4.2+
        mat.surface_render_method = "BLENDED"
    if hasattr(mat, "use_transparency_overlap"):
        mat.use_transparency_overlap = True


# --- labels -----------------------------------------------------------------------------------


def label_material(network: str, theme: Theme, role: str, color: RGB, strength: float = 1.0):
    """A plain emissive text material."""
    mat = util.new_material(f"{network} {role}", network, role)
    nt = mat.node_tree
    emit = trees.node(nt, "ShaderNodeEmission", 0, 0)
    emit.inputs["Color"].default_value = linear(color)
    emit.inputs["Strength"].default_value = strength
    out = trees.node(nt, "ShaderNodeOutputMaterial", 200, 0)
    trees.link(nt, emit.outputs[0], out.inputs["Surface"])
    return mat


# --- solid colours (Workbench, Solid viewport) ------------------------------------------------

PALETTE_SIZE = 12


def sample_colormap(stops: list[tuple[float, RGB]], t: float) -> RGB:
    """The colormap at t in [0, 1] (sRGB, linear interpolation between stops)."""
    t = min(max(t, stops[0][0]), stops[-1][0])
    for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
        if t <= p1:
            f = (t - p0) / (p1 - p0) if p1 > p0 else 0.0
            return mix_rgb(c0, c1, f)
    return stops[-1][1]


def palette(network: str, role: str, colors: list[RGB]) -> list:
    """One small material per colour: its viewport colour for Workbench, emission for renders."""
    mats = []
    for i, rgb in enumerate(colors):
        mat = util.new_material(f"{network} {role} {i:02d}", network, f"{role}_{i}")
        mat.diffuse_color = linear(rgb)
        emit = trees.node(mat.node_tree, "ShaderNodeEmission", 0, 0)
        emit.inputs["Color"].default_value = linear(rgb)
        out = trees.node(mat.node_tree, "ShaderNodeOutputMaterial", 200, 0)
        trees.link(mat.node_tree, emit.outputs[0], out.inputs["Surface"])
        mats.append(mat)
    return mats


def node_palette(network: str, theme: Theme, colormap: str | None) -> list:
    stops = COLORMAPS[colormap or theme.node_colormap]
    k = PALETTE_SIZE
    return palette(
        network, "node_palette", [sample_colormap(stops, (i + 0.5) / k) for i in range(k)]
    )


def edge_palette(network: str, theme: Theme) -> list:
    """Bins of signed glow over [-1, 1]: from the edge colour at -1 through the background at 0."""
    k = PALETTE_SIZE
    bg = theme.background[1] if theme.edge_blend == "add" else theme.background[0]
    colors: list[RGB] = []
    for i in range(k):
        c = -1.0 + 2.0 * (i + 0.5) / k
        edge = theme.edge_colors[1] if c > 0 else theme.edge_colors[0]
        a = min(1.0, abs(c) * 1.3)
        colors.append(mix_rgb(bg, edge, a))
    return palette(network, "edge_palette", colors)
