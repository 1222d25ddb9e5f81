"""Indexing on a Ray cluster: the heavy work there, the index still here.

`ClusterRunner` is an `index.Runner`. This machine scans, plans and writes as
always (unchanged files are never sent); only the files a pass must read go
to the cluster, through one Ray Data pipeline per pass:

    plan, here -> hash and decode (CPU tasks) -> model (a pool of actors, on
    GPUs where the cluster has some) -> results stream back -> written here,
    each file in its own transaction, by the code that writes a local run

Ray Data streams: results come back as they are ready and the pipeline slows
down when this machine falls behind, so memory here stays bounded whatever
the archive's size. A worker that dies is replaced and its task run again by
Ray; a file whose result came back once is never written twice.

Workers read files by path: the same path as here (a shared mount), or mapped
with `PathMap`s. They hash each file first, so a copy or a move of indexed
content costs no model time, as here. Each loads the model the index records
and checks its key: a worker whose model would make other vectors (other
weights, another precision) or that runs another mediafind refuses, and the
run stops, saying what to do; its vectors are never mixed in.

Ray is imported only here, when a cluster is used (the `cluster` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import posixpath
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mediafind import __version__, modalities
from mediafind.config import Choice
from mediafind.errors import ClusterError, MediafindError, ModelMismatchError, UsageError, one_line
from mediafind.events import IndexEvent, Problem
from mediafind.filework import PassModels, Prepared, Results, Task, embed_prepared, prepare
from mediafind.modalities import DecodeOptions, Modality
from mediafind.scan import canonical_path

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "pip install 'mediafind[cluster]'"
# How long to wait for the cluster to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 5.0
# Ray's default ports: Ray Client's, and the head's own (its GCS).
RAY_CLIENT_PORT = 10001
RAY_HEAD_PORT = 6379
# What a client sends first over HTTP/2 (RFC 9113 3.4): the preface, then its
# (here empty) settings frame; the server's first frame must be its settings.
_HTTP2_SETTINGS = 0x4
_HTTP2_OPENING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(
    [0, 0, 0, _HTTP2_SETTINGS, 0, 0, 0, 0, 0]
)
# The head's Ray Client proxy starts a server for each ray:// connection, and
# that server dies at birth now and then (the proxy forks while busy with gRPC:
# ray-project/ray#63202). What Ray Client then says (at once, or after waiting
# 30 s for the server), and how many connections to try before passing it on.
CLIENT_SERVER_FAILED = "Initialization failure from server"
CLIENT_ATTEMPTS = 3
# Files per decoding task: enough to make a task's overhead small next to the
# work, few enough that a file that kills its worker takes few others along
# when the task is dropped after its retries.
DECODE_FILES = 4
# Files per call of a model actor (each file's inputs are embedded in the
# model's own batch size).
MODEL_FILES = 16
# What a model actor asks of a node's memory (Ray's `memory` resource): room
# for the largest default model, whose weights alone are 800 MB (sound).
MODEL_MEMORY = 2 * 1024**3


@dataclass(frozen=True)
class PathMap:
    """Where a folder of this machine is found on the workers."""

    local: str
    remote: str

    def apply(self, path: str) -> str | None:
        """`path` as the workers see it, or None when it is not under `local`."""
        if path == self.local:
            return self.remote
        prefix = self.local.rstrip("/") + "/"
        if not path.startswith(prefix):
            return None
        return posixpath.join(self.remote, path[len(prefix) :])


def parse_path_maps(texts: Sequence[str | Choice]) -> list[PathMap]:
    """`LOCAL=REMOTE` texts as path maps, the longest folder first (so that a
    map for a subfolder wins over its parent's). A text given as a `Choice`
    is named in errors as the user gave it (an option, a config key)."""
    maps = []
    for given in texts:
        choice = given if isinstance(given, Choice) else Choice(given, "option")
        text = choice.value
        local, sep, remote = text.partition("=")
        if not sep or not local.strip() or not posixpath.isabs(remote.strip()):
            named = f"{{argument}} {text!r}" if choice.source == "option" else choice.described("")
            raise UsageError(
                f"{named}: expected LOCAL=REMOTE, a folder here and the "
                "absolute path where the cluster's workers find it",
                argument="path_map",
            )
        maps.append(PathMap(canonical_path(local.strip()), remote.strip()))
    return sorted(maps, key=lambda m: len(m.local), reverse=True)


def map_path(path: str, maps: Sequence[PathMap]) -> str:
    """Where the workers find `path` (unchanged when no map covers it)."""
    for path_map in maps:
        mapped = path_map.apply(path)
        if mapped is not None:
            return mapped
    return path


def _map_spec(spec: str, maps: Sequence[PathMap]) -> str:
    """A model spec as the workers read it: a model folder of this machine
    (`local-dir:PATH`, or a folder given as is) is mapped like files."""
    prefix = "local-dir:" if spec.startswith("local-dir:") else ""
    rest = spec[len(prefix) :]
    return prefix + map_path(rest, maps) if os.path.isabs(rest) else spec


@dataclass(frozen=True)
class _ModelOrder:
    """What a worker loads for one modality, and the key its output must have."""

    modality: str
    spec: str
    precision: str
    key: str


@dataclass(frozen=True)
class _Job:
    """What every worker of one pass is told, once."""

    version: str
    # This run's modalities: a worker reads files with exactly these (its own
    # registry is left as it is: what a modality is, it says itself).
    registry: tuple[Modality, ...]
    models: tuple[_ModelOrder, ...]
    decode: DecodeOptions
    maps: tuple[PathMap, ...]
    # The content hashes already indexed (an object in Ray's store, shared by
    # the workers): a file with one of them is copied here, never decoded.
    known: Any

    def modality(self, name: str) -> Modality:
        return next(m for m in self.registry if m.name == name)


class ClusterRunner:
    """Runs the hashing, decoding and models of an index run on a Ray cluster.

    Connects on first use only: a run with nothing to do sends nothing, and
    reaches no cluster. Use it as a context manager (or call `close`), which
    ends this run's work on the cluster.
    """

    def __init__(self, address: str | Choice, path_maps: Sequence[str | Choice] = ()) -> None:
        """`address` and `path_maps` as texts, or as `Choice`s that say where
        the user gave them (errors then name that: an option, a config key)."""
        choice = address if isinstance(address, Choice) else Choice(address, "option")
        self.address = choice.value
        # How errors name the address: `{argument} ADDRESS`, `cluster in FILE = ...`
        self._named = choice.described("cluster")
        # Checked now, contacting nothing: a run with nothing to do says it too.
        self._host_port = _parse_address(self.address, self._named)
        self.maps = parse_path_maps(path_maps)
        _import_ray(self._named)  # said before any work when Ray is not installed
        self._connected = False
        # What a verbose run says about where its work ran, once connected.
        self.notes: list[str] = []

    def __enter__(self) -> ClusterRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect; Ray stops whatever this run still had running."""
        if self._connected:
            import ray

            self._connected = False
            ray.shutdown()

    def __call__(
        self,
        tasks: list[Task],
        models: PassModels,
        reusable: Mapping[str, int],
        emit: Callable[[IndexEvent], None],
    ) -> Results:
        ray = self._connect()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        self.notes = [
            f"the reading and the models ran on the Ray cluster at {self.address} (nodes "
            f"{nodes}, CPUs {int(resources.get('CPU', 0))}, GPUs {gpus})"
        ]
        job = _Job(
            version=__version__,
            registry=tuple(modalities.modalities()),
            models=tuple(self._orders(models)),
            decode=models.decode,
            maps=tuple(self.maps),
            known=ray.put(frozenset(reusable)),
        )
        coordinator = ray.remote(num_cpus=0)(_Coordinator).remote(
            ray.put([pickle.dumps(task) for task in tasks]),
            job,
            words=all(m.family == "words" for m in models.used),
            gpus=gpus,
            cpus=max(1, int(resources.get("CPU", 1))),
        )
        try:
            yield from self._receive(ray, coordinator, tasks, emit)
        finally:
            # Done, refused or interrupted: whatever still runs for this pass
            # stops (the pipeline's tasks and actors are the coordinator's). A
            # cluster already gone has nothing left to stop.
            with contextlib.suppress(Exception):
                ray.kill(coordinator)

    def _receive(
        self, ray: Any, coordinator: Any, tasks: list[Task], emit: Callable[[IndexEvent], None]
    ) -> Results:
        """Each file's result as the cluster sends it, once, then the files lost."""
        seen = bytearray(len(tasks))
        asked = coordinator.next.remote()
        while True:
            try:
                results = ray.get(asked)
            except ray.exceptions.RayError as error:
                raise ClusterError(
                    f"{self._named}: the Ray cluster failed ({one_line(error)}); "
                    "what arrived is written, run the same command again to continue",
                    argument="cluster",
                ) from None
            if results is None:
                break
            # The cluster readies the next results while these are written.
            asked = coordinator.next.remote()
            for number, blob in results:
                result = pickle.loads(blob)
                if isinstance(result, _Refusal):
                    raise result.error()
                if seen[number]:
                    continue  # a retried task's second answer
                seen[number] = 1
                prepared, vectors, events = result
                prepared.task = tasks[number]
                for event in events:
                    emit(event)
                yield prepared, vectors
        for number, task in enumerate(tasks):
            if not seen[number]:
                yield _lost(task, emit), None

    def _connect(self) -> Any:
        ray = _import_ray(self._named)
        if self._connected:
            return ray
        if self._host_port is not None:
            _check_reachable(*self._host_port, self._named)
        for attempt in range(1, CLIENT_ATTEMPTS + 1):
            try:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
                break
            except Exception as error:
                # A failed ray.init leaves Ray half-connected: every later
                # ray.init in this process would fail on an assertion.
                with contextlib.suppress(Exception):
                    ray.shutdown()
                if CLIENT_SERVER_FAILED not in str(error):
                    reason, hint = one_line(error), self._other_port_hint()
                elif attempt < CLIENT_ATTEMPTS:
                    continue
                else:  # the head's traceback: its last line says what failed
                    last = str(error).strip().splitlines()[-1].strip()
                    reason = (
                        f"the head failed {attempt} times to start a server for this "
                        f"connection: {last}"
                    )
                    hint = ""
                raise ClusterError(
                    f"{self._named}: cannot connect to the Ray cluster ({reason}){hint}",
                    argument="cluster",
                ) from None
        self._connected = True
        return ray

    def _other_port_hint(self) -> str:
        """What to try when Ray answered but would not connect: the address
        may name Ray's other port, which takes the other form."""
        if self._host_port is None:
            return ""
        port = self._host_port[1]
        host = self.address.removeprefix("ray://").rpartition(":")[0]  # as typed: [::1]
        if self.address.startswith("ray://"):
            return (
                f"; is {port} Ray Client's port ({RAY_CLIENT_PORT} unless the head was started "
                f"otherwise)? The head's own port ({RAY_HEAD_PORT}) is given as {host}:PORT, "
                "without ray://"
            )
        return (
            f"; is {port} the head's own port ({RAY_HEAD_PORT} unless it was started "
            f"otherwise)? Ray Client's port ({RAY_CLIENT_PORT}) is given as ray://{host}:PORT"
        )

    def _orders(self, models: PassModels) -> list[_ModelOrder]:
        return [
            _ModelOrder(
                modality.name,
                _map_spec(models.embedders[modality.name].name, self.maps),
                models.embedders[modality.name].precision,
                models.spaces[modality.name].model_key,
            )
            for modality in models.used
        ]


def _import_ray(named: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"{named}: indexing on a cluster needs Ray, not installed here; "
            f"install it with: {INSTALL_HINT}",
            argument="cluster",
        ) from None
    return ray


def _parse_address(address: str, named: str) -> tuple[str, int] | None:
    """The host and port of `ray://HOST:PORT` or `HOST:PORT`; None for `auto`
    (Ray finds the cluster started on this machine, or says none is)."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 address, [::1]:10001
    if not host or "/" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"{named}: expected ray://HOST:PORT (Ray Client), HOST:PORT (the head's own "
            "port) or auto",
            argument="cluster",
        )
    return host, int(port)


def _check_reachable(host: str, port: int, named: str) -> None:
    """Fail at once, in one line, when nothing answers at `address`, or
    something other than Ray does: Ray itself retries for many minutes (more
    than seven at a web server's port), printing a line every few seconds."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as connection:
            speaks_grpc = _speaks_grpc(connection)
    except OSError as error:
        raise ClusterError(
            f"{named}: cannot reach the Ray cluster "
            f"({error.strerror or one_line(error)}); is it started (ray start --head), "
            "and is the address right?",
            argument="cluster",
        ) from None
    if not speaks_grpc:
        raise ClusterError(
            f"{named}: something answers there, but not Ray; is the port right? (Ray "
            f"Client: ray://HOST:{RAY_CLIENT_PORT}; the head's own port: HOST:{RAY_HEAD_PORT})",
            argument="cluster",
        )


def _speaks_grpc(connection: socket.socket) -> bool:
    """Whether the server at the other end speaks gRPC, as both of Ray's ports
    do: to HTTP/2's opening (without TLS) it answers with its settings frame.
    A web server answers otherwise, an SSH server with its banner. Behind TLS
    (RAY_USE_TLS) the question cannot be asked, and Ray is left to answer."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    connection.sendall(_HTTP2_OPENING)
    head = b""
    try:
        while len(head) < 9:  # a frame's header
            chunk = connection.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except (TimeoutError, ConnectionError):
        pass  # a server still waiting for something else, or hanging up
    return len(head) == 9 and head[3] == _HTTP2_SETTINGS and head[5:9] == bytes(4)


class _Coordinator:
    """Runs a pass's pipeline on the cluster and hands its results out as they
    are asked for: this machine asks for more as it writes, and Ray Data's
    backpressure holds the pipeline back when this machine falls behind.

    Running the pipeline here, in an actor, rather than on the machine that
    writes, lets that machine reach the cluster through Ray Client (ray://),
    which Ray Data does not support, and ends the pass's tasks and actors with
    this one (they are its own) when the run stops.
    """

    def __init__(self, tasks: list[bytes], job: _Job, words: bool, gpus: int, cpus: int) -> None:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # A task that failed on every retry loses its files for this run (they
        # are said, and tried again next run) rather than ending the run: one
        # file that crashes its decoder must not stop an archive's indexing.
        context.max_errored_blocks = -1
        dataset = _pipeline(ray, tasks, job, words, gpus, cpus)
        self._batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))

    def next(self) -> list[tuple[int, bytes]] | None:
        """The next results (task number, pickled result), or None: all are out."""
        batch = next(self._batches, None)
        if batch is None:
            return None
        return list(zip(batch["number"].tolist(), batch["result"].tolist(), strict=True))


def _pipeline(ray: Any, tasks: list[bytes], job: _Job, words: bool, gpus: int, cpus: int) -> Any:
    """The pass as a Ray Data pipeline of pickled results, in any order."""
    dataset = ray.data.from_items([{"number": n, "task": task} for n, task in enumerate(tasks)])
    model: dict[str, Any] = {
        "compute": ray.data.ActorPoolStrategy(min_size=1, max_size=gpus or cpus),
        "fn_constructor_kwargs": {"job": job, "device": "cuda" if gpus else "cpu"},
        "num_cpus": 1,
        "num_gpus": 1 if gpus else 0,
        # A model actor holds its model: Ray places no more on a node than its
        # memory takes. It also keeps decoding out of the actors (Ray fuses
        # stages that ask for the same resources), so that a file that crashes
        # its decoder costs a task, retried and then dropped, not an actor
        # that Ray would restart, and give the same file, for ever.
        "memory": MODEL_MEMORY,
    }
    if words:
        # Reading words runs the model on each file: one stage, file by file.
        return dataset.map_batches(_Reader, batch_size=1, **model)
    # Decoding prepares the model's inputs the way the actors' runtime takes
    # them: torch's on GPUs (MEDIAFIND_RUNTIME=torch), ONNX Runtime's on CPUs.
    # Ray runs a task again when its worker died (out of memory, a crash in a
    # decoder, a node lost): three times, its default for tasks.
    environment = {"env_vars": {"MEDIAFIND_RUNTIME": "torch"}} if gpus else None
    decoded = dataset.map_batches(
        _decode_files,
        fn_kwargs={"job": job},
        batch_size=DECODE_FILES,
        num_cpus=1,
        runtime_env=environment,
    )
    return decoded.map_batches(_Embedder, batch_size=MODEL_FILES, **model)


@dataclass(frozen=True)
class _Refusal:
    """A worker that cannot do the work as this machine would, and why."""

    message: str
    kind: str  # "model" (another model's vectors) or "cluster"

    def error(self) -> MediafindError:
        if self.kind == "model":
            return ModelMismatchError(self.message)
        return ClusterError(self.message)


def _lost(task: Task, emit: Callable[[IndexEvent], None]) -> Prepared:
    reason = (
        "not indexed: the cluster's workers failed on it, also when Ray ran it again (a "
        "worker died reading it, or a file read with it); the next run tries it again"
    )
    emit(Problem(task.found.path, reason, "failed"))
    return Prepared(task, "unread", error=reason)


# What a worker process has set up, per job: its models (or why it refuses)
# and the known content hashes. A worker serves one job, so these stay small.
_models_here: dict[tuple[_ModelOrder, str], Any] = {}
_known_here: dict[str, frozenset[str]] = {}


def _worker_models(job: _Job, device: str) -> tuple[PassModels | None, _Refusal | None]:
    """This worker's models for `job`, each checked against the index's key."""
    if job.version != __version__:
        return None, _Refusal(
            f"the cluster's worker {socket.gethostname()} runs mediafind {__version__}, this "
            f"machine {job.version}; install the same version on every node",
            "cluster",
        )
    embedders = {}
    for order in job.models:
        if (order, device) not in _models_here:
            _models_here[order, device] = _load(job.modality(order.modality), order, device)
        loaded = _models_here[order, device]
        if isinstance(loaded, _Refusal):
            return None, loaded
        embedders[order.modality] = loaded
    used = [job.modality(order.modality) for order in job.models]
    return PassModels(used, embedders, {}, job.decode), None


def _load(modality: Modality, order: _ModelOrder, device: str) -> Any:
    """The model `order` names, loaded here, or a refusal saying why not."""
    host = socket.gethostname()
    embedder = modality.embedder(Choice(order.spec, "index"), device, order.precision)
    try:
        problem = embedder.problem()
        if problem is not None:
            raise problem
        key = embedder.key
        if key == order.key:
            embedder.prepare()
    except MediafindError as error:
        return _Refusal(f"the cluster's worker {host} cannot load {order.spec}: {error}", "model")
    if key != order.key:
        return _Refusal(
            f"the cluster's worker {host} would make {modality.name} vectors with other "
            f"weights than the index's: its {order.spec} has model key {key}, the index "
            f"{order.key}; put the same model there (or map its folder), so that vectors "
            "of two models are never mixed",
            "model",
        )
    return embedder


def _known(job: _Job) -> frozenset[str]:
    import ray

    name = job.known.hex()
    if name not in _known_here:
        _known_here.clear()
        _known_here[name] = ray.get(job.known)
    return _known_here[name]


def _read_here(task: Task, job: _Job, models: PassModels) -> tuple[Prepared, list[IndexEvent]]:
    """Hash and decode one file on this worker, as a local run would."""
    path = map_path(task.found.path, job.maps)
    if not os.path.lexists(path):
        reason = (
            f"not found on the cluster's worker {socket.gethostname()} at {path}; mount the "
            "folder there at the same path, or give a path map (LOCAL=REMOTE) to where the "
            "workers find it; the next run tries again"
        )
        return Prepared(task, "unread", error=reason), [Problem(task.found.path, reason, "failed")]
    events: list[IndexEvent] = []
    there = replace(task, found=replace(task.found, path=path))
    prepared = prepare(there, _known(job), models, events.append)
    prepared.task = task
    # Only what the user must hear travels back, about this machine's path.
    said: list[IndexEvent] = [
        replace(e, path=task.found.path) for e in events if isinstance(e, Problem)
    ]
    return prepared, said


def _results(numbers: Any, results: list[Any]) -> dict[str, np.ndarray]:
    import numpy as np

    blobs = np.empty(len(results), dtype=object)
    blobs[:] = [pickle.dumps(result) for result in results]
    return {"number": np.asarray(numbers), "result": blobs}


def _decode_files(batch: dict[str, np.ndarray], job: _Job) -> dict[str, np.ndarray]:
    """CPU task: hash and decode a few files into their model inputs."""
    models, refusal = _worker_models(job, "cpu")
    results: list[Any] = []
    for blob in batch["task"]:
        if models is None:
            results.append(refusal)
            continue
        prepared, events = _read_here(pickle.loads(blob), job, models)
        results.append((prepared, None, events))
    return _results(batch["number"], results)


class _Embedder:
    """Model actor: embeds decoded files' inputs, sends back vectors, not inputs."""

    def __init__(self, job: _Job, device: str) -> None:
        self.job, self.device = job, device

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        models, refusal = _worker_models(self.job, self.device)
        items = [pickle.loads(blob) for blob in batch["result"]]
        if models is None:
            return _results(batch["number"], [refusal] * len(items))
        decoded = [
            item[0]
            for item in items
            if not isinstance(item, _Refusal) and item[0].outcome == "decoded"
        ]
        vectors = embed_prepared(decoded, models.embedding())
        results: list[Any] = []
        for item in items:
            if isinstance(item, _Refusal) or item[0].outcome != "decoded":
                results.append(item)
                continue
            prepared, _, events = item
            for part in prepared.parts.values():
                part.inputs = []  # embedded: only the vectors travel back
            results.append((prepared, vectors[id(prepared)], events))
        return _results(batch["number"], results)


class _Reader:
    """Model actor of a words pass: hashes, reads and transcribes files one by one."""

    def __init__(self, job: _Job, device: str) -> None:
        self.job, self.device = job, device

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        models, refusal = _worker_models(self.job, self.device)
        results: list[Any] = []
        for blob in batch["task"]:
            if models is None:
                results.append(refusal)
                continue
            prepared, events = _read_here(pickle.loads(blob), self.job, models)
            results.append((prepared, {} if prepared.outcome == "decoded" else None, events))
        return _results(batch["number"], results)
