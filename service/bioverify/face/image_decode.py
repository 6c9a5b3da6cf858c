"""Safe decoding of client-supplied images into BGR uint8 arrays.

Only JPEG, PNG and WebP are accepted, identified by their magic bytes (never by a declared
type). The pixel dimensions are read from the header and checked before any pixel data is
decoded, so a small file that claims a huge canvas (a decompression bomb) never allocates.

``decode_image_within`` also bounds the *kept* array: an image with a side longer than
``max_side`` is shrunk while it is decoded (JPEGs are decoded at a reduced DCT scale, so
the full canvas is never materialised), which caps the memory that a request holding many
large photos pins while it waits for the detector and the liveness checks.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps

from bioverify.errors import InvalidImage, TooLarge
from bioverify.face.ports import ImageBGR

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("jpeg", "png", "webp")
MIN_SIDE_PX = 32
"""Images with a side shorter than this cannot hold a usable face."""

# Pillow format names that each sniffed format may open as (a JPEG with extra pictures in
# APP2 segments opens as MPO).
_PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": ("JPEG", "MPO"),
    "png": ("PNG",),
    "webp": ("WEBP",),
}
_ACCEPTED_TEXT = "JPEG, PNG or WebP"


def sniff_image_format(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the magic bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class DecodedImage:
    """Upright pixels and the size of the upright image as sent (before any shrinking)."""

    pixels: ImageBGR
    original_width: int
    original_height: int

    @property
    def scale(self) -> float:
        """Pixels per pixel of the image as sent (1.0 unless it was shrunk)."""
        return float(self.pixels.shape[1]) / self.original_width


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, max_aspect: float = 8.0
) -> ImageBGR:
    """Decode an encoded image into a contiguous HxWx3 BGR uint8 array, upright per EXIF.

    Raises ``InvalidImage`` for empty, unsupported, corrupt or truncated payloads and for
    images that are too small or absurdly elongated; ``TooLarge`` when the payload exceeds
    ``max_bytes`` or the canvas exceeds ``max_pixels``. Transparent pixels are composited
    onto white; grey, palette, CMYK and 16-bit images are converted to 8-bit BGR.
    """
    return decode_image_within(
        data, max_bytes=max_bytes, max_pixels=max_pixels, max_aspect=max_aspect
    ).pixels


def decode_image_within(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_aspect: float = 8.0,
    max_side: int | None = None,
) -> DecodedImage:
    """``decode_image``, shrunk (aspect kept, area-averaged) so that no side of the
    result exceeds ``max_side``; the limits apply to the image as sent."""
    if max_side is not None and max_side < MIN_SIDE_PX:
        raise ValueError(f"max_side must be at least {MIN_SIDE_PX}, got {max_side}")
    if not data:
        raise InvalidImage("image payload is empty")
    if len(data) > max_bytes:
        raise TooLarge(f"image payload is {len(data)} bytes; the limit is {max_bytes} bytes")
    fmt = sniff_image_format(data)
    if fmt is None:
        raise InvalidImage(f"unsupported image format; send {_ACCEPTED_TEXT}")

    image = _open_header(data, fmt, max_pixels)
    width, height = image.size
    _check_geometry(width, height, max_pixels=max_pixels, max_aspect=max_aspect)
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        stored_size = image.size  # the file's own orientation, before EXIF rotation
        if orientation in _EXIF_SWAPS_AXES:
            width, height = height, width
        target = _shrunk_size(width, height, max_side)
        stored_target = None
        if target is not None:
            stored_target = target[::-1] if stored_size != (width, height) else target
            if image.format in ("JPEG", "MPO"):
                # Decode at the smallest DCT scale (1/2, 1/4, 1/8) still at least the target.
                image.draft(image.mode, stored_target)
        image.load()
        pixels = _to_bgr(_upright(_reduced(image, stored_target), orientation))
        if target is not None and (pixels.shape[1], pixels.shape[0]) != target:
            pixels = np.ascontiguousarray(cv2.resize(pixels, target, interpolation=cv2.INTER_AREA))
        return DecodedImage(pixels, original_width=width, original_height=height)
    except MemoryError:
        raise
    except Exception as exc:  # Pillow decoders raise many types on hostile input
        raise InvalidImage(f"the {fmt.upper()} image is corrupt or truncated") from exc
    finally:
        image.close()


def check_bgr_image(image: ImageBGR) -> None:
    """Raise ``InvalidImage`` unless ``image`` is a non-empty HxWx3 uint8 array."""
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
        or image.shape[0] == 0
        or image.shape[1] == 0
    ):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise InvalidImage(f"expected an HxWx3 uint8 BGR image, got shape {shape} {dtype}")


def _open_header(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Open lazily: parses the header only; pixel data is decoded later by ``load()``."""
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (a warning only becomes an exception under -W error); either
        # way the canvas is far beyond any sane limit and nothing was allocated.
        raise TooLarge(f"image has more than {max_pixels} pixels") from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidImage(f"the {fmt.upper()} image header is corrupt") from exc
    if image.format not in _PILLOW_FORMATS[fmt]:
        image.close()
        raise InvalidImage(f"unsupported image format; send {_ACCEPTED_TEXT}")
    return image


_EXIF_SWAPS_AXES = frozenset((5, 6, 7, 8))
"""EXIF orientations that rotate by 90 degrees (width and height trade places)."""
_EXIF_TURNS = frozenset((2, 3, 4, 5, 6, 7, 8))
"""EXIF orientations that are not upright as stored."""


def _shrunk_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """The size with the longer side at ``max_side``, or None if it already fits."""
    if max_side is None or max(width, height) <= max_side:
        return None
    ratio = max_side / max(width, height)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


# Pillow modes whose resize averages 8-bit values (not palette indices, not 16-bit).
_REDUCIBLE_MODES = frozenset(("L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"))


def _reduced(image: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    """Area-averaged down to ``target`` inside Pillow, so the full-size picture is never
    copied into numpy (modes it cannot average are resized after conversion instead)."""
    if target is None or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.resize(target, Image.Resampling.BOX, reducing_gap=2.0)


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    """Turned upright per its EXIF orientation (Pillow keeps the EXIF block through
    ``draft``, ``load`` and ``resize``); an upright image is returned as it is, uncopied."""
    if orientation not in _EXIF_TURNS:
        return image
    upright = ImageOps.exif_transpose(image)
    return image if upright is None else upright


def _check_geometry(width: int, height: int, *, max_pixels: int, max_aspect: float) -> None:
    if width * height > max_pixels:
        raise TooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    if min(width, height) < MIN_SIDE_PX:
        raise InvalidImage(
            f"image is {width}x{height} pixels; each side must be at least {MIN_SIDE_PX}"
        )
    if max(width, height) / min(width, height) > max_aspect:
        raise InvalidImage(
            f"image is {width}x{height} pixels; the aspect ratio must not exceed {max_aspect:g}"
        )


def _to_bgr(image: Image.Image) -> ImageBGR:
    """Any Pillow mode to a contiguous 8-bit BGR array."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grey (Pillow's own conversion to L clips instead of scaling).
        grey16 = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(grey16 / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        rgb = image.convert("RGB")
    else:
        rgb = image
    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(array[:, :, ::-1])
