"""Image decode/encode and fsspec storage helpers (re-exports only)."""

from abair_core.io.errors import (
    CorruptImageError,
    ImageDecodeError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from abair_core.io.image_codec import SUPPORTED_FORMATS, DecodedImage, decode_image, encode_image
from abair_core.io.storage import (
    FileInfo,
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

__all__ = [
    "SUPPORTED_FORMATS",
    "CorruptImageError",
    "DecodedImage",
    "FileInfo",
    "ImageDecodeError",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "atomic_write_bytes",
    "decode_image",
    "encode_image",
    "exists",
    "get_fs",
    "join_uri",
    "list_files",
    "read_bytes",
    "read_parquet",
    "safe_relative_key",
    "uris_overlap",
    "write_parquet",
]
