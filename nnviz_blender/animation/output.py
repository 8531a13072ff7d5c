"""Where an animation render goes: PNG frames in a directory, or a video through Blender's FFmpeg.

What `animate` (the command) and Render Animation (the add-on) both set up.
"""

from __future__ import annotations

import os

from ..core.errors import NNVizError

VIDEO = {".mp4": "MPEG4", ".mkv": "MKV", ".webm": "WEBM", ".mov": "QUICKTIME"}
CODECS = {"MPEG4": "H264", "MKV": "H264", "QUICKTIME": "H264", "WEBM": "WEBM"}


class OutputError(NNVizError):
    """An output path that cannot be rendered to; the message is one line for the user."""


def output_kind(out: str, passes: bool) -> str:
    """'video' (a movie file), 'frames' (a directory) or OutputError."""
    ext = os.path.splitext(out)[1].lower()
    if ext in VIDEO:
        if passes:
            raise OutputError("--passes writes EXR frames: give a directory as --out")
        return "video"
    if ext and not os.path.isdir(out):
        raise OutputError(
            f"--out {out!r}: give a directory for frames or a {', '.join(VIDEO)} file"
        )
    if os.path.isfile(out):
        raise OutputError(f"--out {out!r} is a file, not a directory")
    return "frames"


def configure(scene, out: str, kind: str, transparent: bool) -> None:
    """Point the scene's render output at `out` ("video" file or "frames" directory)."""
    settings = scene.render.image_settings
    if kind == "video":
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        if hasattr(settings, "media_type"):  # 5.0
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        fmt = VIDEO[os.path.splitext(out)[1].lower()]
        scene.render.ffmpeg.format = fmt
        scene.render.ffmpeg.codec = CODECS[fmt]
        scene.render.ffmpeg.constant_rate_factor = "MEDIUM"
        scene.render.ffmpeg.gopsize = max(1, scene.render.fps)
        scene.render.filepath = out
        scene.render.use_file_extension = False
        return
    os.makedirs(out, exist_ok=True)
    if settings.file_format != "OPEN_EXR_MULTILAYER":
        if hasattr(settings, "media_type"):
            settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGBA" if transparent else "RGB"
    scene.render.filepath = os.path.join(out, "frame_")
    scene.render.use_file_extension = True


def missing(out: str, kind: str, first: int, last: int, scene) -> str | None:
    """The first expected output file that is not there after rendering frames first-last."""
    if kind == "video":
        return None if os.path.isfile(out) and os.path.getsize(out) > 0 else out
    for f in (first, last):
        path = scene.render.frame_path(frame=f)
        if not os.path.isfile(path):
            return path
    return None
