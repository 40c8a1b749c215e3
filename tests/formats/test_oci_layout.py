"""OCI output against the image-spec JSON schemas; multi-platform indexes on load."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from support import Forklift
from support.store import NewStore

from forklift import oci

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")


@pytest.fixture(scope="module")
def validators() -> dict:
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"OCI image-spec schemas not installed ({SCHEMA_DIR})")
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Resource:
        # the schemas refer to each other by relative file name under varying base ids
        return Resource.from_contents(json.loads((SCHEMA_DIR / uri.rsplit("/", 1)[-1]).read_text()),
                                      default_specification=DRAFT4)

    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    out_ = {}
    for key, name in (("manifest", "image-manifest-schema.json"), ("index", "image-index-schema.json"),
                      ("config", "config-schema.json"), ("layout", "image-layout-schema.json")):
        schema = json.loads((SCHEMA_DIR / name).read_text())
        out_[key] = jsonschema.Draft4Validator(schema, registry=registry,
                                               format_checker=jsonschema.FormatChecker())
    return out_


@pytest.fixture(scope="module")
def layout(source_store: Forklift, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oci") / "layout"
    source_store("save", "--format", "oci-dir", "-o", str(path),
       "hw_image:latest", "hw_image:2.7", "other:1", "busybox")
    return path


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


@pytest.mark.root
def test_layout_matches_schemas(layout: Path, validators: dict) -> None:
    validators["layout"].validate(json.loads((layout / "oci-layout").read_text()))
    index = json.loads((layout / "index.json").read_text())
    validators["index"].validate(index)
    assert len(index["manifests"]) == 4
    for entry in index["manifests"]:
        raw = _blob(layout, entry["digest"])
        assert len(raw) == entry["size"]
        manifest = json.loads(raw)
        validators["manifest"].validate(manifest)
        config = json.loads(_blob(layout, manifest["config"]["digest"]))
        validators["config"].validate(config)
        assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
        for layer in manifest["layers"]:
            assert len(_blob(layout, layer["digest"])) == layer["size"]


def test_negative_control(validators: dict) -> None:
    """The validators really check, through the cross-file $refs too."""
    bad_layer = {"mediaType": oci.OCI_LAYER, "digest": "sha256:../../x", "size": 1}
    config = {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "a" * 64, "size": 1}
    with pytest.raises(Exception, match="does not match"):
        validators["manifest"].validate({"schemaVersion": 2, "config": config, "layers": [bad_layer]})


def _nested(layout: Path, platforms: list[tuple[str, str]]) -> Path:
    """Rewrite a one-image layout so index.json points to an image index for ``platforms``."""
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    children = [{"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"],
                 "platform": {"os": os_, "architecture": arch}} for os_, arch in platforms]
    raw = oci.canonical_json({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": children})
    digest = hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(raw)
    top = {"mediaType": oci.OCI_INDEX, "digest": f"sha256:{digest}", "size": len(raw),
           "annotations": entry["annotations"]}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return layout


@pytest.mark.root
def test_multi_platform_index(source_store: Forklift, new_store: NewStore,
                              tmp_path: Path) -> None:
    base = tmp_path / "base"
    source_store("save", "--format", "oci-dir", "-o", str(base), "hw_image:2.7")
    here = oci.go_arch()
    others = [a for a in ("arm64", "s390x", "ppc64le") if a != here][:2]
    multi = _nested(shutil.copytree(base, tmp_path / "multi"), [("linux", others[0]), ("linux", here)])
    s1, s2, s3 = new_store(), new_store(), new_store()
    assert s1.out("load", "-i", str(multi)) == "Loaded image: hw_image:2.7"
    assert s1.inspect("hw_image:2.7")["Id"] == source_store.inspect("hw_image:2.7")["Id"]
    foreign = _nested(shutil.copytree(base, tmp_path / "foreign"), [("linux", a) for a in others])
    proc = s2("load", "-i", str(foreign), check=False)
    err = proc.err.strip()
    assert proc.code != 0 and "\n" not in err
    assert err == (f"Error: no image for platform linux/{here} in the archive"
                   f" (available: {', '.join(f'linux/{a}' for a in sorted(others))})")
    picked = s3.out("load", "--platform", f"linux/{others[0]}", "-i", str(foreign))
    assert picked == "Loaded image: hw_image:2.7"


@pytest.mark.root
def test_top_level_platform_entries(source_store: Forklift, new_store: NewStore,
                                    tmp_path: Path) -> None:
    """Same name, several platforms: ours is picked. Different names: all load."""
    base = tmp_path / "base"
    source_store("save", "--format", "oci-dir", "-o", str(base), "hw_image:2.7", "other:1")
    index = json.loads((base / "index.json").read_text())
    hw, other = index["manifests"]
    foreign = "s390x" if oci.go_arch() != "s390x" else "arm64"
    decoy = {**other, "annotations": hw["annotations"], "platform": {"os": "linux", "architecture": foreign}}
    index["manifests"] = [decoy, hw]
    (base / "index.json").write_text(json.dumps(index))
    s1, s2 = new_store(), new_store()
    assert s1.out("load", "-i", str(base)) == "Loaded image: hw_image:2.7"
    assert s1.inspect("hw_image:2.7")["Id"] == source_store.inspect("hw_image:2.7")["Id"]
    index["manifests"] = [decoy, {**other, "platform": {"os": "linux", "architecture": foreign}}]
    (base / "index.json").write_text(json.dumps(index))
    lines = s2.out("load", "-i", str(base)).splitlines()
    assert lines == ["Loaded image: hw_image:2.7", "Loaded image: other:1"]
