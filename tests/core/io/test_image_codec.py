"""decode_image/encode_image on real photos: every format, grey, alpha, 16 bits, EXIF, ICC and bad input."""

import io
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps
from skimage import data

from abair_core.io.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from abair_core.io.image_codec import decode_image, encode_image, encode_png16
from abair_core.metrics import psnr

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _save(array_or_image, fmt: str, **kwargs) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _astronaut() -> np.ndarray:
    return data.astronaut()[100:196, 120:248]


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "ABAIR test camera"
    return exif.tobytes()


def _u16(array8: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 16-bit image from a photo, with low bytes that differ from the high bytes."""
    noise = np.random.default_rng(seed).integers(0, 256, array8.shape)
    return (array8.astype(np.uint16) * 256 + noise).astype(np.uint16)


def _as_u16(values: np.ndarray) -> np.ndarray:
    return np.round(values * 65535).astype(np.uint16)


def _png16_reference(samples: np.ndarray, color_type: int, filter_type: int) -> bytes:
    """An independent 16-bit PNG writer (any filter 0-4, per-row Python), to test the decoder against."""
    height = samples.shape[0]
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8).reshape(height, -1).astype(np.int32)
    bpp = 2 * (1 if samples.ndim == 2 else samples.shape[2])
    out = []
    for y in range(height):
        cur = rows[y]
        up = rows[y - 1] if y else np.zeros_like(cur)
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        p = left + up - upleft
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        pred = [0, left, up, (left + up) // 2, paeth][filter_type]
        out.append(bytes([filter_type]) + ((cur - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", samples.shape[1], height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(out)))
        + chunk(b"IEND", b"")
    )


def _unfilter_up_png(png: bytes) -> tuple[tuple[int, ...], np.ndarray]:
    """Parse a PNG whose rows all use the Up filter (our writer's choice): IHDR fields and raw bytes."""
    pos, idat, ihdr = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, payload = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        ihdr = payload if kind == b"IHDR" else ihdr
        idat += payload if kind == b"IDAT" else b""
        pos += 12 + length
    fields = struct.unpack(">IIBBBBB", ihdr)
    _width, height = fields[0], fields[1]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, -1)
    assert (raw[:, 0] == 2).all()
    return fields, np.cumsum(raw[:, 1:], axis=0, dtype=np.uint8)


# ---- 8-bit formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP"])
def test_lossless_formats_round_trip_exactly(fmt: str) -> None:
    photo = _astronaut()
    decoded = decode_image(_save(photo, fmt))
    assert (decoded.format, decoded.bit_depth, decoded.grey, decoded.alpha) == (fmt, 8, False, None)
    assert decoded.rgb.dtype == np.float32 and decoded.rgb.shape == photo.shape
    assert decoded.size == (photo.shape[1], photo.shape[0])
    np.testing.assert_array_equal(np.round(decoded.rgb * 255).astype(np.uint8), photo)
    again = decode_image(encode_image(decoded, decoded.rgb))
    assert again.format == fmt
    np.testing.assert_array_equal(again.rgb, decoded.rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_keep_format_icc_and_exif(fmt: str) -> None:
    photo = data.chelsea()[:120, :160]
    decoded = decode_image(_save(photo, fmt, quality=95, icc_profile=ICC, exif=_exif(1)))
    assert decoded.format == fmt and decoded.icc_profile == ICC
    encoded = encode_image(decoded, decoded.rgb, jpeg_quality=95)
    again = decode_image(encoded)
    assert again.format == fmt and again.icc_profile == ICC
    assert Image.open(io.BytesIO(encoded)).getexif()[0x010F] == "ABAIR test camera"
    assert psnr(again.rgb, decoded.rgb) > 38


def test_jpeg_quality_changes_the_output() -> None:
    decoded = decode_image(_save(_astronaut(), "JPEG", quality=95))
    small = encode_image(decoded, decoded.rgb, jpeg_quality=30)
    large = encode_image(decoded, decoded.rgb, jpeg_quality=95)
    assert len(small) < len(large)
    with pytest.raises(ValueError, match="jpeg_quality"):
        encode_image(decoded, decoded.rgb, jpeg_quality=0)


def test_restored_pixels_are_what_gets_written() -> None:
    decoded = decode_image(_save(_astronaut(), "PNG"))
    brighter = np.clip(decoded.rgb + 0.1, 0, 1)
    again = decode_image(encode_image(decoded, brighter))
    np.testing.assert_allclose(again.rgb, brighter, atol=0.5 / 255 + 1e-6)


# ---- grey, palette, CMYK, alpha ---------------------------------------------------------------------


def test_grey_is_replicated_and_written_back_grey() -> None:
    camera = data.camera()[:100, :90]
    decoded = decode_image(_save(camera, "PNG"))
    assert decoded.grey and decoded.mode == "L" and decoded.rgb.shape == (100, 90, 3)
    assert np.array_equal(decoded.rgb[..., 0], decoded.rgb[..., 2])
    encoded = encode_image(decoded, decoded.rgb)
    assert Image.open(io.BytesIO(encoded)).mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encoded))), camera)


def test_grey_jpeg_stays_grey() -> None:
    decoded = decode_image(_save(data.camera()[:64, :64], "JPEG", quality=95))
    assert decoded.grey
    assert Image.open(io.BytesIO(encode_image(decoded, decoded.rgb))).mode == "L"


def test_rgba_alpha_is_kept_apart_and_reattached() -> None:
    photo = _astronaut()
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    decoded = decode_image(_save(np.dstack([photo, alpha]), "PNG"))
    assert decoded.rgb.shape == photo.shape and decoded.alpha is not None
    np.testing.assert_array_equal(np.round(decoded.alpha * 255).astype(np.uint8), alpha)
    np.testing.assert_array_equal(np.round(decoded.rgb * 255).astype(np.uint8), photo)  # not premultiplied
    out = Image.open(io.BytesIO(encode_image(decoded, decoded.rgb)))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)
    with pytest.raises(ValueError, match="alpha"):
        encode_image(decoded, decoded.rgb[:10])


def test_grey_with_alpha_round_trips() -> None:
    camera = data.camera()[:80, :70]
    alpha = np.full_like(camera, 200)
    decoded = decode_image(_save(Image.fromarray(np.dstack([camera, alpha])), "PNG"))
    assert decoded.grey and decoded.mode == "LA"
    out = Image.open(io.BytesIO(encode_image(decoded, decoded.rgb)))
    assert out.mode == "LA"
    np.testing.assert_array_equal(np.asarray(out), np.dstack([camera, alpha]))


def test_palette_and_cmyk_are_converted_to_rgb() -> None:
    palette = Image.fromarray(_astronaut()).convert("P", palette=Image.Palette.ADAPTIVE)
    decoded = decode_image(_save(palette, "PNG"))
    assert decoded.mode == "P" and not decoded.grey and decoded.rgb.shape[2] == 3
    np.testing.assert_array_equal(
        np.round(decoded.rgb * 255).astype(np.uint8), np.asarray(palette.convert("RGB"))
    )
    cmyk = Image.fromarray(data.coffee()[:64, :64]).convert("CMYK")
    decoded = decode_image(_save(cmyk, "JPEG", quality=95, icc_profile=ICC))
    assert decoded.mode == "CMYK" and decoded.icc_profile is None  # a CMYK profile does not describe RGB
    assert Image.open(io.BytesIO(encode_image(decoded, decoded.rgb))).mode == "RGB"


# ---- 16 bits ------------------------------------------------------------------------------------------


def test_16bit_grey_png_and_tiff_round_trip_exactly() -> None:
    grey16 = _u16(data.camera()[:64, :80])
    for fmt in ("PNG", "TIFF"):
        decoded = decode_image(_save(Image.fromarray(grey16), fmt))
        assert (decoded.bit_depth, decoded.grey, decoded.format) == (16, True, fmt)
        np.testing.assert_array_equal(_as_u16(decoded.rgb[..., 1]), grey16)
        out = Image.open(io.BytesIO(encode_image(decoded, decoded.rgb)))
        assert out.mode.startswith("I;16")
        np.testing.assert_array_equal(np.asarray(out), grey16)


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
def test_16bit_colour_png_decodes_losslessly_for_every_filter(filter_type: int) -> None:
    rgb16 = _u16(data.coffee()[:24, :30], seed=filter_type)
    decoded = decode_image(_png16_reference(rgb16, 2, filter_type))
    assert (decoded.bit_depth, decoded.grey, decoded.alpha) == (16, False, None)
    np.testing.assert_array_equal(_as_u16(decoded.rgb), rgb16)


def test_16bit_rgba_and_grey_alpha_png_decode_losslessly() -> None:
    rgba16 = _u16(np.dstack([data.astronaut()[:20, :26], data.camera()[:20, :26]]), seed=3)
    decoded = decode_image(_png16_reference(rgba16, 6, 4))
    np.testing.assert_array_equal(_as_u16(decoded.rgb), rgba16[..., :3])
    np.testing.assert_array_equal(_as_u16(decoded.alpha), rgba16[..., 3])
    la16 = rgba16[..., [1, 3]]
    decoded = decode_image(_png16_reference(la16, 4, 1))
    assert decoded.grey and decoded.bit_depth == 16
    np.testing.assert_array_equal(_as_u16(decoded.rgb[..., 0]), la16[..., 0])
    np.testing.assert_array_equal(_as_u16(decoded.alpha), la16[..., 1])


@pytest.mark.parametrize(("channels", "color_type"), [(3, 2), (4, 6), (2, 4)])
def test_16bit_png_writer_is_valid_png(channels: int, color_type: int) -> None:
    planes = _u16(np.dstack([data.astronaut()[:30, :40], data.camera()[:30, :40]])[..., :channels], seed=5)
    if channels == 2:
        png = encode_png16(planes[..., 0], planes[..., 1], icc_profile=ICC, exif=_exif(1))
    elif channels == 4:
        png = encode_png16(planes[..., :3], planes[..., 3], icc_profile=ICC, exif=_exif(1))
    else:
        png = encode_png16(planes, None, icc_profile=ICC, exif=_exif(1))
    fields, raw = _unfilter_up_png(png)  # independent parse of what we wrote
    assert fields[:4] == (40, 30, 16, color_type)
    np.testing.assert_array_equal(raw.view(">u2").reshape(planes.shape), planes)
    decoded = decode_image(png)  # and ours reads back metadata and every bit
    assert decoded.icc_profile == ICC and decoded.exif is not None
    colour = planes[..., :1] if channels == 2 else planes[..., :3]
    np.testing.assert_array_equal(_as_u16(decoded.rgb[..., : colour.shape[2]]), colour)
    if channels in (2, 4):
        np.testing.assert_array_equal(_as_u16(decoded.alpha), planes[..., -1])


def test_16bit_colour_png_round_trips_through_encode_image() -> None:
    rgb16 = _u16(data.chelsea()[:40, :50], seed=9)
    decoded = decode_image(_png16_reference(rgb16, 2, 4))
    again = decode_image(encode_image(decoded, decoded.rgb))
    assert again.bit_depth == 16 and again.format == "PNG"
    np.testing.assert_array_equal(_as_u16(again.rgb), rgb16)


def test_16bit_colour_tiff_is_refused_not_truncated() -> None:
    out = io.BytesIO()
    tifffile.imwrite(out, _u16(data.coffee()[:16, :16]), photometric="rgb")
    with pytest.raises(UnsupportedImageError) as info:
        decode_image(out.getvalue())
    assert info.value.reason == "unsupported_mode"


# ---- EXIF orientation -------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(orientation: int) -> None:
    photo = data.chelsea()[:60, :90]
    encoded = _save(photo, "PNG", exif=_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(encoded))))
    decoded = decode_image(encoded)
    np.testing.assert_array_equal(np.round(decoded.rgb * 255).astype(np.uint8), expected)
    assert decoded.size == (expected.shape[1], expected.shape[0])
    written = encode_image(decoded, decoded.rgb)
    exif = Image.open(io.BytesIO(written)).getexif()
    assert exif[0x0112] == 1 and exif[0x010F] == "ABAIR test camera"
    np.testing.assert_array_equal(decode_image(written).rgb, decoded.rgb)  # not rotated twice


def test_jpeg_exif_orientation_is_reset_on_write() -> None:
    encoded = _save(data.astronaut()[:64, :96], "JPEG", quality=95, exif=_exif(6))
    decoded = decode_image(encoded)
    assert decoded.rgb.shape == (96, 64, 3)
    written = Image.open(io.BytesIO(encode_image(decoded, decoded.rgb)))
    assert written.size == (64, 96) and written.getexif()[0x0112] == 1


# ---- bad input -------------------------------------------------------------------------------------


def test_empty_and_non_image_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptImageError) as info:
        decode_image(b"")
    assert info.value.reason == "empty"
    with pytest.raises(CorruptImageError) as info:
        decode_image(b"this is a text file, not a photo\n" * 10)
    assert info.value.reason == "not_an_image"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP"])
def test_truncated_files_raise_instead_of_half_decoding(fmt: str) -> None:
    encoded = _save(_astronaut(), fmt)
    with pytest.raises(CorruptImageError) as info:
        decode_image(encoded[: len(encoded) // 2])
    assert info.value.reason == "truncated"


def test_truncated_webp_and_damaged_header_are_corrupt() -> None:
    webp = _save(_astronaut(), "WEBP")
    with pytest.raises(CorruptImageError):
        decode_image(webp[: len(webp) // 2])
    png = _save(_astronaut(), "PNG")
    with pytest.raises(CorruptImageError) as info:
        decode_image(png[:40])
    assert info.value.reason in ("corrupt", "truncated")


def test_pixel_limit_is_checked_from_the_header_alone() -> None:
    png = _save(data.astronaut(), "PNG")  # 512 x 512
    header_only = png[:60]  # signature, IHDR and the first bytes of IDAT: almost no pixel data
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(header_only, max_pixels=512 * 511)
    assert info.value.reason == "too_many_pixels"
    assert decode_image(png, max_pixels=512 * 512).size == (512, 512)


def test_decompression_bomb_header_is_too_large() -> None:
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    chunks = [
        struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        for kind, payload in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 64)))
    ]
    with pytest.raises(ImageTooLargeError):  # Pillow's own bomb limit, even with a permissive max_pixels
        decode_image(b"\x89PNG\r\n\x1a\n" + b"".join(chunks), max_pixels=10**10)


def test_unsupported_format_and_mode() -> None:
    with pytest.raises(UnsupportedImageError) as info:
        decode_image(_save(_astronaut(), "GIF"))
    assert info.value.reason == "unsupported_format"
    out = io.BytesIO()
    tifffile.imwrite(out, data.camera()[:16, :16].astype(np.float32) / 255)
    with pytest.raises(UnsupportedImageError) as info:
        decode_image(out.getvalue())
    assert info.value.reason == "unsupported_mode"


def test_error_reasons_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        CorruptImageError("too_many_pixels")
    assert ImageTooLargeError("too_many_pixels", "x").reason == "too_many_pixels"
