"""What every model loader needs: devices, the Hugging Face cache, error lines."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from mediafind.config import Choice
from mediafind.errors import (
    DeviceError,
    MediafindError,
    ModelUnavailableError,
    UsageError,
    one_line,
)
from mediafind.events import ModelPreparing, ModelReady

T = TypeVar("T")
if TYPE_CHECKING:
    import numpy as np


class Runner(Protocol):
    """What runs a model's towers: torch, or ONNX Runtime on the fast path."""

    @property
    def dim(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


Loaded = TypeVar("Loaded", bound=Runner)
Converted = TypeVar("Converted", bound=Runner)


class ChosenModel:
    """A model as the user chose it (an option, a setting, the index's, the
    default): named in messages by how it was chosen, told what its slow
    steps are, loaded once even from several threads."""

    # How messages name the model ("the index's picture model X"), the library
    # argument that chooses it, and what to do when it cannot be had (may name
    # other arguments in braces: `hint_arguments`).
    what = "model"
    argument = "model"
    missing_hint = ""
    hint_arguments: tuple[str, ...] = ()

    def __init__(self, choice: Choice | str, device: str, precision: str = "fp32") -> None:
        self.choice = choice if isinstance(choice, Choice) else Choice(choice, "option")
        self.device_name = device
        self.precision = precision
        # What a --verbose run tells: conversions made, fallbacks taken.
        self.notes: list[str] = []
        # Told at once when something slow starts and ends (a conversion for
        # this CPU): a silent pause of a minute would look like a hang.
        self.on_prepare: Callable[[ModelPreparing | ModelReady], None] = lambda event: None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.choice.value

    @property
    def subject(self) -> str:
        """The model as a message names it: what the user did to choose it."""
        return self.choice.described(self.what)

    def error(
        self, text: str, kind: type[MediafindError] = ModelUnavailableError
    ) -> MediafindError:
        """An error about this model, naming how it was chosen."""
        return kind(
            f"{self.subject}: {text}", argument=self.argument, arguments=self.hint_arguments
        )


class LazyModel(ChosenModel, Generic[Loaded, Converted]):
    """A model whose weights load on first use, once, even from several threads.

    Two ways to run it: torch (`_create` builds it; any device, any model) and
    the CPU fast path (`_convert` makes it once, `_open_converted` opens it;
    see `fast`). `_backend(text)` picks: the fast path on the CPU, and for
    text queries whenever the device is "auto" (one query is quicker on the
    CPU than starting torch for a GPU); torch when the model cannot be
    converted (with a note), on a GPU, or when the runtime setting says so.
    int8 precision exists only on the fast path.
    """

    def __init__(self, choice: Choice | str, device: str, precision: str = "fp32") -> None:
        from mediafind.models.fast import PRECISIONS

        if precision not in PRECISIONS:
            raise UsageError(
                f"{{precision}} {precision!r}: expected one of {', '.join(PRECISIONS)}",
                arguments=("precision",),
            )
        super().__init__(choice, device, precision)
        self._loaded: Loaded | None = None
        self._fast_lock = threading.Lock()
        self._fast: Converted | None = None
        self._fast_tried = False
        self._wants: dict[bool, bool] = {}
        self._told: set[bool] = set()

    def unavailable(self, reason: str) -> MediafindError:
        """The model cannot be had: why, and what to do (the hint)."""
        return self.error(f"{reason}; {self.missing_hint}")

    def problem(self) -> MediafindError | None:
        """Why the model cannot be used, found cheaply (files present, cached,
        or the hub reachable), or None. Nothing is loaded."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the model ready now (load it, or convert it for this CPU), so
        that the cost is paid, and shown, before the work starts."""
        from mediafind.models import fast

        backend = self._backend(text=False)
        if isinstance(backend, fast.Converted):
            # Opened lazily, the media tower took seconds after the first
            # file, with the progress line frozen at that file's end.
            backend.open_media()

    def _base_key(self) -> str:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """What identifies the vectors: the weights, and int8 when quantised."""
        return self._base_key() + ("#int8" if self.precision == "int8" else "")

    def _create(self) -> Loaded:
        raise NotImplementedError

    def _convert(self, key: str) -> tuple[Path, dict[str, Any]]:
        """Convert the model for the fast path; raises fast.ConversionError."""
        raise NotImplementedError

    def _open_converted(self, folder: Path, manifest: dict[str, Any]) -> Converted:
        raise NotImplementedError

    def _load(self) -> Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._create()
            return self._loaded

    def _wants_fast(self, text: bool) -> bool:
        """Decided once per model and use: it is asked for every photo."""
        if text not in self._wants:
            from mediafind.config import resolve_runtime
            from mediafind.models.fast import gpu_likely

            if self.precision == "int8":
                wanted = True
            elif resolve_runtime() == "torch":
                wanted = False
            elif self.device_name == "cpu":
                wanted = True
            else:
                wanted = self.device_name == "auto" and (text or not gpu_likely())
            self._wants[text] = wanted
        return self._wants[text]

    def _backend(self, text: bool, *, work: bool = False) -> Loaded | Converted:
        """What runs the text tower (`text`) or the media tower; `work`: it is
        about to embed (what -v reports), not just to be asked its size."""
        backend: Loaded | Converted | None = None
        if self._wants_fast(text):
            with self._fast_lock:
                if not self._fast_tried:
                    self._fast_tried = True
                    self._fast = self._open_fast()
                backend = self._fast
        if backend is None:
            backend = self._load()
        if work and text not in self._told:
            # What -v reports: which runtime did the work, for queries and media.
            self._told.add(text)
            where = (
                f"torch ({getattr(backend, 'device', 'cpu')})"
                if backend is self._loaded
                else "ONNX Runtime (CPU)"
            )
            self.notes.append(f"{self.name} ran on {where} for {'queries' if text else 'media'}")
        return backend

    def _open_fast(self) -> Converted | None:
        """The converted model, converting it first if need be; None (and a
        note) when it cannot be converted."""
        from mediafind.models import fast

        key = self._base_key()
        found = fast.load_manifest(key, self.precision)
        if found is None:
            started = time.monotonic()
            try:
                earlier = fast.known_failure(key, self.precision)
                if earlier is not None:
                    raise fast.ConversionError(f"{earlier}; not retried until the weights change")
                self.on_prepare(
                    ModelPreparing(
                        self.name, f"converting it ({self.precision}) for this CPU, once"
                    )
                )
                try:
                    found = self._convert(key)
                finally:
                    self.on_prepare(ModelReady(self.name, time.monotonic() - started))
            except fast.ConversionError as error:
                if self.precision == "int8":
                    raise self.error(
                        "cannot run it in int8: converting it for ONNX Runtime failed "
                        f"({one_line(error)}); index without {{precision}} int8"
                    ) from error
                self.notes.append(
                    f"{self.name} runs on torch: it could not be converted for ONNX "
                    f"Runtime ({one_line(error)})"
                )
                return None
            agreement = ", ".join(f"{k} {v:.5f}" for k, v in found[1]["agreement"].items())
            self.notes.append(
                f"converted {self.name} ({self.precision}) for ONNX Runtime in "
                f"{time.monotonic() - started:.1f} s, once; cosine agreement with torch: "
                f"{agreement}"
            )
        return self._open_converted(*found)

    @property
    def runtime(self) -> str:
        """What embeds media: "onnxruntime" or "torch" (loads the model)."""
        return "torch" if self._backend(text=False) is self._loaded else "onnxruntime"

    @property
    def dim(self) -> int:
        return self._backend(text=True).dim

    @property
    def batch_size(self) -> int:
        return self._backend(text=False).batch_size

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._backend(text=True, work=True).embed_texts(texts)


def resolve_torch_device(name: str) -> str:
    """Turn auto|cpu|cuda[:N]|mps into a torch device that exists here."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{{device}} {name}: torch sees no CUDA GPU here; use cpu or auto",
                arguments=("device",),
            )
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(
                "{device} mps: Apple's Metal is not available here; use cpu or auto",
                arguments=("device",),
            )
        return name
    raise UsageError(f"{{device}} {name!r}: expected auto, cpu, cuda or mps", arguments=("device",))


@contextlib.contextmanager
def hub_cache_only() -> Iterator[bool]:
    """Make huggingface_hub answer from its cache without any network request.

    By default it asks the hub whether a cached file is stale every time a
    model loads, so every `search` would reach the internet. Yields whether the
    user had already forbidden the network (HF_HUB_OFFLINE).
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield bool(saved)
    finally:
        constants.HF_HUB_OFFLINE = saved


def hub_unreachable_reason() -> str | None:
    """Why the model hub cannot be reached right now, or None when it can.

    huggingface_hub retries a failing download for about a minute per file;
    an offline machine should hear "no network" at once instead.
    """
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    parts = urlsplit(constants.ENDPOINT)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as error:
        return f"cannot reach {host}: {error.strerror or error}"


def load_cached_first(
    build: Callable[[bool], T], unavailable: Callable[[BaseException], MediafindError]
) -> T:
    """Build a hub model from the cache without a network request; only a model
    not cached yet is downloaded, once. `build(cache_only)` raises
    ModelUnavailableError; `unavailable(error)` words the error for the user."""
    try:
        with hub_cache_only() as offline_by_user:
            return build(True)
    except ModelUnavailableError:
        if offline_by_user:
            raise
        unreachable = hub_unreachable_reason()
        if unreachable is not None:
            raise unavailable(ConnectionError(unreachable)) from None
        return build(False)
