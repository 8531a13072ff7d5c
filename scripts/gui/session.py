"""One real Blender GUI under a virtual X display, driven as a person would (see gui_check.sh).

`Session` starts Blender (Debian 13's Blender in the blender-gui root, or the binary in BLENDER=),
moves the real mouse and keyboard with xdotool, takes screenshots, and reads Blender's state through
a file hook (scripts/gui/probe.py runs inside). Reading only: every button of the add-on is pressed
with a real click at a position read from Blender's UI, and the click is checked by the state it
should change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.environ.get("GUI_TOOLS", os.path.join(ROOT, "..", "shared", "tools", "blender-gui"))
DISPLAY = os.environ.get("DISPLAY_NUM", "99")


class GuiError(RuntimeError):
    """The GUI did not do what the check needed (a click missed every retry, no answer)."""


@dataclass
class Session:
    """Where things are: `out` on the host is `out_in` inside Blender's file system."""

    gui_dir: str
    blender: str | None  # a host binary (BLENDER=), or None: the blender-gui root's Blender
    log: list = field(default_factory=list)

    # --- paths and commands ------------------------------------------------------------------

    @property
    def chroot(self) -> bool:
        return self.blender is None

    @property
    def root(self) -> str:
        return os.path.join(self.gui_dir, "root")

    @property
    def out(self) -> str:  # host path of the exchange folder
        return os.path.join(self.gui_dir, "out")

    @property
    def out_in(self) -> str:  # the same folder as Blender sees it
        return "/out" if self.chroot else self.out

    @property
    def project_in(self) -> str:
        return "/project" if self.chroot else ROOT

    def _x(self, *args: str) -> list[str]:
        env = ["env", f"DISPLAY=:{DISPLAY}"]
        return (["chroot", self.root, *env] if self.chroot else env) + list(args)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        res = subprocess.run(
            self._x(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and res.returncode != 0:
            raise GuiError(f"{' '.join(args[:3])} failed: {res.stderr.strip()[-400:]}")
        return res.stdout

    def say(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        self.log.append(line)
        print(line, flush=True)

    # --- lifecycle ---------------------------------------------------------------------------

    def check_project_mount(self) -> None:
        """The root must see this checkout at /project (setup.sh / mount.sh PROJECT_DIR)."""
        if not self.chroot:
            return
        inside = os.path.join(self.root, "project", "scripts", "gui", "probe.py")
        if not os.path.exists(inside) or not os.path.samefile(
            inside, os.path.join(HERE, "probe.py")
        ):
            raise GuiError(
                f"{self.root}/project is not this checkout; run: bash {TOOLS}/stop.sh && "
                f"bash {TOOLS}/mount.sh {ROOT}"
            )

    def install(self, zip_path: str) -> None:
        name = os.path.basename(zip_path)
        target = f"{self.project_in}/dist/{name}"
        blender = "blender" if self.chroot else self.blender
        cmd = [blender, "--command", "extension", "install-file", "-r", "user_default", "-e"]
        out = self.run(*cmd, target, timeout=300)
        self.say(f"installed {name}: {out.strip().splitlines()[-1] if out.strip() else ''}")

    def stop_blender(self) -> None:
        """Stop a Blender this tool started before (by its pid file), nothing else."""
        pid_file = os.path.join(self.gui_dir, "blender.pid")
        if os.path.exists(pid_file):
            pid = int(read_text(pid_file).strip() or 0)
            if pid:
                try:
                    os.kill(pid, 15)
                    for _ in range(50):
                        os.kill(pid, 0)
                        time.sleep(0.2)
                except ProcessLookupError:
                    pass
            os.remove(pid_file)

    def start(self) -> None:
        self.stop_blender()
        for sub in ("cmd", "res", "gui"):
            os.makedirs(os.path.join(self.out, sub), exist_ok=True)
        for sub in ("cmd", "res"):
            for f in os.listdir(os.path.join(self.out, sub)):
                os.remove(os.path.join(self.out, sub, f))
        if self.chroot:
            subprocess.run(["bash", os.path.join(TOOLS, "start.sh")], check=True, timeout=120)
        else:
            self._start_host()
        self.wait(lambda: self.probe("screen").get("window"), 90, "Blender's hook to answer")

    def _start_host(self) -> None:
        """BLENDER=: Xvfb and that binary on this machine, with scripts/gui/hook_host.py."""
        for tool in ("Xvfb", "xdotool", "import"):
            if shutil.which(tool) is None:
                raise GuiError(f"BLENDER= needs {tool} on this machine (apt-get install xvfb ...)")
        pid_x = os.path.join(self.gui_dir, "xvfb.pid")
        if not (os.path.exists(pid_x) and _alive(int(read_text(pid_x)))):
            xvfb = subprocess.Popen(
                ["Xvfb", f":{DISPLAY}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            write_text(pid_x, str(xvfb.pid))
            time.sleep(2)
        env = dict(os.environ, DISPLAY=f":{DISPLAY}", NNVIZ_GUI_OUT=self.out)
        hook = os.path.join(HERE, "hook_host.py")
        with open(os.path.join(self.out, "blender.log"), "w") as log:
            blender = subprocess.Popen(
                [self.blender, "-p", "0", "0", "1920", "1080", "--python", hook],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        write_text(os.path.join(self.gui_dir, "blender.pid"), str(blender.pid))

    # --- reading state (never pressing buttons) ---------------------------------------------

    def probe(self, fn: str, timeout: float = 150, **kw) -> dict:
        """Run probe.py's `fn(**kw)` inside Blender; its dict (or {'error': ...})."""
        name = f"p{uuid.uuid4().hex[:10]}"
        src = (
            "import runpy\n"
            f"runpy.run_path({self.project_in + '/scripts/gui/probe.py'!r})['call']"
            f"({fn!r}, **{kw!r})\n"
        )
        cmd = os.path.join(self.out, "cmd")
        tmp = os.path.join(cmd, f".{name}")
        write_text(tmp, src)
        os.rename(tmp, os.path.join(cmd, f"{name}.py"))
        res = os.path.join(self.out, "res", f"{name}.txt")
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(res):
                time.sleep(0.02)
                text = read_text(res)
                os.remove(res)
                for line in text.splitlines():
                    if line.startswith("JSON "):
                        return json.loads(line[5:])
                return {"error": text.strip()[-800:] or "no output"}
            time.sleep(0.1)
        return {"error": f"no answer from Blender in {timeout:.0f}s"}

    def wait(self, cond, timeout: float, what: str, every: float = 0.5):
        """Poll `cond()` until it returns something truthy; its value. GuiError on timeout."""
        end = time.time() + timeout
        while True:
            value = cond()
            if value:
                return value
            if time.time() > end:
                raise GuiError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(every)

    # --- real input ---------------------------------------------------------------------------

    def xdo(self, *args) -> None:
        self.run("xdotool", *[str(a) for a in args])

    def move(self, x: float, y: float) -> None:
        self.xdo("mousemove", int(x), int(y))

    def key(self, *keys: str, at: tuple | None = None) -> None:
        if at is not None:
            self.move(*at)
            time.sleep(0.4)
        self.xdo("key", *keys)

    def stroke(self, points: list, pause: float = 0.03) -> None:
        """A real mouse drag through screen points (button held), as a person paints."""
        pts = " ".join(f"{int(x)},{int(y)}" for x, y in points)
        if self.chroot:
            subprocess.run(
                ["bash", os.path.join(TOOLS, "stroke.sh"), pts, str(pause)], check=True, timeout=600
            )
            return
        x0, y0 = points[0]
        self.move(x0, y0)
        time.sleep(0.3)
        self.xdo("mousedown", 1)
        time.sleep(0.1)
        for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
            steps = max(1, int(((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5 / 4))
            for k in range(1, steps + 1):
                self.move(xa + (xb - xa) * k / steps, ya + (yb - ya) * k / steps)
                time.sleep(pause)
        time.sleep(0.2)
        self.xdo("mouseup", 1)

    def shot(self, path: str) -> str:
        """Screenshot of the whole virtual screen, copied to `path` (a host path)."""
        name = f"shot_{uuid.uuid4().hex[:8]}.png"
        self.run("import", "-window", "root", f"{self.out_in}/gui/{name}")
        shutil.move(os.path.join(self.out, "gui", name), path)
        return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
