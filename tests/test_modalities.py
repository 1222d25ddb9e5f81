"""The registry: a modality is one module, and nothing else needs to change for
a new one. This test adds a third modality, how bright a picture is, in this
file alone, registers it, and finds it indexed, searched, fused and reported
like the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import COLORS, draw_photo
from fake_modality import FakeEmbedder, unit

from mediafind import config, modalities
from mediafind.db import NewSegment, Store
from mediafind.index import index_paths
from mediafind.modalities.base import Decoded, DecodeOptions, Example, Progress, VectorModality
from mediafind.query import combined_score, search
from mediafind.status import index_status

pytestmark = pytest.mark.usefixtures("fake_models")


def brightness_vector(image: Any) -> np.ndarray:
    """Dark to light as a direction in a plane: 0 degrees black, 90 white."""
    level = float(np.asarray(image.convert("L"), dtype=np.float64).mean()) / 255.0
    angle = level * np.pi / 2
    return unit(np.array([np.cos(angle), np.sin(angle)]))


class Brightness(VectorModality):
    name = "brightness"
    noun = "brightness"
    kinds = ("image",)
    option = "--brightness-model"
    argument = "brightness_model"
    env = "MEDIAFIND_BRIGHTNESS_MODEL"
    config_key = "brightness_model"
    default_model = "mean-grey"
    example_kinds = ("image",)

    def embedder(self, choice: config.Choice, device: str, precision: str) -> FakeEmbedder:
        class Levels(FakeEmbedder):
            def embed_texts(self, texts):  # type: ignore[no-untyped-def]
                return np.stack([unit(np.array([0.0, 1.0])) for _ in texts])  # "bright"

        return Levels(self.name, choice, 2, precision)

    def decode(
        self, path: str, kind: str, embedder: Any, options: DecodeOptions, progress: Progress
    ) -> Decoded:
        from mediafind.media.image import load_image

        return Decoded(
            inputs=[brightness_vector(load_image(path, 16).image)],
            segments=[NewSegment(self.name, None, None)],
        )

    def embed_example(self, example: Example, embedder: Any) -> np.ndarray:
        from mediafind.media.image import load_image

        return brightness_vector(load_image(example.path, 16).image)


def test_a_third_modality_is_one_module(tmp_path: Path, db_path: Path):
    root = tmp_path / "photos"
    for name in ("black", "white", "yellow", "blue"):
        draw_photo(root / f"{name}.png", COLORS[name])
    with modalities.registered(Brightness()), Store.open(db_path, create=True) as store:
        summary = index_paths(store, [root])
        assert summary.new == 4
        held = {model.modality: model.vectors for model in index_status(store).models}
        assert held == {"visual": 4, "brightness": 4}
        found = search(store, "something bright", modalities=["brightness"], limit=4)
        both = search(store, "something bright", limit=4)
    # The brightest first, matched by the new modality alone.
    assert [Path(r.path).stem for r in found][:2] == ["white", "yellow"]
    assert {r.modality for r in found} == {"brightness"}
    assert {r.modality for r in both} <= {"visual", "brightness"}
    assert json.loads(json.dumps([r.to_dict() for r in found]))[0]["modality"] == "brightness"
    assert "brightness" not in modalities.names()  # gone with its registration


def test_evidence_from_any_number_of_modalities_combines():
    # Stouffer's rule over the strongest of the scores, one alone included.
    assert combined_score([2.0]) == 2.0
    assert combined_score([2.0, 2.0]) == pytest.approx(4.0 / np.sqrt(2))
    assert combined_score([3.0, 0.1]) == 3.0  # weak evidence does not dilute strong
    assert combined_score([2.0, 2.0, 2.0]) == pytest.approx(6.0 / np.sqrt(3))
    assert combined_score([2.0, 1.5, -1.0]) == pytest.approx(3.5 / np.sqrt(2))
