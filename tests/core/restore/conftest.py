"""A small mixed archive of real photos (and junk) on a local folder or fsspec ``memory://``."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pytest
from PIL import Image
from skimage import data

GOOD_KEYS = ("photo.jpg", "sub/cat.png", "grey.png", "rgba.png", "deep16.png", "rotated.jpg")
BAD_KEYS = {"truncated.jpg": "truncated", "empty.jpg": "empty", "notes.jpg": "not_an_image"}


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(image: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90, **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def archive_files() -> dict[str, bytes]:
    """Key -> bytes: six good images in different formats/modes/depths and three bad inputs."""
    astronaut = Image.fromarray(data.astronaut()[100:164, 150:230])  # 80x64 RGB
    cat = Image.fromarray(data.chelsea()[60:124, 100:172])  # 72x64 RGB
    camera = Image.fromarray(data.camera()[200:256, 200:264])  # 64x56 L
    coffee = data.coffee()[100:148, 200:264]
    alpha = np.tile(np.linspace(40, 255, coffee.shape[1], dtype=np.uint8), (coffee.shape[0], 1))
    rgba = Image.fromarray(np.dstack([coffee, alpha]))
    low_byte = np.add.outer(np.arange(48), 3 * np.arange(60)) % 256  # values 8-bit data cannot hold
    deep = (data.camera()[300:348, 100:160].astype(np.uint16) * 256 + low_byte).astype(np.uint16)
    deep16 = Image.fromarray(deep)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    rotated = Image.fromarray(data.astronaut()[0:48, 0:96])  # stored 96x48, displayed 48x96
    photo_jpeg = _jpeg(astronaut)
    return {
        "photo.jpg": photo_jpeg,
        "sub/cat.png": _png(cat),
        "grey.png": _png(camera),
        "rgba.png": _png(rgba),
        "deep16.png": _png(deep16),
        "rotated.jpg": _jpeg(rotated, exif),
        "truncated.jpg": photo_jpeg[: len(photo_jpeg) // 2],
        "empty.jpg": b"",
        "notes.jpg": b"these are meeting notes, not a picture\n" * 4,
    }


@dataclass
class Archive:
    """A source and destination prefix on one filesystem, with helpers that bypass our own code."""

    src: str
    dst: str
    fs: fsspec.AbstractFileSystem
    files: dict[str, bytes] = field(default_factory=dict)
    good_keys: tuple[str, ...] = GOOD_KEYS
    bad_keys: dict[str, str] = field(default_factory=lambda: dict(BAD_KEYS))

    def put(self, key: str, payload: bytes) -> None:
        path = f"{self.src.rstrip('/')}/{key}"
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(path, payload)
        self.files[key] = payload

    def _dst_root(self) -> str:
        return self.fs._strip_protocol(self.dst).rstrip("/")

    def dst_all(self) -> list[str]:
        """Every file under the destination (relative keys), state folder included."""
        root = self._dst_root()
        if not self.fs.exists(root):
            return []
        return sorted(p[len(root) + 1 :] for p in self.fs.find(root))

    def dst_keys(self) -> list[str]:
        """Every file under the destination except the pipeline's state folder."""
        return [k for k in self.dst_all() if not k.startswith("_abair/")]

    def read_dst(self, key: str) -> bytes:
        return self.fs.cat_file(f"{self._dst_root()}/{key}")


@pytest.fixture(params=["local", "memory"])
def archive(request: pytest.FixtureRequest, tmp_path) -> Iterator[Archive]:
    """The mixed archive on a local folder and on fsspec's in-memory filesystem."""
    if request.param == "local":
        fs = fsspec.filesystem("file")
        arc = Archive(src=str(tmp_path / "src"), dst=str(tmp_path / "dst"), fs=fs)
    else:
        fs = fsspec.filesystem("memory")
        root = f"/restore-test-{uuid.uuid4().hex[:8]}"
        arc = Archive(src=f"memory://{root}/src", dst=f"memory://{root}/dst", fs=fs)
    for key, payload in archive_files().items():
        arc.put(key, payload)
    yield arc
    if request.param == "memory":
        fs.rm(root, recursive=True)
