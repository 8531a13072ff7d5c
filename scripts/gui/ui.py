"""Finding and pressing things in Blender's window: the 3D viewport's sidebar, its panels and
buttons, the canvas. Positions are read from Blender (region rectangles, the button under the
pointer); presses are real clicks, retried when Blender missed them (it misses clicks while a slow
viewport redraw blocks its event loop), and every press is confirmed by the state it changes.
"""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np

from .session import GuiError, Session

CATEGORY = "NNViz"
# Where across the sidebar (fraction of its width) a button is easiest to hit: one scan column.
COLUMN = {
    "remove": 0.84,
    "clear_canvas": 0.84,
    "trace": 0.75,
    "model": 0.84,
    "edges": 0.84,
}


class Ui:
    def __init__(self, s: Session):
        self.s = s
        self.hits: list = []  # the last sidebar scan: (x, y, button)

    # --- layout --------------------------------------------------------------------------------

    def screen(self) -> dict:
        sc = self.s.probe("screen")
        if "error" in sc:
            raise GuiError(f"screen probe: {sc['error']}")
        return sc

    def viewport_centre(self) -> tuple[int, int]:
        m = self.screen()["main"]
        ui = self.screen().get("ui")
        right = ui["x"] if ui else m["x"] + m["w"]
        return ((m["x"] + right) // 2, m["y"] + m["h"] // 2)

    def close_splash(self) -> None:
        """The splash screen closes with a click outside it."""
        time.sleep(2)
        self.s.xdo("mousemove", 300, 850, "click", 1)
        time.sleep(1)

    def maximise_viewport(self) -> None:
        """Ctrl+Space over the 3D viewport: it fills the window (more room for the sidebar)."""
        sc = self.screen()
        if sc["view3d"]["h"] > 0.8 * sc["window"]["h"]:
            return
        for _ in range(4):
            m = sc["main"]
            self.s.key("ctrl+space", at=(m["x"] + m["w"] // 3, m["y"] + m["h"] // 2))
            time.sleep(1.5)
            sc = self.screen()
            if sc["view3d"]["h"] > 0.8 * sc["window"]["h"]:
                return
        raise GuiError("Ctrl+Space did not maximise the 3D viewport")

    def open_sidebar(self) -> dict:
        for _ in range(5):
            sc = self.screen()
            if sc.get("sidebar_open") and sc.get("ui"):
                return sc
            m = sc["main"]
            self.s.key("n", at=(m["x"] + m["w"] // 3, m["y"] + m["h"] // 2))
            time.sleep(1.5)
        raise GuiError("the sidebar did not open (N over the viewport)")

    def choose_tab(self, name: str = CATEGORY) -> None:
        """Ctrl+wheel over the sidebar steps through its tabs; stop at `name`."""
        for _ in range(12):
            sc = self.screen()
            if sc.get("category") == name:
                return
            ui = sc["ui"]
            self.s.move(ui["x"] + ui["w"] // 2, ui["y"] + 20)  # over the first panel
            time.sleep(0.4)
            self.s.xdo("keydown", "ctrl", "click", 5, "keyup", "ctrl")
            time.sleep(0.8)
        raise GuiError(f"could not reach the sidebar tab {name!r}")

    # --- buttons -------------------------------------------------------------------------------

    def scan(self, fracs=(0.35, 0.62, 0.84), step: int = 8) -> list:
        """Map the sidebar: which button is under each point of a grid (read from Blender).
        Every point costs a sidebar redraw, which waits for a slow viewport: keep grids small."""
        sc = self.screen()
        ui = sc["ui"]
        xs = [int(ui["x"] + f * ui["w"]) for f in fracs]
        y0, y1 = ui["y"] + 4, ui["y"] + ui["h"] - 4
        # Every point redraws the sidebar and, under it, the viewport: with all edges drawn
        # that is seconds per point. Scan with the edges filtered out of the view and Solid
        # shading (view settings, not the add-on's), then put both back.
        shown = self.s.probe("view_filter", curves=False)
        self.s.probe("set_shading", kind="SOLID")
        try:
            started = self.s.probe("scan_start", xs=xs, y0=y0, y1=y1, step=step)
            if "error" in started:
                raise GuiError(f"scan: {started['error']}")
            res = self.s.wait(
                lambda: (lambda r: r if r.get("done") else None)(self.s.probe("scan_result")),
                600,
                "the sidebar scan",
            )
        finally:
            self.s.probe("scan_stop")
            self.s.probe("view_filter", curves=all(shown.values()) if shown else True)
            self.s.probe("set_shading", kind=sc["shading"])
        self.hits = [tuple(h) for h in res["hits"]]
        return self.hits

    def where(self, prefix: str) -> tuple[int, int] | None:
        """Centre of the button whose call or property path starts with `prefix` (last scan)."""
        found = [(x, y) for x, y, b in self.hits if _is(b, prefix)]
        if not found:
            return None
        xs = sorted({x for x, _ in found}, key=lambda x: -sum(1 for fx, _ in found if fx == x))
        ys = sorted(y for x, y in found if x == xs[0])
        run = [ys[0]]
        for y in ys[1:]:
            if y - run[-1] > 12:
                break
            run.append(y)
        return xs[0], (run[0] + run[-1]) // 2

    def locate(self, prefix: str, rescan: bool = False) -> tuple[int, int]:
        pos = None if rescan else self.where(prefix)
        if pos is None:
            self.scan(fracs=(COLUMN.get(prefix.split(".")[-1].split("(")[0], 0.35),), step=10)
            pos = self.where(prefix)
        if pos is None:
            self.scan()
            pos = self.where(prefix)
        if pos is None:
            buttons = sorted({b for _, _, b in self.hits})
            raise GuiError(f"no button {prefix!r} in the sidebar; found: {buttons}")
        return pos

    def hovered(self) -> str:
        return self.s.probe("hover").get("button") or ""

    def point_at(self, prefix: str) -> tuple[int, int]:
        """Rest the pointer on the button (found by scan), confirmed by Blender."""
        for attempt in range(3):
            x, y = self.locate(prefix, rescan=attempt > 0)
            self.s.move(x, y)
            time.sleep(1.0)
            if _is(self.hovered(), prefix):
                return x, y
        raise GuiError(f"could not rest the pointer on {prefix!r}")

    def click(self, prefix: str, done, timeout: float, what: str, tries: int = 4, ctrl=False):
        """Press a button with a real click; retry until `done()` says it took effect."""
        missed = 0
        for _attempt in range(tries):
            self.point_at(prefix)
            if ctrl:
                self.s.xdo("keydown", "ctrl", "click", 1, "keyup", "ctrl")
            else:
                self.s.xdo("click", 1)
            try:
                value = self.s.wait(done, timeout, what)
                self.s.say(f"pressed {prefix} ({missed} missed)")
                self.missed = missed
                return value
            except GuiError:
                missed += 1
                self.s.say(f"click on {prefix} missed ({missed}); retrying")
        raise GuiError(f"{prefix}: {tries} clicks, none took effect ({what})")

    def choose(self, prop: str, want: str, read, items: list) -> int:
        """Set a dropdown as a person does: click it, arrow keys to the item, Return.
        Returns the clicks it took."""
        for attempt in range(4):
            now = read()
            if now == want:
                return attempt
            self.point_at(prop)
            self.s.xdo("click", 1)
            time.sleep(2.0)  # the menu opens below the button, nothing highlighted yet:
            # Down highlights the first item, each further Down the next one
            self.s.xdo("key", "--delay", "300", *(["Down"] * (items.index(want) + 1)))
            time.sleep(0.5)
            self.s.xdo("key", "Return")
            try:
                self.s.wait(lambda now=now: read() != now, 20, f"{prop} to change", every=1.0)
            except GuiError:
                self.s.say(f"{prop}: menu pick missed; retrying")
                self.s.xdo("key", "Escape")
        if read() != want:
            raise GuiError(f"could not set {prop} to {want!r} (is {read()!r})")
        return 4

    # --- panel headers (found in a screenshot: they are not buttons) ---------------------------

    def headers(self, shot_png: str) -> list[int]:
        """Screen y of the centre of every panel header in the sidebar, top to bottom."""
        return [y for y, _open in self.panels(shot_png)]

    def panels(self, shot_png: str) -> list[tuple[int, bool]]:
        """(header centre y, is open) of every panel in the sidebar, top to bottom."""
        sc = self.screen()
        ui = sc["ui"]
        raw = shot_png + ".rgb"
        self.s.run("convert", _inside(self.s, shot_png), "rgb:" + _inside(self.s, raw))
        img = np.fromfile(raw, np.uint8).reshape(sc["window"]["h"], sc["window"]["w"], 3)
        os.remove(raw)
        # Panels (header and body) are boxes of the theme's panel colour, separated by a few
        # pixels of the region behind: runs of that colour down a column near the left edge.
        back = np.array(self.s.probe("theme")["back"][:3]) * 255
        scale = sc["ui_scale"]
        x = ui["x"] + round(8 * scale)
        col = img[ui["y"] : ui["y"] + ui["h"], x].astype(np.float32)
        inside = np.abs(col - back).max(axis=1) <= 1.5
        out, y = [], 0
        while y < len(inside):
            if inside[y]:
                end = y
                while end < len(inside) and inside[end]:
                    end += 1
                if end - y >= 15 * scale:
                    out.append((ui["y"] + y + round(11 * scale), end - y > 30 * scale))
                y = end
            y += 1
        return out


def _is(button: str, key: str) -> bool:
    """An operator call matches by prefix ("op:bpy.ops.nnviz.build("), a property exactly."""
    return button == key if key.startswith("prop:") else button.startswith(key)


def _inside(s: Session, host_path: str) -> str:
    """A host path under the exchange folder, as Blender's side sees it."""
    rel = os.path.relpath(host_path, s.out)
    if rel.startswith(".."):
        raise GuiError(f"{host_path} is not under {s.out}")
    return f"{s.out_in}/{rel}"


def run_host(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
