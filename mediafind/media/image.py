"""Photos: decode, honour EXIF orientation, and hand a small RGB image to a model."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediafind.errors import MediaError
from mediafind.hashing import open_regular
from mediafind.media.capture import exif_capture_time

if TYPE_CHECKING:
    from PIL.Image import Image

# EXIF orientations 5 to 8 turn the picture by 90 degrees, swapping width and height.
_SWAPS_AXES = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112
_heif_registered = False

# The most pixels decoded for one picture, after JPEG's reduced decoding (so
# any JPEG passes: a 400-megapixel one decodes at an eighth of its width). A
# PNG of 13000x13000 is a few hundred KB of flat colour but needs 2 GB to
# decode; this many pixels need at most ~200 MB (RGBA), and larger pictures are
# skipped with a warning (README). 50 megapixels covers 8K screenshots and
# stitched panoramas saved as PNG or TIFF.
MAX_DECODED_PIXELS = 50_000_000
# Pictures above this many decoded pixels are decoded one at a time, so that
# several decoding threads never hold several of them at once.
_LARGE_PIXELS = 16_000_000
_large_decodes = threading.BoundedSemaphore(1)


@dataclass
class DecodedImage:
    image: Image
    width: int
    height: int
    captured_at: float | None = None


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif
        except ImportError:
            pass
        else:
            pillow_heif.register_heif_opener()
        _heif_registered = True


def load_image(path: str, min_side: int) -> DecodedImage:
    """Decode `path` upright, in RGB, no smaller than `min_side` on its short side
    (when the original is that large).

    JPEGs use Pillow's draft mode, which lets libjpeg decode at 1/2, 1/4 or 1/8
    scale: a 12-megapixel photo is never fully decoded just to become 224 px.
    Raises MediaError with a reason a person can act on.
    """
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    try:
        with open_regular(path) as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise MediaError("empty file (0 bytes)")
            with warnings.catch_warnings():
                # Panoramas between Pillow's warning and error limits are real
                # photos; our own limit applies below.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(handle) as opened:
                    width, height = opened.size
                    if width <= 0 or height <= 0:
                        raise MediaError(f"image has no pixels ({width}x{height})")
                    exif = opened.getexif()
                    orientation = exif.get(_ORIENTATION_TAG, 1)
                    captured_at = exif_capture_time(exif)
                    if opened.format == "JPEG":
                        opened.draft("RGB", (min_side, min_side))
                    rgb = _decode_upright(opened)
    except MediaError:
        raise
    except Image.DecompressionBombError as error:
        raise MediaError(f"image too large to decode safely ({error})") from error
    except UnidentifiedImageError as error:
        raise MediaError("not a readable image (corrupt, or the extension is wrong)") from error
    except FileNotFoundError as error:
        raise MediaError("file disappeared while indexing") from error
    except PermissionError as error:
        raise MediaError("permission denied") from error
    except OSError as error:
        reason = str(error) or error.__class__.__name__
        if "truncated" in reason:
            reason = "truncated image (the file ends early)"
        raise MediaError(reason) from error
    except (ValueError, SyntaxError, EOFError) as error:
        # Pillow's plugins raise these on malformed headers.
        raise MediaError(f"corrupt image ({error})") from error
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return DecodedImage(rgb, width, height, captured_at)


def _decode_upright(opened: Image) -> Image:
    """Decode an opened picture, upright and in RGB, within the pixel limit."""
    from PIL import ImageOps

    decoded_width, decoded_height = opened.size  # after any reduced decoding
    pixels = decoded_width * decoded_height
    if pixels > MAX_DECODED_PIXELS:
        raise MediaError(
            f"image too large to decode ({decoded_width}x{decoded_height}, "
            f"{pixels / 1e6:.0f} megapixels; mediafind decodes up to "
            f"{MAX_DECODED_PIXELS / 1e6:.0f})"
        )
    with _large_decodes if pixels > _LARGE_PIXELS else contextlib.nullcontext():
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        return upright.convert("RGB")
