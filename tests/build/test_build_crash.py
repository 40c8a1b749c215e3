"""A build killed at any step leaves no corruption; the next build cleans up what it left
(its RUN container, an overlay mounted in its scratch) and succeeds."""

from __future__ import annotations

import pytest
from support.store import assert_clean, assert_no_corruption, repair

pytestmark = pytest.mark.root

DOCKERFILE = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nLABEL done=1\n"


@pytest.mark.parametrize("checkpoint", [
    "build-copy-mounted", "layer-extracted", "start-before-runc", "start-after-runc",
    "image-before-commit", "image-after-commit", "create-before-commit"])
def test_a_killed_build_is_cleaned_up_by_the_next(fl, ctx, checkpoint):
    root = ctx(DOCKERFILE, **{"a.txt": f"crash at {checkpoint}"})
    res = fl("build", "--network", "none", str(root), env={"FORKLIFT_CRASH_AT": checkpoint},
             check=False)
    assert res.code == -9, f"{checkpoint} not reached: {res}"
    assert_no_corruption(fl.root)
    image = fl.out("build", "--network", "none", "-q", str(root))
    assert fl.out("run", "--rm", "--network", "none", image, "cat", "/b.txt") == f"crash at {checkpoint}"
    assert fl.out("ps", "-aq") == ""
    with open("/proc/self/mountinfo") as f:
        assert f"{fl.root}/tmp/" not in f.read()
    if checkpoint == "create-before-commit":
        # a container directory without a record: `system check --repair`'s, as for `create`
        assert any("containers/" in line for line in repair(fl.root))
    assert_clean(fl.root)
