"""`python -m nnviz_blender <command>`: the command line, a front door and nothing more.

It owns argument parsing, progress output and the one-line error report; the work is done by
core/ (predict, evaluate, convert), scene/ and animation/ (render, animate), which the add-on
uses too.
An NNVizError is the user's: one line on stderr, exit code 2. Anything else is a bug and shows
its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.errors import NNVizError
from . import animate, convert, predict, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nnviz_blender", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    predict.add_parsers(sub)
    render.add_parser(sub)
    animate.add_parser(sub)
    convert.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except NNVizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
