"""oci.now_rfc3339 (time's gmtime, not datetime's, on the run path) writes what Docker
writes: UTC, nanoseconds, the same text datetime gives for the same second."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from forklift import oci


def test_now_is_utc_with_nanoseconds_as_datetime_writes_it() -> None:
    before = int(time.time())
    text = oci.now_rfc3339()
    after = int(time.time())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", text), text
    assert text[:19] in {datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                         for s in range(before, after + 1)}
    assert before <= oci.parse_time(text) <= after + 1
