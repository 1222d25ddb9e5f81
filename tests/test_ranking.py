"""Ranking with a real (tiny) open_clip model: mediafind's calibrated scores equal
the README's rule computed with open_clip and numpy directly."""

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
