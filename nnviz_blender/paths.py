"""Where the shipped models live: inside the package once built as an extension, else the repo."""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def models_dir() -> str:
    staged = os.path.join(PACKAGE_DIR, "models")
    return staged if os.path.isdir(staged) else os.path.join(os.path.dirname(PACKAGE_DIR), "models")


SHIPPED = ("mlp", "cnn", "resnet")  # the shipped networks, by the names --model takes


def shipped_model(name: str) -> str:
    """`mlp` / `cnn` / `resnet` -> the shipped file; anything else is taken as a path."""
    if name in SHIPPED:
        return os.path.join(models_dir(), f"{name}.npz")
    return name


def samples_path() -> str:
    return os.path.join(models_dir(), "samples.npz")
