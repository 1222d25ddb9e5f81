"""`mediafind serve`: a local results page, private by default.

The page (mediafind/page/) searches through one JSON endpoint whose body is
exactly what `mediafind search --json` prints, and shows thumbnails, plays
videos and recordings from their moments, and asks for "more like this".

Who may read the library: the server binds the loopback address on a free
port, and every request must carry a random token, given once in the URL it
prints (it then lives in an HttpOnly, SameSite=Lax cookie, as Jupyter's does)
or as `Authorization: Bearer TOKEN`; other local users and web pages in the
same browser cannot guess it. A request whose Host header is not the bound
address is refused, so a web page cannot reach the server under a hostname
of its own that resolves to 127.0.0.1 (DNS rebinding).

What it serves: only files the index holds, named by their index id; no path
from a URL is ever opened. A file is served only while it is the regular file
that was indexed (same size and modification time, checked on the handle
that is read), so a file replaced by a link to something else is refused.

Endpoints (all GET, all behind the token):
  /                      the page
  /static/page.js|.css   its script and style
  /api/info              the index's kinds, modalities, counts and folders (with
                         when each was last indexed), for the filters and the
                         start page: what `mediafind status` shows, no more;
                         and the page size (`limit`) and its most (`max_limit`)
  /api/search            the results (search's arguments as query parameters;
                         `like=ID` or `like=ID@SECONDS` for "more like this";
                         `in=FOLDER` absolute or relative to an indexed folder);
                         the body is the CLI's JSON, byte for byte; headers
                         give each result's file id (`X-Mediafind-Ids`) and
                         its thumbnail's address (`X-Mediafind-Thumbnails`),
                         comma-separated, in order, "" where there is none
  /thumb/ID?t=SECONDS    a photo's thumbnail, or a video's at a moment (with
                         `v=`, the content's version: kept by the browser)
  /media/ID              the file itself, with HTTP range requests
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import html
import io
import ipaddress
import json
import logging
import mimetypes
import os
import re
import secrets
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediafind import config
from mediafind.db import FileRecord
from mediafind.errors import MediaError, MediafindError, UsageError, one_line
from mediafind.library import Library, NotServed
from mediafind.thumbnails import cache_key

if TYPE_CHECKING:
    from mediafind.modalities import Example
    from mediafind.query import SearchResult

# Bytes read from a media file per step: large enough that a video streams
# with few system calls, small enough that a seek answers at once.
CHUNK = 512 * 1024
IDS_HEADER = "X-Mediafind-Ids"
THUMBNAILS_HEADER = "X-Mediafind-Thumbnails"
WORDS_HEADER = "X-Mediafind-Words"
# A thumbnail's address names the content it shows (its hash), so a browser
# may keep it: the address changes when the file does.
KEEP_THUMBNAIL = "private, max-age=31536000, immutable"
# The page and its data are for this browser tab only: no framing, no
# scripts, styles or media from anywhere else, no referrer with the token.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Types browsers need and Python's table lacks or gets wrong on some systems.
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
}
# The search page's parameters, as the library names its arguments in errors.
_PARAMETER_NAMES = {
    "query": "q",
    "like": "like",
    "like_weight": "like",
    "kinds": "type",
    "modalities": "modality",
    "folders": "in",
    "since": "since",
    "until": "until",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "min_score": "min_score",
    "limit": "limit",
}


def search_page(
    library: Library, params: Sequence[tuple[str, str]]
) -> tuple[list[SearchResult], list[FileRecord | None]]:
    """The results for the page's parameters, and each one's indexed file.
    Folders (`in`) are relative to the indexed folders, not to where the
    server was started."""
    from mediafind.query import indexed_folders, make_filters

    values: dict[str, list[str]] = {}
    for name, value in params:
        if value.strip():
            values.setdefault(name, []).append(value.strip())

    def one(name: str) -> str | None:
        found = values.get(name)
        return found[-1] if found else None

    with library.lock:  # resolving a folder reads the index
        folders = indexed_folders(library.store, values.get("in", []))
    filters = make_filters(
        folders=folders,
        since=one("since"),
        until=one("until"),
        min_duration=one("min_duration"),
        max_duration=one("max_duration"),
    )
    return library.search(
        one("q"),
        like=[_example(library, spec) for spec in values.get("like", [])],
        kinds=values.get("type", []),
        modalities=values.get("modality", []),
        filters=filters,
        limit=_number(one("limit"), "limit", int) or None,
        min_score=_number(one("min_score"), "min_score", float),
    )


def _example(library: Library, spec: str) -> Example:
    """`ID` or `ID@SECONDS`: an indexed file (or a moment of it) as an example."""
    head, _, at = spec.partition("@")
    file_id = _number(head, "like", int)
    with library.lock:
        record = library.store.file_by_id(file_id) if 0 < file_id < 2**63 else None
    if record is None:
        raise UsageError(f"{{argument}} {spec}: no such file in the index", argument="like")
    return library.example(record, _number(at, "like", float) if at else None)


def thumbnail_address(result: SearchResult, record: FileRecord | None) -> str:
    """Where the page finds a result's picture: a photo, or a video at its best
    moment, named with its content; "" for a recording."""
    if record is None or record.kind not in ("image", "video"):
        return ""
    # To the millisecond, as the cache names it (a frame lasts 17 ms or more).
    query = f"t={round(result.start or 0.0, 3)!r}&" if record.kind == "video" else ""
    return f"/thumb/{record.id}?{query}v={_version(record)}"


def _snippet(result: SearchResult) -> dict[str, Any] | None:
    """A result's snippet for the page, its marks counted as JavaScript counts
    characters (UTF-16 units: an emoji is two)."""
    if result.snippet is None:
        return None
    text = result.snippet.text

    def units(at: int) -> int:
        return len(text[:at].encode("utf-16-le")) // 2

    return {"text": text, "marks": [[units(s), units(e)] for s, e in result.snippet.marks]}


def _version(record: FileRecord) -> str:
    return (record.content_hash or f"{record.size:x}{record.mtime_ns:x}")[:16]


def _number(text: str | None, name: str, kind: Callable[[str], Any]) -> Any:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{{argument}} {text!r} is not a number", argument=name) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{{argument}} {text!r} is not a number", argument=name)
    return value


# Media files and ranges -------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range (first, last) a Range header asks for; None for the
    whole file (no header, several ranges or another unit, which a server may
    answer whole). Raises ValueError when the range cannot be satisfied."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # the last N bytes
        if int(last) == 0 or size == 0:
            raise ValueError("empty range")
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


def open_indexed(record: FileRecord) -> tuple[int, os.stat_result]:
    """A descriptor on the indexed file, checked on the descriptor itself: a
    regular file (never a FIFO or a device), with the size and modification
    time it was indexed with. NotServed saying why not."""
    from mediafind.hashing import open_regular

    try:
        handle = open_regular(record.path)
    except MediaError as error:
        reason = str(error)
        if reason == "file disappeared while indexing":
            reason = "no longer on disk (deleted or moved since it was indexed)"
        raise NotServed(f"{record.path}: {reason}") from None
    with handle:
        descriptor = os.dup(handle.fileno())
    info = os.fstat(descriptor)
    if info.st_size != record.size or info.st_mtime_ns != record.mtime_ns:
        os.close(descriptor)
        raise NotServed(
            f"{record.path}: changed since it was indexed; run mediafind index to see it"
        )
    return descriptor, info


def media_type(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    return MEDIA_TYPES.get(extension) or mimetypes.guess_type(path)[0] or "application/octet-stream"


class FileSlice(Response):
    """Bytes [start, stop) of an open descriptor; the descriptor is closed
    when done, and when the client goes away mid-way (a video seeking)."""

    def __init__(
        self, descriptor: int, start: int, stop: int, status: int, headers: dict[str, str]
    ) -> None:
        super().__init__(status_code=status, headers=headers)
        self.descriptor = descriptor
        self.start = start
        self.stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def send_then_stop() -> None:
                    await self._send(scope, send)
                    group.cancel_scope.cancel()

                group.start_soon(send_then_stop)
                # A browser seeking in a video drops the request it no longer
                # needs: reading the rest of the file for nobody stops then.
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()
        finally:
            os.close(self.descriptor)

    async def _send(self, scope: Scope, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        head = scope.get("method") == "HEAD"
        position = self.stop if head else self.start
        while position < self.stop:
            count = min(CHUNK, self.stop - position)
            chunk = await anyio.to_thread.run_sync(os.pread, self.descriptor, count, position)
            if not chunk:
                break  # the file was cut short while being sent
            position += len(chunk)
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": position < self.stop}
            )
        if position < self.stop or self.start >= self.stop or head:
            await send({"type": "http.response.body", "body": b""})


def media_response(record: FileRecord, range_header: str | None, if_range: str | None) -> Response:
    """The indexed file, whole or the range asked for (so a video seeks)."""
    descriptor, info = open_indexed(record)
    size = info.st_size
    tag = f'"{size:x}-{info.st_mtime_ns:x}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": tag,
        "Cache-Control": "private, no-cache",
        "Content-Type": media_type(record.path),
    }
    try:
        # A range of a version the client no longer has: the whole new one instead.
        wanted = parse_range(range_header, size) if if_range in (None, tag) else None
    except ValueError:
        os.close(descriptor)
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = wanted or (0, size - 1)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(max(0, last - first + 1))
    return FileSlice(descriptor, first, last + 1, 206 if wanted else 200, headers)


# Who may ask ----------------------------------------------------------------


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host headers a request may carry: the bound address, and for the
    loopback address its usual names; for all addresses (0.0.0.0), this
    machine's names too."""
    names = {host.lower().strip("[]")}
    try:
        address: Any = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if host == "localhost" or (address is not None and address.is_loopback):
        names |= {"127.0.0.1", "localhost", "::1"}
    if address is not None and address.is_unspecified:
        names |= {"127.0.0.1", "localhost", "::1", socket.gethostname().lower()}
        names.add(socket.getfqdn().lower())
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(socket.gethostname(), None):
                names.add(str(info[4][0]).lower())
    spelled = {f"[{name}]" if ":" in name else name for name in names}
    return frozenset({f"{name}:{port}" for name in spelled} | (spelled if port == 80 else set()))


class Guard:
    """Lets through only requests for the bound address that carry the token.

    The token comes once in the URL (`?token=`): the answer sets it as a
    cookie and redirects to the same address without it, so it stays out of
    the history and of what the page's script can read (HttpOnly). Scripts
    send it as `Authorization: Bearer TOKEN`.

    The cookie is SameSite=Lax, not Strict: the address is opened from
    elsewhere (a terminal, `--open`'s file), and a Strict cookie set while
    arriving from elsewhere is not sent on that arrival's own redirect (the
    page would answer 403). Lax still keeps it off every request another
    site's page makes (its images, scripts, fetches); only a navigation to
    the page carries it, which shows the user the page and the other site
    nothing, and nothing here changes anything.
    """

    def __init__(self, app: ASGIApp, token: str, hosts: frozenset[str], cookie: str) -> None:
        self.app = app
        self.token = token.encode()
        self.hosts = hosts
        self.cookie = cookie

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # nothing else is served (no websockets)
            return
        request = Request(scope)
        if request.headers.get("host", "").lower() not in self.hosts:
            response: Response = PlainTextResponse(
                "mediafind: refused: this server answers only to its own address "
                "(a Host header naming another is how DNS rebinding attacks look)\n",
                status_code=400,
            )
        elif "token" in request.query_params:
            response = self._exchange(request)
        elif self._matches(request.cookies.get(self.cookie)) or self._matches(_bearer(request)):
            await self.app(scope, receive, send)
            return
        else:
            response = PlainTextResponse(
                "mediafind: open the address that mediafind serve printed (it carries a token)\n",
                status_code=403,
            )
        response.headers.update(SECURITY_HEADERS)
        await response(scope, receive, send)

    def _exchange(self, request: Request) -> Response:
        """A token in the URL: to a cookie, and back to the URL without it."""
        if not self._matches(request.query_params.get("token")):
            return PlainTextResponse("mediafind: wrong token\n", status_code=403)
        rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)]
        kept = urlencode([(k, v) for k, v in rest if k != "token"])
        # One leading slash: "//host/..." would send the browser to another site.
        path = "/" + quote(request.url.path).lstrip("/")
        response = Response(
            status_code=303, headers={"Location": path + (f"?{kept}" if kept else "")}
        )
        response.set_cookie(
            self.cookie, self.token.decode(), httponly=True, samesite="lax", path="/"
        )
        return response


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else None


# The application ------------------------------------------------------------

_PAGE_FILES = {"page.js": "text/javascript", "page.css": "text/css"}


def _page_file(name: str) -> bytes:
    return resources.files("mediafind").joinpath("page", name).read_bytes()


def _error(status: int, message: str) -> Response:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )


def create_app(library: Library, token: str, hosts: frozenset[str], cookie: str) -> ASGIApp:
    """The results page's application, behind its Guard."""
    from mediafind.output import print_results_json

    page = {name: _page_file(name) for name in ("index.html", *_PAGE_FILES)}

    def index(request: Request) -> Response:
        return HTMLResponse(page["index.html"], headers={"Cache-Control": "no-store"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _PAGE_FILES:
            return PlainTextResponse("not found\n", status_code=404)
        return Response(
            page[name], media_type=_PAGE_FILES[name], headers={"Cache-Control": "no-cache"}
        )

    def info(request: Request) -> Response:
        return JSONResponse(library.info(), headers={"Cache-Control": "no-store"})

    def search(request: Request) -> Response:
        try:
            results, records = search_page(library, request.query_params.multi_items())
        except MediafindError as error:
            return _error(400, error.worded(_PARAMETER_NAMES))
        # What `mediafind search --json` prints, written by the same function.
        body = io.StringIO()
        print_results_json(results, body)
        ids = ",".join(str(record.id) if record else "" for record in records)
        pictures = ",".join(map(thumbnail_address, results, records))
        return Response(
            body.getvalue(),
            media_type="application/json",
            headers={
                IDS_HEADER: ids,
                THUMBNAILS_HEADER: pictures,
                WORDS_HEADER: json.dumps([_snippet(result) for result in results]),
                "Cache-Control": "no-store",
            },
        )

    def thumb(request: Request) -> Response:
        try:
            time = _number(request.query_params.get("t"), "t", float)
            record = library.file(request.path_params["file_id"])
            key = cache_key(record, time)
            headers = {"ETag": f'"{key}"', "Cache-Control": "private, no-cache"} if key else {}
            if request.query_params.get("v") == _version(record):
                headers["Cache-Control"] = KEEP_THUMBNAIL
            if key and request.headers.get("if-none-match") == f'"{key}"':
                return Response(status_code=304, headers=headers)
            data = library.thumbnail(record, time)
        except MediafindError as error:
            return PlainTextResponse(f"{error}\n", status_code=404)
        return Response(data, media_type="image/jpeg", headers=headers)

    def media(request: Request) -> Response:
        try:
            record = library.file(request.path_params["file_id"])
            return media_response(
                record, request.headers.get("range"), request.headers.get("if-range")
            )
        except NotServed as error:
            return PlainTextResponse(f"{error}\n", status_code=404)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/info", info),
        Route("/api/search", search),
        Route("/thumb/{file_id:int}", thumb),
        Route("/media/{file_id:int}", media),
    ]
    app = Starlette(routes=routes)
    return Guard(_Secured(app), token, hosts, cookie)


class _Secured:
    """Adds the security headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, secured)


# Running --------------------------------------------------------------------


def bind(host: str = config.DEFAULT_SERVE_HOST, port: int = 0) -> socket.socket:
    """A listening socket on `host` and `port` (0: a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise UsageError(
            f"{{argument}} {host}: not an address of this machine ({error.strerror})",
            argument="host",
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        if port and error.errno == errno.EADDRINUSE:
            raise UsageError(
                f"{{argument}} {port} is in use; choose another, or leave it out for a free one",
                argument="port",
            ) from None
        raise UsageError(
            f"{{argument}} {host}: cannot listen there ({error.strerror})", argument="host"
        ) from None
    return sock


def page_url(sock: socket.socket, token: str) -> str:
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def opening_page(url: str) -> Path:
    """A file that sends a browser on to `url`, in a folder only this user
    can read: opening it rather than the URL keeps the token off the
    browser's command line, which every local user can list (`ps`), as
    Jupyter does."""
    page = Path(tempfile.mkdtemp(prefix="mediafind-")) / "open.html"
    address = html.escape(url, quote=True)
    page.write_text(
        '<!doctype html><meta charset="utf-8"><title>mediafind</title>'
        f'<meta http-equiv="refresh" content="0;url={address}">'
        f'<a href="{address}">Open the results page</a>\n',
        encoding="utf-8",
    )
    return page


def serve(
    library: Library,
    sock: socket.socket,
    *,
    token: str | None = None,
    ready: Callable[[str], None] = lambda url: None,
    interrupted: Callable[[], None] | None = None,
) -> None:
    """Answer requests on `sock` until interrupted. `ready(url)` is called
    once the page answers; on Ctrl-C or SIGTERM, `interrupted()` (by default
    KeyboardInterrupt is raised): it should end the process at once, since
    a browser holds connections open (a paused video) that a graceful stop
    would wait for."""
    import uvicorn

    token = token or secrets.token_urlsafe(32)
    host, port = sock.getsockname()[:2]
    app = create_app(library, token, allowed_hosts(host, port), f"mediafind-{port}")
    url = page_url(sock, token)

    def stop() -> None:
        if interrupted is not None:
            interrupted()
        raise KeyboardInterrupt

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                ready(url)

        def handle_exit(self, sig: int, frame: Any) -> None:
            stop()

    _quiet_logs()
    config_ = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="off",
        ws="none",
        loop="asyncio",
        timeout_keep_alive=30,
    )
    Server(config_).run(sockets=[sock])


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        reason = ""
        if record.exc_info and record.exc_info[1] is not None:
            reason = ": " + one_line(record.exc_info[1])
        return f"mediafind: server error: {record.getMessage().strip()}{reason}"


def _quiet_logs() -> None:
    """Errors only, one line each on stderr; no access log, no banner."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler] if name == "uvicorn.error" else []
        logger.setLevel(logging.ERROR)
        logger.propagate = False
