"""Warm answers: a running `mediafind watch` answers searches over an
owner-only Unix socket with exactly the bytes an in-process run prints."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo, fake_cli

from mediafind import __version__
from mediafind.db import Store
from mediafind.warm import Answer, Request, Service, ask, socket_path


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short runtime folder: a Unix socket's path has at most 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="mf", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def request(*argv: str) -> Request:
    return Request(
        version=__version__,
        argv=list(argv),
        cwd=os.getcwd(),
        env={**os.environ, "COLUMNS": "200"},
        encoding="utf-8",
        errors="strict",
    )


def wait_for(condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_answers_through_the_service_are_byte_identical(
    tmp_path: Path, db_path: Path, runtime_dir: Path
):
    root = tmp_path / "Pictures"
    for name in ("red", "green", "blue"):
        draw_photo(root / f"{name}.jpg", COLORS[name])
    watcher = subprocess.Popen(
        fake_cli("watch", str(root), "--settle", "0.2"),
        stderr=subprocess.DEVNULL,
    )
    try:

        def served() -> bool:
            if not db_path.exists():
                return False
            with Store.open(db_path, create=False, readonly=True) as store:
                if len(store.all_paths()) < 3:
                    return False
            return ask(db_path, request("search", "red", "--paths")) is not None

        wait_for(served)
        elsewhere = dict(os.environ, COLUMNS="200", XDG_RUNTIME_DIR=str(tmp_path / "none"))
        cases = [
            ("search", "red"),
            ("search", "red", "--json"),
            ("search", "red", "--jsonl", "--limit", "2"),
            ("search", "red", "--paths", "-0"),
            ("search", "red", "--format", "{score:.3f} {path}"),
            ("similar", str(root / "red.jpg"), "--json"),
            ("search", "red", "--type", "audio"),  # no results: exit 1
            ("search", "red", "--limit", "0"),  # a bad value: exit 2
            ("similar", str(tmp_path / "nothing.jpg")),
        ]
        codes = set()
        for argv in cases:
            through = ask(db_path, request(*argv))
            assert through is not None, argv
            here = subprocess.run(fake_cli(*argv), capture_output=True, env=elsewhere)
            assert (through.stdout, through.stderr, through.code) == (
                here.stdout,
                here.stderr,
                here.returncode,
            ), argv
            codes.add(here.returncode)
        assert codes == {0, 1, 2}
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert not socket_path(db_path).exists()  # type: ignore[union-attr]


def test_the_cli_prints_the_services_answer(tmp_path: Path, db_path: Path, runtime_dir: Path):
    service = Service(
        db_path, __version__, lambda req: Answer(b"from the service\n", b"a note\n", 3)
    )
    try:
        done = subprocess.run(fake_cli("search", "red"), capture_output=True)
    finally:
        service.close()
    assert (done.stdout, done.stderr, done.returncode) == (b"from the service\n", b"a note\n", 3)


def test_a_service_of_another_version_or_none_leaves_the_search_here(
    tmp_path: Path, db_path: Path, runtime_dir: Path
):
    service = Service(db_path, "0.0.0-other", lambda req: Answer(b"wrong\n", b"", 0))
    try:
        done = subprocess.run(fake_cli("search", "red"), capture_output=True, text=True)
    finally:
        service.close()
    # Answered here: there is no index.
    assert done.returncode == 2
    assert "no index at" in done.stderr
    started = time.monotonic()
    again = subprocess.run(fake_cli("search", "red"), capture_output=True, text=True)
    assert again.returncode == 2
    assert "no index at" in again.stderr
    assert time.monotonic() - started < 30


def test_the_socket_is_the_owners_only(tmp_path: Path, db_path: Path, runtime_dir: Path):
    service = Service(db_path, __version__, lambda req: Answer(b"secret\n", b"", 0))
    try:
        path = service.path
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert ask(db_path, request("search", "x")) == Answer(b"secret\n", b"", 0)
        if os.getuid() == 0:
            # Another user (nobody) cannot reach it.
            child = os.fork()
            if child == 0:
                os.setgid(65534)
                os.setuid(65534)
                os._exit(0 if ask(db_path, request("search", "x")) is None else 1)
            _, status = os.waitpid(child, 0)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        service.close()
    assert not path.exists()
