"""The two ways a template fails, each one line as Go words it."""

from __future__ import annotations

from forklift.errors import InvalidArgument


class ParseError(InvalidArgument):
    """Go's parser refused the text: ``template: NAME:LINE: detail``."""


class ExecError(InvalidArgument):
    """Execution stopped: ``template: NAME:LINE:COL: executing "NAME" at <node>: detail``."""
