"""Indexing on a Ray cluster: the same index as a local run, the work done by
Ray's workers, the writing still done here.

The tests start one Ray head for the module, on 127.0.0.1 with 2 CPUs and no
dashboard, usage statistics off: nothing leaves the machine. Its workers find
the tests' modalities on their path, as a user's cluster has mediafind
installed.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cluster_fakes import KillingVisual, slow_cli
from conftest import COLORS, draw_photo
from fake_modality import FakeAudio
from media_factory import Shot, make_audio, make_video

from mediafind import cluster, modalities
from mediafind.cluster import CLIENT_SERVER_FAILED, ClusterRunner, PathMap, map_path
from mediafind.db import Store
from mediafind.errors import ClusterError, ModelMismatchError
from mediafind.events import FileDone, Problem
from mediafind.index import IndexOptions, index_paths

# What makes Ray keep to this machine: a single node on the loopback address
# (Ray otherwise swaps 127.0.0.1 for the machine's network address), no
# usage statistics, no token (the tests' cluster is reachable from here only).
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
# The head's Ray Client proxy forks a server for each ray:// connection, and
# gRPC's fork handlers sometimes kill it at birth (ray-project/ray#63202, seen
# here in about one test run in ten). mediafind connects again when that
# happens, which a test shows by killing one on purpose; without the handlers
# the head does not lose servers by chance, so no other test depends on luck.
HEAD_ENV = {"GRPC_ENABLE_FORK_SUPPORT": "0"}
TESTS = Path(__file__).parent
# Nothing listens on port 1: connecting is refused at once.
NOWHERE = "127.0.0.1:1"
# The running head's log folder, shown when a connection to it fails.
HEAD_LOGS: list[Path] = []


def head_logs() -> str:
    """The end of each log that says why the head refused a connection."""
    said = []
    for folder in HEAD_LOGS:
        for name in ("ray_client_server*", "gcs_server.err", "raylet.err"):
            for log in sorted(folder.glob(f"session_latest/logs/{name}")):
                lines = log.read_text(errors="replace").splitlines()[-30:]
                if lines:
                    said.append(f"--- {log.name}\n" + "\n".join(lines))
    return "\n".join(said) or "(the head's logs are empty)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, head: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert head.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


@pytest.fixture(scope="module")
def ray_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in RAY_ENV.items():
            patch.setenv(name, value)
        if "ray._private.ray_constants" in sys.modules:
            patch.setattr(sys.modules["ray._private.ray_constants"], "ENABLE_RAY_CLUSTER", False)
        yield


@pytest.fixture(scope="module")
def head(ray_env: None, model_cache: Path) -> Iterator[dict[str, str]]:
    """A Ray head for the module: {"gcs": HOST:PORT, "client": ray://HOST:PORT}."""
    temp = Path(tempfile.mkdtemp(prefix="mfray-", dir="/tmp"))  # Ray's socket paths are short
    gcs, client = free_port(), free_port()
    env = {
        **os.environ,
        **HEAD_ENV,
        # The tests' modalities, and the hook that can fail a Ray Client server.
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS / "ray_head")]),
        "MEDIAFIND_TEST_KILL_CLIENT_SERVER": str(temp / "kill-client-server"),
        "MEDIAFIND_CACHE": str(model_cache),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(temp / "hf-home"),
    }
    log = temp / "head.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={gcs}",
                f"--ray-client-server-port={client}",
                "--num-cpus=2",
                "--num-gpus=0",
                "--object-store-memory=500000000",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    HEAD_LOGS.append(temp)
    try:
        wait_for_port(gcs, process, log)
        wait_for_port(client, process, log)
        yield {
            "gcs": f"127.0.0.1:{gcs}",
            "client": f"ray://127.0.0.1:{client}",
            "kill_client_server": str(temp / "kill-client-server"),
        }
    finally:
        HEAD_LOGS.remove(temp)
        # The head and all it started (its raylet and workers) are one group.
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(temp, ignore_errors=True)


def photos(folder: Path, count: int) -> Path:
    names = list(COLORS)
    for number in range(count):
        color = COLORS[names[number % len(names)]]
        stripe = COLORS[names[(number * 3 + 1) % len(names)]]
        draw_photo(folder / f"{number:04d}.png", color, (48 + number % 7, 40), stripe=stripe)
    return folder


def run(
    db_path: Path, root: Path, address: str | None, maps: list[str] | None = None
) -> tuple[Any, list[Any]]:
    """Index `root` here (no address) or on the cluster: the summary, the events."""
    events: list[Any] = []
    with Store.open(db_path, create=True) as store:
        if address is None:
            summary = index_paths(store, [root], on_event=events.append)
        else:
            try:
                with ClusterRunner(address, maps or []) as runner:
                    options = IndexOptions(runner=runner)
                    summary = index_paths(store, [root], options=options, on_event=events.append)
            except ClusterError as error:
                pytest.fail(f"{error}\n{head_logs()}")
    return summary, events


def contents(db_path: Path) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[Any, ...], Any]]:
    """The index's files, and each segment's vector or words, by model key."""
    with Store.open(db_path, create=False) as store:
        conn = store.conn
        files = {
            row[0]: tuple(row[1:])
            for row in conn.execute(
                "SELECT path, kind, status, content_hash, width, height, duration, language "
                "FROM files"
            )
        }
        segments: dict[tuple[Any, ...], Any] = {}
        for space in store.spaces():
            joins = "JOIN segments s ON s.id = x.segment_id JOIN files f ON f.id = s.file_id"
            if space.words:
                query = f"SELECT f.path, s.start, s.end, x.text FROM segment_words x {joins} "
                query += f"WHERE x.space_id = {space.id}"
            else:
                query = f"SELECT f.path, s.start, s.end, x.embedding FROM {space.table} x {joins}"
            for path, start, end, value in conn.execute(query):
                key = (space.model_key, path, start, end)
                assert key not in segments
                segments[key] = value if space.words else np.frombuffer(value, np.float32)
    return files, segments


def test_a_cluster_run_writes_what_a_local_run_writes(tmp_path: Path, head: dict[str, str]):
    """Tiny real models (pictures, sounds, speech) through Ray Client (ray://)."""
    media = photos(tmp_path / "media", 2)
    shots = [Shot(1.0, (200, 40, 40), (20, 20, 200)), Shot(1.5, (30, 180, 60), (240, 240, 0))]
    make_video(media / "clip.mp4", shots)
    (media / "clip.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nblowing out candles\n")
    make_audio(media / "tone.wav", [("tone", 1.5, 440.0), ("chirp", 1.5)])

    local, _ = run(tmp_path / "local.db", media, None)
    remote, _ = run(tmp_path / "cluster.db", media, head["client"])

    assert (remote.new, remote.failed, remote.words) == (local.new, 0, local.words)
    assert (remote.new, remote.words) == (4, 4)  # words read (spoken or written) in each
    local_files, local_segments = contents(tmp_path / "local.db")
    remote_files, remote_segments = contents(tmp_path / "cluster.db")
    assert remote_files == local_files
    assert remote_segments.keys() == local_segments.keys()
    models = {key[0].split(":")[0] for key in local_segments}
    assert {"clap", "whisper"} <= models and len(models) == 3  # pictures, sounds, words
    for key, expected in local_segments.items():
        if isinstance(expected, str):
            assert remote_segments[key] == expected
        else:
            cosine = float(expected @ remote_segments[key])
            cosine /= float(np.linalg.norm(expected) * np.linalg.norm(remote_segments[key]))
            assert cosine >= 0.9999, key


def test_an_unreachable_cluster_is_one_line_and_a_rerun_sends_nothing(
    cli, fake_models, library: Path, db_path: Path, tmp_path: Path, monkeypatch
):
    config = tmp_path / "config.toml"
    config.write_text(f'cluster = "{NOWHERE}"\n')
    refused = cli("index", library)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1
    # Named as the user gave it: the config file's key, no option typed.
    said = f"mediafind: error: cluster in {config} = '{NOWHERE}': cannot reach"
    assert refused.stderr.startswith(said)
    typed = cli("index", library, "--cluster", NOWHERE)
    assert typed.stderr.startswith(f"mediafind: error: --cluster {NOWHERE}: cannot reach")
    monkeypatch.setenv("MEDIAFIND_CLUSTER", NOWHERE)
    exported = cli("index", library)
    assert exported.stderr.startswith(f"mediafind: error: MEDIAFIND_CLUSTER={NOWHERE}: cannot")
    monkeypatch.delenv("MEDIAFIND_CLUSTER")
    assert not db_path.exists()  # nothing was written, and no empty index is left

    assert cli("index", library, "--cluster", "local").exit_code == 0
    # The config file still names a cluster nobody answers at: a run with
    # nothing to do succeeds, so it sent nothing and asked nothing.
    rerun = cli("index", library)
    assert rerun.exit_code == 0, rerun.stderr
    assert f"0 new, 0 changed, 0 moved, 0 removed, 0 failed, {len(COLORS)} unchanged" in (
        rerun.stderr
    )


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:10001", "ray:/127.0.0.1:10001", "127.0.0.1:99999", "nas:", ""]
)
def test_a_malformed_address_is_one_line_even_with_nothing_to_do(
    cli, fake_models, library: Path, tmp_path: Path, address: str
):
    typed = cli("index", library, "--cluster", address)
    assert typed.exit_code == 2
    assert typed.stderr.count("\n") == 1
    assert typed.stderr.startswith("mediafind: error: --cluster ")
    assert "expected ray://HOST:PORT" in typed.stderr

    # Up to date, so nothing would be sent: the config file's address is
    # still checked, as it is what every later run will use.
    assert cli("index", library).exit_code == 0
    if address:
        config = tmp_path / "config.toml"
        config.write_text(f'cluster = "{address}"\n')
        kept = cli("index", library)
        assert kept.exit_code == 2
        assert kept.stderr.startswith(f"mediafind: error: cluster in {config} = '{address}': ")


def test_a_port_where_something_else_answers_is_one_line(
    cli, fake_models, library: Path, db_path: Path
):
    """Ray would try a web server's port for more than seven minutes."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass  # its lines would mix with mediafind's on stderr

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{web.server_address[1]}"
        refused = cli("index", library, "--cluster", address)
        web.shutdown()

    assert refused.exit_code == 2
    assert refused.stderr == (
        f"mediafind: error: --cluster {address}: something answers there, but not Ray; "
        "is the port right? (Ray Client: ray://HOST:10001; the head's own port: HOST:6379)\n"
    )
    assert not db_path.exists()  # nothing was written, and no empty index is left


def test_a_failed_connection_leaves_this_process_free_to_connect_again(
    tmp_path: Path, head: dict[str, str], fake_models, monkeypatch: pytest.MonkeyPatch
):
    from ray.util.client import worker

    # Ray Client speaking to the head's GCS port gets no answer it knows;
    # it gives up after its retries, here seconds apart rather than 30.
    monkeypatch.setattr(worker, "INITIAL_TIMEOUT_SEC", 1)
    monkeypatch.setattr(worker, "MAX_TIMEOUT_SEC", 1)
    wrong = "ray://" + head["gcs"]
    root = photos(tmp_path / "photos", 3)

    with (
        Store.open(tmp_path / "index.db", create=True) as store,
        ClusterRunner(wrong, []) as runner,
        pytest.raises(
            ClusterError, match=f"cluster {wrong}: cannot connect to the Ray cluster"
        ) as refused,
    ):
        index_paths(store, [root], options=IndexOptions(runner=runner))
    # It says what the user most likely meant: the head's own port, as HOST:PORT.
    assert str(refused.value).endswith(
        "The head's own port (6379) is given as 127.0.0.1:PORT, without ray://"
    )

    summary, _ = run(tmp_path / "index.db", root, head["gcs"])
    assert (summary.new, summary.failed) == (3, 0)


def test_a_client_server_that_dies_at_birth_is_started_again(
    tmp_path: Path, head: dict[str, str], fake_models
):
    """Ray's head sometimes loses the server it starts for a ray:// connection
    (ray-project/ray#63202): a new connection gets a new one."""
    kill = Path(head["kill_client_server"])
    kill.touch()  # the next server started for a connection dies at once
    root = photos(tmp_path / "photos", 3)

    summary, _ = run(tmp_path / "index.db", root, head["client"])

    assert not kill.exists(), "no server was started, so none died"
    assert (summary.new, summary.failed) == (3, 0)


class RefusingRay:
    """Stands in for Ray where every connection fails as `failure` says."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.calls: list[str] = []

    def init(self, **_: object) -> None:
        self.calls.append("init")
        raise self.failure

    def shutdown(self) -> None:
        self.calls.append("shutdown")


def test_a_head_that_never_starts_a_server_is_one_line_after_three_tries(
    monkeypatch: pytest.MonkeyPatch,
):
    said = "RuntimeError: Starting Ray client server failed. See ray_client_server_23002.err"
    ray = RefusingRay(
        ConnectionAbortedError(
            "Initialization failure from server:\nTraceback (most recent call last):\n"
            f'  File "proxier.py", line 772, in Datapath\n    raise RuntimeError(\n{said}\n'
        )
    )
    monkeypatch.setattr(cluster, "_import_ray", lambda named: ray)

    with pytest.raises(ClusterError) as refused, ClusterRunner("auto", []) as runner:
        runner._connect()

    assert ray.calls == ["init", "shutdown"] * 3
    assert str(refused.value) == (
        "cluster auto: cannot connect to the Ray cluster "
        f"(the head failed 3 times to start a server for this connection: {said})"
    )

    other = RefusingRay(ConnectionError("ray client connection timeout"))
    monkeypatch.setattr(cluster, "_import_ray", lambda named: other)
    with pytest.raises(ClusterError, match=r"cluster \(ray client connection timeout\)$"):
        ClusterRunner("auto", [])._connect()
    assert other.calls == ["init", "shutdown"]  # not the head's doing: not tried again


def test_the_words_that_ask_for_another_connection_are_ray_clients_words():
    """The retry keys on what Ray Client says when the head could not start
    the connection's server: it must still say it."""
    from ray.util.client import worker

    assert CLIENT_SERVER_FAILED in Path(worker.__file__).read_text()


def test_verbose_says_the_work_ran_on_the_cluster(
    cli, fake_models, library: Path, head: dict[str, str]
):
    done = cli("index", library, "--cluster", head["gcs"], "--verbose")
    assert done.exit_code == 0, done.stderr
    # The head was started with 2 CPUs and no GPU, alone.
    assert (
        f"mediafind: note: the reading and the models ran on the Ray cluster at {head['gcs']} "
        "(nodes 1, CPUs 2, GPUs 0)\n"
    ) in done.stderr


def test_a_killed_workers_task_is_run_again_and_written_once(
    tmp_path: Path, head: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    marker = tmp_path / "killed"
    killing = KillingVisual("0003.png", marker)
    monkeypatch.setattr(modalities, "_REGISTRY", {"visual": killing, "audio": FakeAudio()})
    root = photos(tmp_path / "photos", 8)

    summary, events = run(tmp_path / "index.db", root, head["gcs"])

    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker died
    assert (summary.new, summary.failed) == (8, 0)
    done = [e for e in events if isinstance(e, FileDone)]
    assert sorted(e.path for e in done) == sorted(str(p) for p in root.iterdir())
    files, segments = contents(tmp_path / "index.db")
    assert len(files) == len(segments) == 8
    assert all(status == "ok" for _, status, *_ in files.values())


def test_a_file_the_workers_cannot_find_is_said_and_tried_again(
    tmp_path: Path, head: dict[str, str]
):
    """With the real models: pictures, then words, each pass on the cluster;
    a file lost in the first is not sent again in the second."""
    here = photos(tmp_path / "here", 6)
    there = tmp_path / "there"  # where the workers find the folder: one photo short
    shutil.copytree(here, there, ignore=shutil.ignore_patterns("0002.png"))
    maps = [f"{here}={there}"]

    first, events = run(tmp_path / "index.db", here, head["gcs"], maps)

    assert (first.new, first.failed) == (5, 1)
    problems = [e for e in events if isinstance(e, Problem)]
    assert [p.path for p in problems] == [str(here / "0002.png")]
    assert f"not found on the cluster's worker {socket.gethostname()} at {there}/0002.png" in (
        problems[0].reason
    )
    files, _ = contents(tmp_path / "index.db")
    assert str(here / "0002.png") not in files  # not recorded as failed: retried

    shutil.copy(here / "0002.png", there / "0002.png")
    second, _ = run(tmp_path / "index.db", here, head["gcs"], maps)
    assert (second.new, second.failed, second.unchanged) == (1, 0, 5)


def test_workers_with_other_model_weights_are_refused(
    tmp_path: Path, head: dict[str, str], tiny_clip: str, other_clip: str
):
    root = photos(tmp_path / "photos", 2)
    db_path = tmp_path / "index.db"
    run(db_path, root, None)
    before = contents(db_path)
    photos(tmp_path / "more", 2)
    shutil.copytree(tmp_path / "more", root / "more")
    # The workers find another model in the folder the index's model is in.
    maps = [f"{tiny_clip.removeprefix('local-dir:')}={other_clip.removeprefix('local-dir:')}"]

    with pytest.raises(ModelMismatchError, match="would make visual vectors with other weights"):
        run(db_path, root, head["gcs"], maps)

    after = contents(db_path)
    assert after[0] == before[0]
    assert after[1].keys() == before[1].keys()


def committed(db_path: Path) -> int:
    try:
        with Store.open(db_path, create=False) as store:
            return int(store.conn.execute("SELECT count(*) FROM files").fetchone()[0])
    except Exception:
        return 0  # not created yet, or its schema being written


def assert_consistent(db_path: Path, expected: int) -> None:
    with Store.open(db_path, create=False) as store:
        conn = store.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        space = store.active_space("visual")
        assert space is not None
        counts = [
            conn.execute(sql).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM files WHERE status = 'ok'",
                "SELECT count(DISTINCT path) FROM files",
                "SELECT count(*) FROM segments",
                f"SELECT count(*) FROM {space.table}",
            )
        ]
    assert counts == [expected] * 4


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_writer_leaves_what_arrived_and_the_next_run_resumes(
    tmp_path: Path, head: dict[str, str], db_path: Path, sig: int
):
    total = 60
    root = photos(tmp_path / "photos", total)
    process = subprocess.Popen(
        slow_cli("index", str(root), "--cluster", head["gcs"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 120
    while committed(db_path) == 0:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    done = committed(db_path)
    assert 0 < done < total, "the run should have been stopped part-way"
    if sig == signal.SIGINT:
        assert process.returncode == 130
        assert b"interrupted after" in stderr and b"Traceback" not in stderr, stderr
    assert_consistent(db_path, done)

    # After Ctrl-C the cluster finishes the job; after kill -9, this machine.
    resume = ("--cluster", head["gcs"]) if sig == signal.SIGINT else ()
    second = subprocess.run(
        slow_cli("index", str(root), *resume),
        capture_output=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    # Photos 56-59 repeat 0-3 (`photos` cycles): those left for this run whose
    # twin is indexed already count as copied, the rest as new.
    said = {part.split(b" ", 1)[1]: int(part.split(b" ", 1)[0]) for part in parts(second.stderr)}
    assert said[b"new"] + said.get(b"copied", 0) == total - done
    assert_consistent(db_path, total)


def parts(summary: bytes) -> list[bytes]:
    """The "N what" parts of an index summary line."""
    return summary.strip().split(b": ", 2)[2].split(b", ")


def test_without_ray_one_line_says_what_to_install(cli, library: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = cli("index", library, "--cluster", "auto")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "pip install 'mediafind[cluster]'" in result.stderr


def test_ray_is_imported_only_for_a_cluster(library: Path):
    script = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
        "from fake_modality import fake_modalities; from mediafind import modalities; "
        "modalities._REGISTRY.clear(); [modalities.register(m) for m in fake_modalities()]; "
        "from mediafind.cli import app\n"
        "try:\n    app(['index', sys.argv[1]], prog_name='mediafind')\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(library)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_path_maps_take_the_longest_folder_and_whole_names(tmp_path: Path, cli, library: Path):
    from mediafind.cluster import parse_path_maps

    maps = parse_path_maps(["/data=/mnt/nas", "/data/photos=/srv/photos"])
    assert maps == [PathMap("/data/photos", "/srv/photos"), PathMap("/data", "/mnt/nas")]
    assert map_path("/data/photos/a.jpg", maps) == "/srv/photos/a.jpg"
    assert map_path("/data/photos2/a.jpg", maps) == "/mnt/nas/photos2/a.jpg"
    assert map_path("/database/a.jpg", maps) == "/database/a.jpg"
    assert map_path("/data", maps) == "/mnt/nas"

    bad = cli("index", library, "--cluster", "auto", "--path-map", "/data:/mnt")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "mediafind: error: --path-map '/data:/mnt': expected LOCAL=REMOTE, a folder here and "
        "the absolute path where the cluster's workers find it\n"
    )
    alone = cli("index", library, "--path-map", "/data=/mnt")
    assert alone.exit_code == 2
    assert "--path-map goes with --cluster" in alone.stderr

    config = tmp_path / "config.toml"
    config.write_text('path_map = ["/data:/mnt"]\n')
    from_file = cli("index", library, "--cluster", "auto")
    assert from_file.exit_code == 2
    assert from_file.stderr.startswith(
        f"mediafind: error: path_map in {config} = '/data:/mnt': expected LOCAL=REMOTE"
    )
