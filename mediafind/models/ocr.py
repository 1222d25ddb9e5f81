"""What is written: text in photos and video frames, read with RapidOCR.

RapidOCR runs PaddleOCR's models on ONNX Runtime: a detector that finds
lines of text, an orientation classifier that turns upside-down lines, and a
recogniser that reads each line. Its wheel ships the PP-OCRv4 models (Latin
script and Chinese), so reading works offline with nothing to download;
rapidocr_onnxruntime is imported only when text is read.

Reading is the dearest thing mediafind does to a photo (a second or two for
a full page on one core), and most photos show no text. So a picture is
first *gated*: the detector alone runs on a small copy (800 pixels on the
long side, about a tenth of the work); a picture in which it finds no line
is done. Where it finds lines, the biggest few are read first, and a
picture whose biggest lines hold no word (a fence, a tiled floor, foliage:
shapes the detector takes for text) is done too. Only then is every line
read, from the full-size picture, within a bounded amount of work, so a
page of thousands of tiny glyphs costs a few seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.config import Choice
from mediafind.errors import (
    DeviceError,
    MediafindError,
    ModelUnavailableError,
    UsageError,
    one_line,
)
from mediafind.hashing import weights_fingerprint
from mediafind.models.common import ChosenModel

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

# The models in RapidOCR's wheel: PP-OCRv4 detection and recognition (Latin
# script and Chinese), and the mobile orientation classifier.
BUNDLED = "PP-OCRv4"
# What a local model folder holds (README: Offline use, Other scripts).
REC_FILE = "rec.onnx"
DICT_FILE = "dict.txt"
DET_FILE = "det.onnx"
CLS_FILE = "cls.onnx"
# Raised when the gate or the reading changes, so that an index read the old
# way is read again (the words depend on it as much as on the weights).
READING_VERSION = 1

# The gate's picture: the long side in pixels. Signs, screens and documents
# that a person would photograph for their words show at this size; at 640,
# small captions on busy backgrounds were missed (bench/README.md).
GATE_SIDE = 800
# The detector's thresholds, below RapidOCR's defaults (0.3 and 0.5) so that
# faint text passes the gate: what is not text is caught by the probe.
DET_THRESHOLD = 0.2
DET_BOX_THRESHOLD = 0.3
# The reading picture's long side: enough for a receipt photographed whole.
READ_SIDE = 1600
# At most this many lines are read from one picture, biggest first...
MAX_LINES = 80
# ...and at most this much recogniser work (columns of the 48-pixel-high line
# images it reads, weighted for the attention over long lines): a full
# screenshot is well within it, a page of tiny glyphs is cut at it.
READ_BUDGET = 12_000
# Lines read first, to tell text from shapes that look like it.
PROBE_LINES = 6
PROBE_COLUMNS = 640
# A line is kept when the recogniser is this sure of it and it holds a letter
# or a digit; a probe line counts as text with a word of two characters.
LINE_SCORE = 0.5
WORD_SCORE = 0.6
_WORD = re.compile(r"[^\W_]{2,}")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class TextBlock:
    """A line, or lines read together (a paragraph, a sign), with where it is:
    (left, top, right, bottom) as fractions of the picture's width and height."""

    text: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrModelSpec:
    text: str
    folder: str | None  # None: the models in RapidOCR's wheel


def parse_ocr_spec(text: str) -> OcrModelSpec:
    """PP-OCRv4 (the bundled models) or a model folder (local-dir:PATH, or a
    path). Raises ValueError."""
    text = text.strip()
    if text == BUNDLED:
        return OcrModelSpec(text, None)
    raw = text.removeprefix("local-dir:")
    if not raw:
        raise ValueError(f"expected {BUNDLED} or a model folder")
    folder = Path(raw).expanduser()
    bare_name = raw == text and not raw.startswith(("/", "~", ".")) and "/" not in raw
    if bare_name and not folder.is_dir():
        raise ValueError(
            f"expected {BUNDLED} (the models RapidOCR ships) or a model folder (local-dir:PATH)"
        )
    return OcrModelSpec(text, str(folder.absolute()))


def folder_problem(folder: Path) -> str | None:
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not (folder / REC_FILE).is_file():
        return (
            f"the folder {folder} lacks {REC_FILE} (a text model folder holds a "
            f"recogniser {REC_FILE}, its characters {DICT_FILE}, and optionally "
            f"{DET_FILE} and {CLS_FILE})"
        )
    return None


class OcrReader(ChosenModel):
    """A RapidOCR engine, loaded on first use, shared by the worker threads."""

    what = "text model"
    argument = "text_model"
    hint_arguments = ("text_model", "no_text")
    dim = 0  # words, not vectors
    batch_size = 1

    def __init__(self, choice: Choice | str, device: str = "auto", precision: str = "fp32") -> None:
        super().__init__(choice, device, precision)
        self._engine: Any = None
        try:
            self.spec = parse_ocr_spec(self.choice.value)
        except ValueError as error:
            raise self.error(str(error), UsageError) from None

    def _files(self) -> dict[str, Path]:
        """The detector, classifier and recogniser (and its characters, if
        given) this reader uses."""
        bundled = _bundled_models()
        if self.spec.folder is None:
            return bundled
        folder = Path(self.spec.folder)
        files = {"rec": folder / REC_FILE}
        for role, name in (("det", DET_FILE), ("cls", CLS_FILE), ("dict", DICT_FILE)):
            if (folder / name).is_file():
                files[role] = folder / name
            elif role in bundled:
                files[role] = bundled[role]
        return files

    @property
    def key(self) -> str:
        """Words read by other models, or read another way, are never mixed."""
        problem = self.problem()
        if problem is not None:
            raise problem
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"reading {READING_VERSION}".encode())
        for role, path in sorted(self._files().items()):
            digest.update(role.encode())
            digest.update(weights_fingerprint(path).encode())
        return f"ocr:{digest.hexdigest()}"

    def problem(self) -> MediafindError | None:
        if self.spec.folder is None:
            try:
                _bundled_models()
            except MediafindError as error:
                return error
            return None
        found = folder_problem(Path(self.spec.folder))
        if found is None:
            return None
        if self.choice.source == "index" and not Path(self.spec.folder).is_dir():
            return ModelUnavailableError(
                f"the index's {self.what} folder {self.spec.folder} no longer exists; if it "
                "moved, point at its new place with {text_model} NEW-FOLDER, or leave text "
                "out with {no_text}",
                arguments=("text_model", "no_text"),
            )
        return self.error(
            f"{found}; give {{text_model}} {BUNDLED} or such a folder, or leave text out "
            "with {no_text} (README: Offline use)"
        )

    def prepare(self) -> None:
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = self._create()
            return self._engine

    def _create(self) -> Any:
        device = self.device_name
        if device.startswith("cuda"):
            # RapidOCR's CUDA path needs onnxruntime-gpu, which would replace
            # the CPU build the other models use.
            raise DeviceError(
                f"{{device}} {device}: text is read on the CPU (ONNX Runtime's CPU build); "
                "use auto or cpu, or leave text out with {no_text}",
                arguments=("device", "no_text"),
            )
        if device not in ("auto", "cpu", "mps"):
            raise UsageError(
                f"{{device}} {device!r}: expected auto, cpu, cuda or mps", arguments=("device",)
            )
        problem = self.problem()
        if problem is not None:
            raise problem
        files = self._files()
        # RapidOCR logs each engine it starts; mediafind says what ran itself.
        for name in ("RapidOCR", "OrtInferSession"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            from rapidocr_onnxruntime import RapidOCR

            settings: dict[str, Any] = {
                # One thread per picture: the pipeline reads several at once.
                "intra_op_num_threads": 1,
                "inter_op_num_threads": 1,
                "det_model_path": str(files["det"]),
                "cls_model_path": str(files["cls"]),
                "rec_model_path": str(files["rec"]),
                "det_limit_type": "max",
                "det_thresh": DET_THRESHOLD,
                "det_box_thresh": DET_BOX_THRESHOLD,
                "text_score": LINE_SCORE,
            }
            if "dict" in files:
                settings["rec_keys_path"] = str(files["dict"])
            engine = RapidOCR(**settings)
            # The recogniser's line height, as its model declares it.
            height = engine.text_rec.session.session.get_inputs()[0].shape[2]
            if isinstance(height, int) and height > 0:
                engine.text_rec.rec_image_shape = [3, height, 320]
        except MediafindError:
            raise
        except ImportError as error:
            # OpenCV's desktop build needs libGL, which servers often lack.
            hint = (
                "; install it (sudo apt-get install libgl1) or use OpenCV's headless build "
                "(pip install opencv-python-headless)"
                if "libGL" in str(error)
                else ""
            )
            raise self.error(
                f"cannot load it: {one_line(error)}{hint}, or leave text out with {{no_text}}"
            ) from error
        except Exception as error:
            raise self.error(f"cannot load it: {one_line(error)}") from error
        self.notes.append(f"{self.name} ran on ONNX Runtime (CPU)")
        return engine

    def text_lines(self, image: Image) -> list[np.ndarray] | None:
        """The gate: where the detector sees lines of text in a small copy of
        `image`, biggest first, as boxes (four corners) in fractions of its
        width and height; None when it sees none."""
        import numpy as np

        engine = self._load()
        small = _bgr(image, min(1.0, GATE_SIDE / max(image.size)))
        boxes, _ = engine.text_det(small)
        if boxes is None or len(boxes) == 0:
            return None
        size = np.array([small.shape[1], small.shape[0]], dtype=np.float32)
        found = [np.asarray(box, dtype=np.float32) / size for box in boxes]
        found.sort(key=_area, reverse=True)
        return found

    def read(self, image: Image, lines: Sequence[np.ndarray]) -> list[TextBlock]:
        """The text of `image` in the `lines` the gate found (in a copy of the
        same picture, of any size), grouped in blocks. Empty when the biggest
        lines hold no word."""
        import numpy as np

        engine = self._load()
        full = _bgr(image, min(1.0, READ_SIDE / max(image.size)))
        height, width = full.shape[:2]
        boxes = [_fit(box, full) for box in list(lines)[:MAX_LINES]]
        crops = engine.get_crop_img_list(full, boxes)
        probe = [_clip_columns(crop, PROBE_COLUMNS) for crop in crops[:PROBE_LINES]]
        if not any(_is_word(text, score) for text, score in _recognise(engine, probe)):
            return []
        chosen: list[int] = []
        spent = 0.0
        for index, crop in enumerate(crops):
            cost = _cost(crop)
            if spent + cost > READ_BUDGET and chosen:
                break
            chosen.append(index)
            spent += cost
        texts = _recognise(engine, [crops[i] for i in chosen])
        found = []
        for index, (text, score) in zip(chosen, texts, strict=True):
            text = " ".join(text.split())
            if score >= LINE_SCORE and _LETTER_OR_DIGIT.search(text):
                box = boxes[index]
                found.append(_Line(text, box, float(np.linalg.norm(box[0] - box[3]))))
        return group_lines(found, width, height)


def _bundled_models() -> dict[str, Path]:
    """The model files in RapidOCR's wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            "reading text needs rapidocr_onnxruntime, which is not installed; install "
            "mediafind again (pip install mediafind), or leave text out with {no_text}",
            arguments=("no_text",),
        )
    models = Path(spec.origin).parent / "models"
    files = {
        "det": models / "ch_PP-OCRv4_det_infer.onnx",
        "cls": models / "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "rec": models / "ch_PP-OCRv4_rec_infer.onnx",
    }
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        raise ModelUnavailableError(
            f"the installed rapidocr_onnxruntime lacks {', '.join(missing)}; reinstall it "
            "(pip install --force-reinstall rapidocr_onnxruntime), or leave text out with "
            "{no_text}",
            arguments=("no_text",),
        )
    return files


def _bgr(image: Image, scale: float) -> np.ndarray:
    """`image` scaled by `scale`, as the BGR array OpenCV-based RapidOCR reads."""
    import numpy as np

    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def _fit(box: np.ndarray, picture: np.ndarray) -> np.ndarray:
    """A box in fractions of a picture's size, in `picture`'s pixels."""
    import numpy as np

    height, width = picture.shape[:2]
    fitted = np.asarray(box, dtype=np.float32) * np.array([width, height], dtype=np.float32)
    fitted[:, 0] = fitted[:, 0].clip(0, width - 1)
    fitted[:, 1] = fitted[:, 1].clip(0, height - 1)
    return fitted


def _area(box: np.ndarray) -> float:
    import numpy as np

    return float(np.linalg.norm(box[0] - box[1]) * np.linalg.norm(box[0] - box[3]))


def _columns(crop: np.ndarray) -> float:
    """How wide the recogniser sees a line: its width at 48 pixels high."""
    height, width = crop.shape[:2]
    return 48.0 * width / max(height, 1)


def _cost(crop: np.ndarray) -> float:
    columns = _columns(crop)
    return columns * (1.0 + columns / 3000.0)


def _clip_columns(crop: np.ndarray, columns: int) -> np.ndarray:
    """The start of a line, at most `columns` wide as the recogniser sees it."""
    height = crop.shape[0]
    return crop[:, : max(1, round(columns * height / 48.0))]


def _recognise(engine: Any, crops: list[np.ndarray]) -> list[tuple[str, float]]:
    """Each crop's text and the recogniser's confidence, upside-down lines
    turned first."""
    if not crops:
        return []
    turned, _, _ = engine.text_cls(crops)
    results, _ = engine.text_rec(turned)
    return [(str(text), float(score)) for text, score, *_ in results]


def _is_word(text: str, score: float) -> bool:
    return score >= WORD_SCORE and _WORD.search(text) is not None


@dataclass
class _Line:
    text: str
    box: np.ndarray  # four corners, clockwise from top left
    height: float

    @property
    def left(self) -> float:
        return float(self.box[:, 0].min())

    @property
    def right(self) -> float:
        return float(self.box[:, 0].max())

    @property
    def top(self) -> float:
        return float(self.box[:, 1].min())

    @property
    def bottom(self) -> float:
        return float(self.box[:, 1].max())

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def angle(self) -> float:
        import math

        (x0, y0), (x1, y1) = self.box[0], self.box[1]
        return math.degrees(math.atan2(float(y1 - y0), float(x1 - x0)))


def _together(a: _Line, b: _Line) -> bool:
    """Whether two lines are read as one block: the same size of letters at
    the same slant, and either side by side on one row (a sign the detector
    split) or one under the other, close and aligned (a paragraph)."""
    small, big = sorted((a.height, b.height))
    if big > 1.6 * small or abs(a.angle - b.angle) > 10:
        return False
    size = big
    gap_x = max(a.left, b.left) - min(a.right, b.right)
    if abs(a.middle - b.middle) < 0.5 * size:
        return gap_x < 2.5 * size
    gap_y = max(a.top, b.top) - min(a.bottom, b.bottom)
    overlapping = gap_x < 0 or abs(a.left - b.left) < 1.5 * size
    return gap_y < 1.0 * size and overlapping


def group_lines(lines: Sequence[_Line], width: int, height: int) -> list[TextBlock]:
    """Lines grouped into blocks, in reading order (top to bottom, then left
    to right); a block's text has one row per line of it."""
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            if _together(lines[i], lines[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[_Line]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(root(i), []).append(line)
    blocks = []
    for members in groups.values():
        rows: list[list[_Line]] = []
        for line in sorted(members, key=lambda item: item.middle):
            if rows and abs(rows[-1][0].middle - line.middle) < 0.5 * line.height:
                rows[-1].append(line)
            else:
                rows.append([line])
        text = "\n".join(
            " ".join(item.text for item in sorted(row, key=lambda item: item.left)) for row in rows
        )
        box = (
            round(min(item.left for item in members) / width, 4),
            round(min(item.top for item in members) / height, 4),
            round(max(item.right for item in members) / width, 4),
            round(max(item.bottom for item in members) / height, 4),
        )
        blocks.append(TextBlock(text, box))
    blocks.sort(key=lambda block: (round(block.box[1], 2), block.box[0]))
    return blocks
