"""The run path's records that were frozen dataclasses (oci's Platform and Descriptor,
Reference, Limits) and plain ones (Layer, PreparedLayer, ImageRecord, Volume) keep a
dataclass's interface: keywords and defaults, equality and hashing by value, a repr
naming every field, no assignment to a frozen one, copy, pickle and ``replace``."""

from __future__ import annotations

import copy
import pickle

import pytest

from forklift.limits import Limits
from forklift.oci import Descriptor, Platform
from forklift.records import FrozenInstanceError
from forklift.reference import Reference, parse
from forklift.store.images import ImageRecord
from forklift.store.layers import Layer
from forklift.store.volumes import Volume

DIGEST = "sha256:" + "a" * 64


def test_frozen_records_compare_and_hash_by_value() -> None:
    a = Platform("linux", "arm64", "v8")
    assert a == Platform(os="linux", architecture="arm64", variant="v8")
    assert a != Platform("linux", "arm64") and Platform("linux", "amd64").variant is None
    assert len({a, Platform("linux", "arm64", "v8"), Platform("linux", "amd64")}) == 2
    assert repr(a) == "Platform(os='linux', architecture='arm64', variant='v8')"
    assert parse("busybox") == Reference("docker.io", "library/busybox", "latest")
    assert {parse("busybox"): 1}[Reference("docker.io", "library/busybox", "latest")] == 1
    assert parse("busybox") != parse("busybox:1")
    assert Limits() == Limits() and hash(Limits()) == hash(Limits())
    assert Limits(max_layers=3) != Limits()
    assert a != ("linux", "arm64", "v8")  # another class is never equal


def test_descriptor_annotations_are_fresh_and_left_out_of_the_hash() -> None:
    d = Descriptor("t", DIGEST, 3)
    assert d.annotations == {} and d.annotations is not Descriptor("t", DIGEST, 3).annotations
    e = Descriptor("t", DIGEST, 3, annotations={"k": "v"})
    assert d != e and hash(d) == hash(e)  # a dict is not hashable: hash=False, as before
    assert Descriptor("t", DIGEST, 3, ("u",), {}, Platform("linux", "amd64")).platform is not None


def test_frozen_records_refuse_assignment_and_copy_through_their_keywords() -> None:
    limits = Limits(max_layer_size=10, config_path="/c")
    with pytest.raises(FrozenInstanceError):
        limits.max_layers = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del limits.config_path  # type: ignore[misc]
    with pytest.raises(AttributeError):
        limits.other = 1  # type: ignore[attr-defined]  # slotted: no new attributes
    assert limits.replace(max_layers=2) == Limits(10, 2, "/c")
    assert limits.max_layers != 2  # replace made a copy
    for same in (copy.copy(limits), copy.deepcopy(limits), pickle.loads(pickle.dumps(limits))):
        assert same == limits and same is not limits
    ref = parse("example.com/a/b:1")
    assert pickle.loads(pickle.dumps(ref)) == ref and str(copy.deepcopy(ref)) == str(ref)
    with pytest.raises(TypeError):
        Limits(max_size=1)  # type: ignore[call-arg]


def test_plain_records_compare_by_value_and_stay_mutable() -> None:
    layer = Layer(DIGEST, "d1", 5, DIGEST, "t")
    assert layer == Layer(diff_id=DIGEST, dir="d1", size=5, blob=DIGEST, blob_media_type="t")
    layer.size = 6
    assert layer != Layer(DIGEST, "d1", 5, DIGEST, "t")
    with pytest.raises(TypeError):
        hash(layer)  # mutable, unhashable, as a dataclass
    assert ImageRecord("i", None, 1.0, 2, 3.0) == ImageRecord("i", None, 1.0, 2, 3.0)
    assert "parent=None" in repr(ImageRecord("i", None, 1.0, 2, 3.0))
    vol = Volume("v", False, 1.0, {"a": "b"})
    assert vol == Volume("v", False, 1.0, {"a": "b"}) and vol != Volume("v", True, 1.0, {})
