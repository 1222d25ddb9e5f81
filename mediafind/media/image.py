"""Photos: decode, honour EXIF orientation, and hand a small RGB image to a model."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediafind.errors import MediaError
from mediafind.media.capture import exif_capture_time

if TYPE_CHECKING:
    from PIL.Image import Image

# EXIF orientations 5 to 8 turn the picture by 90 degrees, swapping width and height.
_SWAPS_AXES = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112
_heif_registered = False


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
    from PIL import Image, ImageOps, UnidentifiedImageError

    _register_heif()
    try:
        if os.path.getsize(path) == 0:
            raise MediaError("empty file (0 bytes)")
        with warnings.catch_warnings():
            # Panoramas between Pillow's warning and error limits are real photos.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if width <= 0 or height <= 0:
                    raise MediaError(f"image has no pixels ({width}x{height})")
                exif = opened.getexif()
                orientation = exif.get(_ORIENTATION_TAG, 1)
                captured_at = exif_capture_time(exif)
                if opened.format == "JPEG":
                    opened.draft("RGB", (min_side, min_side))
                opened.load()
                upright = ImageOps.exif_transpose(opened)
                rgb = upright.convert("RGB")
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
