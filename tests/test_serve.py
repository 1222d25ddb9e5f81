"""`mediafind serve` as a person's browser and a hostile page would meet it: a
real process on a free port, asked through real HTTP clients."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from conftest import COLORS, FAKE_CLI, draw_photo, fake_cli
from media_factory import Shot, make_audio, make_video

from mediafind.serve import allowed_hosts, parse_range

# `mediafind serve ARGS` with the fake models (as FAKE_CLI runs the CLI).
FAKE_SERVE = FAKE_CLI.replace(
    "from mediafind.cli import main;", "import mediafind.cli_view; from mediafind.cli import main;"
)
SHOTS = [
    Shot(2.0, (220, 30, 30), (250, 250, 250)),
    Shot(2.0, (30, 200, 60), (10, 10, 10)),
    Shot(2.0, (30, 60, 220), (250, 220, 40)),
]
SECRET = b"the neighbours' private notes"


@dataclass
class Served:
    """A running server and the library behind it."""

    process: subprocess.Popen[str]
    url: str  # as printed, with the token
    base: str
    token: str
    port: int
    library: Path
    outside: Path
    db: Path
    env: dict[str, str]

    def id_of(self, name: str) -> int:
        import sqlite3

        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT id FROM files WHERE path = ?", (str(self.library / name),)
            ).fetchone()
        return int(row[0])

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.token}", **headers},
            timeout=30,
        )


def server_environment(root: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MEDIAFIND_") and key not in ("COLUMNS", "NO_COLOR")
    }
    env.update(
        MEDIAFIND_DB=str(root / "index.db"),
        MEDIAFIND_CONFIG=str(root / "config.toml"),
        MEDIAFIND_CACHE=str(root / "cache" / "models"),
        HF_HUB_OFFLINE="1",
        XDG_DATA_HOME=str(root / "xdg-data"),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
    )
    return env


def make_library(root: Path) -> tuple[Path, Path]:
    """Photos, a video with three shots and a recording; and outside it,
    what must never be served: a secret, reachable through a link inside."""
    library = root / "Pictures"
    for name in ("red", "green", "blue", "yellow"):
        draw_photo(library / f"{name}.jpg", COLORS[name], size=(320, 240))
    draw_photo(library / "doomed.jpg", COLORS["purple"])
    draw_photo(library / "victim.jpg", COLORS["orange"])
    draw_photo(library / "fifo.jpg", COLORS["white"])
    draw_photo(library / "trips" / "beach.jpg", COLORS["blue"], size=(320, 240))
    make_video(library / "party.mp4", SHOTS, size=(160, 96), gop_seconds=2.0)
    make_audio(library / "tone.wav", [("tone", 3.0), ("noise", 3.0)])
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (library / "escape").symlink_to(outside, target_is_directory=True)
    return library, outside


def start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_SERVE, "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"no URL printed: {line!r} {process.stderr.read()!r}")
    return process, line


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    return process.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    library, outside = make_library(root)
    env = server_environment(root)
    indexing = subprocess.run(fake_cli("index", str(library)), env=env, capture_output=True)
    assert indexing.returncode == 0, indexing.stderr
    process, line = start(env)
    url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
    parts = urlsplit(url)
    token = parts.query.removeprefix("token=")
    yield Served(
        process,
        url,
        f"{parts.scheme}://{parts.netloc}",
        token,
        parts.port or 0,
        library,
        outside,
        root / "index.db",
        env,
    )
    stop(process)


def raw_get(served: Served, path: str, **headers: str) -> tuple[int, bytes]:
    """GET `path` exactly as written (no client normalises it)."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", headers.pop("Host", f"127.0.0.1:{served.port}"))
        connection.putheader("Authorization", f"Bearer {served.token}")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_it_prints_one_line_with_a_private_url(served: Served):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{40,}", served.url)
    assert served.port != 0


def test_search_answers_exactly_what_search_json_prints(served: Served):
    cli = subprocess.run(
        fake_cli("search", "red", "--json"), env=served.env, capture_output=True, check=True
    )
    with served.client() as client:
        response = client.get("/api/search", params={"q": "red"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == cli.stdout
    results = response.json()
    ids = [int(i) for i in response.headers["x-mediafind-ids"].split(",")]
    assert len(ids) == len(results) > 0
    pictures = response.headers["x-mediafind-thumbnails"].split(",")
    for result, file_id, picture in zip(results, ids, pictures, strict=True):
        assert served.id_of(str(Path(result["path"]).relative_to(served.library))) == file_id
        if result["kind"] == "audio":
            assert picture == ""
            continue
        address = urlsplit(picture)
        assert address.path == f"/thumb/{file_id}"
        asked = parse_qs(address.query)
        assert re.fullmatch("[0-9a-f]{16}", asked["v"][0])
        if result["kind"] == "video":  # the best moment, to the millisecond
            assert abs(float(asked["t"][0]) - result["start"]) <= 0.0005
        else:
            assert "t" not in asked


def test_search_filters_and_errors(served: Served):
    with served.client() as client:
        videos = client.get("/api/search", params=[("q", "a party"), ("type", "video")]).json()
        assert [Path(r["path"]).name for r in videos] == ["party.mp4"]
        assert videos[0]["moments"] and videos[0]["start"] is not None
        heard = client.get("/api/search", params={"q": "a tone", "modality": "audio"}).json()
        assert {r["modality"] for r in heard} == {"audio"}
        bad = client.get("/api/search", params={"q": "red", "since": "yesterday"})
        assert bad.status_code == 400
        assert "since 'yesterday'" in bad.json()["error"]
        empty = client.get("/api/search")
        assert empty.status_code == 400 and "nothing to search for" in empty.json()["error"]


def test_in_folder_is_relative_to_an_indexed_folder(served: Served):
    # A person at the page has no current folder: "trips" is the one inside
    # the indexed folder, wherever the server was started.
    beach = str(served.library / "trips" / "beach.jpg")
    with served.client() as client:
        for folder in ("trips", "trips/", str(served.library / "trips")):
            inside = client.get("/api/search", params=[("q", "a photo"), ("in", folder)])
            assert inside.status_code == 200, folder
            assert [r["path"] for r in inside.json()] == [beach], folder
        for folder in ("holidays", str(served.outside), "escape"):
            nowhere = client.get("/api/search", params=[("q", "a photo"), ("in", folder)])
            assert nowhere.status_code == 400, folder
            error = nowhere.json()["error"]
            assert f"in {folder!r}: nothing is indexed there" in error
            assert f"the indexed folders are {served.library}" in error


def test_a_relative_folder_may_be_in_several_indexed_folders(tmp_path: Path):
    from mediafind.db import Store
    from mediafind.errors import UsageError
    from mediafind.query import indexed_folders

    home, work = tmp_path / "home", tmp_path / "work"
    draw_photo(home / "2023" / "a.jpg", COLORS["red"])
    draw_photo(work / "2023" / "b.jpg", COLORS["blue"])
    draw_photo(work / "2024" / "c.jpg", COLORS["green"])
    env = server_environment(tmp_path)
    for folder in (home, work):
        subprocess.run(fake_cli("index", str(folder)), env=env, capture_output=True, check=True)
    with Store.open(tmp_path / "index.db", create=False) as store:
        assert indexed_folders(store, ["2023"]) == [str(home / "2023"), str(work / "2023")]
        assert indexed_folders(store, ["2024", str(work)]) == [str(work / "2024"), str(work)]
        with pytest.raises(UsageError) as raised:
            indexed_folders(store, ["2025"])
    assert str(raised.value).startswith("folders '2025': nothing is indexed there")
    assert f"the indexed folders are {home}, {work} (" in str(raised.value)


def test_info_says_what_status_says_for_the_start_page(served: Served):
    status = json.loads(
        subprocess.run(
            fake_cli("status", "--json"), env=served.env, capture_output=True, check=True
        ).stdout
    )
    with served.client() as client:
        info = client.get("/api/info").json()
    assert info["files"] == {kind: n for kind, n in status["files"].items() if n}
    assert info["last_indexed_at"] == status["last_indexed_at"] is not None
    assert info["roots"] == [
        {"path": r["path"], "last_indexed_at": r["last_indexed_at"]} for r in status["roots"]
    ]
    assert info["roots"][0]["path"] == str(served.library)
    # The page asks for more by this step: the README's default of 20.
    assert (info["limit"], info["max_limit"]) == (20, 500)


def test_more_like_this_runs_similar(served: Served):
    red = served.library / "red.jpg"
    cli = subprocess.run(
        fake_cli("similar", str(red), "--json"), env=served.env, capture_output=True, check=True
    )
    with served.client() as client:
        response = client.get("/api/search", params={"like": served.id_of("red.jpg")})
        assert response.content == cli.stdout
        assert str(red) not in {r["path"] for r in response.json()}
        moment = client.get("/api/search", params={"like": f"{served.id_of('party.mp4')}@2.5"})
        assert moment.status_code == 200 and moment.json()
        unknown = client.get("/api/search", params={"like": "999999"})
        assert unknown.status_code == 400 and "no such file" in unknown.json()["error"]


def test_the_page_and_its_files(served: Served):
    with served.client() as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="/static/page.js"' in page.text
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet
        assert client.get("/static/page.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/static/page.css").status_code == 200
        assert client.get("/static/serve.py").status_code == 404
        info = client.get("/api/info").json()
        assert info["folders"] == [str(served.library)]
        assert set(info["kinds"]) >= {"image", "video", "audio"}
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_every_request_needs_the_token(served: Served):
    with httpx.Client(base_url=served.base, timeout=30) as stranger:
        for path in (
            "/",
            "/api/info",
            "/api/search?q=red",
            f"/media/{served.id_of('red.jpg')}",
            "/thumb/1",
        ):
            response = stranger.get(path)
            assert response.status_code == 403, path
            assert b"JFIF" not in response.content and b"red.jpg" not in response.content
        assert stranger.get("/?token=" + "x" * len(served.token)).status_code == 403
        assert stranger.get("/", headers={"Authorization": "Bearer nope"}).status_code == 403

    with httpx.Client(base_url=served.base, timeout=30) as browser:
        first = browser.get(f"/?token={served.token}&q=red")
        assert first.status_code == 303
        assert first.headers["location"] == "/?q=red"  # the token leaves the address
        cookie = first.headers["set-cookie"]
        assert served.token in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert browser.get(first.headers["location"]).status_code == 200
        assert browser.get("/api/search", params={"q": "red"}).status_code == 200


def test_the_token_never_redirects_elsewhere(served: Served):
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request(
            "GET", f"//evil.example/?token={served.token}", headers={"Host": served.base[7:]}
        )
        response = connection.getresponse()
        assert response.status == 303
        assert response.getheader("location") == "/evil.example/"
    finally:
        connection.close()


def test_open_shows_the_page_in_the_browser(served: Served, tmp_path: Path):
    opened = tmp_path / "opened.txt"
    recorder = f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])"
    env = {**served.env, "BROWSER": f"{sys.executable} -c {shlex.quote(recorder)} %s"}
    process, line = start(env, "--open")
    try:
        deadline = time.monotonic() + 20
        while not opened.exists() or not opened.read_text():
            assert time.monotonic() < deadline, "the browser was not opened"
            time.sleep(0.05)
        # A private file that leads to the URL: the token is not on the
        # browser's command line, which every local user can list.
        given = opened.read_text()
        url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
        token = url.split("token=")[1]
        assert given.startswith("file:///") and token not in given
        page = Path(urlsplit(given).path)
        assert f'content="0;url={url}"' in page.read_text()
        assert page.parent.stat().st_mode & 0o777 == 0o700
    finally:
        assert stop(process) == 130


def test_a_foreign_host_header_is_refused(served: Served):
    for host in (
        "evil.example",
        f"evil.example:{served.port}",
        f"127.0.0.1.evil.example:{served.port}",
        f"127.0.0.1:{served.port + 1}",
        "",
    ):
        status, body = raw_get(served, "/api/search?q=red", Host=host)
        assert status == 400, host
        assert b"red.jpg" not in body
    for name in ("127.0.0.1", "localhost", "LOCALHOST"):
        host = f"{name}:{served.port}"
        assert raw_get(served, "/api/search?q=red", Host=host)[0] == 200


def test_range_requests_let_videos_seek(served: Served):
    video = (served.library / "party.mp4").read_bytes()
    path = f"/media/{served.id_of('party.mp4')}"
    with served.client() as client:
        whole = client.get(path)
        assert whole.status_code == 200 and whole.content == video
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        part = client.get(path, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == video[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(video)}"
        assert part.headers["content-length"] == "1000"
        tail = client.get(path, headers={"Range": "bytes=-500"})
        assert tail.status_code == 206 and tail.content == video[-500:]
        rest = client.get(path, headers={"Range": f"bytes={len(video) - 10}-"})
        assert rest.content == video[-10:]
        beyond = client.get(path, headers={"Range": f"bytes={len(video)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(video)}"
        stale = client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        assert stale.status_code == 200 and stale.content == video
        fresh = client.get(path, headers={"Range": "bytes=0-9", "If-Range": whole.headers["etag"]})
        assert fresh.status_code == 206 and fresh.content == video[:10]
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(video))


def test_thumbnails_of_photos_and_moments(served: Served):
    from io import BytesIO

    from PIL import Image

    with served.client() as client:
        photo = client.get(f"/thumb/{served.id_of('green.jpg')}")
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
        assert Image.open(BytesIO(photo.content)).size == (256, 192)
        assert photo.headers["cache-control"] == "private, no-cache"
        again = client.get(
            f"/thumb/{served.id_of('green.jpg')}", headers={"If-None-Match": photo.headers["etag"]}
        )
        assert again.status_code == 304
        # The address the search gives names the content: the browser may keep it.
        found = client.get("/api/search", params={"q": "green"})
        addresses = dict(
            zip(
                [Path(r["path"]).name for r in found.json()],
                found.headers["x-mediafind-thumbnails"].split(","),
                strict=True,
            )
        )
        kept = client.get(addresses["green.jpg"])
        assert kept.status_code == 200 and kept.content == photo.content
        assert kept.headers["cache-control"] == "private, max-age=31536000, immutable"
        stale = client.get(f"/thumb/{served.id_of('green.jpg')}", params={"v": "0" * 16})
        assert stale.headers["cache-control"] == "private, no-cache"
        video_id = served.id_of("party.mp4")
        for at, shot in ((0.5, 0), (2.5, 1), (4.5, 2)):
            frame = client.get(f"/thumb/{video_id}", params={"t": at})
            picture = Image.open(BytesIO(frame.content)).convert("RGB")
            middle = picture.getpixel((picture.width // 2, picture.height // 2))
            assert all(abs(a - b) < 40 for a, b in zip(middle, SHOTS[shot].color, strict=True))
        assert client.get(f"/thumb/{served.id_of('tone.wav')}").status_code == 404


TRAVERSALS = [
    "/media/../../outside/secret.txt",
    "/media/..%2f..%2foutside%2fsecret.txt",
    "/media/%2e%2e/%2e%2e/outside/secret.txt",
    "/media/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    "/media/%252e%252e/secret.txt",
    "/static/../../outside/secret.txt",
    "/static/..%2f..%2foutside%2fsecret.txt",
    "/static/%2e%2e%2fserve.py",
    "/thumb/..%2f..%2fsecret.txt",
    "/media/1/../../../outside/secret.txt",
    "/media//outside/secret.txt",
    "//outside/secret.txt",
    "/media/-1",
    "/media/99999999999999999999999",
    "/media/1.0",
    "/media/escape/secret.txt",
    "/escape/secret.txt",
    "/Pictures/escape/secret.txt",
]


def test_no_path_from_a_url_is_ever_opened(served: Served):
    absolute = str(served.outside / "secret.txt")
    attempts = [
        *TRAVERSALS,
        "/media/" + quote(absolute, safe=""),
        "/media" + absolute,
        "/static" + absolute,
        "/static/" + quote(absolute, safe=""),
    ]
    for path in attempts:
        status, body = raw_get(served, path)
        assert status in (404, 405), path
        assert SECRET not in body, path


def test_a_file_swapped_for_a_link_outside_is_refused(served: Served, tmp_path: Path):
    # After indexing, a photo is replaced by a link to a file outside the
    # library (the same kind of file, so only its content differs).
    victim = served.library / "victim.jpg"
    secret_photo = draw_photo(served.outside / "private.jpg", COLORS["black"], size=(300, 200))
    victim.unlink()
    victim.symlink_to(secret_photo)
    victim_id = served.id_of("victim.jpg")
    with served.client() as client:
        for path in (f"/media/{victim_id}", f"/thumb/{victim_id}"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert b"changed since it was indexed" in response.content
            assert secret_photo.read_bytes()[:200] not in response.content


def test_a_fifo_in_place_of_a_file_does_not_hang(served: Served):
    fifo = served.library / "fifo.jpg"
    fifo.unlink()
    os.mkfifo(fifo)
    started = time.monotonic()
    with served.client() as client:
        response = client.get(f"/media/{served.id_of('fifo.jpg')}")
    assert response.status_code == 404 and b"not a regular file" in response.content
    assert time.monotonic() - started < 5


def test_a_removed_file_is_a_clear_404(served: Served):
    doomed = served.id_of("doomed.jpg")
    (served.library / "doomed.jpg").unlink()
    with served.client() as client:
        response = client.get(f"/media/{doomed}")
        assert response.status_code == 404
        assert "doomed.jpg: no longer on disk" in response.text
        thumb = client.get(f"/thumb/{doomed}")
        assert thumb.status_code == 404 and "no longer on disk" in thumb.text
        like = client.get("/api/search", params={"like": doomed})
        assert like.status_code == 400 and "no longer on disk" in like.json()["error"]
        assert client.get("/api/search", params={"q": "red"}).status_code == 200
    assert served.process.poll() is None


def test_ctrl_c_stops_it_at_once(served: Served):
    process, _ = start(served.env)
    port = int(re.search(r":(\d+)/", _).group(1))  # type: ignore[union-attr]
    # A browser holds connections open: one idle, one in the middle of a video.
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    time.sleep(0.2)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=5) == 130
    assert time.monotonic() - started < 1.0
    idle.close()
    assert process.stderr is not None and process.stderr.read() == ""  # nothing after the URL


def test_a_port_in_use_is_an_error(served: Served):
    done = subprocess.run(
        [sys.executable, "-c", FAKE_SERVE, "serve", "--port", str(served.port)],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"--port {served.port} is in use" in done.stderr


def test_no_index_is_an_error(tmp_path: Path):
    env = server_environment(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", FAKE_SERVE, "serve"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "no index at" in done.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-9", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=9-3", "bytes=-0"])
def test_unsatisfiable_ranges(header: str):
    with pytest.raises(ValueError):
        parse_range(header, 100)


def test_allowed_hosts():
    assert allowed_hosts("127.0.0.1", 8123) == frozenset(
        {"127.0.0.1:8123", "localhost:8123", "[::1]:8123"}
    )
    assert "[::1]:9000" in allowed_hosts("::1", 9000)
    assert allowed_hosts("192.168.1.20", 80) == frozenset({"192.168.1.20:80", "192.168.1.20"})
    assert f"{socket.gethostname().lower()}:8123" in allowed_hosts("0.0.0.0", 8123)
