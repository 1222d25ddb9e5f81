"""What every model loader needs: devices, the Hugging Face cache, error lines."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from mediafind.errors import DeviceError, ModelUnavailableError, UsageError

T = TypeVar("T")
Loaded = TypeVar("Loaded")


class LazyModel(Generic[Loaded]):
    """A model whose weights load on first use, once, even from several threads.

    Subclasses build what they need in `_create` and embed text with
    `embed_texts`; `dim` and `on_cpu` then need nothing more.
    """

    def __init__(self, device: str) -> None:
        self.device_name = device
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None

    def _create(self) -> Loaded:
        raise NotImplementedError

    def _load(self) -> Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._create()
            return self._loaded

    def embed_texts(self, texts: Sequence[str]) -> Any:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return int(self.embed_texts(["dimension probe"]).shape[1])

    def on_cpu(self) -> bool:
        """Whether the model runs on the CPU; asking does not load it."""
        return resolve_torch_device(self.device_name) == "cpu"


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
                f"--device {name}: torch sees no CUDA GPU here; use --device cpu or auto"
            )
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("--device mps: Apple's Metal is not available here; use cpu or auto")
        return name
    raise UsageError(f"--device {name!r}: expected auto, cpu, cuda or mps")


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


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or error.__class__.__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_cached_first(build: Callable[[bool], T], unavailable: Callable[[BaseException], str]) -> T:
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
            raise ModelUnavailableError(unavailable(ConnectionError(unreachable))) from None
        return build(False)
