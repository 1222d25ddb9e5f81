"""Warm answers: a running watcher answers `search` and `similar` over a
local socket, with its models already loaded, so a search costs what the
search costs and not what starting the models costs.

The socket is a Unix socket, owner-only (0600, in a 0700 folder under the
user's runtime folder), one per index; the service also checks each
connection's peer credentials and answers only its own user. A request is
one JSON line (the version, argv, the working folder, the environment, the
output's encoding); the answer is one JSON line with exactly the bytes the
command printed on stdout and stderr and its exit code. A client that finds
no service, a busy one or one of another version is told nothing (None)
and runs the command itself: the connection is given a few hundredths of a
second, not a visible delay. Windows has no such socket here: it always
answers in-process.

Light: the CLI imports this module on every search, before anything heavy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Long enough for a service on a loaded 2-core machine to accept; short
# enough that a stale socket costs no visible delay.
CONNECT_TIMEOUT = 0.05
# A warm search of a large index takes tenths of a second; a service stuck
# longer than this is not waited for (the search runs here instead).
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Request:
    version: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    encoding: str
    errors: str
    # Whether the client's stderr is a terminal (warnings are coloured there).
    stderr_tty: bool = False


@dataclass(frozen=True)
class Answer:
    stdout: bytes
    stderr: bytes
    code: int


def socket_path(db_path: Path) -> Path | None:
    """Where the service for this index listens; None where there are no
    Unix sockets."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    import platformdirs

    digest = hashlib.sha256(str(db_path).encode()).hexdigest()[:16]
    return Path(platformdirs.user_runtime_dir("mediafind")) / f"search-{digest}.sock"


def ask(db_path: Path, request: Request) -> Answer | None:
    """The service's answer to `request`, or None: no service, a busy one,
    one of another version, or anything else amiss."""
    path = socket_path(db_path)
    if path is None or not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT)
            conn.connect(str(path))
            conn.settimeout(ANSWER_TIMEOUT)
            conn.sendall(json.dumps(vars(request)).encode() + b"\n")
            reply = json.loads(_read_line(conn))
    except (OSError, ValueError):
        return None
    if not isinstance(reply, dict) or "code" not in reply:
        return None
    return Answer(
        base64.b64decode(reply["stdout"]), base64.b64decode(reply["stderr"]), int(reply["code"])
    )


def _read_line(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)


class Service:
    """Listens for requests for one index and answers them with `answer`,
    one at a time (a request that comes while one is answered is told the
    service is busy), until `close`."""

    def __init__(self, db_path: Path, version: str, answer: Callable[[Request], Answer]) -> None:
        self.version = version
        self.answer = answer
        self.busy = threading.Lock()
        path = socket_path(db_path)
        if path is None:
            raise OSError("no Unix sockets here")
        self.path = path
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is masked by the umask, and the folder may be older.
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Owner-only from the moment the socket exists: no window in which
        # another user could connect.
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if not _same_user(conn):
                return
            try:
                conn.settimeout(ANSWER_TIMEOUT)
                raw = json.loads(_read_line(conn))
                request = Request(**raw)
            except (OSError, ValueError, TypeError):
                return
            reply: dict[str, Any]
            if request.version != self.version:
                reply = {"refused": "version"}
            elif not self.busy.acquire(blocking=False):
                reply = {"refused": "busy"}
            else:
                try:
                    answer = self.answer(request)
                finally:
                    self.busy.release()
                reply = {
                    "stdout": base64.b64encode(answer.stdout).decode(),
                    "stderr": base64.b64encode(answer.stderr).decode(),
                    "code": answer.code,
                }
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer is this user (Linux: SO_PEERCRED; elsewhere the
    socket's permissions are the guard)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    try:
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, 12))
    except OSError:
        return False
    return uid == os.getuid()
