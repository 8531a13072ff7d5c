"""The Blender layer: the network as real geometry (needs bpy).

`network` is the entry point: build_network / apply_activations / remove_network.
"""
