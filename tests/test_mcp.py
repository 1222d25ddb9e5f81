"""`mediafind mcp` as an assistant meets it: the MCP SDK's own client starts
the command as a subprocess and talks to it over stdio."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from conftest import COLORS, FAKE_CLI, draw_photo
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult
from media_factory import Shot, make_audio, make_video

T = TypeVar("T")
# `mediafind ARGS` with the fake picture and sound models and the real speech
# modality, which reads subtitles without transcribing: a transcript to read.
FAKE_WITH_SPEECH = FAKE_CLI.replace(
    "[modalities.register(m) for m in fake_modalities()];",
    "[modalities.register(m) for m in fake_modalities()]; "
    "from mediafind.modalities.speech import Speech; modalities.register(Speech());",
)
SRT = """\
1
00:00:00,500 --> 00:00:02,000
Everybody ready?

2
00:00:04,000 --> 00:00:05,800
Happy birthday grandma!

3
00:00:06,500 --> 00:00:09,000
{LONG}
"""
# A cue longer than an answer may carry (1,000 characters a text).
LONG = " ".join(["and then the candles were lit"] * 60) + " thunderous applause"
SHOTS = [
    Shot(2.0, (220, 30, 30), (250, 250, 250)),
    Shot(2.0, (30, 200, 60), (10, 10, 10)),
    Shot(2.0, (30, 60, 220), (250, 220, 40)),
]


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", FAKE_WITH_SPEECH, *args]


@dataclass
class Indexed:
    library: Path
    outside: Path
    env: dict[str, str]

    def cli_json(self, *args: str) -> Any:
        done = subprocess.run(cli_argv(*args), env=self.env, capture_output=True, text=True)
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)


def environment(root: Path, speech_model: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MEDIAFIND_") and key != "HF_HUB_OFFLINE"
    }
    env.update(
        MEDIAFIND_DB=str(root / "index.db"),
        MEDIAFIND_CONFIG=str(root / "config.toml"),
        MEDIAFIND_CACHE=str(root / "cache" / "models"),
        MEDIAFIND_SPEECH_MODEL=speech_model,
        MEDIAFIND_DEVICE="cpu",
        XDG_DATA_HOME=str(root / "xdg-data"),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
    )
    return env


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, tiny_whisper: str) -> Indexed:
    """Photos, a video with subtitles and three shots, a recording; and
    outside the library, a file and a FIFO that must never be opened."""
    root = tmp_path_factory.mktemp("assistant")
    library = root / "Pictures"
    for name in ("red", "green", "blue", "yellow"):
        draw_photo(library / f"{name}.jpg", COLORS[name], size=(640, 480))
    make_video(library / "party.mp4", SHOTS, size=(160, 96), gop_seconds=2.0)
    (library / "party.srt").write_text(SRT.replace("{LONG}", LONG), encoding="utf-8")
    make_audio(library / "tone.wav", [("tone", 3.0), ("noise", 3.0)])
    outside = root / "outside"
    draw_photo(outside / "secret.jpg", COLORS["red"])
    os.mkfifo(outside / "pipe.jpg")
    env = environment(root, tiny_whisper)
    env["HF_HUB_OFFLINE"] = "1"  # indexing, too, must not reach the network
    done = subprocess.run(cli_argv("index", str(library)), env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    del env["HF_HUB_OFFLINE"]  # the server must set it itself
    return Indexed(library, outside, env)


def talk(env: dict[str, str], conversation: Callable[[Client], Awaitable[T]], *args: str) -> T:
    """Start `mediafind mcp ARGS` as an assistant does and hold `conversation` with it."""

    async def run() -> T:
        server = StdioServerParameters(command=sys.executable, args=cli_argv("mcp", *args)[1:])
        server.env = env
        async with Client(server) as client:
            return await conversation(client)

    return anyio.run(run)


def text_of(result: CallToolResult) -> str:
    return result.content[0].text  # type: ignore[union-attr]


def results_of(result: CallToolResult) -> list[dict[str, Any]]:
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))  # type: ignore[no-any-return]


def error_of(result: CallToolResult) -> str:
    assert result.is_error
    assert len(result.content) == 1
    return text_of(result)


def test_it_offers_four_read_only_tools_an_assistant_can_follow(indexed: Indexed):
    async def conversation(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in talk(indexed.env, conversation)}
    assert set(tools) == {"search", "similar", "transcript", "status"}
    for tool in tools.values():
        assert len(tool.description or "") > 60
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.input_schema["type"] == "object"
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert {"kind", "modality", "folder", "since", "until", "limit", "min_score"} <= set(
        search["properties"]
    )
    assert search["properties"]["kind"]["items"]["enum"] == ["image", "video", "audio"]
    assert (search["properties"]["limit"]["minimum"], search["properties"]["limit"]["maximum"]) == (
        1,
        50,
    )
    assert "thumbnails" in search["properties"]
    for name, properties in [(n, t.input_schema["properties"]) for n, t in tools.items()]:
        assert all(p.get("description") for p in properties.values()), name
    assert tools["similar"].input_schema["required"] == ["path"]
    assert tools["transcript"].input_schema["required"] == ["path"]


def test_search_answers_what_search_json_prints(indexed: Indexed):
    asked = [
        ({"query": "red"}, ["red"]),
        ({"query": "a party", "kind": ["video"]}, ["a party", "--type", "video"]),
        (
            {"query": "birthday grandma", "modality": ["speech"]},
            ["birthday grandma", "-m", "speech"],
        ),
        ({"query": "green", "limit": 2}, ["green", "--limit", "2"]),
        (
            {"query": "blue", "folder": [str(indexed.library)], "min_duration": 4},
            ["blue", "--in", str(indexed.library), "--min-duration", "4"],
        ),
    ]

    async def conversation(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("search", {**arguments, "thumbnails": False})
            for arguments, _ in asked
        ]

    answers = talk(indexed.env, conversation)
    for (arguments, flags), answer in zip(asked, answers, strict=True):
        expected = indexed.cli_json("search", *flags, "--json")
        assert results_of(answer) == expected, arguments
        assert len(answer.content) == 1  # thumbnails off: the JSON alone
    assert [Path(r["path"]).name for r in results_of(answers[2])] == ["party.mp4"]
    assert len(LONG) > 1000
    assert results_of(answers[2])[0]["text"] == "Happy birthday grandma!"
    assert len(results_of(answers[3])) == 2
    assert {Path(r["path"]).name for r in results_of(answers[4])} == {"party.mp4", "tone.wav"}


def test_results_carry_small_thumbnails_of_photos_and_moments(indexed: Indexed):
    from PIL import Image

    async def conversation(client: Client) -> CallToolResult:
        return await client.call_tool("search", {"query": "red", "limit": 6})

    answer = talk(indexed.env, conversation)
    results = results_of(answer)
    assert {r["kind"] for r in results} == {"image", "video", "audio"}
    rest = answer.content[1:]
    labels, pictures = rest[0::2], rest[1::2]
    pictured = [(rank, r) for rank, r in enumerate(results, 1) if r["kind"] != "audio"]
    assert len(labels) == len(pictures) == len(pictured)
    for label, picture, (rank, result) in zip(labels, pictures, pictured, strict=True):
        assert label.type == "text" and label.text.startswith(f"Result {rank}: ")
        assert json.dumps(result["path"]) in label.text
        assert picture.type == "image" and picture.mime_type == "image/jpeg"
        image = Image.open(io.BytesIO(base64.b64decode(picture.data)))
        assert image.format == "JPEG" and max(image.size) <= 256
        if result["kind"] == "image":
            name = Path(result["path"]).stem
            assert image.size == (256, 192)  # the 640x480 photo, made small
            # The photo itself: its one colour, within JPEG's error.
            average = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
            assert all(abs(a - b) <= 6 for a, b in zip(average, COLORS[name], strict=True))


def test_similar_answers_what_similar_json_prints(indexed: Indexed):
    red = str(indexed.library / "red.jpg")
    party = str(indexed.library / "party.mp4")

    async def conversation(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("similar", {"path": red, "thumbnails": False}),
            await client.call_tool("similar", {"path": party, "at": "0:03", "thumbnails": False}),
            await client.call_tool("similar", {"path": party, "at": 3, "kind": ["image"]}),
        ]

    by_file, by_moment, photos = talk(indexed.env, conversation)
    assert results_of(by_file) == indexed.cli_json("similar", red, "--json")
    assert red not in [r["path"] for r in results_of(by_file)]
    assert results_of(by_moment) == indexed.cli_json("similar", party + "@3", "--json")
    assert results_of(photos) == indexed.cli_json("similar", party + "@3", "-t", "image", "--json")
    # The moment at 3 s shows the green shot: the green photo is the nearest.
    assert Path(results_of(photos)[0]["path"]).name == "green.jpg"


def test_long_texts_are_cut_to_keep_answers_bounded(indexed: Indexed):
    async def conversation(client: Client) -> CallToolResult:
        arguments = {"query": "thunderous applause", "modality": ["speech"]}
        return await client.call_tool("search", {**arguments, "thumbnails": False})

    found = results_of(talk(indexed.env, conversation))
    full = indexed.cli_json("search", "thunderous applause", "-m", "speech", "--json")
    assert full[0]["text"] == LONG  # the index holds it whole
    cut = LONG[:997] + "..."
    assert len(cut) == 1000
    assert found == [
        {**row, "text": cut, "moments": [{**m, "text": cut} for m in row["moments"]]}
        for row in full
    ]


def test_a_long_transcript_comes_in_parts(tmp_path: Path, tiny_whisper: str):
    """1,205 phrases: the first 1,000, then the rest from where the answer says."""

    def at(millis: int) -> str:
        return f"00:00:{millis // 1000:02d},{millis % 1000:03d}"

    cues = [f"{n}\n{at(3 * n)} --> {at(3 * n + 2)}\nline {n}\n" for n in range(1, 1206)]
    library = tmp_path / "Talks"
    make_video(library / "talk.mp4", [Shot(4.0, COLORS["blue"])], size=(160, 96))
    (library / "talk.srt").write_text("\n".join(cues), encoding="utf-8")
    env = environment(tmp_path, tiny_whisper)
    done = subprocess.run(
        cli_argv("index", str(library), "--no-audio"),
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    path = str(library / "talk.mp4")

    async def conversation(client: Client) -> list[CallToolResult]:
        first = await client.call_tool("transcript", {"path": path})
        note = first.content[1].text  # type: ignore[union-attr]
        start = float(note.rsplit("start=", 1)[1])
        return [first, await client.call_tool("transcript", {"path": path, "start": start})]

    first, rest = talk(env, conversation)
    assert [row["text"] for row in results_of(first)] == [f"line {n}" for n in range(1, 1001)]
    assert first.content[1].text == "205 more phrases: call again with start=3.002"  # type: ignore[union-attr]
    assert [row["text"] for row in results_of(rest)] == [f"line {n}" for n in range(1001, 1206)]
    assert len(rest.content) == 1


def test_status_lists_the_first_20_failures_and_counts_the_rest(tmp_path: Path, tiny_whisper: str):
    library = tmp_path / "Broken"
    library.mkdir()
    for number in range(23):
        (library / f"broken-{number:02d}.jpg").write_bytes(b"\xff\xd8 not really")
    env = environment(tmp_path, tiny_whisper)
    done = subprocess.run(
        cli_argv("index", str(library)), env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True
    )
    assert b"23 failed" in done.stderr, done.stderr

    async def conversation(client: Client) -> tuple[CallToolResult, CallToolResult]:
        return await client.call_tool("search", {"query": "x"}), await client.call_tool("status")

    searched, answer = talk(env, conversation)
    # Nothing to search in yet, but what the index holds is there to see.
    assert error_of(searched).endswith("is empty; add media with: mediafind index FOLDER")
    assert not answer.is_error, text_of(answer)
    listed = json.loads(text_of(answer))["failed"]
    everything = json.loads(
        subprocess.run(cli_argv("status", "--json"), env=env, capture_output=True).stdout
    )["failed"]
    assert len(everything) == 23
    assert listed == everything[:20]
    assert [block.text for block in answer.content[1:]] == [  # type: ignore[union-attr]
        "3 more failed files not listed"
    ]


def test_transcript_and_status(indexed: Indexed):
    party = str(indexed.library / "party.mp4")

    async def conversation(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("transcript", {"path": party}),
            await client.call_tool("transcript", {"path": party, "start": 3}),
            await client.call_tool("status", {}),
        ]

    whole, later, status = talk(indexed.env, conversation)
    cut = LONG[:997] + "..."
    assert results_of(whole) == [
        {"start": 0.5, "end": 2.0, "text": "Everybody ready?"},
        {"start": 4.0, "end": 5.8, "text": "Happy birthday grandma!"},
        {"start": 6.5, "end": 9.0, "text": cut},
    ]
    assert results_of(later) == [
        {"start": 4.0, "end": 5.8, "text": "Happy birthday grandma!"},
        {"start": 6.5, "end": 9.0, "text": cut},
    ]
    info = json.loads(text_of(status))
    expected = indexed.cli_json("status", "--json")
    assert info["files"] == expected["files"] == {"image": 4, "video": 1, "audio": 1}
    assert info["roots"] == expected["roots"]
    assert [r["path"] for r in info["roots"]] == [str(indexed.library)]


def test_bad_arguments_are_errors_in_words_and_the_server_goes_on(indexed: Indexed):
    async def conversation(client: Client) -> tuple[list[CallToolResult], CallToolResult]:
        bad = [
            await client.call_tool("search", {"query": "red", "kind": ["banana"]}),
            await client.call_tool("search", {"query": "red", "limit": 0}),
            await client.call_tool("search", {"query": "red", "limit": 100000}),
            await client.call_tool("search", {"query": "red", "since": "last summer"}),
            await client.call_tool("search", {"query": "  "}),
            await client.call_tool("search", {}),
            await client.call_tool(
                "similar", {"path": str(indexed.library / "red.jpg"), "at": "9:99"}
            ),
            await client.call_tool("transcript", {"path": str(indexed.library / "red.jpg")}),
        ]
        return bad, await client.call_tool("search", {"query": "red", "thumbnails": False})

    bad, after = talk(indexed.env, conversation)
    words = [error_of(result) for result in bad]
    assert words[0] == (
        "mediafind: error: kind 'banana': expected one of image, video, audio "
        "(photo is image, recording is audio)"
    )
    assert words[1] == "mediafind: error: limit must be from 1 to 50, got 0"
    assert words[2] == "mediafind: error: limit must be from 1 to 50, got 100000"
    assert words[3].startswith("mediafind: error: since 'last summer': expected an ISO date")
    assert words[4].startswith("mediafind: error: the query is empty")
    assert "query" in words[5] and "required" in words[5].lower()
    assert words[6].startswith("mediafind: error: at: '9:99' is not a time")
    assert words[7].endswith("a photo: nothing is said in it")
    assert results_of(after) == indexed.cli_json("search", "red", "--json")


def test_a_path_outside_the_index_is_refused_and_never_opened(indexed: Indexed):
    """A FIFO outside the index would hang whoever opened it; the answers come
    at once, so nothing opened it."""
    secret = str(indexed.outside / "secret.jpg")
    pipe = str(indexed.outside / "pipe.jpg")
    paths = [secret, pipe, str(indexed.library), str(indexed.library / "nowhere.jpg")]

    async def conversation(client: Client) -> tuple[list[CallToolResult], CallToolResult]:
        refused = []
        for path in paths:
            refused.append(await client.call_tool("similar", {"path": path}))
            refused.append(await client.call_tool("transcript", {"path": path}))
        with anyio.fail_after(60):
            return refused, await client.call_tool("status", {})

    started = time.monotonic()
    refused, after = talk(indexed.env, conversation)
    assert time.monotonic() - started < 60
    for answer, path in zip(refused, [p for p in paths for _ in (1, 2)], strict=True):
        assert error_of(answer) == (
            f"mediafind: error: path {path}: not a file in the index; "
            "give a path that search returned"
        )
    assert not after.is_error


def test_an_index_that_does_not_exist_is_an_error_until_it_is_made(
    indexed: Indexed, tmp_path: Path
):
    missing = tmp_path / "later.db"
    photos = tmp_path / "Later"
    draw_photo(photos / "purple.jpg", COLORS["purple"])

    async def conversation(client: Client) -> tuple[list[CallToolResult], CallToolResult]:
        before = [
            await client.call_tool("status", {}),
            await client.call_tool("search", {"query": "purple"}),
        ]
        assert not missing.exists()  # read-only: nothing created
        # The person runs their first index while the assistant is open.
        made = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                cli_argv("index", str(photos), "--db", str(missing), "--no-speech"),
                env={**indexed.env, "HF_HUB_OFFLINE": "1"},
                capture_output=True,
            )
        )
        assert made.returncode == 0, made.stderr
        return before, await client.call_tool("search", {"query": "purple"})

    # What the command line says, word for word.
    said = subprocess.run(
        cli_argv("status", "--db", str(missing)), env=indexed.env, capture_output=True, text=True
    ).stderr.strip()
    assert said.startswith("mediafind: error: no index at ")
    before, after = talk(indexed.env, conversation, "--db", str(missing))
    for answer in before:
        assert error_of(answer) == said
    assert [r["path"] for r in results_of(after)] == [str(photos / "purple.jpg")]


def test_the_server_never_writes_the_index(indexed: Indexed):
    db = Path(indexed.env["MEDIAFIND_DB"])
    before = (db.stat().st_mtime_ns, db.stat().st_size)

    async def conversation(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("search", {"query": "red"}),
            await client.call_tool("similar", {"path": str(indexed.library / "blue.jpg")}),
            await client.call_tool("status", {}),
        ]

    answers = talk(indexed.env, conversation)
    assert not any(answer.is_error for answer in answers)
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before


OFFLINE = """
import os, sys
if sys.argv[1] == "before":
    import huggingface_hub.constants
from mediafind import mcp_server
mcp_server.offline()
import huggingface_hub.constants
print(os.environ["HF_HUB_OFFLINE"], huggingface_hub.constants.HF_HUB_OFFLINE)
"""


@pytest.mark.parametrize("hub", ["before", "after"])
def test_the_model_hub_is_offline_whenever_it_was_imported(hub: str, indexed: Indexed):
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE, hub], env=indexed.env, capture_output=True, text=True
    )
    assert done.stdout == "1 True\n", done.stderr


@pytest.fixture
def no_mcp(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment where the mcp package cannot be imported."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('mcp', 'mcp_types'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hide), env.get("PYTHONPATH", "")])
    yield env


def test_without_the_mcp_package_it_says_how_to_install_it(no_mcp: dict[str, str]):
    done = subprocess.run(cli_argv("mcp"), env=no_mcp, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == (
        "mediafind: error: the MCP server needs the mcp package, not installed here; "
        "install it with: pip install 'mediafind[mcp]'\n"
    )


def sdk_imported(env: dict[str, str], *args: str) -> set[str]:
    """The modules of the SDK that `mediafind ARGS` imports (stdin closed)."""
    argv = cli_argv(*args)
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return {name for name in imported if name.split(".")[0] in ("mcp", "mcp_types")}


def test_only_the_mcp_command_imports_the_sdk(indexed: Indexed):
    # An assistant that closes stdin at once: the server starts, then ends.
    assert {"mcp.server", "mcp_types"} <= sdk_imported(indexed.env, "mcp")
    for args in (["--help"], ["search", "red"], ["mcp", "--help"]):
        assert sdk_imported(indexed.env, *args) == set(), args


# Records every name looked up and every connection tried in the server process.
NETWORK_WATCH = """
import os, socket
def record(what):
    with open(os.environ["NETWORK_LOG"], "a") as log:
        log.write(repr(what) + "\\n")
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    record(host)
    return _getaddrinfo(host, *args, **kwargs)
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        record(address)
    return _connect(self, address)
socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
"""


def test_a_model_not_in_the_cache_is_one_error_and_never_a_download(tmp_path: Path):
    import sqlite3

    env = environment(tmp_path, "base")
    draw_photo(tmp_path / "Pictures" / "red.jpg", COLORS["red"])
    done = subprocess.run(
        cli_argv("index", str(tmp_path / "Pictures"), "--no-speech", "--no-audio"),
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    # As if the index had been made on another machine, with a model this one lacks.
    with sqlite3.connect(tmp_path / "index.db") as conn:
        conn.execute(
            "UPDATE spaces SET model = 'ViT-B-32:laion2b_s34b_b79k', "
            "model_key = 'open_clip:ViT-B-32:laion2b_s34b_b79k'"
        )
    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "sitecustomize.py").write_text(NETWORK_WATCH)
    log = tmp_path / "network.log"
    env.update(
        PYTHONPATH=os.pathsep.join([str(watch), env.get("PYTHONPATH", "")]),
        NETWORK_LOG=str(log),
        HF_HOME=str(tmp_path / "hf-home"),
    )

    async def conversation(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("search", {"query": "red"}),
            await client.call_tool("search", {"query": "red"}),
        ]

    async def run() -> list[CallToolResult]:
        # The real registry and models: `python -m mediafind mcp`.
        server = StdioServerParameters(
            command=sys.executable, args=["-m", "mediafind", "mcp"], env=env
        )
        async with Client(server) as client:
            return await conversation(client)

    for answer in anyio.run(run):
        message = error_of(answer)
        assert message.startswith(
            "mediafind: error: the index's picture model ViT-B-32:laion2b_s34b_b79k: "
            "its weights are not in the cache"
        )
        assert "local-dir:FOLDER" in message
    assert not log.exists() or log.read_text() == ""
