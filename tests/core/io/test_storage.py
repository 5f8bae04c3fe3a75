"""Storage helpers on a local folder (plain path and file://) and on fsspec's memory:// filesystem."""

import os
import uuid

import fsspec
import pyarrow as pa
import pytest

from abair_core.io.storage import (
    atomic_write_bytes,
    exists,
    get_fs,
    join_uri,
    list_files,
    read_bytes,
    read_parquet,
    safe_relative_key,
    uris_overlap,
    write_parquet,
)


@pytest.fixture(params=["local", "file", "memory"])
def root(request, tmp_path) -> str:
    """A fresh empty prefix on each backend."""
    prefix = {
        "local": str(tmp_path / "store"),
        "file": f"file://{tmp_path}/store",
        "memory": f"memory://abair-test-{uuid.uuid4().hex}",
    }[request.param]
    yield prefix
    fs, path = get_fs(prefix)
    if request.param == "memory" and fs.exists(path):
        fs.rm(path, recursive=True)


def test_atomic_write_read_exists(root: str) -> None:
    uri = join_uri(root, "a/b/photo.png")
    assert not exists(uri)
    atomic_write_bytes(uri, b"first")
    assert exists(uri) and read_bytes(uri) == b"first"
    atomic_write_bytes(uri, b"second version")
    assert read_bytes(uri) == b"second version"
    assert [f.key for f in list_files(root)] == ["a/b/photo.png"]  # no temp object left behind


def test_list_files_is_sorted_relative_and_filtered(root: str) -> None:
    for key in ["z.jpg", "a/1.png", "a/b/2.PNG", "a/b/3.png", "notes.txt"]:
        atomic_write_bytes(join_uri(root, key), key.encode())
    infos = list_files(root)
    assert [f.key for f in infos] == ["a/1.png", "a/b/2.PNG", "a/b/3.png", "notes.txt", "z.jpg"]
    first = infos[0]
    assert first.uri == join_uri(root, "a/1.png") and read_bytes(first.uri) == b"a/1.png"
    assert first.size == len(b"a/1.png") and first.etag_or_mtime
    assert [f.key for f in list_files(root, "**/*.png")] == ["a/1.png", "a/b/3.png"]
    assert [f.key for f in list_files(root, "*.jpg")] == ["z.jpg"]  # '*' stays in one folder
    assert [f.key for f in list_files(root, ["**/*.png", "**/*.PNG", "*.jpg"])] == [
        "a/1.png",
        "a/b/2.PNG",
        "a/b/3.png",
        "z.jpg",
    ]
    assert [f.key for f in list_files(root + "/a/", "b/*")] == ["b/2.PNG", "b/3.png"]
    assert list_files(join_uri(root, "missing")) == []


def test_change_token_follows_rewrites(tmp_path) -> None:
    uri = str(tmp_path / "x.bin")
    atomic_write_bytes(uri, b"1")
    os.utime(uri, (1_000_000, 1_000_000))
    before = list_files(str(tmp_path))[0].etag_or_mtime
    atomic_write_bytes(uri, b"2")
    assert list_files(str(tmp_path))[0].etag_or_mtime != before


def test_interrupted_write_leaves_old_object_and_is_not_listed(root: str) -> None:
    uri = join_uri(root, "out/photo.png")
    atomic_write_bytes(uri, b"complete")
    with pytest.raises(TypeError):  # the write fails after the temp object was opened
        atomic_write_bytes(uri, "not bytes")  # type: ignore[arg-type]
    assert read_bytes(uri) == b"complete"
    fs, path = get_fs(root)
    leftover = fs.find(path)
    assert len(leftover) == 1, leftover
    # a temp object from a crashed writer on another machine is not listed as an input
    fs.pipe_file(path.rstrip("/") + f"/out/photo.png.tmp-{uuid.uuid4().hex}", b"half")
    assert [f.key for f in list_files(root)] == ["out/photo.png"]


def test_parquet_round_trip(root: str) -> None:
    table = pa.table({"key": ["a.png", "b.png"], "status": ["ok", "failed"], "seconds": [0.5, 1.25]})
    uri = join_uri(root, "manifests/run-1.parquet")
    write_parquet(uri, table)
    assert read_parquet(uri).equals(table)


def test_memory_protocol_goes_through_fsspec() -> None:
    fs, path = get_fs("memory://bucket/prefix")
    assert isinstance(fs, fsspec.implementations.memory.MemoryFileSystem)
    assert path.endswith("bucket/prefix")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a/b.png", "a/b.png"),
        ("./a//b.png", "a/b.png"),
        ("a/./b/c.jpg", "a/b/c.jpg"),
        ("x..y.png", "x..y.png"),
    ],
)
def test_safe_relative_key_normalises(key: str, expected: str) -> None:
    assert safe_relative_key(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "",
        "  ",
        "/etc/passwd",
        "../x.png",
        "a/../../x",
        "a/..",
        "a\\..\\x",
        "C:x.png",
        "s3://b/k",
        "~/x",
        ".",
        "./",
    ],
)
def test_safe_relative_key_refuses_escapes(key: str) -> None:
    with pytest.raises(ValueError, match="unsafe key"):
        safe_relative_key(key)


def test_join_uri_keeps_protocol_and_refuses_escape() -> None:
    assert join_uri("s3://bucket/in/", "a/b.png") == "s3://bucket/in/a/b.png"
    assert join_uri("/data/in", "b.png") == "/data/in/b.png"
    with pytest.raises(ValueError):
        join_uri("s3://bucket/in", "../out/x.png")


def test_uris_overlap(tmp_path) -> None:
    assert uris_overlap("s3://bucket/photos", "s3://bucket/photos/restored")
    assert uris_overlap("s3://bucket/photos/", "s3://bucket/photos")
    assert not uris_overlap("s3://bucket/photos", "s3://bucket/photos-restored")
    assert not uris_overlap("s3://bucket/a", "memory://bucket/a")
    assert uris_overlap("s3a://bucket/a/b", "s3://bucket/a")
    assert uris_overlap(str(tmp_path), f"file://{tmp_path}/out")
    assert not uris_overlap(str(tmp_path / "in"), str(tmp_path / "out"))
    (tmp_path / "in").mkdir()
    os.symlink(tmp_path / "in", tmp_path / "link")
    assert uris_overlap(str(tmp_path / "link" / "sub"), str(tmp_path / "in"))


def test_listing_survives_an_unsafe_key_so_the_planner_can_refuse_it():
    """Regression: one object named with '..' used to abort the whole listing."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/unsafe-listing/src/good.jpg", b"x")
    fs.pipe_file("/unsafe-listing/src/a/../../evil.jpg", b"y")
    keys = [info.key for info in list_files("memory:///unsafe-listing/src")]
    assert "good.jpg" in keys
