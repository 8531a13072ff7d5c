"""nnviz_blender: watch a neural network think, as real Blender geometry.

The NumPy core (`nnviz_blender.core`) imports without bpy; the Blender layer is imported only
by `register()`, so `import nnviz_blender` works in plain Python too.
"""

__version__ = "0.1.0"


def register() -> None:
    from . import ui

    ui.register()


def unregister() -> None:
    from . import ui

    ui.unregister()
