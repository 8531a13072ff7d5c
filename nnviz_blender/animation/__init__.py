"""Animation: sequences of inputs baked into the .blend so any Blender renders them.

- `schedule` (NumPy): key states and their timing -> keyframes of one "Position" curve, the
  per-frame (key a, key b, mix) it means, and the per-stage propagation wave.
- `strokes` (NumPy): reveal a finished digit stroke by stroke (synthetic drawing).
- `sequence` (NumPy): a list of inputs ("sample:0,sample:1,x.npy") as key states and schedule.
- `output`: where an animation render goes (PNG frames or a video file).
- `bake` (bpy): writes the table of node values per key (raw values plus the per-group
  normalisation constants of core.values instead of three full arrays), the keyframes and the
  "NNViz Bake" Geometry Nodes modifier that rewrites the nodes' `act`, `level`, `signed` for
  the current frame -- no Python at render time, no add-on needed, no external file.
- `keys` (bpy): keyframes from arrays on 4.2 / 4.5 / 5.0 (slotted actions).
- `camera` (bpy): orbit / dolly presets as plain keyframes, framing that fits the perspective.
- `record` (bpy): capture the live canvas as network inputs and bake the recording.
- `passes` (bpy): nodes, edges and labels in view layers of their own (multilayer EXR).

`schedule`, `strokes`, `sequence` and `output` import without bpy.
"""
