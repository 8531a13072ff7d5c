"""The one base class of user errors.

An NNVizError is a request that cannot be done as asked (a bad model file, an unknown network, an
option out of range...): its message is one line for the user, and the operators and the
command line report it as such. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class NNVizError(Exception):
    """A user's mistake or an impossible request; the message is one line for the user."""


class ModelError(NNVizError, ValueError):
    """A model file or spec that cannot be used; the message is meant for the user."""
