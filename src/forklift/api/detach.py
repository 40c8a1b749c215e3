"""Detach keys: the key sequence (Docker's default ctrl-p,ctrl-q) that, typed into the
stdin of an attach or an exec with a TTY, ends the client's connection and leaves the
container (or the exec's process) running, as dockerd does; without a TTY stdin is
passed through untouched."""

from __future__ import annotations

from forklift.api.server import ApiError

DEFAULT = "ctrl-p,ctrl-q"
_CTRL_PUNCT = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse(text: str) -> bytes:
    """Docker's notation (``ctrl-<letter or @[\\]^_>`` or one character, comma
    separated) as bytes; "" is the default. ApiError 400 for anything else."""
    out = bytearray()
    for key in (text or DEFAULT).split(","):
        if len(key) == 1 and key.isascii():
            out.append(ord(key))
        elif len(key) == 6 and key.startswith("ctrl-") and key[5].isascii() \
                and (key[5].isalpha() or key[5] in _CTRL_PUNCT):
            ch = key[5].lower()
            out.append(ord(ch) - ord("a") + 1 if ch.isalpha() else _CTRL_PUNCT[ch])
        else:
            raise ApiError(400, f"Invalid detach keys ({text}) provided")
    return bytes(out)


class Escape:
    """Watches a stream of typed bytes for the sequence: ``feed`` answers the bytes to pass
    on (a partial match is held back until it matches or fails) and whether it was typed
    (then the bytes of the sequence are never passed on)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for value in data:
            byte = bytes((value,))
            if self.keys.startswith(self.held + byte):
                self.held += byte
                if self.held == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            out += self.held
            self.held = b""
            if self.keys.startswith(byte):
                self.held = byte
            else:
                out += byte
        return bytes(out), False
