"""Let the bpy module (4.2 / 4.5 wheels) shut Blender down at interpreter exit.

These wheels run Blender's shutdown (WM_exit) only when the `bpy` module object is freed. A
class still referenced at exit whose methods see a module's globals keeps that dict, and with
it `bpy`, alive: 4.2 leaks one reference to every class it registers (still there after
unregister_class), 4.5 to classes still registered at exit (a fixture or script that stopped
before unregistering). Python clears the globals of the modules still alive at exit, but not a
dict that outlives its module. Then `bpy` is never freed, Blender's shutdown never runs, and
its C++ static destructors call into the finished interpreter: 4.2 segfaults in
SpaceType::~SpaceType (pytest exits 139 after a green run), 4.5 hangs in the file-close
thread's GlobalState destructor. 5.0 exits cleanly; Blender itself quits through WM_exit and
never meets this.

Call `release_bpy_at_exit()` before `import bpy`: atexit runs handlers last-in first-out, so
this one runs after bpy's own (add-ons are disabled by then) and clears our package's globals.
"""

import atexit
import sys

PACKAGE = "nnviz_blender"


def _clear_package_globals() -> None:
    for name, module in list(sys.modules.items()):
        if PACKAGE in name.split(".") and module is not None:
            module.__dict__.clear()


def release_bpy_at_exit() -> None:
    atexit.register(_clear_package_globals)
