"""The GUI check's story (run by scripts/gui_check.sh; see there for how to run it).

Install the zip with Blender's own installer, start Blender, open the NNViz sidebar tab, Build the
CNN with all edges, measure viewport redraws (Solid, Material Preview), Start Live Drawing, reach
the canvas, paint a 7 with real mouse strokes, read the prediction back, compare the node values
on the nodes mesh with the core forward pass of the canvas pixels read back, Inspect, Trace,
Record a drawn 1, Bake; then the MLP: Remove, Build, measure, Start, paint a 0. Screenshots after
every step; a summary at the end; exit status 1 if an assertion failed.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import subprocess
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from scripts.gui.session import ROOT, GuiError, Session, write_text  # noqa: E402
from scripts.gui.ui import Ui  # noqa: E402

# Digits as mouse strokes in canvas coordinates (u right, v up, 0..1), drawn as a person would.
SEVEN = [[(0.26, 0.78), (0.72, 0.78), (0.66, 0.62), (0.44, 0.18)]]
ONE = [[(0.52, 0.82), (0.50, 0.18)]]
ZERO = [
    [
        (0.5 + 0.2 * math.sin(2 * math.pi * k / 24), 0.5 + 0.3 * math.cos(2 * math.pi * k / 24))
        for k in range(25)
    ]
]

FILL_MIN = 0.85  # of the viewport's uncovered part a framed network's box spans, at least
OP = "op:bpy.ops.nnviz."
PROP = "prop:bpy.data.scenes["


class Check:
    def __init__(self, s: Session, ui: Ui, out: str, iterations: int):
        self.s, self.ui, self.out, self.iterations = s, ui, out, iterations
        self.n = 0
        self.shots: list = []
        self.summary: dict = {"failures": [], "redraw_ms": {}, "missed_clicks": 0}

    # --- bookkeeping ------------------------------------------------------------------------

    def shot(self, name: str) -> None:
        self.n += 1
        path = os.path.join(self.out, f"{self.n:02d}_{name}.png")
        self.s.shot(path)
        self.shots.append(path)
        self.s.say(f"screenshot {path}")

    def expect(self, ok: bool, what: str) -> None:
        self.s.say(("ok: " if ok else "FAILED: ") + what)
        if not ok:
            self.summary["failures"].append(what)

    def state(self) -> dict:
        st = self.s.probe("nnviz")
        if "error" in st:
            raise GuiError(f"state probe: {st['error']}")
        return st

    def net(self, name: str | None = None) -> dict:
        st = self.state()
        nets = st.get("nets", {})
        if name is None:
            name = st["settings"]["network"] or (st["networks"] or [None])[0]
        return nets.get(name, {}) if name else {}

    def press(self, op: str, done, timeout: float, what: str, **kw):
        value = self.ui.click(OP + op, done, timeout, what, **kw)
        self.summary["missed_clicks"] += getattr(self.ui, "missed", 0)
        return value

    # --- steps --------------------------------------------------------------------------------

    def open_app(self) -> None:
        self.ui.close_splash()
        self.shot("blender_started")
        self.ui.maximise_viewport()
        self.ui.open_sidebar()
        self.ui.choose_tab()
        st = self.state()
        self.expect(st.get("installed", False), "the extension is installed and enabled")
        self.summary["brush"] = st.get("brush")
        self.shot("nnviz_tab_before_build")

    def build(self, model: str, edges: str = "all") -> str:
        self.ui.hits = []
        read = lambda key: lambda: self.state()["settings"][key]  # noqa: E731
        for prop, want in (("model", model), ("edges", edges)):
            items = self.s.probe("enum_items", prop=prop)["items"]
            self.ui.choose(PROP + f'"Scene"].nnviz.{prop}', want, read(prop), items)
        before = set(self.state().get("networks", []))

        def built():
            st = self.state()
            new = [n for n in st.get("networks", []) if n not in before]
            name = new[0] if new else None
            return name if name and st["nets"][name].get("edges") else None

        t = time.time()
        name = self.press("build(", built, 180, f"the {model} network to be built")
        self.summary[f"{model}_build_s"] = round(time.time() - t, 1)
        n = self.net(name)
        self.s.say(f"built {name}: {n.get('node_count')} nodes, {n.get('edge_curves')} edges")
        self.summary[f"{model}_edges"] = n.get("edge_curves")
        self.summary[f"{model}_edge_points"] = n.get("edge_points")
        self.framed(name, "after Build")
        return name

    def framed(self, name: str, when: str) -> None:
        """The network is whole in the viewport's uncovered part and fills it (FILL_MIN)."""
        f = self.s.probe("framing", name=name)
        self.summary[f"{name}_framing {when}"] = f
        self.expect(
            bool(f.get("inside")) and f.get("fill", 0) >= FILL_MIN,
            f"{when}: {name} whole in the viewport's uncovered part, spanning "
            f"{f.get('fill')} of it ({FILL_MIN} at least)",
        )

    def measure(self, label: str) -> None:
        """ms per redraw: the whole window (DRAW_WIN_SWAP) and the 3D viewport region alone
        (DRAW_SWAP), each drawn and swapped `iterations` times, Solid then Material Preview."""
        before = self.ui.screen()["shading"]
        for mode in ("SOLID", "MATERIAL"):
            self.s.probe("set_shading", kind=mode)
            for kind in ("DRAW_WIN_SWAP", "DRAW_SWAP"):
                r = self.s.probe("redraw", iterations=self.iterations, kind=kind, timeout=900)
                if "error" in r:
                    self.expect(False, f"redraw {label} {mode} {kind}: {r['error']}")
                    continue
                self.summary["redraw_ms"][f"{label} {mode} {kind}"] = r["ms"]
                self.s.say(f"redraw {label} {mode} {kind}: {r['ms']} ms")
            self.shot(f"{label}_{mode.lower()}")
        self.s.probe("set_shading", kind=before)  # what the user (or Start) had chosen

    def start_live(self, name: str) -> None:
        self.s.probe("set_shading", kind="SOLID")  # the default a user has
        self.ui.hits = []
        self.press("live_start(", lambda: self.net(name).get("live"), 60, "live drawing on")
        sc = self.ui.screen()
        n = self.net(name)
        self.summary[f"{name}_after_start"] = dict(
            shading=sc["shading"], mode=sc["mode"], active=sc["active"]
        )
        self.summary[f"{name}_empty_prediction"] = n.get("prediction")
        self.s.say(f"after Start: {sc['shading']}, {sc['mode']}, prediction {n.get('prediction')}")
        # Start frames the network in the narrower viewport beside the canvas once it is laid out
        end = time.time() + 30
        while time.time() < end and self.s.probe("framing", name=name).get("fill", 0) < FILL_MIN:
            time.sleep(1.0)
        self.framed(name, "after Start")
        facing = self.s.probe("canvas_points", name=name, uvs=[[0.5, 0.5]])
        self.summary[f"{name}_canvas_facing_at_start"] = round(facing.get("facing", 0), 3)
        self.shot(f"{name}_live_started")

    def reach_canvas(self, name: str) -> dict:
        """Front view (numpad 1) and frame the canvas (numpad .), as a user has to today."""
        centre = self.ui.viewport_centre()
        self.s.key("KP_1", at=centre)
        time.sleep(1)
        self.s.key("KP_Decimal", at=centre)
        self.s.wait(
            lambda: (
                self.s.probe("canvas_points", name=name, uvs=[[0.5, 0.5]]).get("facing", 0) > 0.95
            ),
            60,
            "the canvas to face the view",
        )
        time.sleep(3)  # the smooth view transition
        c = self.s.probe("canvas_points", name=name, uvs=[[0, 0], [1, 1]])
        self.s.say(f"canvas on screen: {c['points']}")
        self.shot(f"{name}_canvas_framed")
        return c

    def paint(self, name: str, strokes: list, label: str, reads: str | None = "") -> dict:
        """Paint `strokes` (canvas uvs) on the 3D canvas; expect the prediction `reads` (default:
        the label; None: no expectation, for a model with random weights)."""
        reads = label if reads == "" else reads
        base = self.net(name).get("updates") or 0
        self.s.probe("frames_start")
        t = time.time()
        for stroke in strokes:
            pts = self.s.probe("canvas_points", name=name, uvs=[list(p) for p in stroke])
            if any(p is None for p in pts["points"]):
                raise GuiError(f"the canvas is not on screen: {pts}")
            self.s.stroke(pts["points"])
        stroke_s = time.time() - t

        def settled():
            # each probe is answered between two redraws, so three equal answers 2 s apart
            # span several viewport frames: no stroke event is still queued
            seen = []
            for _ in range(3):
                seen.append(self.net(name).get("updates"))
                time.sleep(2.0)
            return seen[0] if len(set(seen)) == 1 else None

        updates = self.s.wait(settled, 900, "the live updates to settle", every=0.1) - base
        frames = self.s.probe("frames_stop")
        n = self.net(name)
        pred = n.get("prediction") or []
        self.s.say(
            f"painted {label}: prediction {pred[:1]}, {updates} updates, "
            f"{frames.get('frames')} viewport frames in {frames.get('seconds')} s"
        )
        self.summary[f"{name}_paint_{label}"] = dict(
            prediction=pred,
            stroke_seconds=round(stroke_s, 1),
            updates=updates,
            viewport_frames=frames,
        )
        if reads is not None:
            ok = bool(pred) and pred[0][0] == reads
            self.expect(ok, f"{name}: a painted {label} reads {reads}")
        self.shot(f"{name}_painted_{label}")
        return n

    def compare_values(self, name: str) -> None:
        """Node values on the nodes mesh == the core forward pass of the canvas read back."""
        from nnviz_blender.core.forward import forward
        from nnviz_blender.core.graph import build_graph, node_values
        from nnviz_blender.core.modelfile import load_model
        from nnviz_blender.core.preprocess import prepare

        path = os.path.join(self.s.out, "gui", f"values_{name}.npz")
        inside = f"{self.s.out_in}/gui/values_{name}.npz"
        r = self.s.probe("dump_values", name=name, path=inside)
        if "error" in r:
            self.expect(False, f"{name}: read back canvas and node values ({r['error']})")
            return
        d = np.load(path)
        model_file = str(d["model"])
        if self.s.chroot and model_file.startswith("/"):
            model_file = os.path.join(self.s.root, model_file.lstrip("/"))
        model = load_model(model_file)
        x = prepare(model, d["pixels"][::-1])  # Blender keeps the bottom row first
        want = node_values(build_graph(model), forward(model, x)).astype(np.float32)
        got = d["act"]
        err = float(np.abs(want - got).max()) if want.shape == got.shape else float("inf")
        self.summary[f"{name}_value_max_abs_err"] = err
        self.summary[f"{name}_canvas_ink"] = r.get("ink")
        self.expect(
            err < 1e-4, f"{name}: node values equal the core forward pass (max |diff| {err:.2e})"
        )

    def open_panel(self, index: int, label: str) -> None:
        """Open panel `index` (0 Network, 1 Live Drawing, 2 Inspect, 3 Layers, 4 Animation) with
        the others closed: click the headers of open panels, bottom up, then this one's."""
        ui = self.ui.screen()["ui"]
        shot = os.path.join(self.s.out, "gui", "headers.png")
        for attempt in range(4):
            self.s.shot(shot)
            panels = self.ui.panels(shot)
            opened = [k for k, (_y, is_open) in enumerate(panels) if is_open]
            if opened == [index] and not self.ui.where(OP + label):
                self.ui.scan()  # open already, its buttons not mapped since (all columns)
            if opened == [index] and self.ui.where(OP + label):
                self.s.say(f"panel with {label} open ({attempt} missed)")
                return
            # when the header is below the sidebar's end, close what is open and look again
            toggle = set(opened) ^ {index} if len(panels) > index else set(opened)
            if not toggle:
                raise GuiError(f"found {len(panels)} panel headers, need #{index}")
            for k in sorted(toggle, reverse=True):
                self.s.move(ui["x"] + ui["w"] // 2, panels[k][0])
                time.sleep(1.0)
                self.s.xdo("click", 1)
                time.sleep(1.5)
            self.ui.scan(fracs=(0.35,), step=10)
            self.summary["missed_clicks"] += attempt
        raise GuiError(f"could not open the panel holding {label}")

    def inspect_and_trace(self, name: str) -> None:
        self.open_panel(2, "inspect(")
        self.press("inspect(source='INDEX')", lambda: self.net(name).get("inspect"), 60, "inspect")
        info = self.net(name)["inspect"]
        self.summary[f"{name}_inspect"] = info
        self.shot(f"{name}_inspect")
        self.press("trace(", lambda: self.net(name).get("highlight"), 60, "trace")
        self.shot(f"{name}_trace")

    def record_and_bake(self, name: str) -> None:
        self.open_panel(1, "live_")  # Live Drawing: clear the canvas first
        self.press(
            "clear_canvas(",
            lambda: not self.net(name).get("prediction"),  # a blank canvas predicts nothing
            60,
            "the canvas to clear",
        )
        self.shot(f"{name}_cleared")
        self.open_panel(4, "record_start(")
        self.press("record_start(", lambda: self.net(name).get("recording"), 60, "recording")
        self.paint(name, ONE, "1")
        self.press(
            "record_stop(", lambda: self.net(name).get("recording") is False, 60, "record stop"
        )
        rec = self.net(name).get("recorded")
        self.summary[f"{name}_recorded"] = rec
        self.expect(bool(rec and rec["count"] > 1), f"{name}: the recording holds states ({rec})")
        self.ui.hits = []
        self.press("bake_sequence(", lambda: self.net(name).get("bake"), 180, "the bake")
        bake = self.net(name).get("bake")
        self.summary[f"{name}_bake"] = bake
        self.expect(bool(bake), f"{name}: baked {bake}")
        self.shot(f"{name}_baked")

    def remove(self, name: str) -> None:
        self.ui.hits = []
        self.press("remove(", lambda: name not in self.state().get("networks", []), 120, "remove")


GUI_PYTHON = os.environ.get("NNVIZ_GUI_PYTHON", "3.13")  # Debian 13's Blender 4.3 runs 3.13


def build_zip() -> str:
    """The Linux zip for the GUI Blender's Python line (NNVIZ_GUI_PYTHON, e.g. 3.11 for a
    Blender 4.2-5.0 given as BLENDER=)."""
    py = os.path.join(ROOT, ".venv", "bin", "python")
    subprocess.run(
        [py, os.path.join(ROOT, "scripts", "build_extension.py"), "--python", GUI_PYTHON],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    tag = GUI_PYTHON.replace(".", "")
    return sorted(glob.glob(os.path.join(ROOT, "dist", f"*-py{tag}-linux_x64.zip")))[-1]


def paint_live(c, s, model: str, stroke, label: str) -> str:
    """Build `model` with every edge, start live drawing, paint `stroke` on its canvas and check
    the node values against the core; measured before and after. Returns the network's name."""
    name = c.build(model, "all")
    c.shot(f"{model}_built")
    c.measure(f"{model}_all")
    c.start_live(name)
    c.reach_canvas(name)
    c.paint(name, stroke, label)
    c.compare_values(name)
    c.summary[f"{model}_update"] = s.probe("update_ms", name=name)
    c.measure(f"{model}_painted")
    return name


def paint_big(c, s, name: str, stroke) -> None:
    """A ResNet-18 at 64x64 (scripts/big_models.py, random weights) as a user brings one: the
    ONNX file picked, built with the panel's default edges (framed), live drawing started
    (framed), a stroke painted in 3D; its 294k node values checked against the core; redraws
    measured after Build and after painting."""
    from scripts import big_models

    path = big_models.ensure(name)  # out/big, inside the project the GUI Blender sees
    inside = os.path.join(s.project_in, os.path.relpath(path, ROOT))
    s.probe("set_model_file", path=inside)
    built = c.build("FILE", "topk")
    c.shot(f"{built}_built")
    c.measure(f"{built}_built")
    c.open_panel(1, "live_start(")  # after the CNN's bake only the Network panel is open
    c.start_live(built)
    c.reach_canvas(built)
    c.paint(built, stroke, "stroke", reads=None)
    c.compare_values(built)
    c.summary[f"{built}_update"] = s.probe("update_ms", name=built)
    c.measure(f"{built}_painted")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "gui-check"))
    ap.add_argument("--iterations", type=int, default=3, help="redraws per measurement")
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--skip-cnn", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave Blender running at the end")
    ap.add_argument(
        "--resnet18", action="store_true", help="then a ResNet-18 at 64x64 (issue 9), ~10 min"
    )
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    s = Session(os.environ.get("BLENDER_GUI_DIR", "/tmp/blender-gui"), os.environ.get("BLENDER"))
    ui = Ui(s)
    c = Check(s, ui, args.out, args.iterations)
    t0 = time.time()
    try:
        s.check_project_mount()
        zip_path = build_zip()
        s.install(zip_path)
        s.start()
        c.open_app()
        c.measure("empty")
        if not args.skip_mlp:
            c.remove(paint_live(c, s, "mlp", ZERO, "0"))
        if not args.skip_cnn:
            name = paint_live(c, s, "cnn", SEVEN, "7")
            c.inspect_and_trace(name)
            c.record_and_bake(name)
            if args.resnet18:
                c.open_panel(0, "remove(")
                c.remove(name)
        if args.resnet18:
            paint_big(c, s, "r18_64", SEVEN)
    except Exception as exc:  # a step could not be driven: that is a failure too
        traceback.print_exc()
        c.summary["failures"].append(f"stopped: {type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            c.shot("at_failure")
    finally:
        c.summary["seconds"] = round(time.time() - t0)
        c.summary["screenshots"] = c.shots
        if not args.keep:
            s.stop_blender()
    text = json.dumps(c.summary, indent=1, default=str)
    write_text(os.path.join(args.out, "summary.json"), text)
    write_text(os.path.join(args.out, "log.txt"), "\n".join(s.log) + "\n")
    print_summary(c.summary)
    return 1 if c.summary["failures"] else 0


def print_summary(sm: dict) -> None:
    print("\n=== GUI check summary ===")
    for key in ("cnn_paint_7", "mlp_paint_0"):
        if key in sm:
            print(f"{key}: prediction {sm[key]['prediction'][:1]}, updates {sm[key]['updates']}")
    for key in ("cnn_value_max_abs_err", "mlp_value_max_abs_err"):
        if key in sm:
            print(f"{key}: {sm[key]:.2e}")
    for key, ms in sm["redraw_ms"].items():
        print(f"redraw {key}: {ms} ms")
    for key in ("cnn_update", "mlp_update"):
        if key in sm:
            print(f"{key}: {sm[key]}")
    print(f"missed clicks: {sm['missed_clicks']}; brush: {sm.get('brush')}")
    print("failures:", sm["failures"] or "none")


if __name__ == "__main__":
    sys.exit(main())
