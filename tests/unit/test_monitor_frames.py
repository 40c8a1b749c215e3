"""The monitor's attach-socket framing, as the CLI's attach, the API's attach and the
monitor itself split it (engine.monitor.split_frames)."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from forklift.engine.monitor import split_frames


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BI", kind, len(payload)) + payload


def test_whole_frames_come_out_and_the_partial_rest_stays() -> None:
    data = _frame(1, b"out") + _frame(2, b"") + _frame(2, b"err") + _frame(1, b"cut")[:6]
    frames, rest = split_frames(data)
    assert frames == [(1, b"out"), (2, b""), (2, b"err")]
    assert rest == _frame(1, b"cut")[:6]
    assert split_frames(rest + _frame(1, b"cut")[6:]) == ([(1, b"cut")], b"")


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=8),
       st.integers(1, 64))
def test_any_split_of_the_stream_gives_the_same_frames(sent: list[tuple[int, bytes]],
                                                      piece: int) -> None:
    stream = b"".join(_frame(k, p) for k, p in sent)
    got: list[tuple[int, bytes]] = []
    buf = b""
    for i in range(0, len(stream), piece):
        frames, buf = split_frames(buf + stream[i:i + piece])
        got.extend(frames)
    assert got == sent and buf == b""
