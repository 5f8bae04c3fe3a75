"""Robust image decode/encode at the pipeline's edge: bytes <-> float32 RGB in [0, 1].

What is supported (and why it matters for an archive restore):

- Formats PNG, JPEG, TIFF, WEBP, BMP; anything else is ``UnsupportedImageError("unsupported_format")``.
- EXIF orientation is applied on decode; the output is written upright with Orientation reset to 1.
- Greyscale (``1``, ``L``, ``LA``, ``I;16*``) is replicated to RGB and written back as grey (BT.601 luma
  of the restored RGB); alpha is kept apart, never restored, and re-attached on encode.
- 16 bits per sample: PNG grey, grey+alpha, RGB and RGBA, and TIFF grey (``I;16``). Pillow decodes 16-bit
  colour PNG to 8 bits, so those are decoded twice through Pillow's own PNG decoder (high bytes, then low
  bytes via the little-endian raw mode) and written by a small PNG writer here. 16-bit colour TIFF is
  refused (``unsupported_mode``) rather than silently truncated to 8 bits.
- Palette, CMYK, YCbCr and the other 8-bit modes are converted to RGB(A); a CMYK image's ICC profile is
  dropped because it describes CMYK, not the RGB pixels written back.
- ICC profiles are kept for every format that carries them; EXIF is kept for JPEG, PNG and WEBP (TIFF
  tags are structural and are not copied).
- Truncated files raise (``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set); the pixel limit is checked
  from the header before any pixel is decoded; Pillow's own decompression-bomb limit
  (``Image.MAX_IMAGE_PIXELS`` x 2) still applies on top of ``max_pixels``.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from abair_core.io.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError

__all__ = ["SUPPORTED_FORMATS", "DecodedImage", "decode_image", "encode_image", "encode_png16", "luma"]

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = (PNG_SIGNATURE, b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")
_GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# what Pillow raises on a malformed EXIF block (it parses lazily and loosely)
_EXIF_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, SyntaxError, struct.error)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image plus what is needed to write a restored version back in the same form.

    ``rgb`` is (H, W, 3) float32 in [0, 1], upright; ``alpha`` (H, W) float32 or None; ``size`` is
    ``(width, height)`` after orientation, as in Pillow; ``mode`` is the source's Pillow mode.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    mode: str
    grey: bool
    icc_profile: bytes | None
    exif: bytes | None
    size: tuple[int, int]

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


def decode_image(data: bytes, max_pixels: int = 100_000_000) -> DecodedImage:
    """Decode ``data`` to upright float32 RGB (+ alpha); raise a typed ``ImageDecodeError`` on bad input."""
    if not data:
        raise CorruptImageError("empty", "zero-byte input")
    image = _open(data)
    fmt = image.format or ""
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            "unsupported_format", f"{fmt or 'unknown'} (supported: {SUPPORTED_FORMATS})"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")
    icc = image.info.get("icc_profile") or None
    orientation, exif = _read_exif(image)
    try:
        pixels, alpha, bit_depth, grey, converted_from_cmyk = _decode_pixels(image, data)
    except OSError as exc:
        raise CorruptImageError(_failure_reason(exc), str(exc)) from exc
    except (SyntaxError, EOFError, struct.error, zlib.error) as exc:
        raise CorruptImageError("corrupt", str(exc)) from exc
    if converted_from_cmyk:
        icc = None
    rgb = np.ascontiguousarray(_orient(pixels, orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    return DecodedImage(
        rgb=rgb,
        alpha=alpha,
        bit_depth=bit_depth,
        format=fmt,
        mode=image.mode,
        grey=grey,
        icc_profile=icc,
        exif=exif,
        size=(rgb.shape[1], rgb.shape[0]),
    )


def encode_image(decoded: DecodedImage, rgb: np.ndarray, jpeg_quality: int = 95) -> bytes:
    """Encode ``rgb`` (H, W, 3) in [0, 1] like ``decoded``: format, bit depth, grey, alpha, ICC and EXIF.

    JPEG and WEBP use ``jpeg_quality`` (JPEG with 4:4:4 chroma, so restored detail is not subsampled away).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got {rgb.shape}")
    alpha = decoded.alpha
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise ValueError(f"rgb is {rgb.shape[:2]} but the source alpha is {alpha.shape}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    sixteen = decoded.bit_depth == 16
    grey = decoded.grey and decoded.format != "WEBP"
    pixels = luma(rgb) if grey else rgb
    q = _quantize(pixels, sixteen)
    qa = _quantize(alpha, sixteen) if alpha is not None and decoded.format != "JPEG" else None
    if decoded.format == "PNG" and sixteen and (qa is not None or not grey):
        return encode_png16(q, qa, icc_profile=decoded.icc_profile, exif=decoded.exif)
    image = _to_pil(q, qa, sixteen)
    return _save(image, decoded, jpeg_quality)


def _open(data: bytes) -> Image.Image:
    """Read the header only (Pillow is lazy); map Pillow's failures to typed errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("too_many_pixels", str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        reason = "corrupt" if _has_known_signature(data) else "not_an_image"
        raise CorruptImageError(reason, "cannot identify image") from exc
    except (OSError, SyntaxError, EOFError, ValueError, struct.error) as exc:
        raise CorruptImageError(_failure_reason(exc), str(exc)) from exc


def _has_known_signature(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _failure_reason(exc: BaseException) -> str:
    return "truncated" if "truncated" in str(exc).lower() else "corrupt"


def _read_exif(image: Image.Image) -> tuple[int, bytes | None]:
    """The EXIF orientation (1..8) and the EXIF block re-serialised with Orientation = 1 (None if absent)."""
    try:
        exif = image.getexif()
    except _EXIF_ERRORS as exc:  # a broken EXIF block should not cost the pixels
        logger.warning("ignoring unreadable EXIF: %s", exc)
        return 1, None
    orientation = exif.get(ORIENTATION_TAG, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    if "exif" not in image.info:  # e.g. TIFF: its tags are the image structure, not a copyable block
        return orientation, None
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    try:
        return orientation, exif.tobytes()
    except _EXIF_ERRORS as exc:
        logger.warning("dropping EXIF that cannot be re-serialised: %s", exc)
        return orientation, None


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an (H, W[, C]) array, matching ``PIL.ImageOps.exif_transpose``."""
    ops: dict[int, Any] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return array if op is None else op(array)


def _decode_pixels(image: Image.Image, data: bytes) -> tuple[np.ndarray, np.ndarray | None, int, bool, bool]:
    """(rgb float32 HWC, alpha or None, bit depth, grey, converted_from_cmyk), before orientation."""
    mode = image.mode
    if image.format == "PNG":
        depth, color_type = _png_header(data)
        if depth == 16 and color_type in (2, 4, 6):
            rgb, alpha, grey = _decode_png16_colour(data, color_type)
            return rgb, alpha, 16, grey, False
    if mode in _GREY16_MODES or (mode == "I" and image.format == "PNG"):
        grey16 = np.asarray(image).astype(np.float32) / 65535.0
        return _replicate(np.clip(grey16, 0.0, 1.0)), None, 16, True, False
    if image.format == "TIFF" and _tiff_bits(image) > 8:
        raise UnsupportedImageError(
            "unsupported_mode", f"{_tiff_bits(image)}-bit {mode} TIFF (use 16-bit PNG)"
        )
    image.load()
    if mode == "1":
        image = image.convert("L")
    if mode in ("La", "L", "1", "LA"):
        image = image.convert("LA") if mode == "La" else image
        arr = np.asarray(image)
        grey = arr if arr.ndim == 2 else arr[..., 0]
        alpha = None if arr.ndim == 2 else arr[..., 1].astype(np.float32) / 255.0
        return _replicate(grey.astype(np.float32) / 255.0), alpha, 8, True, False
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode in ("RGBX", "CMYK", "YCbCr"):
        image = image.convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        raise UnsupportedImageError("unsupported_mode", f"Pillow mode {mode}")
    arr = np.asarray(image)
    rgb = arr[..., :3].astype(np.float32) / 255.0
    alpha = arr[..., 3].astype(np.float32) / 255.0 if arr.shape[2] == 4 else None
    return rgb, alpha, 8, False, mode == "CMYK"


def _replicate(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _tiff_bits(image: Image.Image) -> int:
    bits = getattr(image, "tag_v2", {}).get(258, 8)
    return max(bits) if isinstance(bits, tuple) else int(bits)


def _png_header(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR."""
    if len(data) < 29 or data[12:16] != b"IHDR":
        raise CorruptImageError("corrupt", "PNG without IHDR")
    return data[24], data[25]


def _decode_png16(data: bytes, rawmode: str) -> np.ndarray:
    """Decode a PNG through Pillow's decoder with a chosen raw mode (same bits per pixel, other bytes)."""
    image = Image.open(io.BytesIO(data))
    if len(image.tile) != 1:
        raise UnsupportedImageError("unsupported_mode", "16-bit PNG with several image tiles (APNG?)")
    tile = image.tile[0]
    image.tile = [tile._replace(args=rawmode) if hasattr(tile, "_replace") else (*tile[:3], rawmode)]
    image.load()
    return np.asarray(image).astype(np.uint16)


def _decode_png16_colour(data: bytes, color_type: int) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """16-bit grey+alpha / RGB / RGBA PNG, losslessly: high bytes and low bytes in two decoder passes."""
    if color_type == 4:  # grey+alpha: 4 bytes per pixel, read raw as RGBA = (L hi, L lo, A hi, A lo)
        raw = _decode_png16(data, "RGBA")
        grey = raw[..., 0] * 256 + raw[..., 1]
        alpha = raw[..., 2] * 256 + raw[..., 3]
        return _replicate(grey.astype(np.float32) / 65535.0), alpha.astype(np.float32) / 65535.0, True
    base = "RGB" if color_type == 2 else "RGBA"
    words = _decode_png16(data, f"{base};16B") * 256 + _decode_png16(data, f"{base};16L")
    rgb = words[..., :3].astype(np.float32) / 65535.0
    alpha = words[..., 3].astype(np.float32) / 65535.0 if color_type == 6 else None
    return rgb, alpha, False


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (Pillow's RGB->L weights), so an exactly grey image keeps its values."""
    return (rgb.astype(np.float64) @ _LUMA).astype(np.float32)


def _quantize(values: np.ndarray, sixteen: bool) -> np.ndarray:
    top = 65535.0 if sixteen else 255.0
    scaled = np.floor(np.clip(np.nan_to_num(values.astype(np.float64)), 0.0, 1.0) * top + 0.5)
    return scaled.astype(np.uint16 if sixteen else np.uint8)


def _to_pil(q: np.ndarray, qa: np.ndarray | None, sixteen: bool) -> Image.Image:
    """uint8/uint16 arrays to a Pillow image; Pillow infers L, LA, RGB, RGBA or I;16 from dtype and shape."""
    if qa is not None:
        q = np.stack([q, qa], axis=-1) if q.ndim == 2 else np.concatenate([q, qa[..., None]], axis=-1)
    image = Image.fromarray(np.ascontiguousarray(q))
    if sixteen and image.mode not in _GREY16_MODES:
        raise ValueError(f"cannot build a 16-bit Pillow image from {q.shape}")
    return image


def _save(image: Image.Image, decoded: DecodedImage, jpeg_quality: int) -> bytes:
    fmt = decoded.format
    kwargs: dict[str, Any] = {}
    if decoded.icc_profile and fmt != "BMP":
        kwargs["icc_profile"] = decoded.icc_profile
    if decoded.exif and fmt in ("JPEG", "PNG", "WEBP"):
        kwargs["exif"] = decoded.exif
    if fmt == "JPEG":
        kwargs.update(quality=jpeg_quality, subsampling=0)
    elif fmt == "WEBP":
        kwargs.update(quality=jpeg_quality)
    elif fmt == "TIFF":
        kwargs.update(compression="tiff_deflate")
    elif fmt == "BMP" and image.mode == "LA":
        image = image.convert("RGBA")
    if fmt == "WEBP" and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def encode_png16(
    q: np.ndarray, qa: np.ndarray | None, icc_profile: bytes | None = None, exif: bytes | None = None
) -> bytes:
    """Write a 16-bit PNG (grey+alpha, RGB or RGBA) from uint16 arrays; Pillow cannot write these."""
    planes = q[..., None] if q.ndim == 2 else q
    if qa is not None:
        planes = np.concatenate([planes, qa[..., None]], axis=-1)
    height, width, channels = planes.shape
    color_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = planes.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    up = rows.copy()
    up[1:] -= rows[:-1]  # PNG "Up" filter (type 2), modulo 256 by uint8 arithmetic
    scanlines = np.concatenate([np.full((height, 1), 2, dtype=np.uint8), up], axis=1)
    compressed = zlib.compress(scanlines.tobytes(), 6)
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    step = 1 << 20
    parts.extend(_chunk(b"IDAT", compressed[i : i + step]) for i in range(0, max(len(compressed), 1), step))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
