"""Artifact store contract: every test runs on a local folder and on S3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shipyard.errors import ArtifactCorrupt, ArtifactNotFound, StoreError, UnsafePath
from shipyard.store import open_artifacts
from shipyard.store.artifacts import safe_join
from shipyard.store.hashing import hash_bytes, hash_file


def make_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(5000))
    (root / "sub" / "deeper" / "c.txt").write_text("gamma\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    return root


def test_file_round_trip_is_content_addressed(artifact_url, tmp_path):
    store = open_artifacts(artifact_url)
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)

    ref = store.put(source)

    assert ref.oid == hash_file(source) and ref.size == 7000 and not ref.is_dir
    restored = store.get(ref.oid, tmp_path / "out" / "model.bin")
    assert restored.read_bytes() == source.read_bytes()
    assert store.exists(ref.oid)
    assert list(store.oids()) == [ref.oid]


def test_same_content_is_stored_once(artifact_url, tmp_path):
    store = open_artifacts(artifact_url)
    (tmp_path / "one").write_text("same")
    (tmp_path / "two").write_text("same")

    first, second = store.put(tmp_path / "one"), store.put(tmp_path / "two")

    assert first.oid == second.oid
    assert list(store.oids()) == [first.oid]


def test_directory_round_trip_keeps_tree_and_exec_bits(artifact_url, tmp_path):
    store = open_artifacts(artifact_url)
    tree = make_tree(tmp_path / "tree")

    ref = store.put(tree)

    assert ref.is_dir and ref.files == 4
    out = store.get(ref.oid, tmp_path / "restored")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.txt",
        "run.sh",
        "sub/b.bin",
        "sub/deeper/c.txt",
    ]
    assert (out / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    assert os.access(out / "run.sh", os.X_OK)


def test_directory_id_ignores_listing_order_and_location(tmp_path):
    store = open_artifacts(str(tmp_path / "store"))
    one = make_tree(tmp_path / "one")
    two = tmp_path / "two"
    two.mkdir()
    for path in sorted(one.rglob("*"), reverse=True):  # create in another order
        target = two / path.relative_to(one)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(path.stat().st_mode)
    assert store.put(one).oid == store.put(two).oid


def test_restoring_a_directory_replaces_what_was_there(artifact_url, tmp_path):
    store = open_artifacts(artifact_url)
    ref = store.put(make_tree(tmp_path / "tree"))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "stale.txt").write_text("old")

    store.get(ref.oid, dest)

    assert not (dest / "stale.txt").exists() and (dest / "a.txt").read_text() == "alpha\n"


def test_missing_object_raises_not_found(artifact_url, tmp_path):
    store = open_artifacts(artifact_url)
    with pytest.raises(ArtifactNotFound, match="is not in the store"):
        store.get("0" * 64, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_corrupt_object_is_detected_on_read(tmp_path):
    store = open_artifacts(str(tmp_path / "store"))
    source = tmp_path / "f"
    source.write_bytes(b"original content")
    ref = store.put(source)
    obj = tmp_path / "store" / store.key(ref.oid)
    obj.chmod(0o644)
    obj.write_bytes(b"tampered content")

    with pytest.raises(ArtifactCorrupt, match="is corrupt"):
        store.get(ref.oid, tmp_path / "out")
    with pytest.raises(ArtifactCorrupt):
        store.verify(ref.oid)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "oid",
    ["../../etc/passwd", "/etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/..", "0" * 64 + "\x00"],
)
def test_only_well_formed_ids_are_accepted(tmp_path, oid):
    store = open_artifacts(str(tmp_path / "store"))
    with pytest.raises(UnsafePath):
        store.get(oid, tmp_path / "x")
    with pytest.raises(UnsafePath):
        store.exists(oid)


@pytest.mark.parametrize(
    "path", ["../escape", "/abs/path", "a/../../b", "a//b", "./a", "a\\..\\b", "nul\x00"]
)
def test_manifest_paths_that_escape_are_refused(tmp_path, path):
    store = open_artifacts(str(tmp_path / "store"))
    blob = store.put_bytes(b"payload")
    manifest = json.dumps([{"path": path, "oid": blob.oid, "size": 7, "exec": False}]).encode()
    forged = hash_bytes(manifest) + ".dir"
    store.backend.put_bytes(manifest, store.key(forged))

    with pytest.raises(UnsafePath):
        store.get(forged, tmp_path / "dest")
    assert not (tmp_path / "escape").exists()


def test_safe_join_refuses_symlink_escape(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="outside"):
        safe_join(root, "link/secret")
    assert safe_join(root, "ok/file") == root.resolve() / "ok" / "file"


def test_symlink_out_of_a_stored_tree_is_refused(tmp_path):
    store = open_artifacts(str(tmp_path / "store"))
    tree = make_tree(tmp_path / "tree")
    (tmp_path / "secret").write_text("do not store")
    (tree / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(StoreError, match="outside"):
        store.put(tree)


def test_copy_between_stores_moves_each_object_once(artifact_url, tmp_path):
    local = open_artifacts(str(tmp_path / "local"))
    remote = open_artifacts(artifact_url)
    ref = local.put(make_tree(tmp_path / "tree"))

    assert local.copy_to(remote, ref.oid) == 5  # 4 files + manifest
    assert local.copy_to(remote, ref.oid) == 0
    back = open_artifacts(str(tmp_path / "back"))
    remote.copy_to(back, ref.oid)
    back.verify(ref.oid)


def test_missing_fsspec_backend_names_the_extra():
    with pytest.raises(StoreError) as info:
        open_artifacts("gs://bucket/prefix")
    assert "pip install 'shipyard-ml[gcs]'" in str(info.value) or "gcs" in str(info.value)


def test_large_file_hashed_while_copied_is_stored_once(tmp_path):
    store = open_artifacts(str(tmp_path / "store"))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    first, second = store.put(big), store.put(big)
    assert first.oid == second.oid == hash_file(big)
    assert list(store.oids()) == [first.oid]
    assert not [p for p in (tmp_path / "store" / "objects" / "incoming").iterdir()]
    restored = store.get(first.oid, tmp_path / "back.bin")
    assert restored.read_bytes() == big.read_bytes()
