"""Typed image-decoding errors, so a batch run can record *why* an input was refused.

Every error carries a short machine-readable ``reason`` code that goes into the results manifest
(``corrupt``, ``truncated``, ``empty``, ``not_an_image``, ``unsupported_mode``, ``unsupported_format``,
``too_many_pixels``). All are ``ValueError`` subclasses: bad input, never worth a retry.
"""

from __future__ import annotations

__all__ = ["CorruptImageError", "ImageDecodeError", "ImageTooLargeError", "UnsupportedImageError"]


class ImageDecodeError(ValueError):
    """An input could not be turned into an image; ``reason`` is a short code for manifests."""

    reasons: frozenset[str] = frozenset()

    def __init__(self, reason: str, message: str = "") -> None:
        if self.reasons and reason not in self.reasons:
            raise ValueError(
                f"{type(self).__name__}: unknown reason {reason!r} (allowed: {sorted(self.reasons)})"
            )
        self.reason = reason
        super().__init__(f"{reason}: {message}" if message else reason)


class CorruptImageError(ImageDecodeError):
    """The bytes are empty, not an image, truncated or otherwise damaged."""

    reasons = frozenset({"corrupt", "truncated", "empty", "not_an_image"})


class UnsupportedImageError(ImageDecodeError):
    """A valid image in a pixel mode or container format this pipeline does not handle."""

    reasons = frozenset({"unsupported_mode", "unsupported_format"})


class ImageTooLargeError(ImageDecodeError):
    """The header announces more pixels than allowed; refused before any pixel is decoded."""

    reasons = frozenset({"too_many_pixels"})
