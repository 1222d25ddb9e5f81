"""Richer queries: --and / --not parts with weights, files as parts, --min-score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fake_modality import text_vector

from mediafind.db import Store
from mediafind.errors import UsageError
from mediafind.query import parse_part

# The model is not the subject here: deterministic stand-ins, no torch.
pytestmark = pytest.mark.usefixtures("fake_models")


def results(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    out = cli("search", *args, "--json", "--limit", "100")
    assert out.exit_code in (0, 1), out.stderr
    return json.loads(out.stdout)


def test_part_syntax(tmp_path: Path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x")
    assert parse_part("sunset") == parse_part("1:sunset")
    assert parse_part("0.5:people", negative=True).weight == -0.5
    part = parse_part(f"2:{photo}")
    assert part.weight == 2.0 and part.example is not None and part.example.path == str(photo)
    with pytest.raises(UsageError):
        parse_part("3:")


def test_not_a_photo_sends_it_to_the_bottom(cli, library: Path):
    cli("index", library)
    red = str(next(library.rglob("red.jpg")))
    plain = [r["path"] for r in results(cli, "a photo")]
    pushed = [r["path"] for r in results(cli, "a photo", "--not", f"3:{red}")]
    assert sorted(plain) == sorted(pushed)
    assert pushed[-1] == red


def test_and_a_photo_pulls_its_twin_to_the_top(cli, library: Path):
    green = next(library.rglob("green.jpg"))
    twin = library / "green twin.jpg"
    shutil.copy(green, twin)
    cli("index", library)
    found = [r["path"] for r in results(cli, "a photo", "--and", f"5:{green}")]
    assert found[0] == str(twin)
    assert str(green) not in found  # a file given as a part is an example: left out


def test_words_combine_as_weighted_unit_vectors(cli, library: Path, db_path: Path):
    cli("index", library)
    got = results(cli, "beach", "--and", "0.5:sunset", "--not", "0.25:people")
    with Store.open(db_path, create=False) as store:
        space = store.active_space("visual")
        assert space is not None
        rows = store.conn.execute(
            f"SELECT f.path, v.embedding FROM {space.table} v "
            "JOIN segments s ON s.id = v.segment_id JOIN files f ON f.id = s.file_id"
        ).fetchall()
    beach, sunset, people = (text_vector(t, space.dim) for t in ("beach", "sunset", "people"))
    vector = beach + 0.5 * sunset - 0.25 * people
    vector /= np.linalg.norm(vector)
    # The expected order, by cosine from the stored vectors, with numpy.
    cosines = {path: float(np.frombuffer(blob, dtype=np.float32) @ vector) for path, blob in rows}
    assert [r["path"] for r in got] == sorted(cosines, key=cosines.get, reverse=True)


def test_min_score_cuts_weak_hits(cli, library: Path):
    cli("index", library)
    scores = [r["score"] for r in results(cli, "a photo")]
    threshold = float(np.median(scores))
    kept = results(cli, "a photo", "--min-score", str(threshold))
    assert kept and all(r["score"] >= threshold for r in kept)
    assert len(kept) < len(scores)
    none = cli("search", "a photo", "--min-score", "1000", "--paths")
    assert none.exit_code == 1 and none.stdout == ""
