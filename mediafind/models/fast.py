"""The CPU fast path: model towers run by ONNX Runtime, converted from the same weights.

torch is the source of every model and what runs it on GPUs. On the CPU,
ONNX Runtime runs the same towers about twice as fast and is ready in a few
hundredths of a second, where importing torch alone takes a second. So each
model is converted once, on first use on the CPU, into a folder under the
cache (`cache_root()`): one ONNX graph per tower, its weights in a separate
file that ONNX Runtime maps into memory instead of reading, and a manifest
naming the weight files it came from (path, size, modification time). A
folder whose weights changed is rebuilt. A conversion is kept only when its
embeddings agree with torch's on varied inputs (`MIN_AGREEMENT`); when
anything fails the caller goes on with torch, never with an error.

The int8 precision is ONNX Runtime's dynamic quantisation of the same graphs:
about twice as fast again, a little less faithful (its agreement is recorded
in the manifest), so it is opt-in and remembered per index.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediafind.config import cache_root, usable_cores

if TYPE_CHECKING:
    import numpy as np

# Bump when what a folder holds changes shape: older folders are then rebuilt.
FORMAT = 1
MANIFEST = "manifest.json"
FAILED = "failed.json"
BUILDING = ".building-"
# Cosine between torch's and ONNX Runtime's embeddings of the same input.
MIN_AGREEMENT = 0.999
# Quantised towers agree less (0.9998 measured on random weights); below this
# the int8 conversion is refused rather than silently worse.
MIN_INT8_AGREEMENT = 0.98
PRECISIONS = ("fp32", "int8")
# The towers' output; not "embedding", a name the dynamo exporter uses inside.
OUTPUT = "unit_embedding"


class ConversionError(Exception):
    """A model could not be converted; the caller falls back to torch."""


def folder_for(key: str, precision: str) -> Path:
    digest = hashlib.blake2b(f"{FORMAT}|{key}|{precision}".encode(), digest_size=12)
    return cache_root() / digest.hexdigest()


def stamp(path: Path) -> dict[str, Any]:
    info = path.stat()
    return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _read_record(folder: Path, name: str, key: str, precision: str) -> dict[str, Any] | None:
    """A record of `folder` that is about `key` and whose weights are unchanged."""
    try:
        record = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("format") != FORMAT
        or record.get("key") != key
        or record.get("precision") != precision
    ):
        return None
    for recorded in record.get("weights", []):
        try:
            if stamp(Path(recorded["path"])) != recorded:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return record


def load_manifest(key: str, precision: str) -> tuple[Path, dict[str, Any]] | None:
    """The converted folder for `key`, if one exists and its weights are unchanged."""
    folder = folder_for(key, precision)
    manifest = _read_record(folder, MANIFEST, key, precision)
    return None if manifest is None else (folder, manifest)


def known_failure(key: str, precision: str) -> str | None:
    """Why converting `key` failed before, if it did with these same weights and
    this same ONNX Runtime: a model that cannot be converted is not retried on
    every run (a conversion takes seconds)."""
    record = _read_record(folder_for(key, precision), FAILED, key, precision)
    if record is None or record.get("onnxruntime") != _onnxruntime_version():
        return None
    return str(record.get("reason", "unknown reason"))


def build(
    key: str,
    precision: str,
    weights: Sequence[Path],
    convert: Callable[[Path], dict[str, Any]],
) -> tuple[Path, dict[str, Any]]:
    """Run `convert(work_folder)` and install its result as `key`'s folder.

    The folder appears whole or not at all (built aside, then renamed), so an
    interrupted conversion leaves nothing half-made; two processes converting
    at once each finish, and one of the results is kept. A failure is
    recorded (`known_failure`) and raised as ConversionError.
    """
    target = folder_for(key, precision)
    record = {"format": FORMAT, "key": key, "precision": precision}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target.parent)
        work = Path(tempfile.mkdtemp(prefix=BUILDING, dir=target.parent))
    except OSError as error:
        raise ConversionError(f"cannot write to {target.parent}: {error}") from error
    try:
        record.update(weights=[stamp(path) for path in weights], onnxruntime=_onnxruntime_version())
        manifest = convert(work)
        manifest.update(record)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)
        except OSError:
            if load_manifest(key, precision) is None:
                raise
    except Exception as error:
        reason = (
            str(error)
            if isinstance(error, ConversionError)
            else (f"{error.__class__.__name__}: {error}")
        )
        # A full disk or a permission passes; a model that will not convert stays so.
        if not isinstance(error, OSError):
            _record_failure(target, {**record, "reason": reason})
        raise ConversionError(reason) from error
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, manifest


def _remove_abandoned(root: Path) -> None:
    """Folders left by conversions that were killed (not interrupted: those
    clean up), once they are a day old: each can hold a model's weights."""
    import time

    for folder in root.glob(BUILDING + "*"):
        try:
            if time.time() - folder.stat().st_mtime > 86_400:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _record_failure(folder: Path, record: dict[str, Any]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILED).write_text(json.dumps(record, indent=1), encoding="utf-8")
    except OSError:
        pass  # not remembered: the next run tries again


def _onnxruntime_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def export(
    module: Any,
    inputs: tuple[Any, ...],
    path: Path,
    input_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    *,
    dynamo: bool = False,
) -> None:
    """Export a torch module to `path`, its weights beside it in `path`.data.

    The weights live in their own file so that ONNX Runtime maps them into
    memory when a session opens rather than parsing them: a text tower opens
    in hundredths of a second that way. The TorchScript-based exporter is the
    default: one step, and its image tower measured a tenth faster here than
    the dynamo exporter's; `dynamo` is for graphs whose sequence length must
    stay free (the tracer bakes it into reshapes).
    """
    import onnx
    import torch

    raw = path.with_suffix(".raw.onnx")
    # With gradients off, torch swaps in fused attention kernels that the
    # exporter cannot translate.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")
        names: dict[str, Any] = {"input_names": list(input_names), "output_names": [OUTPUT]}
        if dynamo:
            dims: dict[str, Any] = {}
            shapes = tuple(
                {
                    axis: dims.setdefault(name, torch.export.Dim(name, min=2))
                    for axis, name in dynamic_axes.get(input_name, {}).items()
                }
                for input_name in input_names
            )
            # Its progress lines go to stdout, which may be a --json answer.
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    module,
                    inputs,
                    str(raw),
                    dynamic_shapes=shapes,
                    dynamo=True,
                    verbose=False,
                    **names,
                )
        else:
            axes = {**dynamic_axes, OUTPUT: {0: "batch"}}
            torch.onnx.export(
                module, inputs, str(raw), dynamic_axes=axes, opset_version=17, dynamo=False, **names
            )
    _save_external(onnx.load(str(raw)), path)
    for leftover in path.parent.glob(raw.name + "*"):
        leftover.unlink()


def _save_external(model: Any, path: Path) -> None:
    import onnx

    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=1024,
    )


def export_path(folder: Path, tower: str, precision: str) -> Path:
    """Where to export a tower: its final name, or a full-precision copy that
    `finish` quantises into the final name."""
    return folder / (f"{tower}.fp32.onnx" if precision == "int8" else f"{tower}.onnx")


def finish(exported: Sequence[Path], precision: str) -> None:
    """Quantise the towers exported for an int8 conversion (fp32: nothing to do)."""
    if precision != "int8":
        return
    for path in exported:
        quantize(path, path.with_name(path.name.replace(".fp32", "")))
        path.unlink()
        path.with_name(path.name + ".data").unlink()


def quantize(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of `source`'s weights."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    packed = target.with_suffix(".q.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(source), str(packed), weight_type=QuantType.QInt8)
    _save_external(onnx.load(str(packed)), target)
    packed.unlink()


def session(path: Path, *, quick_start: bool, threads: int = 0) -> Any:
    """An ONNX Runtime session on the CPU (`threads` 0: one per core).

    `quick_start` skips repacking the weights for faster matrix products:
    right for a query that runs the tower once (opens in ~0.03 s instead of
    ~0.15 s), wrong for indexing, which runs it thousands of times.
    """
    import onnxruntime

    # Failures reach us as exceptions; ONNX Runtime would also print them.
    onnxruntime.set_default_logger_severity(3)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    if quick_start:
        options.add_session_config_entry("session.disable_prepacking", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Converted:
    """What every converted model has: its folder, manifest, dimension, and a
    text tower opened for one quick query (`text_session`); media towers are
    opened for throughput (`tower`)."""

    # The tower that embeds media ("image", "audio"): what indexing runs.
    media_tower = ""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.dim = int(manifest["dim"])
        self._lock = threading.Lock()
        self._text: Any = None
        self._towers: dict[str, ParallelTower] = {}

    def text_session(self) -> Any:
        with self._lock:
            if self._text is None:
                self._text = session(self.folder / "text.onnx", quick_start=True)
            return self._text

    def open_media(self) -> None:
        """Open the media tower now rather than on the first batch."""
        self.tower(self.media_tower)

    def tower(self, name: str) -> ParallelTower:
        with self._lock:
            if name not in self._towers:
                self._towers[name] = ParallelTower(self.folder / f"{name}.onnx")
            return self._towers[name]


class ParallelTower:
    """A tower run for throughput: a batch is split between threads, each
    running a single-threaded session (they release the GIL).

    One session spread over every core waits at a barrier after each
    operation, and while indexing, the threads decoding the next photos keep
    preempting one of its threads; independent runs do not wait for each
    other. Measured on 2 cores: 34.6 images/s against 31.8 for one
    two-threaded run, alone, and more when decoding shares the cores.
    """

    @staticmethod
    def workers_here() -> int:
        return min(8, usable_cores())

    def __init__(self, path: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.workers = self.workers_here()
        self._session = session(path, quick_start=False, threads=1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mediafind-tower")

    def __call__(self, feeds: dict[str, Any]) -> np.ndarray:
        import numpy as np

        rows = len(next(iter(feeds.values())))
        parts = min(self.workers, rows)
        bounds = [rows * part // parts for part in range(parts + 1)]
        chunks = [
            {name: value[start:end] for name, value in feeds.items()}
            for start, end in itertools.pairwise(bounds)
        ]
        if len(chunks) == 1:
            return run(self._session, chunks[0])
        return np.concatenate(list(self._pool.map(lambda c: run(self._session, c), chunks)))


def run(session_: Any, feeds: dict[str, Any]) -> np.ndarray:
    """The tower's unit-length embeddings for one batch, as float32 rows."""
    import numpy as np

    wanted = {item.name for item in session_.get_inputs()}
    output = session_.run([OUTPUT], {k: v for k, v in feeds.items() if k in wanted})[0]
    output = np.asarray(output, dtype=np.float32)
    return output / np.maximum(np.linalg.norm(output, axis=1, keepdims=True), 1e-12)


def agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The worst cosine between matching rows of two sets of embeddings."""
    import numpy as np

    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    candidate = candidate / np.linalg.norm(candidate, axis=1, keepdims=True)
    return float(np.min(np.sum(reference * candidate, axis=1)))


def check_agreement(tower: str, value: float, precision: str) -> None:
    floor = MIN_INT8_AGREEMENT if precision == "int8" else MIN_AGREEMENT
    if value < floor:
        raise ConversionError(
            f"the {precision} {tower} tower agrees with torch only to cosine {value:.4f} "
            f"(needs {floor})"
        )


def gpu_likely() -> bool:
    """Whether this machine may have a GPU torch can use, asked without importing
    torch (a second of start-up): Linux GPU device nodes, or Apple silicon."""
    if sys.platform == "darwin":
        import platform

        return platform.machine() == "arm64"
    return any(os.path.exists(node) for node in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg"))
