"""Restore one chunk of images: read, decode, restore, encode, write atomically, one manifest row each.

The loop never stops on one image: bad input (:class:`ImageDecodeError`) is quarantined with the
codec's reason, any other error fails that image with its text, and transient storage errors are
retried with backoff first. Only ``KeyboardInterrupt``/``SystemExit`` (a killed worker) end it early;
what was written before stays valid, because every output is written atomically under its own key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from abair_core.io.errors import ImageDecodeError
from abair_core.io.image_codec import decode_image, encode_image
from abair_core.io.storage import atomic_write_bytes, join_uri, read_bytes, safe_relative_key, uris_overlap
from abair_core.restore.manifest import make_row, probabilities_json
from abair_core.restore.plan import Chunk, RestoreSettings, WorkItem, settings_hash

__all__ = [
    "TRANSIENT_ERRORS",
    "ImageRestorer",
    "RestoreOutput",
    "RestoreOutputLike",
    "call_with_retries",
    "restore_chunk",
    "restore_item",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Storage errors worth retrying; ``PERMANENT_ERRORS`` (subclasses of OSError) are not.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ImageDecodeError,
)
ACTIONS_COPYING_SOURCE = ("passed_through_clean", "low_confidence")


class RestoreOutputLike(Protocol):
    """What a restorer returns (``abair_core.bundle``'s ``RestoreOutput`` fits)."""

    rgb: np.ndarray
    probabilities: Mapping[str, float]
    action: str
    gated: Mapping[str, float]
    top_before_gates: str


@dataclass
class RestoreOutput:
    """Restored RGB (HWC float32 in [0, 1]), the estimator's probabilities and what was done."""

    rgb: np.ndarray
    probabilities: dict[str, float] = field(default_factory=dict)
    action: str = "restored"  # "restored" | "passed_through_clean" | "low_confidence"
    #: probability the plausibility gates took from each vetoed class (empty: none); it went to ``clean``, or
    #: for an expert's class back to the classes the expert gated
    gated: dict[str, float] = field(default_factory=dict)
    #: the estimator's top class before the gates ("" when unknown)
    top_before_gates: str = ""


class ImageRestorer(Protocol):
    """Any callable mapping an RGB float32 HWC image to a :class:`RestoreOutputLike` (e.g. a bound
    ``Restorer.restore_array``)."""

    def __call__(self, rgb: np.ndarray) -> RestoreOutputLike: ...


def call_with_retries(
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 3,
    base_delay: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn(*args)``, retrying transient storage errors with exponential backoff (0.2 s, 0.4 s, ...).

    Missing files, permissions and decode errors are permanent and raised at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args)
        except PERMANENT_ERRORS:
            raise
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1)
            logger.warning("transient error (%s), retry %d/%d in %.2fs", exc, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def restore_chunk(
    chunk: Chunk,
    dst_uri: str,
    restorer: ImageRestorer,
    settings: RestoreSettings,
    model_version: str,
    run_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Restore every image of ``chunk`` into ``dst_uri`` (same relative key); one manifest row per image.

    Raises ``ValueError`` before any work if a source lies inside the destination (an output must never
    replace its source).
    """
    for item in chunk.items:
        if uris_overlap(item.uri, dst_uri):
            raise ValueError(f"source {item.uri!r} lies inside destination {dst_uri!r}; refusing")
    common = {
        "model_version": str(model_version),
        "settings_hash": settings_hash(settings),
        "run_id": run_id,
        "chunk_id": chunk.id,
    }
    rows = [restore_item(item, dst_uri, restorer, settings, common, sleep) for item in chunk.items]
    logger.info("chunk %s: %d images, %d ok", chunk.id, len(rows), sum(r["status"] == "ok" for r in rows))
    return rows


def restore_item(
    item: WorkItem,
    dst_uri: str,
    restorer: ImageRestorer,
    settings: RestoreSettings,
    common: Mapping[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Restore one image and describe the outcome as a manifest row (never raises on a bad image)."""
    start = time.perf_counter()
    base = {**common, "fingerprint": item.fingerprint}
    input_bytes: int | None = None
    try:
        key = safe_relative_key(item.key)
    except ValueError as exc:
        return make_row(item.key, "quarantined", reason="unsafe_key", message=_short(exc), **base)
    try:
        data = call_with_retries(read_bytes, item.uri, sleep=sleep)
        input_bytes = len(data)
        decoded = decode_image(data, settings.max_pixels)
        height, width = int(decoded.rgb.shape[0]), int(decoded.rgb.shape[1])
        out = restorer(decoded.rgb)
        probs, top = probabilities_json(out.probabilities)
        gated = json.dumps({str(k): float(v) for k, v in out.gated.items()}, sort_keys=True)
        action = _decide_action(out, settings.min_confidence)
        if action == "restored":
            rgb = np.asarray(out.rgb, dtype=np.float32)
            if rgb.shape != decoded.rgb.shape:
                raise ValueError(f"restorer changed the shape {decoded.rgb.shape} -> {rgb.shape}")
            payload = encode_image(decoded, np.clip(rgb, 0.0, 1.0), jpeg_quality=settings.jpeg_quality)
        else:
            payload = data  # byte-exact copy: nothing was changed, so nothing is re-encoded
        call_with_retries(atomic_write_bytes, join_uri(dst_uri, key), payload, sleep=sleep)
        return make_row(
            item.key, "ok", action=action, probabilities=probs, top_class=top, gated=gated,
            top_before_gates=out.top_before_gates, width=width, height=height,
            input_bytes=input_bytes, output_bytes=len(payload), seconds=time.perf_counter() - start, **base,
        )
    except ImageDecodeError as exc:
        return make_row(
            item.key, "quarantined", reason=str(getattr(exc, "reason", "") or type(exc).__name__),
            message=_short(exc), input_bytes=input_bytes, seconds=time.perf_counter() - start, **base,
        )
    except Exception as exc:  # noqa: BLE001 - one bad image must never stop the batch
        return _failed_row(item, exc, input_bytes, start, base)


def _decide_action(out: RestoreOutputLike, min_confidence: float) -> str:
    """The restorer's action, demoted to ``low_confidence`` when its top probability is under the bar."""
    action = str(out.action)
    if action not in ("restored", *ACTIONS_COPYING_SOURCE):
        raise ValueError(f"restorer returned unknown action {action!r}")
    top = max((float(v) for v in out.probabilities.values()), default=1.0)
    if action == "restored" and top < min_confidence:
        return "low_confidence"
    return action


def _failed_row(
    item: WorkItem, exc: BaseException, input_bytes: int | None, start: float, base: Mapping[str, Any]
) -> dict[str, Any]:
    logger.warning("failed %s: %s: %s", item.key, type(exc).__name__, exc)
    return make_row(
        item.key, "failed", reason=type(exc).__name__, message=_short(exc), input_bytes=input_bytes,
        seconds=time.perf_counter() - start, **base,
    )


def _short(exc: BaseException, limit: int = 500) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
