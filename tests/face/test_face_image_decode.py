"""decode_image: accepted formats, limits checked before decoding, hostile and odd inputs."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Literal

import numpy as np
import pytest
from PIL import Image, ImageFile

from bioverify.errors import InvalidImage, TooLarge
from bioverify.face.image_decode import (
    check_bgr_image,
    decode_image,
    decode_image_within,
    sniff_image_format,
)
from tests.face.face_assets import lfw_bytes, lfw_image

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 20_000_000}


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG that claims ``width`` x ``height`` with almost no data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_bgr(image: np.ndarray, height: int, width: int) -> None:
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]


# --- format sniffing ------------------------------------------------------------------------


def test_sniff_recognises_the_three_formats() -> None:
    rgb = Image.new("RGB", (40, 40), (10, 20, 30))
    assert sniff_image_format(encode(rgb, "JPEG")) == "jpeg"
    assert sniff_image_format(encode(rgb, "PNG")) == "png"
    assert sniff_image_format(encode(rgb, "WEBP")) == "webp"
    assert sniff_image_format(encode(rgb, "GIF")) is None
    assert sniff_image_format(encode(rgb, "BMP")) is None
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_image_format(b"") is None


# --- rejected payloads ----------------------------------------------------------------------


def test_empty_payload_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", **LIMITS)


@pytest.mark.parametrize(
    "payload",
    [
        b"hello, this is not an image at all",
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
        encode(Image.new("RGB", (64, 64)), "GIF"),
        encode(Image.new("RGB", (64, 64)), "BMP"),
        encode(Image.new("RGB", (64, 64)), "TIFF"),
    ],
    ids=["text", "random", "gif", "bmp", "tiff"],
)
def test_unsupported_formats_name_the_accepted_ones(payload: bytes) -> None:
    with pytest.raises(InvalidImage, match="JPEG, PNG or WebP"):
        decode_image(payload, **LIMITS)


def test_payload_over_max_bytes_is_too_large() -> None:
    data = lfw_bytes("Ben_Curtis", 1)
    with pytest.raises(TooLarge):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**7)
    assert decode_image(data, max_bytes=len(data), max_pixels=10**7).shape == (250, 250, 3)


def test_truncated_jpeg_is_invalid_and_hides_pillow_details() -> None:
    data = lfw_bytes("Ben_Curtis", 1)
    with pytest.raises(InvalidImage, match="corrupt or truncated") as caught:
        decode_image(data[: len(data) // 2], **LIMITS)
    assert caught.value.__cause__ is not None  # chained for server-side logs
    assert "bytes not processed" not in str(caught.value)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # the global was not flipped


@pytest.mark.parametrize("cut", [3, 20, 200])
def test_jpeg_with_only_a_header_fragment_is_invalid(cut: int) -> None:
    with pytest.raises(InvalidImage):
        decode_image(lfw_bytes("Ben_Curtis", 1)[:cut], **LIMITS)


def test_corrupt_png_data_is_invalid() -> None:
    data = bytearray(encode(Image.new("RGB", (64, 64), (200, 10, 10)), "PNG"))
    data[60:80] = b"\xff" * 20  # inside IDAT: bad zlib stream / CRC
    with pytest.raises(InvalidImage):
        decode_image(bytes(data), **LIMITS)


def test_png_magic_with_jpeg_body_is_invalid() -> None:
    jpeg = lfw_bytes("Ben_Curtis", 1)
    with pytest.raises(InvalidImage):
        decode_image(b"\x89PNG\r\n\x1a\n" + jpeg, **LIMITS)


# --- pixel limits, checked from the header --------------------------------------------------


def test_decompression_bomb_header_is_too_large_without_decoding() -> None:
    bomb = png_header_only(20_000, 20_000)  # 400 Mpx claimed by a ~100-byte file
    assert len(bomb) < 200
    with pytest.raises(TooLarge):
        decode_image(bomb, **LIMITS)


@pytest.mark.parametrize("action", ["error", "ignore"])
def test_canvas_in_pillows_warning_band_is_too_large(action: Literal["error", "ignore"]) -> None:
    # 100 Mpx is between Pillow's warning (89 Mpx) and error (179 Mpx) limits: the
    # DecompressionBombWarning is either raised (as under pytest -W error) or not at all.
    with warnings.catch_warnings():
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        with pytest.raises(TooLarge):
            decode_image(png_header_only(10_000, 10_000), **LIMITS)


def test_real_image_over_max_pixels_is_rejected_before_pixels_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(Image.new("RGB", (3000, 3000), (90, 120, 150)), "PNG")  # solid: tiny file
    assert len(data) < 100_000

    def no_decoding(self: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(TooLarge, match="3000x3000"):
        decode_image(data, max_bytes=10**6, max_pixels=4_000_000)


@pytest.mark.parametrize(
    ("size", "match"),
    [((10_000, 20), "at least 32"), ((20, 20), "at least 32"), ((640, 40), "aspect ratio")],
)
def test_tiny_or_elongated_images_are_invalid(size: tuple[int, int], match: str) -> None:
    data = encode(Image.new("RGB", size, (50, 60, 70)), "PNG")
    with pytest.raises(InvalidImage, match=match):
        decode_image(data, **LIMITS)


def test_aspect_limit_is_configurable() -> None:
    data = encode(Image.new("RGB", (640, 40), (50, 60, 70)), "PNG")
    assert_bgr(decode_image(data, **LIMITS, max_aspect=16.0), 40, 640)


# --- accepted images and mode conversion ---------------------------------------------------


def test_real_lfw_jpeg_matches_opencv() -> None:
    decoded = decode_image(lfw_bytes("Ben_Curtis", 1), **LIMITS)
    assert_bgr(decoded, 250, 250)
    reference = lfw_image("Ben_Curtis", 1).astype(np.int16)
    # libjpeg builds may differ in IDCT rounding only.
    assert np.abs(decoded.astype(np.int16) - reference).mean() < 1.0


def test_exif_rotated_jpeg_decodes_upright() -> None:
    upright = Image.open(io.BytesIO(lfw_bytes("George_Brumley", 1)))
    upright.load()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # sensor data lies on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    decoded = decode_image(data, **LIMITS)
    assert_bgr(decoded, 250, 250)
    reference = lfw_image("George_Brumley", 1).astype(np.int16)
    assert np.abs(decoded.astype(np.int16) - reference).mean() < 4.0
    sideways = np.ascontiguousarray(np.rot90(reference))
    assert np.abs(decoded.astype(np.int16) - sideways).mean() > 20.0


def test_exif_orientation_on_a_non_square_image() -> None:
    upright = Image.new("RGB", (120, 60), (255, 0, 0))
    upright.paste((0, 0, 255), (0, 30, 120, 60))  # top red, bottom blue
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "PNG", exif=exif.tobytes())
    decoded = decode_image(data, **LIMITS)
    assert_bgr(decoded, 60, 120)
    assert tuple(decoded[5, 60]) == (0, 0, 255)  # red on top (BGR)
    assert tuple(decoded[55, 60]) == (255, 0, 0)  # blue at the bottom


# What each EXIF orientation does to the upright picture when it is stored (its inverse
# turns it back): the camera writes the stored pixels and the tag that undoes them.
_STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", sorted(_STORED_AS))
@pytest.mark.parametrize("max_side", [None, 200])
def test_every_exif_orientation_decodes_upright(
    orientation: int, fmt: str, max_side: int | None
) -> None:
    upright = Image.new("RGB", (400, 240), (255, 0, 0))  # red top left
    upright.paste((0, 255, 0), (200, 0, 400, 120))  # green top right
    upright.paste((0, 0, 255), (0, 120, 200, 240))  # blue bottom left
    upright.paste((255, 255, 255), (200, 120, 400, 240))  # white bottom right
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"exif": exif.tobytes()}
    if fmt != "PNG":
        params["quality"] = 95
    data = encode(upright.transpose(_STORED_AS[orientation]), fmt, **params)

    decoded = decode_image_within(data, **LIMITS, max_side=max_side)
    assert (decoded.original_width, decoded.original_height) == (400, 240)
    height, width = (240, 400) if max_side is None else (120, 200)
    assert_bgr(decoded.pixels, height, width)
    quadrants = {
        (height // 4, width // 4): (0, 0, 255),
        (height // 4, 3 * width // 4): (0, 255, 0),
        (3 * height // 4, width // 4): (255, 0, 0),
        (3 * height // 4, 3 * width // 4): (255, 255, 255),
    }
    for (row, col), bgr in quadrants.items():
        assert np.abs(decoded.pixels[row, col].astype(int) - bgr).max() < 16, (row, col)


def test_png_with_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 32, 64))
    decoded = decode_image(encode(rgba, "PNG"), **LIMITS)
    assert_bgr(decoded, 64, 64)
    assert tuple(decoded[10, 10]) == (0, 0, 255)
    assert tuple(decoded[10, 50]) == (255, 255, 255)


def test_palette_png_with_transparency() -> None:
    indices = np.zeros((48, 48), dtype=np.uint8)
    indices[:, :24] = 1
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    palette.info["transparency"] = 0  # palette index 0 is fully transparent
    data = encode(palette, "PNG")
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
    decoded = decode_image(data, **LIMITS)
    assert tuple(decoded[5, 5]) == (0, 255, 0)
    assert tuple(decoded[5, 40]) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_grayscale_becomes_three_equal_channels(fmt: str) -> None:
    grey = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (40, 1)), mode="L")
    decoded = decode_image(
        encode(grey, fmt, **({"lossless": True} if fmt == "WEBP" else {})), **LIMITS
    )
    assert_bgr(decoded, 40, 64)
    assert np.array_equal(decoded[..., 0], decoded[..., 1])
    assert np.array_equal(decoded[..., 1], decoded[..., 2])


def test_grey_with_alpha() -> None:
    la = Image.new("LA", (40, 40), (100, 255))
    decoded = decode_image(encode(la, "PNG"), **LIMITS)
    assert tuple(decoded[0, 0]) == (100, 100, 100)


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    values = np.zeros((40, 40), dtype=np.uint16)
    values[:, :20] = 65535
    values[:, 20:] = 32896  # 128 * 257
    decoded = decode_image(encode(Image.fromarray(values), "PNG"), **LIMITS)
    assert_bgr(decoded, 40, 40)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 30]) == (128, 128, 128)


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (48, 48), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(encode(cmyk, "JPEG", quality=95), **LIMITS)
    assert_bgr(decoded, 48, 48)
    blue, green, red = (int(c) for c in decoded[24, 24])
    assert red > 200 and green < 60 and blue < 60


def test_lossless_webp_round_trips_exactly() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    decoded = decode_image(encode(Image.fromarray(rgb), "WEBP", lossless=True), **LIMITS)
    assert np.array_equal(decoded, rgb[:, :, ::-1])


def test_lossy_webp_of_a_real_face() -> None:
    upright = Image.open(io.BytesIO(lfw_bytes("Ben_Curtis", 1))).convert("RGB")
    decoded = decode_image(encode(upright, "WEBP", quality=90), **LIMITS)
    reference = lfw_image("Ben_Curtis", 1).astype(np.int16)
    assert np.abs(decoded.astype(np.int16) - reference).mean() < 4.0


def test_check_bgr_image() -> None:
    check_bgr_image(np.zeros((8, 8, 3), np.uint8))
    # Typed as any array: refusing the wrong ones is what the check is for.
    bad_images: tuple[np.ndarray, ...] = (
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 3), np.float32),
        np.zeros((0, 8, 3), np.uint8),
    )
    for bad in bad_images:
        with pytest.raises(InvalidImage):
            check_bgr_image(bad)


# --- shrinking large images while decoding ----------------------------------------------


def upscaled_face(fmt: str, factor: int, **params: object) -> tuple[bytes, np.ndarray]:
    """A real LFW face blown up ``factor`` times (a large photo), and the 250 px original."""
    original = Image.open(io.BytesIO(lfw_bytes("Ben_Curtis", 1))).convert("RGB")
    big = original.resize((250 * factor, 250 * factor), Image.Resampling.BICUBIC)
    return encode(big, fmt, **params), lfw_image("Ben_Curtis", 1).astype(np.int16)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_image_is_shrunk_to_the_working_side(fmt: str) -> None:
    data, reference = upscaled_face(fmt, 8, **({"quality": 95} if fmt == "JPEG" else {}))
    decoded = decode_image_within(data, **LIMITS, max_side=250)
    assert (decoded.original_width, decoded.original_height) == (2000, 2000)
    assert_bgr(decoded.pixels, 250, 250)
    assert decoded.scale == pytest.approx(0.125)
    # area-averaged back to the original's size: close to the original picture
    assert np.abs(decoded.pixels.astype(np.int16) - reference).mean() < 6.0


def test_shrinking_keeps_the_aspect_and_exif_orientation() -> None:
    upright = Image.new("RGB", (1200, 600), (255, 0, 0))
    upright.paste((0, 0, 255), (0, 300, 1200, 600))  # top red, bottom blue
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    for data in (
        encode(stored, "JPEG", quality=95, exif=exif.tobytes()),
        encode(stored, "PNG", exif=exif.tobytes()),
    ):
        decoded = decode_image_within(data, **LIMITS, max_side=300)
        assert (decoded.original_width, decoded.original_height) == (1200, 600)
        assert_bgr(decoded.pixels, 150, 300)
        assert np.abs(decoded.pixels[20, 150].astype(int) - (0, 0, 255)).max() < 8  # red on top
        assert np.abs(decoded.pixels[130, 150].astype(int) - (255, 0, 0)).max() < 8


def test_an_image_within_the_working_side_is_untouched() -> None:
    data = lfw_bytes("Ben_Curtis", 1)
    decoded = decode_image_within(data, **LIMITS, max_side=250)
    assert decoded.scale == 1.0
    assert np.array_equal(decoded.pixels, decode_image(data, **LIMITS))


def test_limits_apply_to_the_image_as_sent_not_the_shrunk_one() -> None:
    with pytest.raises(TooLarge, match="limit is 1000000 pixels"):
        decode_image_within(
            png_header_only(2000, 2000), max_bytes=5_000_000, max_pixels=1_000_000, max_side=256
        )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_huge_image_is_never_copied_into_numpy_at_full_size(fmt: str) -> None:
    """A 40-megapixel photo shrunk while decoding: a JPEG is decoded at a reduced DCT scale,
    a PNG box-reduced inside Pillow before any array is made."""
    import tracemalloc

    data = encode(Image.new("RGB", (6400, 6400), (90, 120, 200)), fmt)
    tracemalloc.start()  # traces numpy's allocations (not Pillow's own buffers)
    try:
        decoded = decode_image_within(
            data, max_bytes=50_000_000, max_pixels=41_000_000, max_side=2048
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_bgr(decoded.pixels, 2048, 2048)
    assert (decoded.original_width, decoded.original_height) == (6400, 6400)
    assert int(decoded.pixels[1000, 1000, 0]) == 200  # BGR
    # At full size the RGB and BGR arrays alone would take two full canvases.
    full_canvas = 6400 * 6400 * 3
    assert peak < full_canvas / 2
