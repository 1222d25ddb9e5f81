"""Models: specs, offline errors, devices, and never mixing two models' vectors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import COLORS, draw_photo

from mediafind.errors import DeviceError, ModelUnavailableError, UsageError
from mediafind.models.clip import ClipEmbedder, model_key, parse_spec, resolve_torch_device


def test_spec_forms():
    assert parse_spec("ViT-B-32:laion2b_s34b_b79k").source == "pretrained"
    assert parse_spec("hf-hub:laion/CLIP-ViT-B-32").name == "laion/CLIP-ViT-B-32"
    local = parse_spec("local-dir:relative/model")
    assert local.source == "local-dir" and Path(local.name).is_absolute()


@pytest.mark.parametrize("bad", ["ViT-B-32", "", "hf-hub:no-slash", "local-dir:"])
def test_malformed_specs_are_usage_errors(bad: str):
    with pytest.raises(ValueError):
        parse_spec(bad)
    with pytest.raises(UsageError) as raised:
        ClipEmbedder(bad, device="cpu")
    assert raised.value.worded({"model": "--model"}).startswith(f"--model {bad}: ")


def test_malformed_spec_from_the_environment_names_the_variable(cli, library, monkeypatch):
    monkeypatch.setenv("MEDIAFIND_MODEL", "ViT-B-32")
    result = cli("index", library)
    assert result.exit_code == 2
    assert result.stderr.startswith("mediafind: error: MEDIAFIND_MODEL=ViT-B-32: expected")


def test_unknown_pretrained_tag_lists_the_known_ones():
    with pytest.raises(UsageError, match="laion2b_s34b_b79k"):
        _ = ClipEmbedder("ViT-B-32:no_such_weights", device="cpu").dim


def test_offline_without_cache_is_one_clear_line(cli, tmp_path: Path):
    draw_photo(tmp_path / "p" / "a.jpg")
    result = cli("index", tmp_path / "p", "--model", "ViT-B-32:laion2b_s34b_b79k")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mediafind: error: --model ViT-B-32:laion2b_s34b_b79k: ")
    assert "not in the cache and cannot be downloaded" in result.stderr
    assert "--model local-dir:" in result.stderr


def test_offline_error_is_one_line_in_a_real_process(tmp_path: Path):
    # In-process runs hide what logging prints; a real process shows everything.
    import os
    import subprocess
    import sys

    draw_photo(tmp_path / "p" / "a.jpg")
    result = subprocess.run(
        [sys.executable, "-m", "mediafind", "index", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        env={**os.environ, "MEDIAFIND_MODEL": "ViT-B-32:laion2b_s34b_b79k"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "mediafind: error: MEDIAFIND_MODEL=ViT-B-32:laion2b_s34b_b79k: it is not in the cache"
    )
    assert result.stderr.count("\n") == 1, result.stderr


def test_offline_hub_model_is_an_error_not_random_weights(monkeypatch):
    embedder = ClipEmbedder("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", device="cpu")
    with pytest.raises(ModelUnavailableError, match="local-dir"):
        _ = embedder.dim


def test_local_dir_without_weights_is_refused(tmp_path: Path, tiny_clip: str):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(Path(tiny_clip.removeprefix("local-dir:")) / "open_clip_config.json", folder)
    with pytest.raises(ModelUnavailableError, match="no weights"):
        _ = ClipEmbedder(f"local-dir:{folder}", device="cpu").dim
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        _ = ClipEmbedder(f"local-dir:{tmp_path / 'absent'}", device="cpu").dim


def test_local_model_identity_follows_content_not_location(tmp_path: Path, tiny_clip: str):
    moved = tmp_path / "moved-model"
    shutil.copytree(tiny_clip.removeprefix("local-dir:"), moved)
    assert model_key(parse_spec(f"local-dir:{moved}")) == model_key(parse_spec(tiny_clip))
    config = json.loads((moved / "open_clip_config.json").read_text())
    config["preprocess_cfg"] = {"interpolation": "bilinear"}
    (moved / "open_clip_config.json").write_text(json.dumps(config))
    assert model_key(parse_spec(f"local-dir:{moved}")) != model_key(parse_spec(tiny_clip))


def test_cuda_requested_without_a_gpu_is_a_clear_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError) as raised:
        resolve_torch_device("cuda")
    assert raised.value.worded({"device": "--device"}) == (
        "--device cuda: torch sees no CUDA GPU here; use cpu or auto"
    )
    assert resolve_torch_device("auto") in ("cpu", "mps")


def test_unknown_device_is_a_usage_error():
    with pytest.raises(UsageError):
        resolve_torch_device("tpu")


def test_device_flag_reaches_the_cli(cli, library: Path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("index", library, "--device", "cuda", "--no-audio")
    assert result.exit_code == 2
    assert "--device cuda: torch sees no CUDA GPU" in result.stderr


def test_second_model_is_refused_without_reembed(cli, library: Path, other_clip: str):
    assert cli("index", library).exit_code == 0
    result = cli("index", library, "--model", other_clip)
    assert result.exit_code == 2
    assert "--reembed" in result.stderr and "cannot be compared" in result.stderr
    searched = cli("search", "x", "--model", other_clip)
    assert searched.exit_code == 2
    assert "was built with visual model" in searched.stderr


def test_index_keeps_its_model_when_none_is_asked(cli, library: Path, other_clip, monkeypatch):
    monkeypatch.setenv("MEDIAFIND_MODEL", other_clip)
    assert cli("index", library).exit_code == 0
    monkeypatch.delenv("MEDIAFIND_MODEL")
    draw_photo(library / "new.jpg", COLORS["white"])
    assert cli("index", library).exit_code == 0
    assert cli("search", "x", "--paths").exit_code == 0
    status = json.loads(cli("status", "--json").stdout)
    assert [m["model"] for m in status["models"] if m["modality"] == "visual"] == [other_clip]


def test_reembed_switches_model_and_keeps_search_whole(
    cli, library: Path, tiny_clip: str, other_clip: str, tmp_path: Path, monkeypatch
):
    # Searches below name no model: they use whichever the index holds.
    monkeypatch.delenv("MEDIAFIND_MODEL")
    elsewhere = tmp_path / "elsewhere"
    draw_photo(elsewhere / "far.jpg", COLORS["orange"])
    cli("index", library, "--model", tiny_clip)
    cli("index", elsewhere)
    # Re-embedding one root is not enough: the other root's files would vanish
    # from search, so the old model stays in use until every file is done.
    partial = cli("index", library, "--model", other_clip, "--reembed")
    assert partial.exit_code == 0
    assert f"{len(COLORS)} re-embedded" in partial.stderr
    assert "1 files in other folders still need re-embedding" in partial.stderr
    status = json.loads(cli("status", "--json").stdout)
    assert [(m["model"], m["active"]) for m in status["models"] if m["modality"] == "visual"] == [
        (tiny_clip, True),
        (other_clip, False),
    ]
    assert len(cli("search", "x", "--paths").stdout.splitlines()) == len(COLORS) + 1

    done = cli("index", elsewhere, "--model", other_clip, "--reembed")
    assert done.exit_code == 0 and "still need" not in done.stderr
    status = json.loads(cli("status", "--json").stdout)
    assert [(m["model"], m["active"]) for m in status["models"] if m["modality"] == "visual"] == [
        (other_clip, True)
    ]
    result = cli("search", "x", "--paths")
    assert len(result.stdout.splitlines()) == len(COLORS) + 1
    assert cli("search", "x", "--model", tiny_clip).exit_code == 2


def test_cached_hub_model_loads_without_any_network_request(
    tmp_path: Path, tiny_clip: str, monkeypatch
):
    """A model in the Hugging Face cache must not cost a request per search."""
    import socket

    from huggingface_hub import constants

    # Lay the tiny model out as the hub cache does for a downloaded repo.
    repo = tmp_path / "hub" / "models--someone--tiny-clip"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_clip.removeprefix("local-dir:"), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # As on a user's machine: offline mode not set, and a network that fails loudly.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    attempts: list[object] = []

    def no_network(self, address):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise OSError("network used in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: no_network(None, args))
    embedder = ClipEmbedder("hf-hub:someone/tiny-clip", device="cpu")
    assert embedder.embed_texts(["a cat"]).shape == (1, 32)
    assert attempts == []
    assert constants.HF_HUB_OFFLINE is False  # restored for the rest of the process


def test_replaced_weights_in_a_model_folder_are_named_as_such(
    cli, tmp_path: Path, library: Path, tiny_clip: str, monkeypatch
):
    import shutil

    from tiny_models import build_tiny_clip

    folder = tmp_path / "model"
    shutil.copytree(tiny_clip.removeprefix("local-dir:"), folder)
    monkeypatch.setenv("MEDIAFIND_MODEL", f"local-dir:{folder}")
    cli("index", library)
    build_tiny_clip(folder, seed=5)  # new weights, same folder
    result = cli("search", "x")
    assert result.exit_code == 2
    assert "holds other weights than those that made the index" in result.stderr
    assert "without --model" not in result.stderr
