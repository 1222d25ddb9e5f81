"""The CPU fast path: towers converted to ONNX Runtime agree with torch, are
converted once, rebuilt when the weights change, and never stop a run."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from media_factory import make_audio, sound
from PIL import Image, ImageDraw

from mediafind.models import fast
from mediafind.models.bpe import ClipBpe
from mediafind.models.clap import ClapEmbedder
from mediafind.models.clip import ClipEmbedder

TEXTS = [
    "kids blowing out candles",
    "a",
    "A DOG  on\tthe beach!!",
    "Café crème brûlée, 東京の夜景 🎂",
    " ".join(["very long query"] * 60),
]


def _pictures() -> list[Image.Image]:
    rng = np.random.default_rng(11)
    pictures = []
    for width, height in ((640, 480), (300, 900), (33, 31), (1024, 768), (500, 500)):
        noise = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        picture = Image.fromarray(noise, "RGB")
        ImageDraw.Draw(picture).rectangle((0, 0, width // 2, height // 3), fill=(250, 200, 0))
        pictures.append(picture)
    return pictures


MEDIAFIND_IMPORTTIME = [sys.executable, "-X", "importtime", "-m", "mediafind"]


def imported(importtime_log: str) -> set[str]:
    """Top-level modules named in `python -X importtime` output."""
    found = re.findall(r"^import time:.*\|\s*([\w.]+)\s*$", importtime_log, re.MULTILINE)
    return {name.split(".")[0] for name in found}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "converted"
    monkeypatch.setenv("MEDIAFIND_CACHE", str(cache))
    return cache


def test_clip_towers_agree_with_torch(tiny_clip: str, monkeypatch: pytest.MonkeyPatch):
    converted = ClipEmbedder(tiny_clip, device="cpu")
    assert converted.runtime == "onnxruntime"
    fast_images = converted.embed_images(_pictures())
    fast_texts = converted.embed_texts(TEXTS)
    monkeypatch.setenv("MEDIAFIND_RUNTIME", "torch")
    reference = ClipEmbedder(tiny_clip, device="cpu")
    assert reference.runtime == "torch"
    assert _cosines(fast_images, reference.embed_images(_pictures())).min() >= 0.999
    assert _cosines(fast_texts, reference.embed_texts(TEXTS)).min() >= 0.999
    # Different inputs give different vectors: the agreement is not vacuous.
    assert _cosines(fast_images[:1], fast_images[1:2]).max() < 0.999


def test_clap_towers_agree_with_torch(tiny_clap: str, monkeypatch: pytest.MonkeyPatch):
    rate = 48_000
    windows = [
        sound(kind, seconds, rate)
        for kind, seconds in (("tone", 10), ("noise", 10), ("chirp", 4), ("tone", 1))
    ]
    converted = ClapEmbedder(tiny_clap, device="cpu")
    assert converted.runtime == "onnxruntime"
    fast_sound = converted.embed_audio(windows)
    fast_texts = converted.embed_texts(TEXTS)
    monkeypatch.setenv("MEDIAFIND_RUNTIME", "torch")
    reference = ClapEmbedder(tiny_clap, device="cpu")
    assert reference.runtime == "torch"
    assert _cosines(fast_sound, reference.embed_audio(windows)).min() >= 0.999
    assert _cosines(fast_texts, reference.embed_texts(TEXTS)).min() >= 0.999


def test_converted_once_then_reused_and_rebuilt_when_weights_change(
    tiny_clip: str, fresh_cache: Path
):
    first = ClipEmbedder(tiny_clip, device="cpu")
    vector = first.embed_texts(["a red square"])
    assert any(note.startswith("converted ") for note in first.notes)
    manifests = list(fresh_cache.glob("*/manifest.json"))
    assert len(manifests) == 1
    recorded = json.loads(manifests[0].read_text())
    assert recorded["agreement"]["image"] >= 0.999

    again = ClipEmbedder(tiny_clip, device="cpu")
    assert np.allclose(again.embed_texts(["a red square"]), vector, atol=1e-6)
    # Nothing converted the second time; the note says what ran.
    assert again.notes == [f"{tiny_clip} ran on ONNX Runtime (CPU) for queries"]

    weights = Path(tiny_clip.removeprefix("local-dir:")) / "open_clip_model.safetensors"
    info = weights.stat()
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    rebuilt = ClipEmbedder(tiny_clip, device="cpu")
    rebuilt.embed_texts(["a red square"])
    assert any(note.startswith("converted ") for note in rebuilt.notes)


def test_conversion_failure_falls_back_to_torch_with_a_note(
    cli, tmp_path: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    calls = []

    def broken_export(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise RuntimeError("exporter says no")

    monkeypatch.setattr(fast, "export", broken_export)
    draw_photo(tmp_path / "p" / "red.jpg", COLORS["red"])
    result = cli("index", tmp_path / "p", "-v", "--no-audio")
    assert result.exit_code == 0, result.stderr
    assert "runs on torch: it could not be converted" in result.stderr
    assert "exporter says no" in result.stderr
    quiet = cli("search", "red", "--paths")
    assert quiet.exit_code == 0 and "red.jpg" in quiet.stdout
    assert "could not be converted" not in quiet.stderr  # only with --verbose
    assert not list(fresh_cache.glob("*/manifest.json"))  # nothing half-made is kept
    # The failure is remembered: later runs go straight to torch.
    tried = len(calls)
    again = cli("search", "red", "--paths", "-v")
    assert "red.jpg" in again.stdout and "exporter says no" in again.stderr
    assert len(calls) == tried


def test_int8_conversion_failure_is_an_error(
    cli, tmp_path: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fast, "quantize", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    draw_photo(tmp_path / "p" / "red.jpg", COLORS["red"])
    result = cli("index", tmp_path / "p", "--precision", "int8", "--no-audio")
    assert result.exit_code == 2
    assert "int8" in result.stderr and "disk full" in result.stderr


def test_search_needs_neither_torch_nor_transformers(cli, tmp_path: Path, db_path: Path):
    library = tmp_path / "lib"
    draw_photo(library / "red.jpg", COLORS["red"])
    make_audio(library / "beep.wav", [("tone", 3.0)])
    assert cli("index", library).exit_code == 0
    # -X importtime lists every module the whole process imported, up to the
    # quick exit that skips the interpreter's teardown.
    result = subprocess.run(
        [*MEDIAFIND_IMPORTTIME, "search", "a red thing", "--db", str(db_path), "--json"],
        capture_output=True,
        text=True,
    )
    assert "red.jpg" in result.stdout and "beep.wav" in result.stdout, result.stderr
    assert result.returncode == 0
    heavy = {"torch", "open_clip", "transformers", "av", "starlette", "uvicorn", "textual_image"}
    assert not imported(result.stderr) & heavy


def test_our_tokenizer_matches_open_clip_on_varied_text(tmp_path: Path):
    import open_clip

    theirs = open_clip.get_tokenizer("ViT-B-32")
    merges = tmp_path / "merges.txt"
    merges.write_text("\n".join(" ".join(pair) for pair in theirs.bpe_ranks) + "\n")
    ours = ClipBpe.from_file(merges, 77)
    rng = random.Random(5)
    texts = [
        *TEXTS,
        "it's what we'll've done",
        "&amp; &lt;b&gt; html",
        "<start_of_text> literal <end_of_text>",
        "don\u2019t \u201csmart\u201d quotes, \ufb01 ligature, caf\u00c3\u00a9 mojibake",
        "x" * 300,
        "tab\tand\nnewline, \x07bell, \x1b[31mred\x1b[0m escape, &amp;amp; twice",
    ]
    for _ in range(150):
        texts.append(
            "".join(
                chr(rng.choice((rng.randint(32, 126), rng.randint(160, 0x2FFF))))
                for _ in range(rng.randint(1, 40))
            )
        )
    assert np.array_equal(theirs(texts).numpy(), ours(texts))


def test_runtime_setting_is_checked(monkeypatch: pytest.MonkeyPatch, tiny_clip: str):
    monkeypatch.setenv("MEDIAFIND_RUNTIME", "tensorflow")
    from mediafind.errors import UsageError

    with pytest.raises(UsageError, match="MEDIAFIND_RUNTIME"):
        ClipEmbedder(tiny_clip, device="cpu").embed_texts(["x"])


def test_int8_is_remembered_by_the_index(cli, tmp_path: Path, db_path: Path):
    library = tmp_path / "lib"
    for name, color in list(COLORS.items())[:4]:
        draw_photo(library / f"{name}.jpg", color)
    make_audio(library / "beep.wav", [("tone", 3.0)])
    first = cli("index", library, "--precision", "int8", "-v")
    assert first.exit_code == 0, first.stderr
    assert "(int8) for ONNX Runtime" in first.stderr
    assert "preparing " in first.stderr and "(int8) for this CPU, once" in first.stderr
    from mediafind.db import Store

    with Store.open(db_path, create=False) as store:
        spaces = [store.active_space(m) for m in ("visual", "audio")]
        assert [s.precision for s in spaces if s is not None] == ["int8", "int8"]
    # The query is embedded in int8 too: a photo's own vector finds it first.
    found = json.loads(cli("search", "red", "--json", "--modality", "visual").stdout)
    assert len(found) == 4
    status = json.loads(cli("status", "--json").stdout)
    assert {m["precision"] for m in status["models"] if m["dim"]} == {"int8"}
    assert " in int8, " in cli("status").stdout
    again = cli("index", library)
    assert again.exit_code == 0 and "5 unchanged" in again.stderr
    refused = cli("index", library, "--precision", "fp32")
    assert refused.exit_code == 2
    assert "int8" in refused.stderr and "--reembed" in refused.stderr
    switched = cli("index", library, "--precision", "fp32", "--reembed")
    assert switched.exit_code == 0, switched.stderr
    with Store.open(db_path, create=False) as store:
        visual = store.active_space("visual")
        assert visual is not None and visual.precision == "fp32"


def test_int8_embeddings_are_close_to_full_precision_but_not_equal(tiny_clip: str):
    full = ClipEmbedder(tiny_clip, device="cpu").embed_images(_pictures())
    quantised = ClipEmbedder(tiny_clip, device="cpu", precision="int8")
    assert quantised.key.endswith("#int8")
    vectors = quantised.embed_images(_pictures())
    assert not np.allclose(vectors, full, atol=1e-6)
    assert _cosines(vectors, full).min() >= 0.98


def test_an_unwritable_cache_falls_back_to_torch(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MEDIAFIND_CACHE", str(blocked / "models"))
    draw_photo(tmp_path / "p" / "red.jpg", COLORS["red"])
    result = cli("index", tmp_path / "p", "--no-audio", "-v")
    assert result.exit_code == 0, result.stderr
    assert "runs on torch" in result.stderr and "cannot write to" in result.stderr
    found = cli("search", "red", "--paths")
    assert found.exit_code == 0 and "red.jpg" in found.stdout


def test_converting_during_a_search_keeps_stdout_clean(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    draw_photo(tmp_path / "p" / "red.jpg", COLORS["red"])
    assert cli("index", tmp_path / "p", "--no-audio").exit_code == 0
    monkeypatch.setenv("MEDIAFIND_CACHE", str(tmp_path / "empty-cache"))
    result = cli("search", "red", "--json", "-v")
    assert result.exit_code == 0, result.stderr
    assert [Path(r["path"]).name for r in json.loads(result.stdout)] == ["red.jpg"]
    assert "converted " in result.stderr
