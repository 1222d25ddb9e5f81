"""Search: ranking, the JSON contract, path output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import COLORS, draw_photo


def open_clip_scores(model_spec: str, query: str, paths: list[Path]) -> dict[str, float]:
    """Calibrated scores computed with open_clip and numpy directly, bypassing
    mediafind: the cosine, less this query's mean cosine over all photos, over
    its standard deviation (the README's rule)."""
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(model_spec)
    tokenizer = open_clip.get_tokenizer(model_spec)
    model.eval()
    with torch.no_grad():
        text = model.encode_text(tokenizer([query]), normalize=True)[0].numpy()
        images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        vectors = model.encode_image(images, normalize=True).numpy()
    cosines = vectors @ text
    center = float(text @ vectors.mean(axis=0))
    spread = float(np.sqrt(text @ np.cov(vectors, rowvar=False) @ text))
    return {str(p): (float(c) - center) / spread for p, c in zip(paths, cosines, strict=True)}


def test_ranking_matches_exact_cosine_similarity(cli, tmp_path: Path, tiny_clip: str):
    # PNG, so that decoding is exact (JPEGs are decoded in draft mode, which
    # shifts scores slightly compared with a full decode).
    root = tmp_path / "pngs"
    names = list(COLORS)
    for number, name in enumerate(names):
        draw_photo(root / f"{name}.png", COLORS[name], stripe=COLORS[names[number - 1]])
    assert cli("index", root).exit_code == 0
    query = "a red car parked in the snow"
    result = cli("search", query, "--json")
    assert result.exit_code == 0
    results = json.loads(result.stdout)
    expected = open_clip_scores(tiny_clip, query, sorted(root.glob("*.png")))
    assert [r["path"] for r in results] == sorted(expected, key=expected.get, reverse=True)
    for item in results:
        assert item["score"] == pytest.approx(expected[item["path"]], rel=1e-3, abs=1e-3)


def test_json_contract(cli, library: Path):
    cli("index", library)
    results = json.loads(cli("search", "sunset", "--json").stdout)
    assert len(results) == len(COLORS)
    for item in results:
        assert list(item) == ["path", "kind", "score", "start", "end", "modality", "moments"]
        assert Path(item["path"]).is_absolute()
        assert item["kind"] == "image"
        assert isinstance(item["score"], float)
        assert item["start"] is None and item["end"] is None
        assert item["modality"] == "visual"
        assert item["moments"] == []
    scores = [item["score"] for item in results]
    assert scores == sorted(scores, reverse=True)


def test_one_result_per_file_and_limit(cli, library: Path):
    cli("index", library)
    paths = cli("search", "dog", "--paths", "--limit", "3").stdout.splitlines()
    assert len(paths) == 3 == len(set(paths))


def test_paths_null_separated_survive_odd_names(cli, tmp_path: Path):
    root = tmp_path / "odd"
    names = ["with space.jpg", "new\nline.jpg", "ünïcødé 写真.jpg"]
    for number, name in enumerate(names):
        draw_photo(root / name, list(COLORS.values())[number])
    cli("index", root)
    result = cli("search", "photo", "--paths", "-0")
    assert result.exit_code == 0
    assert result.stdout.endswith("\0")
    assert sorted(result.stdout.rstrip("\0").split("\0")) == sorted(str(root / n) for n in names)


def test_human_table_lists_rank_score_kind_and_path(cli, library: Path):
    cli("index", library)
    result = cli("search", "a blue sky", "--limit", "2")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["#", "score", "kind", "path"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "1" and lines[1].split()[2] == "image"
    assert str(library) in result.stdout


def test_type_filter_with_no_match_exits_1(cli, library: Path):
    cli("index", library)
    result = cli("search", "beach", "--type", "video", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == []
    assert cli("search", "beach", "--type", "image", "--paths").exit_code == 0


def test_missing_index_is_an_error(cli, tmp_path: Path):
    result = cli("search", "cat", "--db", tmp_path / "nowhere.db")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no index at" in result.stderr and "mediafind index" in result.stderr
    assert not (tmp_path / "nowhere.db").exists()


def test_empty_index_is_an_error(cli, tmp_path: Path):
    (tmp_path / "nothing").mkdir()
    assert cli("index", tmp_path / "nothing").exit_code == 0
    result = cli("search", "cat")
    assert result.exit_code == 2
    assert "empty" in result.stderr


def test_empty_query_is_an_error(cli, library: Path):
    cli("index", library)
    result = cli("search", "   ")
    assert result.exit_code == 2
    assert "query is empty" in result.stderr


def test_conflicting_output_options_are_an_error(cli, library: Path):
    cli("index", library)
    assert cli("search", "x", "--json", "--paths").exit_code == 2
    assert cli("search", "x", "-0").exit_code == 2


def test_db_option_and_environment_variable(cli, library: Path, tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.db"
    assert cli("index", library, "--db", elsewhere).exit_code == 0
    assert elsewhere.exists()
    assert cli("search", "x", "--db", elsewhere, "--paths").exit_code == 0
    monkeypatch.setenv("MEDIAFIND_DB", str(elsewhere))
    assert cli("search", "x", "--paths").exit_code == 0


def test_default_db_lives_in_the_user_data_folder(cli, library: Path, monkeypatch, tmp_path):
    monkeypatch.delenv("MEDIAFIND_DB")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "data" / app))
    assert cli("index", library).exit_code == 0
    assert (tmp_path / "data" / "mediafind" / "index.db").exists()
