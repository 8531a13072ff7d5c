"""The NumPy core of nnviz_blender: model format, forward pass, preprocessing, layouts.

Nothing in this package imports bpy.
"""
