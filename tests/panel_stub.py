"""Draw a panel against a stand-in for UILayout (the bpy module has no window to draw in).

The stand-in checks that every property a panel shows exists on its data and every operator it
names is registered, and logs what was drawn so tests can assert on the panel's state.
"""

from types import SimpleNamespace

import bpy


class _Layout:
    """Stands in for UILayout: checks every property and operator the panel names exists."""

    def __init__(self, log):
        self.log = log
        self.scale_y = 1.0
        self.enabled = True
        self.use_property_split = self.use_property_decorate = False

    def _child(self, *_args, **_kw):
        return _Layout(self.log)

    box = row = column = _child

    def label(self, text="", icon="NONE"):
        self.log.append(("label", text))

    def prop(self, data, name, **_kw):
        assert name in data.bl_rna.properties, name
        self.log.append(("prop", name))

    def template_icon(self, icon_value=0, scale=1.0):
        self.log.append(("icon", icon_value))

    def operator(self, idname, **_kw):
        group, _, op = idname.partition(".")
        assert hasattr(getattr(bpy.ops, group), op), idname
        self.log.append(("operator", idname))
        return type("Props", (), {})()


def draw_panel(panel_class, context) -> list:
    log: list = []
    panel_class.draw(SimpleNamespace(layout=_Layout(log)), context)
    return log
